"""A multi-device AI session on one channel, with turn semantics over @ably/ai-transport's wire.

    session = Session(client, "ai:chat")
    await session.connect()                 # attach, load the latest history page
    turn = await session.send("Hi there")   # an own turn: publishes the user message
    async for chunk in turn:                # the streamed response (Vercel UIMessageChunks)
        ...
    session.active_turns                    # {clientId: {turn ids streaming}} on every device
    await session.cancel(own=True)          # ai-cancel for every active turn of this clientId

A turn is a run on the wire. What "own" means depends on the question, as in @ably/ai-transport:
- `Turn.own` is per device: the turn answers an input this Session published (it has an
  ActiveTurn stream handle). The same user's other devices see it as an observer turn (session
  events "turn", "turn_end" and "chunks", no stream handle).
- `cancel(own=True)` is per clientId: every active turn whose owner (run-client-id) is this
  clientId, whichever device started it. The wire has no clientId scope for cancels; this is
  the client choosing runs, so a user can stop from the laptop what the phone started.

An agent is started out of band: hand it `turn.invocation` ({inputEventId, sessionName}, the
body @ably/ai-transport POSTs), or run a Python AgentSession that accepts inputs straight off
the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from types import MappingProxyType
from typing import Any

from channel_relay.client.channel import Channel
from channel_relay.client.codecs import inputs, vercel
from channel_relay.client.codecs.codec import Codec
from channel_relay.client.errors import AblyError
from channel_relay.client.events import EventEmitter, Subscription
from channel_relay.client.message import Message, PresenceMessage
from channel_relay.client.realtime import Realtime
from channel_relay.client.rest import PaginatedResult
from channel_relay.client.turns.encoder import Encoder
from channel_relay.client.turns.tree import ENDED, ConversationTree, Node, Run, View
from channel_relay.client.turns.wire import (
    AI_CANCEL,
    ai_extras,
    build_transport_headers,
    channel_agent,
)
from channel_relay.protocol.actions import PresenceAction

__all__ = ["ActiveTurn", "Session", "Steer", "Turn"]

UIMessage = dict[str, Any]


class Turn:
    """A run as this session sees it: owner (`client_id`), `status`, `own`, its messages."""

    def __init__(self, session: Session, run: Run, own: bool) -> None:
        self.session = session
        self.run = run
        self.own = own

    @property
    def turn_id(self) -> str:
        return self.run.run_id

    @property
    def client_id(self) -> str:
        return self.run.client_id

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def nodes(self) -> list[Node]:
        nodes = self.session.tree.nodes
        return [
            nodes[c] for c in self.run.messages if c in nodes and not self.run.supersedes(nodes[c])
        ]

    @property
    def text(self) -> str:
        """The text of the turn's assistant messages so far."""
        return "".join(node.text for node in self.nodes)

    async def cancel(self) -> None:
        """Ask the agent to stop this turn (an ai-cancel with its run-id)."""
        await self.session._publish_cancels([{"run-id": self.turn_id}])

    def __repr__(self) -> str:
        kind = "own" if self.own else "observer"
        return f"<Turn {self.turn_id} {kind} of {self.client_id!r} {self.status}>"


class ActiveTurn:
    """The handle `send()`, `regenerate()`, `edit()` and `respond()` return: the turn this
    session started. Iterate it for the response's UIMessageChunks (from the run's start to its
    end; a turn whose run already ended yields what was streamed). `await turn.done()` waits
    for the end and returns the reason (complete, cancelled, error, suspended)."""

    def __init__(
        self,
        session: Session,
        input_codec_message_id: str,
        event_id: str,
        run_id: str | None = None,
    ) -> None:
        self.session = session
        self.input_codec_message_id = input_codec_message_id
        self.event_id = event_id
        self.run_id = run_id
        self.turn: Turn | None = None
        self.started: asyncio.Future[Turn] = asyncio.get_running_loop().create_future()
        self._ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._stream: Subscription[dict[str, Any]] = Subscription()

    @property
    def invocation(self) -> dict[str, str]:
        """What an agent needs to serve this turn (@ably/ai-transport's Invocation JSON)."""
        return {"inputEventId": self.event_id, "sessionName": self.session.channel.name}

    @property
    def status(self) -> str:
        return self.turn.status if self.turn else "pending"

    @property
    def text(self) -> str:
        return self.turn.text if self.turn else ""

    @property
    def message(self) -> UIMessage | None:
        """The (last) assistant UIMessage of this turn, as built so far."""
        nodes = self.turn.nodes if self.turn else []
        return nodes[-1].message if nodes else None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._stream

    async def done(self, timeout: float | None = None) -> str:  # noqa: ASYNC109
        """Wait for the run to end (or suspend); returns the reason."""
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._ended)

    async def cancel(self) -> None:
        """Cancel this turn: by run-id once started, by the input's id before that (the agent
        buffers such a cancel until the run exists)."""
        if self.run_id:
            await self.session._publish_cancels([{"run-id": self.run_id}])
        else:
            await self.session._publish_cancels(
                [{"input-codec-message-id": self.input_codec_message_id}]
            )

    # From the session

    def _bind(self, turn: Turn) -> None:
        self.turn, self.run_id = turn, turn.turn_id
        if not self.started.done():
            self.started.set_result(turn)

    def _chunks(self, chunks: list[dict[str, Any]]) -> None:
        for chunk in chunks:
            self._stream.push(chunk)

    def _end(self, reason: str) -> None:
        if not self._ended.done():
            self._ended.set_result(reason)
        self._stream.close()

    def _resume(self) -> None:
        # A continuation (approval answered): a new stream for the resumed run.
        if self._ended.done():
            self._ended = asyncio.get_running_loop().create_future()
            self._stream = Subscription()


class Steer:
    """A user message steered into a running turn. `serial` once published; `await
    steer.outcome()` -> (consumed, the turn's status when it suspended or ended)."""

    def __init__(self, codec_message_id: str, turn_id: str) -> None:
        self.codec_message_id = codec_message_id
        self.turn_id = turn_id
        self.serial: str | None = None
        self._outcome: asyncio.Future[tuple[bool, str]] = asyncio.get_running_loop().create_future()

    async def outcome(self, timeout: float | None = None) -> tuple[bool, str]:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            return await asyncio.shield(self._outcome)

    def _settle(self, consumed: bool, status: str) -> None:
        if not self._outcome.done():
            self._outcome.set_result((consumed, status))


class Session(EventEmitter):
    """The client side of an AI session on channel `channel_name` of `client`.

    Events: "turn" (Turn) when a run starts (own or observed, including runs synthesised for a
    late joiner), "turn_end" (Turn), "chunks" (Turn, Node, chunks) for streamed output,
    "active_turns" (mapping), "agent_status" (clientId, idle | thinking | streaming | offline)
    from agent presence (`agents` holds the latest per clientId), "update" () on any change of
    the tree. `codec` is the content codec of the channel (the Vercel UIMessage codec unless
    given; see `channel_relay.client.codecs.codec.Codec`).
    """

    def __init__(
        self,
        client: Realtime,
        channel_name: str,
        *,
        history_page_size: int = 100,
        codec: Codec = vercel.CODEC,
    ) -> None:
        super().__init__()
        self.client = client
        self.codec = codec
        self.channel: Channel = client.channels.get(channel_name)
        # Announced on ATTACH, as the JS session's registerAgent does.
        self.channel.params = {
            "agent": channel_agent(codec.adapter_tag),
            **(self.channel.params or {}),
        }
        self.tree = ConversationTree(codec)
        self.view = View(self.tree, self)
        self.turns: dict[str, Turn] = {}
        self.history_page_size = history_page_size
        self._own_inputs: dict[str, ActiveTurn] = {}
        self._own_runs: dict[str, ActiveTurn] = {}
        self._steers: dict[str, Steer] = {}
        self._agents: dict[str, str] = {}
        self.agents = MappingProxyType(self._agents)
        self._page: PaginatedResult[Message] | None = None
        self._subscription: Subscription[Message] | None = None
        self._presence: Subscription[PresenceMessage] | None = None
        self._pump: asyncio.Task[None] | None = None
        self.tree.on("run", self._on_run)
        self.tree.on("chunks", self._on_chunks)
        self.tree.on("active_turns", lambda m: self.emit("active_turns", m))
        self.tree.on("update", lambda: self.emit("update"))

    @property
    def client_id(self) -> str | None:
        return self.client.client_id

    @property
    def active_turns(self):
        """clientId -> set of turn ids currently streaming (a live, read-only mapping)."""
        return self.tree.active_turns

    # Lifecycle

    async def connect(self) -> None:
        """Connect, attach, load the newest history page (until the attach point), then
        follow the channel live. Messages arriving meanwhile are applied after the history."""
        await self.client.connect()
        self._subscription = self.channel.subscribe()
        self._presence = self.channel.presence.subscribe(self._on_presence)
        await self.channel.attach()
        for member in await self.channel.presence.get():
            self._on_presence(member)
        self._page = await self.channel.history(until_attach=True, limit=self.history_page_size)
        self._apply_page(self._page)
        self._pump = asyncio.create_task(self._follow(), name=f"session-{self.channel.name}")

    async def __aenter__(self) -> Session:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def has_older(self) -> bool:
        """Whether older history pages remain to load."""
        return self._page is not None and self._page.has_next()

    async def page_until(
        self,
        located: Callable[[], bool],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> bool:
        """Load older pages until `located()` holds; once history is exhausted, wait for live
        messages to make it hold. False if it does not within `timeout` (JS pageUntilLocated)."""
        changed = asyncio.Event()
        off = self.tree.on("update", changed.set)
        try:
            async with asyncio.timeout(timeout):
                while not located():
                    changed.clear()
                    if not await self.load_older():
                        await changed.wait()
        except TimeoutError:
            return False
        finally:
            off()
        return True

    async def load_older(self) -> bool:
        """Load the next older history page into the tree; False when there is none."""
        if self._page is None or not self._page.has_next():
            return False
        page = await self._page.next()
        if page is None:
            return False
        self._page = page
        self._apply_page(page)
        return True

    async def close(self) -> None:
        """Stop following the channel (the client stays connected)."""
        if self._subscription is not None:
            self._subscription.close()
        if self._presence is not None:
            self._presence.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    def create_view(self) -> View:
        """A new view over this session's tree, with its own branch selection."""
        return View(self.tree, self)

    def _apply_page(self, page: PaginatedResult[Message]) -> None:
        for message in reversed(page.items):
            self.tree.apply(message, live=False)

    async def _follow(self) -> None:
        assert self._subscription is not None
        async for message in self._subscription:
            self.tree.apply(message)

    # Sending

    async def send(
        self,
        message: UIMessage | str,
        *,
        view: View | None = None,
        parent: str | None = None,
        fork_of: str | None = None,
    ) -> ActiveTurn:
        """Publish a user message (a UIMessage dict, or text) as an own turn; its parent is
        the last message visible in `view` (the session's default view) unless given.
        Returns once the relay ACKed the message. Raises AblyError on refusal."""
        view = view or self.view
        if isinstance(message, str):
            message = self.codec.text_message(message)
        if parent is None and fork_of is None:
            last = view.last()
            parent = last.codec_message_id if last else None
        cmid, event_id = str(uuid.uuid4()), str(uuid.uuid4())
        headers = build_transport_headers(
            role="user",
            codec_message_id=cmid,
            run_client_id=self.client_id or "",
            parent=parent,
            fork_of=fork_of,
            event_id=event_id,
        )
        event = inputs.create_user_message(message)
        wire = (
            Encoder(codec=self.codec).input(event, headers=headers, codec_message_id=cmid).messages
        )
        turn = ActiveTurn(self, cmid, event_id)
        self._own_inputs[cmid] = turn
        await self._publish(wire)
        view.selection.pop(parent, None)
        return turn

    async def regenerate(self, codec_message_id: str, *, view: View | None = None) -> ActiveTurn:
        """Ask for a new answer in place of assistant message `codec_message_id`: a sibling
        of it once the agent runs. Returns the own turn."""
        view = view or self.view
        node = self.tree.nodes[codec_message_id]
        cmid, event_id = str(uuid.uuid4()), str(uuid.uuid4())
        headers = build_transport_headers(
            role="user",
            codec_message_id=cmid,
            run_client_id=self.client_id or "",
            parent=node.parent,
            msg_regenerate=codec_message_id,
            event_id=event_id,
        )
        turn = ActiveTurn(self, cmid, event_id)
        self._own_inputs[cmid] = turn
        write = Encoder(codec=self.codec).input(
            inputs.create_regenerate(codec_message_id, node.parent),
            headers=headers,
            codec_message_id=cmid,
        )
        await self._publish(write.messages)
        view.selection.pop(node.parent, None)
        return turn

    async def edit(
        self, codec_message_id: str, message: UIMessage | str, *, view: View | None = None
    ) -> ActiveTurn:
        """Replace user message `codec_message_id` with `message`: a new input forking it
        (its sibling), answered as a new turn."""
        node = self.tree.nodes[codec_message_id]
        view = view or self.view
        turn = await self.send(
            message, view=view, parent=node.parent or None, fork_of=codec_message_id
        )
        if node.parent is None:
            view.selection.pop(None, None)
        return turn

    async def respond(
        self,
        tool_call_id: str,
        *,
        approved: bool = True,
        reason: str | None = None,
    ) -> ActiveTurn:
        """Answer a tool-approval request (human in the loop): continues the suspended turn
        that asked, which the agent resumes. Raises KeyError if no message asks for it."""
        payload: dict[str, Any] = {self.codec.tool_call_key: tool_call_id, "approved": approved}
        if reason:
            payload["reason"] = reason
        return await self._continue(tool_call_id, inputs.create_tool_approval_response, payload)

    async def send_tool_result(
        self, tool_call_id: str, output: Any = None, *, error: str | None = None
    ) -> ActiveTurn:
        """Answer a client-side tool call with its `output` (or `error`) inside the suspended
        turn that asked, which the agent resumes: what a JS `view.send(codec.createToolResult(
        ...), {runId})` does, the way for codecs without tool-result forks (the OpenAI codec;
        see `add_tool_result` for the Vercel fork). Raises KeyError if no message holds it."""
        payload: dict[str, Any] = {self.codec.tool_call_key: tool_call_id}
        if error is None:
            payload["output"] = output
            return await self._continue(tool_call_id, inputs.create_tool_result, payload)
        payload["message"] = error
        return await self._continue(tool_call_id, inputs.create_tool_result_error, payload)

    async def _continue(
        self,
        tool_call_id: str,
        create: Callable[[str, dict[str, Any]], dict[str, Any]],
        payload: dict[str, Any],
    ) -> ActiveTurn:
        # A tool input continuing the run of the message that holds the call.
        node = self._tool_node(tool_call_id)
        run_id = node.run_id or ""
        event_id = str(uuid.uuid4())
        headers = build_transport_headers(
            role="user",
            codec_message_id=node.codec_message_id,
            run_id=run_id,
            run_client_id=self.client_id or "",
            parent=node.codec_message_id,
            event_id=event_id,
        )
        write = Encoder(codec=self.codec).input(
            create(node.codec_message_id, payload),
            headers=headers,
            codec_message_id=node.codec_message_id,
        )
        turn = ActiveTurn(self, node.codec_message_id, event_id, run_id=run_id)
        self._own_runs[run_id] = turn
        if run_id in self.turns:
            turn.turn = self.turns[run_id]
        await self._publish(write.messages)
        return turn

    async def steer(self, turn_id: str, message: UIMessage | str) -> Steer:
        """Send a user message into running turn `turn_id` (the agent takes it into the work
        it is doing rather than starting a turn). The returned Steer says when it is published
        and, once the turn suspends or ends, whether the agent consumed it. Raises AblyError
        40003 if the turn has ended."""
        run = self.tree.runs.get(turn_id)
        if run is None or run.status in ENDED:
            raise AblyError(40003, 400, f"unable to steer; run {turn_id} has already ended")
        cmid, event_id = str(uuid.uuid4()), str(uuid.uuid4())
        headers = build_transport_headers(
            role="user",
            codec_message_id=cmid,
            run_id=turn_id,
            run_client_id=self.client_id or "",
            event_id=event_id,
        )
        if isinstance(message, str):
            message = self.codec.text_message(message)
        event = inputs.create_user_message(message)
        write = Encoder(codec=self.codec).input(event, headers=headers, codec_message_id=cmid)
        steer = Steer(cmid, turn_id)
        self._steers[cmid] = steer
        serials = await self._publish(write.messages)
        steer.serial = serials[0] if serials else None
        return steer

    async def add_tool_result(
        self,
        tool_call_id: str,
        output: Any = None,
        *,
        error: str | None = None,
    ) -> ActiveTurn:
        """Answer a client-side tool call with its `output` (or `error`): a tool-result fork,
        as the JS transport sends one. The turn that asked is superseded (hidden from every
        view) by a sibling branch holding its messages with the result in place, which the
        agent continues as a new own turn. Concurrent answers from other devices each make
        their own branch. Raises KeyError if no message holds the call."""
        node = self._tool_node(tool_call_id)
        run = self.tree.runs.get(node.run_id or "")
        if run is None:
            raise KeyError(f"tool call {tool_call_id!r} belongs to no known turn")
        entries = [
            {"codecMessageId": str(uuid.uuid4()), "message": self.tree.nodes[cmid].message}
            for cmid in run.messages
            if cmid in self.tree.nodes
        ]
        target = next(
            e["codecMessageId"]
            for e in entries
            if self.codec.holds_tool_call(e["message"], tool_call_id)
        )
        payload: dict[str, Any] = {"toolCallId": tool_call_id}
        if error is None:
            payload["output"] = output
        else:
            payload["message"] = error
        payload["forkSeed"] = {"messages": entries}
        create = inputs.create_tool_result if error is None else inputs.create_tool_result_error
        event_id = str(uuid.uuid4())
        parent = run.parent or self.tree.nodes[run.messages[0]].parent
        headers = build_transport_headers(
            role="assistant",
            codec_message_id=target,
            run_client_id=self.client_id or "",
            parent=parent,
            supersedes=run.run_id,
            event_id=event_id,
        )
        write = Encoder(codec=self.codec).input(
            create(target, payload), headers=headers, codec_message_id=target
        )
        turn = ActiveTurn(self, target, event_id)
        self._own_inputs[target] = turn
        await self._publish(write.messages)
        return turn

    def _tool_node(self, tool_call_id: str) -> Node:
        for node in reversed(list(self.tree.nodes.values())):
            if node.role == "assistant" and node.holds_tool_call(tool_call_id):
                return node
        raise KeyError(f"no message holds tool call {tool_call_id!r}")

    async def cancel(
        self,
        *,
        own: bool = False,
        turn_id: str | None = None,
        client_id: str | None = None,
        all: bool = False,
    ) -> list[str]:
        """Cancel active turns; returns the turn ids asked to stop. Scopes: `own=True` every
        active turn owned by this clientId (on any of its devices), `turn_id`, `client_id`,
        `all=True`. Each becomes an `ai-cancel` {event-id, run-id}; own turns not started yet
        are cancelled by their input's id. Suspended turns count as active here."""
        if sum(bool(x) for x in (own, turn_id, client_id, all)) != 1:
            raise ValueError("give exactly one of own=True, turn_id=, client_id=, all=True")
        if turn_id:
            targets = [turn_id]
        else:
            owner = self.client_id if own else client_id
            targets = [
                run.run_id
                for run in self.tree.runs.values()
                if run.status not in ENDED and (all or run.client_id == owner)
            ]
        cancels = [{"run-id": run_id} for run_id in targets]
        if own or all:
            for cmid, turn in self._own_inputs.items():
                if turn.run_id is None and not turn._ended.done():
                    cancels.append({"input-codec-message-id": cmid})
        if cancels:
            await self._publish_cancels(cancels)
        return targets

    async def _publish_cancels(self, targets: list[dict[str, str]]) -> None:
        wire = [
            Message(name=AI_CANCEL, extras=ai_extras({"event-id": str(uuid.uuid4()), **target}))
            for target in targets
        ]
        await self.channel.publish(wire)

    async def _publish(self, wire: list[Message]) -> list[str]:
        serials = await self.channel.publish(wire)
        # Apply our own input at once (its echo is then a duplicate), so the tree holds it
        # when send() returns.
        for message, serial in zip(wire, serials, strict=False):
            message.serial = serial
            message.client_id = self.client_id
            self.tree.apply(message)
        return serials

    def _on_presence(self, member: PresenceMessage) -> None:
        # Agent presence: members whose data carries a status; a departed agent is offline.
        data = member.data if isinstance(member.data, dict) else {}
        client_id = member.client_id or ""
        if member.action == PresenceAction.LEAVE:
            status = "offline" if client_id in self._agents else None
        else:
            status = data.get("status") if isinstance(data.get("status"), str) else None
        if status is None or self._agents.get(client_id) == status:
            return
        self._agents[client_id] = status
        self.emit("agent_status", client_id, status)

    # From the tree

    def _on_run(self, run: Run, kind: str) -> None:
        turn = self.turns.get(run.run_id)
        handle = self._own_runs.get(run.run_id)
        if handle is None and run.input_codec_message_id in self._own_inputs:
            handle = self._own_inputs[run.input_codec_message_id]
            self._own_runs[run.run_id] = handle
        if turn is None:
            turn = Turn(self, run, own=handle is not None)
            self.turns[run.run_id] = turn
            if kind != "end" or not run.synthesized:
                self.emit("turn", turn)
        elif handle is not None and not turn.own:
            turn.own = True
        if handle is not None:
            if kind == "resume":
                handle._resume()
            handle._bind(turn)
            if kind in ("end", "suspend"):
                handle._end(run.status)
        if kind in ("end", "suspend"):
            for cmid, steer in list(self._steers.items()):
                if steer.turn_id == run.run_id:
                    del self._steers[cmid]
                    steer._settle(cmid in run.consumed_steers, run.status)
        if kind == "end":
            self.emit("turn_end", turn)

    def _on_chunks(self, run: Run, node: Node, chunks: list[dict[str, Any]]) -> None:
        turn = self.turns.get(run.run_id)
        handle = self._own_runs.get(run.run_id)
        if handle is not None:
            handle._chunks(chunks)
        if turn is not None:
            self.emit("chunks", turn, node, chunks)


async def wait_until(session: Session, predicate: Any, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait until `predicate()` holds, re-checked on every change of the session's tree and of
    its agents' statuses."""
    event = asyncio.Event()
    off = session.tree.on("update", event.set)
    off2 = session.tree.on("active_turns", lambda _m: event.set())
    off3 = session.on("agent_status", lambda *_a: event.set())
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                event.clear()
                await event.wait()
    except TimeoutError:
        raise AblyError(50003, 504, "Timed out waiting for the session condition") from None
    finally:
        off()
        off2()
        off3()
