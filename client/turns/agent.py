"""The agent side: accept an invocation, run it, stream the answer, honour cancels.

    agent = AgentSession(client, "ai:chat")
    await agent.connect()
    async for invocation in agent.invocations():      # inputs published on the channel
        run = await agent.accept(invocation)          # or accept(event_id) from an HTTP POST
        await run.start()                             # ai-run-start (or ai-run-resume)
        reason = await run.pipe(chunks)               # one step: UIMessageChunks -> messages
        await run.end(reason)                         # ai-run-end

On the wire exactly as @ably/ai-transport's agent: every event of the invocation carries the
run-id, run-client-id, invocation-id, input-client-id and input-codec-message-id; outputs carry
the assistant message's codec-message-id, its parent and the step they belong to (`run.step()`
for explicit, re-attemptable steps: see `steps`); a streamed part is one message (create with
data "", one append per delta, a closing append with status complete or cancelled). A live
`ai-cancel` naming the run (or its input) sets `run.cancelled` and makes `pipe()` stop, close
its open streams as cancelled and return "cancelled". `adopt()` carries on a run another agent
process started (a durable workflow's next activity).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from channel_relay.client.codecs import vercel
from channel_relay.client.codecs.codec import Codec
from channel_relay.client.errors import AblyError
from channel_relay.client.events import Subscription
from channel_relay.client.message import Message
from channel_relay.client.realtime import Realtime
from channel_relay.client.turns.session import Session
from channel_relay.client.turns.steps import RunStep, _aiter, step_end_reason
from channel_relay.client.turns.tree import ENDED, Node
from channel_relay.client.turns.wire import (
    RUN_END,
    RUN_RESUME,
    RUN_START,
    RUN_SUSPEND,
    ai_extras,
    codec_headers,
    transport_headers,
)

__all__ = ["AgentRun", "AgentSession", "ChunkWriter", "Invocation", "RunHooks"]

log = logging.getLogger(__name__)

# JS ErrorCode values this module raises or reports.
CANCEL_LISTENER_ERROR = 104002
INPUT_EVENT_NOT_FOUND = 104010

# What a run's on_cancelled hook gets: publish one more UIMessageChunk of the cancelled step.
ChunkWriter = Callable[[dict[str, Any]], Awaitable[None]]


class RunHooks(TypedDict, total=False):
    """How a run behaves (the JS `RunHooks`), as keyword arguments of `accept()` / `adopt()`.

    `on_cancel(request)` decides whether a live cancel is honoured (return False to refuse
    it; if it raises, the cancel is refused and the error reported); `on_cancelled(write)` runs
    when a cancel stops a pipe, before its open streams close, to `await write(chunk)` last
    words; `on_error(error)` gets the run's errors that have no other way out (a failing pipe
    source, as AblyError 104008; a failing `on_cancel`, as 104002), which are logged without
    it; `on_ably_message(message)` sees (and may change the extras of) every output message
    before it is published, after the SDK's headers are stamped; setting `signal` cancels the
    run as a cancel from the channel does (a request's disconnect, a deadline)."""

    on_cancel: Callable[[dict[str, str]], bool]
    on_cancelled: Callable[[ChunkWriter], Awaitable[None]]
    on_error: Callable[[AblyError], None]
    on_ably_message: Callable[[Message], None]
    signal: asyncio.Event


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
        # Cancels for runs not accepted (by input codec-message-id) or adopted (by run-id) yet.
        self._early_cancels: dict[str, dict[str, str]] = {}
        self._adopting: set[str] = set()
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
        for run in self.runs.values():
            run._unwatch()
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
        **hooks: Unpack[RunHooks],
    ) -> AgentRun:
        """Find the input the invocation names (already seen, in older history, or arriving
        live) and create its run. Raises AblyError 40400 if it does not turn up in `timeout`.
        `hooks`: see `RunHooks`."""
        event_id = _event_id(invocation)
        inputs = await self._locate(event_id, lambda: True, timeout)
        if inputs is None:
            raise AblyError(40400, 404, f"No input with event-id {event_id}")
        run = AgentRun(self, inputs, hooks=hooks)
        self._register(run)
        return run

    async def adopt(
        self,
        invocation: Invocation | dict[str, Any] | str,
        *,
        run_id: str,
        invocation_id: str,
        timeout: float = 30.0,  # noqa: ASYNC109
        **hooks: Unpack[RunHooks],
    ) -> AgentRun:
        """Carry on run `run_id`, which another agent process started for `invocation` (the
        JS `adoptRun(...).load()`): wait until the channel shows its `ai-run-start` and the
        input (paging history), then return it open for steps, `pipe()`, `suspend()` and
        `end()`, with no new `ai-run-start`. This process publishes as `invocation_id`.

        Raises AblyError 40003 if the run is suspended (a new invocation resumes it through
        `accept()`) or has ended, and 104010 if its start does not turn up within `timeout`."""
        if not run_id or not invocation_id:
            raise AblyError(
                40003, 400, "unable to adopt run; run_id and invocation_id are required"
            )
        event_id = _event_id(invocation)
        tree = self.session.tree
        self._adopting.add(run_id)
        try:
            inputs = await self._locate(
                event_id,
                lambda: run_id in tree.runs and tree.runs[run_id].serial is not None,
                timeout,
            )
        finally:
            self._adopting.discard(run_id)
        if inputs is None:
            self._early_cancels.pop(run_id, None)
            raise AblyError(
                INPUT_EVENT_NOT_FOUND,
                504,
                f"unable to load run; run-start for run {run_id} not observed within {timeout}s",
            )
        observed = tree.runs[run_id]
        if observed.status == "suspended" or observed.status in ENDED:
            self._early_cancels.pop(run_id, None)
            state = (
                "is suspended, resume it with accept()"
                if observed.status == "suspended"
                else ("is terminal (read-only)")
            )
            raise AblyError(40003, 400, f"unable to load run; run {run_id} {state}")
        run = AgentRun(
            self,
            inputs,
            hooks=hooks,
            run_id=run_id,
            invocation_id=invocation_id,
            client_id=observed.client_id,
        )
        self._register(run)
        await self._run_status(run_id, "thinking")
        return run

    async def _locate(
        self,
        event_id: str,
        also: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109
    ) -> list[Message] | None:
        tree = self.session.tree
        located = await self.session.page_until(
            lambda: event_id in tree.inputs_by_event_id and also(), timeout=timeout
        )
        return tree.inputs_by_event_id[event_id] if located else None

    def _register(self, run: AgentRun) -> None:
        self.runs[run.run_id] = run
        self._by_input[run.input_codec_message_id] = run
        for key in (run.input_codec_message_id, run.run_id):
            early = self._early_cancels.pop(key, None)
            if early is not None:
                run._cancel(early)

    def _on_cancel(self, transport: dict[str, str], _message: Message) -> None:
        run_id = transport.get("run-id", "")
        run = self.runs.get(run_id)
        if run is None and run_id in self._adopting:
            # A run being adopted: honour the cancel once it is loaded.
            self._early_cancels[run_id] = transport
            return
        cmid = transport.get("input-codec-message-id")
        if run is None and cmid:
            run = self._by_input.get(cmid)
            if run is None:
                # The run does not exist yet: honour the cancel when it is accepted.
                self._early_cancels[cmid] = transport
                return
        if run is not None:
            run._cancel(transport)


def _event_id(invocation: Invocation | dict[str, Any] | str) -> str:
    if isinstance(invocation, dict):
        invocation = Invocation.from_json(invocation)
    return invocation if isinstance(invocation, str) else invocation.input_event_id


class AgentRun:
    """One invocation of the agent: a fresh run, a continuation of a suspended one, or (from
    `adopt()`) a run another agent process opened and this one carries on."""

    def __init__(
        self,
        agent: AgentSession,
        inputs: list[Message],
        *,
        hooks: RunHooks | None = None,
        run_id: str | None = None,
        invocation_id: str | None = None,
        client_id: str | None = None,
    ) -> None:
        hooks = hooks or {}
        self.agent = agent
        self.on_cancel = hooks.get("on_cancel")
        self.on_cancelled = hooks.get("on_cancelled")
        self.on_error = hooks.get("on_error")
        self.on_ably_message = hooks.get("on_ably_message")
        self.ended = False
        self.adopted = run_id is not None
        self.channel = agent.channel
        first = inputs[0]
        headers = transport_headers(first)
        self.input_headers = headers
        self.input_codec = codec_headers(first)
        self.inputs = inputs
        self.continuation = "run-id" in headers
        self.run_id = run_id or headers.get("run-id") or str(uuid.uuid4())
        self.invocation_id = invocation_id or str(uuid.uuid4())
        self.client_id = headers.get("run-client-id", "") if client_id is None else client_id
        self.input_client_id = first.client_id
        self.input_codec_message_id = headers.get("codec-message-id", "")
        self.fork_of = headers.get("fork-of")
        self.regenerates = headers.get("msg-regenerate")
        # Where the answer hangs: under the input node, or (a regenerate is no node) under
        # the input's own parent.
        kind = self.input_codec.get("kind")
        self.parent = headers.get("parent") if kind == "regenerate" else self.input_codec_message_id
        # The assistant message the current pipe writes: each pipe (and each step send)
        # writes a new one, as the JS run does.
        self.message_id = str(uuid.uuid4())
        self._messages_written = 0
        self.cancelled = asyncio.Event()
        self.cancel_request: dict[str, str] | None = None
        self._steers_taken: set[str] = set()
        self._step_steers: list[str] = []
        self._step_index = 0
        self._active_step: RunStep | None = None
        self._piping = False
        self._last_step: RunStep | None = None
        self._step_client_id: str | None = None
        self._signal_watch: asyncio.Task[None] | None = None
        signal = hooks.get("signal")
        if signal is not None:
            self._signal_watch = asyncio.create_task(self._watch(signal))

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
        """Publish ai-run-start (ai-run-resume when the input continues a run). An adopted
        run was started by the process that opened it: AblyError 40003."""
        if self.adopted:
            raise AblyError(
                40003, 400, f"unable to start run {self.run_id}; it was adopted, not created"
            )
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
        """Publish ai-run-end with reason complete, cancelled or error. A step left open is
        ended first (cancelled, failed or complete, after the run's reason)."""
        if self._active_step is not None:
            with contextlib.suppress(AblyError):
                await self._active_step.end(step_end_reason(reason))
        headers = self._lifecycle()
        ordered = {"run-id": headers.pop("run-id"), "run-client-id": headers.pop("run-client-id")}
        ordered["run-reason"] = reason
        ordered.update(headers)
        if reason == "error" and error is not None:
            ordered["error-code"] = str(error.code)
            ordered["error-message"] = error.message
        await self._publish(RUN_END, ordered)
        self._finish()
        await self.agent._run_status(self.run_id, None)

    async def suspend(self) -> None:
        """Publish ai-run-suspend: the run waits for the user (a tool approval). Raises
        AblyError 40003 while a step is open: end it first."""
        if self._active_step is not None or self._piping:
            raise AblyError(
                40003,
                400,
                f"unable to suspend run; end the active step before suspending (run {self.run_id})",
            )
        await self._publish(RUN_SUSPEND, self._lifecycle())
        self._finish()
        await self.agent._run_status(self.run_id, None)

    def _finish(self) -> None:
        self.ended = True
        self._unwatch()

    def _unwatch(self) -> None:
        if self._signal_watch is not None:
            self._signal_watch.cancel()

    async def _publish(self, name: str, transport: dict[str, str]) -> str:
        serials = await self.channel.publish(Message(name=name, extras=ai_extras(transport)))
        return serials[0] if serials else ""

    def _cancel(self, request: dict[str, str]) -> None:
        if self.on_cancel is not None:
            try:
                honoured = self.on_cancel(request)
            except Exception as exc:
                # As the SDK: a failing on_cancel refuses the cancel and is reported.
                self._report(
                    AblyError(
                        CANCEL_LISTENER_ERROR,
                        500,
                        f"unable to process cancel for run {self.run_id}; "
                        f"on_cancel handler raised: {exc}",
                    )
                )
                return
            if not honoured:
                return
        self.cancel_request = request
        self.cancelled.set()

    async def _watch(self, signal: asyncio.Event) -> None:
        await signal.wait()
        self.cancelled.set()

    def _report(self, error: AblyError) -> None:
        """A run-scoped error with no other way out: to on_error, else to the log."""
        if self.on_error is not None:
            self.on_error(error)
        else:
            log.error("run %s: %s", self.run_id, error.message)

    async def __aenter__(self) -> AgentRun:
        """`async with await agent.accept(invocation) as run:` starts the run (an adopted run
        is open already), and ends it on leaving: complete, cancelled (after a cancel) or
        error (after an exception, which propagates) unless the body ended or suspended it."""
        if not self.adopted:
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

    # Steps

    def step(self, step_id: str | None = None, *, step_client_id: str | None = None) -> RunStep:
        """A new step of this run (no I/O until it starts; `async with run.step() as step:`).

        `step_id` names a re-attemptable unit: an attempt under the id of an earlier one
        supersedes its output for every reader (pass the same id when another process retries
        the step). Without it the step gets a fresh id, except right after a step that ended
        failed, whose id it reuses (an in-process retry). `step_client_id`: whose input shapes
        the step; by default the previous step's, or for the first the triggering input's
        publisher."""
        if step_id is None:
            last = self._last_step
            step_id = last.step_id if last and last.reason == "failed" else self._mint_step_id()
        return RunStep(self, step_id, self._resolve_step_client_id(step_client_id))

    def _mint_step_id(self) -> str:
        step_id = f"{self.invocation_id}-step-{self._step_index}"
        self._step_index += 1
        return step_id

    def _resolve_step_client_id(self, explicit: str | None) -> str:
        value = explicit
        if value is None:
            value = self._step_client_id
        if value is None:
            # Sticky across processes too: the latest step the channel shows for this run.
            run = self.agent.session.tree.runs.get(self.run_id)
            steps = run.steps if run is not None else []
            value = next((s.step_client_id for s in reversed(steps) if s.step_client_id), None)
        if value is None:
            value = self.input_client_id or ""
        self._step_client_id = value
        return value

    def _open_step(self, step: RunStep) -> None:
        if self._active_step is not None or self._piping:
            raise AblyError(
                40003, 400, "unable to start step; another step is already active on this run"
            )
        if self.ended:
            raise AblyError(40003, 400, f"unable to run step; run {self.run_id} has already ended")
        self._active_step = step

    def _close_step(self, step: RunStep) -> None:
        if self._active_step is step:
            self._active_step = None
        self._last_step = step

    def _next_message_id(self) -> str:
        if self._messages_written:
            self.message_id = str(uuid.uuid4())
        self._messages_written += 1
        return self.message_id

    # Streaming

    async def pipe(self, chunks: AsyncIterable[dict[str, Any]] | Iterable[dict[str, Any]]) -> str:
        """Publish a stream of output events (UIMessageChunks with the Vercel codec) as one
        step, in a new assistant message of the run; returns complete or cancelled.

        The step opens at the first output (a pipe that outputs nothing publishes no step) and
        ends complete or cancelled. Appends are sent without waiting for each ACK (in order on
        the one connection); every ACK is awaited before returning. A live cancel stops reading
        `chunks`. A failing source is reported to `on_error`, its step ends failed, and its
        error propagates (the JS pipe returns it as `{reason: 'error'}`).
        """
        if self._active_step is not None or self._piping:
            raise AblyError(
                40003, 400, "unable to pipe; a step is already active on this run (end it first)"
            )
        step = RunStep(self, self._mint_step_id(), self._resolve_step_client_id(None))
        self._piping = True
        try:
            reason = await step._stream(chunks, lazy=True)
        except Exception:
            if step.start_serial is not None:
                await step.end("failed")
            raise
        finally:
            self._piping = False
        if step.start_serial is not None:
            await step.end(step_end_reason(reason))
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
