"""The steps of an agent run: the re-attemptable units its output is published in (the JS
`RunStep` of @ably/ai-transport 0.8.0).

A step is bracketed by `ai-step-start` and `ai-step-end` (with its reason: complete, failed or
cancelled). Every output published in it carries its `step-id` and `step-client-id`, and the
serial of the `ai-step-start` of its attempt (`step-start-serial`): a retry under the same
step-id publishes a fresh `ai-step-start`, and readers then show the retry's output instead of
the failed attempt's. `run.pipe()` opens one step of its own, lazily, at its first output;
`run.step()` opens an explicit one:

    async with run.step() as step:            # ai-step-start ... ai-step-end
        await step.pipe(chunks)                # or step.send(chunk), several times
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from channel_relay.client.codecs import jsjson
from channel_relay.client.errors import AblyError
from channel_relay.client.turns.encoder import Encoder, Write
from channel_relay.client.turns.wire import (
    STEP_END,
    STEP_START,
    build_transport_headers,
    transport_headers,
)
from channel_relay.protocol.actions import MessageAction

if TYPE_CHECKING:
    from channel_relay.client.turns.agent import AgentRun

__all__ = ["RunStep", "StepEndReason", "step_end_reason"]

StepEndReason = Literal["complete", "failed", "cancelled"]

# JS ErrorCode.StreamError: a pipe's source failed.
STREAM_ERROR = 104008


def step_end_reason(run_reason: str) -> StepEndReason:
    """The reason a step still open closes with when its pipe or its run ends with
    `run_reason` (complete, cancelled or error)."""
    if run_reason == "cancelled":
        return "cancelled"
    return "failed" if run_reason == "error" else "complete"


class RunStep:
    """One attempt of a step of `run` (made by `run.step()`; `run.pipe()` makes its own).

    `start()` publishes `ai-step-start`, `pipe()` / `send()` publish output in it, `end()`
    publishes `ai-step-end`; `async with` does the first and the last (ending the step failed
    when the body raises). Only one step of a run is open at a time.
    """

    def __init__(self, run: AgentRun, step_id: str, step_client_id: str) -> None:
        self.run = run
        self.step_id = step_id
        self.step_client_id = step_client_id
        # The serial of this attempt's ai-step-start: its identity on the wire.
        self.start_serial: str | None = None
        self.state: Literal["initialized", "active", "ended"] = "initialized"
        self.reason: StepEndReason | None = None
        self._errored = False
        self._cancelled = False

    @property
    def cancelled(self) -> asyncio.Event:
        """The run's cancellation (a step has no cancel of its own)."""
        return self.run.cancelled

    async def start(self) -> None:
        """Publish `ai-step-start` (a second call does nothing). Raises AblyError 40003 when
        another step of the run is open or the run has ended."""
        if self.state != "initialized":
            return
        self.run._open_step(self)
        try:
            await self._publish_start()
        except BaseException:
            self.run._close_step(self)
            raise
        self.state = "active"

    async def _publish_start(self) -> None:
        self.start_serial = await self.run._publish(STEP_START, self._headers())

    async def pipe(self, chunks: AsyncIterable[dict[str, Any]] | Iterable[dict[str, Any]]) -> str:
        """Publish a stream of output events in this step, as one new assistant message;
        returns complete or cancelled. A failing source is reported to the run's `on_error`,
        then raises (and the step will end failed)."""
        self._require_active("pipe")
        reason = await self._stream(chunks, lazy=False)
        if reason == "cancelled":
            self._cancelled = True
        return reason

    async def send(self, chunk: dict[str, Any]) -> None:
        """Publish one output event in this step, as one new assistant message."""
        self._require_active("send")
        writer = _StepWriter(self)
        try:
            await writer.write(chunk)
            await writer.flush()
        except BaseException:
            self._errored = True
            raise
        finally:
            self.run._step_steers = []

    async def end(self, reason: StepEndReason | None = None) -> None:
        """Publish `ai-step-end` (a second call does nothing). Without a reason: cancelled
        when the run was cancelled, failed when a pipe or send of the step raised, else
        complete. A step that never started publishes nothing."""
        if self.state == "ended":
            return
        if reason is None:
            if self._cancelled or self.run.cancelled.is_set():
                reason = "cancelled"
            else:
                reason = "failed" if self._errored else "complete"
        self.state = "ended"
        self.reason = reason
        self.run._close_step(self)
        if self.start_serial is not None:
            await self.run._publish(STEP_END, self._headers(reason))

    async def __aenter__(self) -> RunStep:
        await self.start()
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        await self.end("failed" if exc is not None else None)

    def _require_active(self, verb: str) -> None:
        if self.state != "active":
            raise AblyError(
                40003,
                400,
                f"unable to {verb} step; the step is not active: start it first, "
                f"and do not {verb} after end()",
            )

    def _headers(self, reason: str | None = None) -> dict[str, str]:
        run = self.run
        headers = {"run-id": run.run_id, "step-id": self.step_id}
        if reason is not None and self.start_serial is not None:
            headers["step-start-serial"] = self.start_serial
        headers["invocation-id"] = run.invocation_id
        headers["run-client-id"] = run.client_id
        if run.input_client_id is not None:
            headers["input-client-id"] = run.input_client_id
        headers["step-client-id"] = self.step_client_id
        if reason is not None:
            headers["step-reason"] = reason
        return headers

    async def _stream(
        self, chunks: AsyncIterable[dict[str, Any]] | Iterable[dict[str, Any]], *, lazy: bool
    ) -> str:
        """Pipe `chunks` through a new writer. `lazy`: the implicit step of `run.pipe()`,
        whose ai-step-start goes out just before the first output (a pipe with no output
        brackets no step)."""
        run = self.run
        writer = _StepWriter(self)
        reason = "complete"
        try:
            async for chunk in _aiter(chunks, run.cancelled):
                if lazy and self.start_serial is None:
                    await self._publish_start()
                    self.state = "active"
                await writer.write(chunk)
            if run.cancelled.is_set():
                reason = "cancelled"
                if run.on_cancelled is not None:
                    await run.on_cancelled(writer.write)
        except Exception as exc:
            # As the JS pipe: the open streams are left as they are (the run's end says what
            # happened), what was sent is flushed, the failure goes to on_error.
            self._errored = True
            await writer.flush()
            run._report(
                AblyError(STREAM_ERROR, 500, f"unable to pipe response for run {run.run_id}; {exc}")
            )
            raise
        finally:
            # Steers taken before or during this output were stamped on it.
            run._step_steers = []
        # The JS pipe cancels whatever its source left open, even when the source completed.
        await writer.close()
        return reason


class _StepWriter:
    """Performs the encoder's writes for one assistant message of a step: each stream's
    opening publish is awaited (its serial names the appends), the rest go out without
    waiting for their ACKs (in order on the one connection) and are awaited at `flush()`."""

    def __init__(self, step: RunStep) -> None:
        run = step.run
        self.step = step
        self.run = run
        message_id = run._next_message_id()
        headers = build_transport_headers(
            role="assistant",
            codec_message_id=message_id,
            run_id=run.run_id,
            run_client_id=run.client_id,
            parent=run.parent,
            fork_of=None if run.continuation else run.fork_of,
            msg_regenerate=None if run.continuation else run.regenerates,
            invocation_id=run.invocation_id,
            input_client_id=run.input_client_id,
            input_codec_message_id=run.input_codec_message_id,
            step_id=step.step_id,
            step_client_id=step.step_client_id,
        )
        self.encoder = Encoder(
            headers=headers, message_id=message_id, codec=run.agent.session.codec
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
        run = self.run
        channel = run.channel
        for message in write.messages:
            # Stamped after the headers merge, then handed to the run's on_ably_message hook,
            # as the SDK's encoder does.
            transport = transport_headers(message)
            if self.step.start_serial is not None:
                transport["step-start-serial"] = self.step.start_serial
            if run._step_steers:
                transport["steer-codec-message-ids"] = jsjson.dumps(run._step_steers)
            if run.on_ably_message is not None:
                run.on_ably_message(message)
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

    async def flush(self) -> None:
        """Await the ACK of every write sent."""
        pending, self.pending = self.pending, []
        if pending:
            await asyncio.gather(*pending)

    async def close(self) -> None:
        """Close the streams left open (as cancelled) and flush."""
        for write in self.encoder.cancel_streams():
            await self._perform(write)
        await self.flush()


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
