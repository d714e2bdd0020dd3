"""The agent side: accept an invocation, run it, stream the answer, honour cancels.

    agent = AgentSession(client, "ai:chat")
    await agent.connect()
    async for invocation in agent.invocations():      # inputs published on the channel
        run = await agent.accept(invocation)          # or accept(event_id) from an HTTP POST
        await run.start()                             # ai-run-start (or ai-run-resume)
        reason = await run.pipe(chunks)               # UIMessageChunks -> create + appends
        await run.end(reason)                         # ai-run-end

On the wire exactly as @ably/ai-transport's agent: every event of the invocation carries the
run-id, run-client-id, invocation-id, input-client-id and input-codec-message-id; outputs carry
the assistant message's codec-message-id, its parent and the step they belong to; a streamed
part is one message (create with data "", one append per delta, a closing append with status
complete or cancelled). A live `ai-cancel` naming the run (or its input) sets `run.cancelled`
and makes `pipe()` stop, close its open streams as cancelled and return "cancelled".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from channel_relay.client.codecs import jsjson, vercel
from channel_relay.client.codecs.codec import Codec
from channel_relay.client.errors import AblyError
from channel_relay.client.events import Subscription
from channel_relay.client.message import Message
from channel_relay.client.realtime import Realtime
from channel_relay.client.turns.encoder import Encoder, Write
from channel_relay.client.turns.session import Session
from channel_relay.client.turns.tree import Node
from channel_relay.client.turns.wire import (
    RUN_END,
    RUN_RESUME,
    RUN_START,
    RUN_SUSPEND,
    STEP_END,
    STEP_START,
    ai_extras,
    build_transport_headers,
    codec_headers,
    transport_headers,
)
from channel_relay.protocol.actions import MessageAction

__all__ = ["AgentRun", "AgentSession", "ChunkWriter", "Invocation"]

# What a run's on_cancelled hook gets: publish one more UIMessageChunk of the cancelled step.
ChunkWriter = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Invocation:
    """A request to serve one input: its event-id (what @ably/ai-transport POSTs as
    inputEventId) and the session (channel) name."""

    input_event_id: str
    session_name: str

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Invocation:
        return cls(value["inputEventId"], value["sessionName"])


class AgentSession:
    """An agent on one channel. It follows the conversation (a Session underneath, so
    `agent.session.tree` holds the tree) and routes live cancels to its runs."""

    def __init__(
        self,
        client: Realtime,
        channel_name: str,
        *,
        history_page_size: int = 100,
        report_status: bool = False,
        codec: Codec = vercel.CODEC,
    ) -> None:
        self.client = client
        self.session = Session(
            client, channel_name, history_page_size=history_page_size, codec=codec
        )
        # Agent presence: {"status": idle | thinking | streaming}, leaving means offline.
        self.report_status = report_status
        self.status: str | None = None
        self._working: dict[str, str] = {}
        self.channel = self.session.channel
        self.runs: dict[str, AgentRun] = {}
        self._by_input: dict[str, AgentRun] = {}
        self._early_cancels: dict[str, dict[str, str]] = {}
        self._invocations: list[Subscription[Invocation]] = []
        self.session.tree.on("cancel", self._on_cancel)
        self.session.tree.on("invocation", self._on_invocation)

    async def connect(self) -> None:
        """Connect and follow the channel; with `report_status`, enter presence as idle."""
        await self.session.connect()
        if self.report_status:
            await self.set_status("idle")

    async def close(self) -> None:
        """Stop following the channel; with `report_status`, leave presence (offline)."""
        if self.report_status and self.status is not None:
            await self.channel.presence.leave()
            self.status = None
        await self.session.close()

    async def set_status(self, status: str) -> None:
        """Report what the agent is doing on the channel's presence ({"status": status}; the
        convention is idle, thinking or streaming; clients read a departed agent as offline).
        With `report_status` the runs set it themselves: thinking from start() to the first
        output, streaming while outputs flow, idle once no run is working."""
        if status == self.status:
            return
        first = self.status is None
        self.status = status
        if first:
            await self.channel.presence.enter({"status": status})
        else:
            await self.channel.presence.update({"status": status})

    async def _run_status(self, run_id: str, status: str | None) -> None:
        if not self.report_status:
            return
        if status is None:
            self._working.pop(run_id, None)
        else:
            self._working[run_id] = status
        states = set(self._working.values())
        overall = "streaming" if "streaming" in states else "thinking" if states else "idle"
        await self.set_status(overall)

    async def __aenter__(self) -> AgentSession:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def invocations(self) -> Subscription[Invocation]:
        """Every input that arrives live asking for work (a user message, regenerate, approval
        or tool result; a steer goes to its running turn instead), once per event-id: for an
        agent serving a channel directly, with no HTTP endpoint. Inputs already in history
        when the agent connected, or paged in by `accept()`, are never invocations: an agent
        loop must not answer them again."""
        subscription: Subscription[Invocation] = Subscription(
            on_close=lambda: self._invocations.remove(subscription)
        )
        self._invocations.append(subscription)
        return subscription

    def _on_invocation(self, event_id: str, _inputs: list[Message]) -> None:
        for subscription in self._invocations:
            subscription.push(Invocation(event_id, self.channel.name))

    async def accept(
        self,
        invocation: Invocation | dict[str, Any] | str,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109
        on_cancel: Callable[[dict[str, str]], bool] | None = None,
        on_cancelled: Callable[[ChunkWriter], Awaitable[None]] | None = None,
    ) -> AgentRun:
        """Find the input the invocation names (already seen, in older history, or arriving
        live) and create its run. Raises AblyError 40400 if it does not turn up in `timeout`.

        Run hooks (the JS RunHooks): `on_cancel(request)` decides whether a cancel is honoured
        (return False to refuse it); `on_cancelled(write)` runs when a cancel stops `pipe()`,
        before its open streams close, to `await write(chunk)` last words."""
        if isinstance(invocation, dict):
            invocation = Invocation.from_json(invocation)
        event_id = invocation if isinstance(invocation, str) else invocation.input_event_id
        tree = self.session.tree
        located = await self.session.page_until(
            lambda: event_id in tree.inputs_by_event_id, timeout=timeout
        )
        if not located:
            raise AblyError(40400, 404, f"No input with event-id {event_id}")
        inputs = tree.inputs_by_event_id[event_id]
        run = AgentRun(self, inputs, on_cancel=on_cancel, on_cancelled=on_cancelled)
        self.runs[run.run_id] = run
        self._by_input[run.input_codec_message_id] = run
        early = self._early_cancels.pop(run.input_codec_message_id, None)
        if early is not None:
            run._cancel(early)
        return run

    def _on_cancel(self, transport: dict[str, str], _message: Message) -> None:
        run = self.runs.get(transport.get("run-id", ""))
        cmid = transport.get("input-codec-message-id")
        if run is None and cmid:
            run = self._by_input.get(cmid)
            if run is None:
                # The run does not exist yet: honour the cancel when it is accepted.
                self._early_cancels[cmid] = transport
                return
        if run is not None:
            run._cancel(transport)


class AgentRun:
    """One invocation of the agent: a fresh run, or a continuation of a suspended one."""

    def __init__(
        self,
        agent: AgentSession,
        inputs: list[Message],
        *,
        on_cancel: Callable[[dict[str, str]], bool] | None = None,
        on_cancelled: Callable[[ChunkWriter], Awaitable[None]] | None = None,
    ) -> None:
        self.agent = agent
        self.on_cancel = on_cancel
        self.on_cancelled = on_cancelled
        self.ended = False
        self.channel = agent.channel
        first = inputs[0]
        headers = transport_headers(first)
        self.input_headers = headers
        self.input_codec = codec_headers(first)
        self.inputs = inputs
        self.continuation = "run-id" in headers
        self.run_id = headers.get("run-id") or str(uuid.uuid4())
        self.invocation_id = str(uuid.uuid4())
        self.client_id = headers.get("run-client-id", "")
        self.input_client_id = first.client_id
        self.input_codec_message_id = headers.get("codec-message-id", "")
        self.fork_of = headers.get("fork-of")
        self.regenerates = headers.get("msg-regenerate")
        # Where the answer hangs: under the input node, or (a regenerate is no node) under
        # the input's own parent.
        kind = self.input_codec.get("kind")
        self.parent = headers.get("parent") if kind == "regenerate" else self.input_codec_message_id
        # The assistant message the current pipe writes: each pipe writes a new one, as the JS
        # run does (an agent loop's second pass follows the first in the run's thread).
        self.message_id = str(uuid.uuid4())
        self.cancelled = asyncio.Event()
        self.cancel_request: dict[str, str] | None = None
        self._steers_taken: set[str] = set()
        self._step_steers: list[str] = []
        self._step = 0
        self._pending: list[asyncio.Future[Any]] = []

    @property
    def input_message(self) -> dict[str, Any]:
        """The triggering input as a UIMessage (user text/file/data parts)."""
        node = self.agent.session.tree.nodes.get(self.input_codec_message_id)
        if node is not None and node.role == "user":
            return node.message
        return self.agent.session.codec.new_message(self.input_codec_message_id, "user", [])

    def conversation(self) -> list[dict[str, Any]]:
        """The branch of the conversation this run answers, as UIMessages (root first)."""
        tree = self.agent.session.tree
        nodes: list[Node] = []
        node = tree.nodes.get(self.parent or "")
        while node is not None:
            nodes.append(node)
            node = tree.nodes.get(node.parent or "")
        return [message for node in reversed(nodes) for message in node.messages]

    def take_steers(self) -> list[dict[str, Any]]:
        """The user messages steered into this run since the last call (oldest first), as
        UIMessages. The outputs of the step under way (or of the next one) then say they consumed
        them (`steer-codec-message-ids`), which is how the steering client learns its outcome."""
        run = self.agent.session.tree.runs.get(self.run_id)
        fresh = [c for c in (run.steers if run else {}) if c not in self._steers_taken]
        self._steers_taken.update(fresh)
        self._step_steers.extend(fresh)
        return [run.steers[c] for c in fresh] if run else []

    # Lifecycle

    def _lifecycle(self, **extra: str) -> dict[str, str]:
        headers = {"run-id": self.run_id, "run-client-id": self.client_id}
        headers.update(extra)
        headers["invocation-id"] = self.invocation_id
        if self.input_client_id is not None:
            headers["input-client-id"] = self.input_client_id
        headers["input-codec-message-id"] = self.input_codec_message_id
        return headers

    async def start(self) -> None:
        """Publish ai-run-start (ai-run-resume when the input continues a run)."""
        await self.agent._run_status(self.run_id, "thinking")
        if self.continuation:
            await self._publish(RUN_RESUME, self._lifecycle())
            return
        extra = {}
        if self.parent is not None:
            extra["parent"] = self.parent
        if self.fork_of:
            extra["fork-of"] = self.fork_of
        if self.regenerates:
            extra["msg-regenerate"] = self.regenerates
        await self._publish(RUN_START, self._lifecycle(**extra))

    async def end(self, reason: str = "complete", *, error: AblyError | None = None) -> None:
        """Publish ai-run-end with reason complete, cancelled or error."""
        headers = self._lifecycle()
        ordered = {"run-id": headers.pop("run-id"), "run-client-id": headers.pop("run-client-id")}
        ordered["run-reason"] = reason
        ordered.update(headers)
        if reason == "error" and error is not None:
            ordered["error-code"] = str(error.code)
            ordered["error-message"] = error.message
        await self._publish(RUN_END, ordered)
        self.ended = True
        await self.agent._run_status(self.run_id, None)

    async def suspend(self) -> None:
        """Publish ai-run-suspend: the run waits for the user (a tool approval)."""
        await self._publish(RUN_SUSPEND, self._lifecycle())
        self.ended = True
        await self.agent._run_status(self.run_id, None)

    async def _publish(self, name: str, transport: dict[str, str]) -> str:
        serials = await self.channel.publish(Message(name=name, extras=ai_extras(transport)))
        return serials[0] if serials else ""

    def _cancel(self, request: dict[str, str]) -> None:
        if self.on_cancel is not None and not self.on_cancel(request):
            return
        self.cancel_request = request
        self.cancelled.set()

    async def __aenter__(self) -> AgentRun:
        """`async with await agent.accept(invocation) as run:` starts the run, and ends it on
        leaving: complete, cancelled (after a cancel) or error (after an exception, which
        propagates) unless the body ended or suspended it."""
        await self.start()
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        if self.ended:
            return
        if exc is not None:
            code = exc.code if isinstance(exc, AblyError) else 50000
            error = AblyError(code, 500, f"the agent failed: {exc}")
            await self.end("error", error=error)
        else:
            await self.end("cancelled" if self.cancelled.is_set() else "complete")

    # Streaming

    async def pipe(self, chunks: AsyncIterable[dict[str, Any]] | Iterable[dict[str, Any]]) -> str:
        """Publish a UIMessageChunk stream as one step, in a new assistant message of the run;
        returns complete or cancelled.

        Appends are sent without waiting for each ACK (in order on the one connection); every
        ACK is awaited before returning. A live cancel stops reading `chunks`.
        """
        step_id = f"{self.invocation_id}-step-{self._step}"
        if self._step:
            self.message_id = str(uuid.uuid4())
        self._step += 1
        step_headers = {
            "run-id": self.run_id,
            "step-id": step_id,
            "invocation-id": self.invocation_id,
            "run-client-id": self.client_id,
        }
        if self.input_client_id is not None:
            step_headers["input-client-id"] = self.input_client_id
        step_headers["step-client-id"] = self.client_id
        step_serial = await self._publish(STEP_START, step_headers)
        writer = _StreamWriter(self, step_id, step_serial)
        reason = "complete"
        try:
            async for chunk in _aiter(chunks, self.cancelled):
                await writer.write(chunk)
            if self.cancelled.is_set():
                reason = "cancelled"
                if self.on_cancelled is not None:
                    await self.on_cancelled(writer.write)
        finally:
            await writer.close("cancelled" if reason == "cancelled" else "complete")
        end_headers = {
            "run-id": self.run_id,
            "step-id": step_id,
            "step-start-serial": step_serial,
            **{k: v for k, v in step_headers.items() if k not in ("run-id", "step-id")},
            "step-reason": reason,
        }
        await self._publish(STEP_END, end_headers)
        # Steers taken before or during this step were stamped on its outputs.
        self._step_steers = []
        return reason

    async def stream_text(
        self,
        tokens: Iterable[str] | AsyncIterable[str],
        *,
        text_id: str = "txt-1",
        delay: float = 0.0,
    ) -> str:
        """Stream `tokens` as one text of a new assistant message, in the session codec's
        events (`Codec.text_events`: for the Vercel codec start, step, text-start, deltas,
        text-end, finish); returns complete or cancelled."""

        async def paced() -> AsyncIterator[str]:
            async for token in _aiter(tokens, self.cancelled):
                if delay:
                    await asyncio.sleep(delay)
                yield token

        return await self.pipe(self.agent.session.codec.text_events(paced(), text_id))


class _StreamWriter:
    """Performs the encoder's writes for one step of a run: each stream's opening publish is
    awaited (its serial names the appends), the rest go out without waiting for their ACKs
    (in order on the one connection) and are awaited at `close()`."""

    def __init__(self, run: AgentRun, step_id: str, step_serial: str) -> None:
        self.run = run
        self.step_serial = step_serial
        headers = build_transport_headers(
            role="assistant",
            codec_message_id=run.message_id,
            run_id=run.run_id,
            run_client_id=run.client_id,
            parent=run.parent,
            fork_of=None if run.continuation else run.fork_of,
            msg_regenerate=None if run.continuation else run.regenerates,
            invocation_id=run.invocation_id,
            input_client_id=run.input_client_id,
            input_codec_message_id=run.input_codec_message_id,
            step_id=step_id,
            step_client_id=run.client_id,
        )
        self.encoder = Encoder(
            headers=headers, message_id=run.message_id, codec=run.agent.session.codec
        )
        self.serials: dict[str, str] = {}
        self.pending: list[Awaitable[Any]] = []

    async def write(self, chunk: dict[str, Any]) -> None:
        writes = self.encoder.output(chunk)
        if writes and self.run.agent._working.get(self.run.run_id) != "streaming":
            await self.run.agent._run_status(self.run.run_id, "streaming")
        for write in writes:
            await self._perform(write)

    async def _perform(self, write: Write) -> None:
        channel = self.run.channel
        for message in write.messages:
            # Stamped after the headers merge, as the SDK's onAblyMessage hook does.
            transport = transport_headers(message)
            transport["step-start-serial"] = self.step_serial
            if self.run._step_steers:
                transport["steer-codec-message-ids"] = jsjson.dumps(self.run._step_steers)
        if write.op == "publish" and write.stream_id is not None:
            serials = await channel.publish(write.messages)
            self.serials[write.stream_id] = serials[0]
        elif write.op == "publish":
            frame = {
                "action": 15,
                "channel": channel.name,
                "messages": [m.to_wire() for m in write.messages],
            }
            self.pending.append(channel.client.connection.send_and_ack(frame))
        elif write.stream_id in self.serials:
            message = write.messages[0]
            self.pending.append(
                channel.mutate(
                    MessageAction.APPEND,
                    self.serials[write.stream_id],
                    data=message.data,
                    extras=message.extras,
                )
            )

    async def close(self, status: str) -> None:
        """Close the streams left open (status complete, or cancelled) and await every ACK."""
        for stream_id in list(self.encoder.streams):
            if self.encoder.is_open(stream_id):
                await self._perform(self.encoder.close_stream(stream_id, status=status))
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)


async def _aiter(source: Any, stop: asyncio.Event) -> AsyncIterable[Any]:
    """Iterate a sync or async iterable until `stop` is set (checked between items, and while
    waiting for the next one)."""
    if not hasattr(source, "__aiter__"):
        for item in source:
            if stop.is_set():
                return
            yield item
            await asyncio.sleep(0)
        return
    iterator = source.__aiter__()
    while not stop.is_set():
        next_item = asyncio.ensure_future(iterator.__anext__())
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({next_item, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if next_item not in done:
            next_item.cancel()
            return
        try:
            item = next_item.result()
        except StopAsyncIteration:
            return
        yield item
