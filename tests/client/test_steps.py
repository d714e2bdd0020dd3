"""Explicit run steps, run hooks and adopted runs, against the in-process relay: an agent's
`run.step()`, `on_error` / `on_ably_message` / `signal`, and `agent.adopt()` carrying on a run
another agent process started, as the devices of the user who asked see them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from client_support import MakeClient
from vercel_chunks import text_chunks

from channel_relay.client.errors import AblyError
from channel_relay.client.message import Message
from channel_relay.client.turns import AgentRun, AgentSession, Invocation, Session, wait_until


@pytest.fixture
async def world(make_client: MakeClient) -> AsyncIterator[dict[str, Any]]:
    channel = "ai:steps"
    phone = Session(await make_client("alice"), channel)
    agent = AgentSession(await make_client("agent"), channel)
    await phone.connect()
    await agent.connect()
    yield {"phone": phone, "agent": agent, "channel": channel, "make_client": make_client}
    await agent.close()
    await phone.close()


async def _wire(session: Session) -> list[Message]:
    """Every message on the session's channel, oldest first."""
    page = await session.channel.history(direction="forwards", limit=1000)
    return list(page.items)


def _transport(message: Message) -> dict[str, str]:
    assert isinstance(message.extras, dict)
    transport: dict[str, str] = message.extras["ai"]["transport"]
    return transport


async def _accepted(world: dict[str, Any], question: str) -> tuple[Any, AgentRun]:
    agent: AgentSession = world["agent"]
    invocations = agent.invocations()
    turn = await world["phone"].send(question)
    run = await agent.accept(await invocations.get(10))
    invocations.close()
    return turn, run


async def test_explicit_steps_bracket_their_output_and_every_reader_sees_them(
    world: dict[str, Any],
) -> None:
    phone: Session = world["phone"]
    turn, run = await _accepted(world, "Plan, then answer.")
    await run.start()
    async with run.step() as planning:
        assert await planning.pipe(text_chunks("First I plan. ")) == "complete"
    async with run.step("answer") as answering:
        await answering.send({"type": "data-note", "id": "n1", "data": {"ok": True}})
        await answering.pipe(text_chunks("Then I answer."))
    await run.end()
    assert await turn.done(10) == "complete"

    wire = await _wire(phone)
    collapsed: list[str] = []
    for message in wire:
        if message.name != "ai-input" and collapsed[-1:] != [message.name]:
            collapsed.append(message.name)
    step = ["ai-step-start", "ai-output", "ai-step-end"]
    assert collapsed == ["ai-run-start", *step, *step, "ai-run-end"]
    starts = [m for m in wire if m.name == "ai-step-start"]
    ends = [m for m in wire if m.name == "ai-step-end"]
    assert [_transport(m)["step-id"] for m in starts] == [f"{run.invocation_id}-step-0", "answer"]
    assert _transport(starts[0]) == {
        "run-id": run.run_id,
        "step-id": f"{run.invocation_id}-step-0",
        "invocation-id": run.invocation_id,
        "run-client-id": "alice",
        "input-client-id": "alice",
        "step-client-id": "alice",
    }
    assert list(_transport(ends[1])) == [
        "run-id",
        "step-id",
        "step-start-serial",
        "invocation-id",
        "run-client-id",
        "input-client-id",
        "step-client-id",
        "step-reason",
    ]
    for start, end in zip(starts, ends, strict=True):
        assert _transport(end)["step-start-serial"] == start.serial
        assert _transport(end)["step-reason"] == "complete"
        outputs = [
            m
            for m in wire
            if m.name == "ai-output"
            and _transport(m).get("step-id") == _transport(start)["step-id"]
        ]
        assert outputs and all(_transport(m)["step-start-serial"] == start.serial for m in outputs)
        assert all(start.serial < (m.serial or "") < (end.serial or "") for m in outputs)
    # The data part and the text of the second step are two assistant messages.
    answer_ids = {
        _transport(m)["codec-message-id"]
        for m in wire
        if m.name == "ai-output" and _transport(m)["step-id"] == "answer"
    }
    assert len(answer_ids) == 2

    steps = phone.tree.runs[run.run_id].steps
    assert [(s.step_id, s.status, s.attempt_count, s.step_client_id) for s in steps] == [
        (f"{run.invocation_id}-step-0", "complete", 1, "alice"),
        ("answer", "complete", 1, "alice"),
    ]
    assert turn.text == "First I plan. Then I answer."


async def test_a_retried_step_supersedes_the_failed_attempt_for_live_and_late_readers(
    world: dict[str, Any],
) -> None:
    phone: Session = world["phone"]
    turn, run = await _accepted(world, "Think carefully.")
    await run.start()
    with pytest.raises(RuntimeError):
        async with run.step("think") as attempt:
            await attempt.pipe(text_chunks("A wrong first draft."))
            raise RuntimeError("the model timed out")
    assert attempt.reason == "failed"
    # No step id after a failed step: the in-process retry reuses its id.
    async with run.step() as retry:
        assert retry.step_id == "think"
        await retry.pipe(text_chunks("The right answer."))
    await run.end()
    assert await turn.done(10) == "complete"

    late = Session(await world["make_client"]("alice"), world["channel"])
    await late.connect()
    try:
        await wait_until(late, lambda: late.tree.runs.get(run.run_id) is not None)
        for reader in (phone, late):
            assert reader.view.conversation() == [
                {"role": "user", "text": "Think carefully."},
                {"role": "assistant", "text": "The right answer."},
            ]
            [step] = reader.tree.runs[run.run_id].steps
            assert (step.step_id, step.status, step.attempt_count) == ("think", "complete", 2)
        assert turn.text == "The right answer."
    finally:
        await late.close()
    ends = [_transport(m)["step-reason"] for m in await _wire(phone) if m.name == "ai-step-end"]
    assert ends == ["failed", "complete"]


async def test_one_step_at_a_time_and_none_after_the_run_ended(world: dict[str, Any]) -> None:
    _turn, run = await _accepted(world, "One at a time.")
    await run.start()
    first = run.step()
    await first.start()
    with pytest.raises(AblyError) as busy:
        await run.step().start()
    assert busy.value.code == 40003
    with pytest.raises(AblyError):
        await run.pipe(text_chunks("no"))
    with pytest.raises(AblyError):
        await run.suspend()
    # Ending the run ends the step left open, after the run's reason.
    await run.end("cancelled")
    assert first.reason == "cancelled"
    with pytest.raises(AblyError):
        await run.step().start()
    with pytest.raises(AblyError):
        await first.pipe(text_chunks("late"))


async def test_a_pipe_with_no_output_publishes_no_step(world: dict[str, Any]) -> None:
    phone: Session = world["phone"]
    turn, run = await _accepted(world, "Say nothing.")
    async with run:
        assert await run.pipe([]) == "complete"
    assert await turn.done(10) == "complete"
    names = [m.name for m in await _wire(phone)]
    assert "ai-step-start" not in names and "ai-step-end" not in names
    assert phone.tree.runs[run.run_id].steps == []


async def test_a_failing_source_fails_its_step_and_reaches_on_error(
    world: dict[str, Any],
) -> None:
    phone: Session = world["phone"]
    agent: AgentSession = world["agent"]
    errors: list[AblyError] = []
    invocations = agent.invocations()
    turn = await phone.send("Fail midway.")
    run = await agent.accept(await invocations.get(10), on_error=errors.append)

    async def failing() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "text-start", "id": "t"}
        yield {"type": "text-delta", "id": "t", "delta": "Half "}
        raise ConnectionError("provider reset the stream")

    with pytest.raises(ConnectionError):
        async with run:
            await run.pipe(failing())
    assert await turn.done(10) == "error"
    assert [(e.code, e.status) for e in errors] == [(104008, 500)]
    assert "provider reset the stream" in errors[0].message
    [step] = phone.tree.runs[run.run_id].steps
    assert step.status == "failed"
    assert turn.text == "Half "


async def test_on_ably_message_stamps_every_output_and_signal_cancels_the_run(
    world: dict[str, Any],
) -> None:
    phone: Session = world["phone"]
    agent: AgentSession = world["agent"]
    signal = asyncio.Event()

    def trace(message: Message) -> None:
        assert isinstance(message.extras, dict)
        message.extras["ai"]["transport"]["x-trace"] = "req-7"

    invocations = agent.invocations()
    turn = await phone.send("Go on and on.")
    run = await agent.accept(await invocations.get(10), on_ably_message=trace, signal=signal)

    async def endless() -> AsyncIterator[dict[str, Any]]:
        yield {"type": "text-start", "id": "t"}
        while True:
            yield {"type": "text-delta", "id": "t", "delta": "la "}
            await asyncio.sleep(0.01)

    async with run:
        piping = asyncio.create_task(run.pipe(endless()))
        await wait_until(phone, lambda: len(turn.text) > 6)
        signal.set()  # the HTTP request went away, say
        assert await asyncio.wait_for(piping, 10) == "cancelled"
    assert await turn.done(10) == "cancelled"
    outputs = [m for m in await _wire(phone) if m.name == "ai-output"]
    assert outputs and all(_transport(m)["x-trace"] == "req-7" for m in outputs)
    lifecycle = [m for m in await _wire(phone) if m.name.startswith("ai-run")]
    assert all("x-trace" not in _transport(m) for m in lifecycle)


async def test_a_failing_on_cancel_refuses_the_cancel_and_reaches_on_error(
    world: dict[str, Any],
) -> None:
    phone: Session = world["phone"]
    agent: AgentSession = world["agent"]
    errors: list[AblyError] = []

    def broken(_request: dict[str, str]) -> bool:
        raise KeyError("no policy")

    invocations = agent.invocations()
    turn = await phone.send("Try to stop me.")
    run = await agent.accept(await invocations.get(10), on_cancel=broken, on_error=errors.append)
    async with run:
        await run.pipe(text_chunks("Started. "))
        await turn.cancel()
        await wait_until(agent.session, lambda: bool(errors), timeout=10)
        assert not run.cancelled.is_set()
    assert await turn.done(10) == "complete"
    assert errors[0].code == 104002 and "no policy" in errors[0].message


async def test_another_agent_process_adopts_the_run_and_the_user_sees_one_turn(
    world: dict[str, Any],
) -> None:
    phone: Session = world["phone"]
    turn, opener = await _accepted(world, "A long job, please.")
    await opener.start()
    async with opener.step("fetch") as fetching:
        await fetching.pipe(text_chunks("Fetched the data. ", "a"))
    # The opener's process stops here; a worker carries the run on.
    worker = AgentSession(await world["make_client"]("worker"), world["channel"])
    await worker.connect()
    try:
        invocation = Invocation(turn.event_id, world["channel"])
        run = await worker.adopt(invocation, run_id=opener.run_id, invocation_id="activity-2")
        with pytest.raises(AblyError):
            await run.start()
        async with run, run.step("summarise") as summarising:
            assert summarising.step_client_id == "alice"
            await summarising.pipe(text_chunks("Summarised it.", "b"))
        assert await turn.done(10) == "complete"
        assert list(phone.tree.runs) == [opener.run_id]
        assert turn.text == "Fetched the data. Summarised it."
        assert [(s.step_id, s.status) for s in phone.tree.runs[opener.run_id].steps] == [
            ("fetch", "complete"),
            ("summarise", "complete"),
        ]
        wire = await _wire(phone)
        assert [m.name for m in wire].count("ai-run-start") == 1
        worker_outputs = [
            _transport(m)
            for m in wire
            if m.name == "ai-output" and _transport(m)["invocation-id"] == "activity-2"
        ]
        assert worker_outputs
        assert all(t["run-client-id"] == "alice" for t in worker_outputs)
        assert all(t["parent"] == turn.input_codec_message_id for t in worker_outputs)

        # An ended run is read-only; a run that never started is not found in time.
        with pytest.raises(AblyError) as ended:
            await worker.adopt(invocation, run_id=opener.run_id, invocation_id="activity-3")
        assert ended.value.code == 40003
        with pytest.raises(AblyError) as missing:
            await worker.adopt(invocation, run_id="no-such-run", invocation_id="x", timeout=0.5)
        assert missing.value.code == 104010
    finally:
        await worker.close()


async def test_a_cancel_reaches_the_adopted_run(world: dict[str, Any]) -> None:
    phone: Session = world["phone"]
    turn, opener = await _accepted(world, "Keep going.")
    await opener.start()
    worker = AgentSession(await world["make_client"]("worker"), world["channel"])
    await worker.connect()
    try:
        invocation = Invocation(turn.event_id, world["channel"])
        run = await worker.adopt(invocation, run_id=opener.run_id, invocation_id="activity-2")

        async def endless() -> AsyncIterator[dict[str, Any]]:
            yield {"type": "text-start", "id": "t"}
            while True:
                yield {"type": "text-delta", "id": "t", "delta": "on "}
                await asyncio.sleep(0.01)

        async with run:
            piping = asyncio.create_task(run.pipe(endless()))
            await wait_until(phone, lambda: len(turn.text) > 6)
            await turn.cancel()
            assert await asyncio.wait_for(piping, 10) == "cancelled"
        assert await turn.done(10) == "cancelled"
    finally:
        await worker.close()


async def test_a_part_the_source_left_open_is_closed_cancelled_as_the_js_pipe_does(
    world: dict[str, Any],
) -> None:
    phone: Session = world["phone"]
    agent: AgentSession = world["agent"]
    statuses: list[str | None] = []

    def record(message: Message) -> None:
        assert isinstance(message.extras, dict)
        statuses.append(message.extras["ai"]["transport"].get("status"))

    invocations = agent.invocations()
    turn = await phone.send("Trail off.")
    run = await agent.accept(await invocations.get(10), on_ably_message=record)
    async with run:
        unfinished = [
            {"type": "text-start", "id": "t"},
            {"type": "text-delta", "id": "t", "delta": "So"},
        ]
        assert await run.pipe(unfinished) == "complete"
    assert await turn.done(10) == "complete"
    assert statuses == ["streaming", "streaming", "cancelled"]
    [step] = phone.tree.runs[run.run_id].steps
    assert step.status == "complete"


async def test_a_reader_meeting_a_run_mid_way_gets_the_opening_it_missed_once(
    world: dict[str, Any],
) -> None:
    phone: Session = world["phone"]
    turn, run = await _accepted(world, "Answer in one step.")
    async with run:
        await run.pipe(text_chunks("Only the end of this run is on the newest page."))
    assert await turn.done(10) == "complete"
    [answer] = [m for m in phone.view.messages() if m["role"] == "assistant"]
    assert [p["type"] for p in answer["parts"]] == ["step-start", "text"]

    # The newest five messages: the text stream, finish-step, finish, ai-step-end, ai-run-end.
    # The codec's lifecycle stands in for the start and start-step this reader never saw.
    late = Session(await world["make_client"]("alice"), world["channel"], history_page_size=5)
    await late.connect()
    try:
        node = late.tree.nodes[answer["id"]]
        assert node.messages == [answer]
        # Older pages bring the real opening: it replaces what was made up, nothing doubles.
        while await late.load_older():
            pass
        assert late.view.messages() == phone.view.messages()
    finally:
        await late.close()
