"""Explicit run steps and adopted runs between channel-relay's Python `client.turns` and the
unmodified @ably/ai-transport 0.8.0, through the relay: a step retried after a failure shows
only the retry's output, with the same steps (id, status, attempts, client) in both SDKs, live
and from history; a run one SDK's agent starts, the other's agent adopts and finishes, and
the user sees one turn. Also the SDK's HEADER_* constants against `turns.headers`."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from interop_support import RunNode
from test_interop_client import py_client, py_realtime
from vercel_chunks import text_chunks

from channel_relay.client import Realtime
from channel_relay.client.turns import (
    ActiveTurn,
    AgentRun,
    AgentSession,
    Invocation,
    Session,
    headers,
    wait_until,
)

if TYPE_CHECKING:
    from channel_relay.server import Relay

QUESTION = "Think it through."
WRONG = "A first draft that failed. "
RIGHT = "The considered answer ✓"
CONSTANTS = Path(__file__).parent / "node_modules/@ably/ai-transport/dist/constants.d.ts"

__all__ = ["py_client"]


async def _observer(run_node: RunNode, session: Session, runs: int = 1) -> asyncio.Task[Any]:
    """A JS client session following `session`'s channel live (it reports once `runs` runs
    ended), started once it listens (it enters presence as js-observer)."""
    channel = session.channel.name
    task = asyncio.create_task(
        run_node("client_steps.mjs", args={"mode": "observe", "channel": channel, "runs": runs})
    )
    ready = asyncio.Event()
    session.channel.presence.subscribe(
        lambda m: ready.set() if m.client_id == "js-observer" else None
    )
    if not any(m.client_id == "js-observer" for m in await session.channel.presence.get()):
        async with asyncio.timeout(20):
            await ready.wait()
    return task


async def _js_agent_run(
    run_node: RunNode, turn: ActiveTurn, right: str, *, hand_off: bool = False
) -> dict[str, Any]:
    """The JS agent answers `turn`: a step that fails with WRONG, retried with `right`; with
    `hand_off`, it leaves the run open for another agent to adopt."""
    args = {
        "mode": "agent",
        "channel": turn.session.channel.name,
        "inputEventId": turn.event_id,
        "wrong": WRONG,
        "right": right,
        "handOff": hand_off,
    }
    return await run_node("client_steps.mjs", args=args)


def _steps(session: Session, run_id: str) -> list[dict[str, Any]]:
    return [
        {
            "stepId": s.step_id,
            "status": s.status,
            "attemptCount": s.attempt_count,
            "stepClientId": s.step_client_id,
        }
        for s in session.tree.runs[run_id].steps
    ]


async def _late_python_reader(relay: Relay, made: list[Realtime], session: Session) -> Session:
    late = Session(py_realtime(relay, made, "late"), session.channel.name)
    await late.connect()
    while await late.load_older():
        pass
    return late


async def _python_pair(
    relay: Relay, made: list[Realtime], channel: str
) -> tuple[Session, AgentSession]:
    """alice's session and a Python agent's, both connected to `channel`."""
    phone = Session(py_realtime(relay, made, "alice"), channel)
    await phone.connect()
    agent = AgentSession(py_realtime(relay, made, "py-agent"), channel)
    await agent.connect()
    return phone, agent


async def _asked(phone: Session, agent: AgentSession) -> tuple[ActiveTurn, AgentRun]:
    """alice asks QUESTION, and the Python agent accepts the invocation: the turn and the run."""
    invocations = agent.invocations()
    turn = await phone.send(QUESTION)
    return turn, await agent.accept(await invocations.get(20))


async def test_a_python_agents_retried_step_reads_the_same_in_the_js_session(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:steps-py"
    phone, agent = await _python_pair(relay, py_client, channel)
    observer = await _observer(run_node, phone)
    turn, run = await _asked(phone, agent)
    async with run:
        with pytest.raises(TimeoutError):
            async with run.step("think") as attempt:
                await attempt.pipe(text_chunks(WRONG, "w"))
                raise TimeoutError("the model timed out")
        async with run.step() as retry:
            await retry.pipe(text_chunks(RIGHT, "r"))
    assert await turn.done(20) == "complete"
    result = await observer
    assert result["errors"] == []
    steps = [{"stepId": "think", "status": "complete", "attemptCount": 2, "stepClientId": "alice"}]
    conversation = [{"role": "user", "text": QUESTION}, {"role": "assistant", "text": RIGHT}]
    for seen in (result["live"], result["late"]):
        assert seen["conversation"] == conversation
        assert seen["runs"] == [{"runId": run.run_id, "clientId": "alice", "status": "complete"}]
        assert seen["steps"] == {run.run_id: steps}
    assert _steps(phone, run.run_id) == steps
    assert phone.view.conversation() == conversation
    await agent.close()


async def test_a_js_agents_retried_step_reads_the_same_in_python_sessions(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:steps-js"
    phone = Session(py_realtime(relay, py_client, "alice"), channel)
    await phone.connect()
    turn = await phone.send(QUESTION)
    result = await _js_agent_run(run_node, turn, RIGHT)
    assert result["errors"] == [] and result["retryStepId"] == "think"
    assert await turn.done(20) == "complete"
    late = await _late_python_reader(relay, py_client, phone)
    await wait_until(late, lambda: late.tree.runs.get(turn.run_id) is not None)
    steps = [{"stepId": "think", "status": "complete", "attemptCount": 2, "stepClientId": "alice"}]
    for reader in (phone, late):
        assert reader.view.conversation() == [
            {"role": "user", "text": QUESTION},
            {"role": "assistant", "text": RIGHT},
        ]
        assert _steps(reader, turn.run_id) == steps
    assert turn.text == RIGHT


async def test_a_python_agent_adopts_a_run_a_js_agent_started(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:adopt-js-py"
    phone = Session(py_realtime(relay, py_client, "alice"), channel)
    await phone.connect()
    observer = await _observer(run_node, phone)
    turn = await phone.send(QUESTION)
    opened = await _js_agent_run(run_node, turn, "Fetched. ", hand_off=True)
    assert opened["errors"] == []
    worker = AgentSession(py_realtime(relay, py_client, "py-worker"), channel)
    await worker.connect()
    run = await worker.adopt(
        Invocation(turn.event_id, channel),
        run_id=opened["runId"],
        invocation_id=str(uuid.uuid4()),
    )
    async with run, run.step("summarise") as step:
        await step.pipe(text_chunks("Summarised.", "s"))
    assert await turn.done(20) == "complete"
    seen = (await observer)["live"]
    conversation = [
        {"role": "user", "text": QUESTION},
        {"role": "assistant", "text": "Fetched. "},
        {"role": "assistant", "text": "Summarised."},
    ]
    assert seen["conversation"] == conversation
    assert seen["runs"] == [{"runId": opened["runId"], "clientId": "alice", "status": "complete"}]
    steps = [
        {"stepId": "think", "status": "complete", "attemptCount": 2, "stepClientId": "alice"},
        {"stepId": "summarise", "status": "complete", "attemptCount": 1, "stepClientId": "alice"},
    ]
    assert seen["steps"] == {opened["runId"]: steps}
    assert list(phone.tree.runs) == [opened["runId"]]
    assert phone.view.conversation() == conversation
    assert _steps(phone, opened["runId"]) == steps
    # Both agents write the step events and the outputs in them alike, header for header.
    by_agent: dict[str, dict[str, list[str]]] = {}
    page = await phone.channel.history(direction="forwards", limit=1000)
    for message in page.items:
        assert isinstance(message.extras, dict)
        transport = message.extras["ai"]["transport"]
        if message.name in ("ai-step-start", "ai-step-end", "ai-output"):
            agent = "js" if transport["invocation-id"] == opened["invocationId"] else "py"
            kind = f"{message.name} {transport.get('stream')}"
            by_agent.setdefault(agent, {}).setdefault(kind, list(transport))
    assert by_agent["py"] == by_agent["js"]
    assert set(by_agent["py"]) == {
        "ai-step-start None",
        "ai-step-end None",
        "ai-output true",
        "ai-output false",
    }
    await worker.close()


async def test_a_js_agent_adopts_a_run_a_python_agent_started(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:adopt-py-js"
    phone, agent = await _python_pair(relay, py_client, channel)
    observer = await _observer(run_node, phone)
    turn, run = await _asked(phone, agent)
    await run.start()
    async with run.step("fetch") as step:
        await step.pipe(text_chunks("Fetched. ", "f"))
    await agent.close()  # this process is done; the run stays open for the next one
    adopted = await run_node(
        "client_steps.mjs",
        args={
            "mode": "adopt",
            "channel": channel,
            "inputEventId": turn.event_id,
            "runId": run.run_id,
            "invocationId": str(uuid.uuid4()),
            "right": "Summarised.",
        },
    )
    assert adopted["errors"] == [] and adopted["reason"] == "complete"
    assert await turn.done(20) == "complete"
    seen = (await observer)["live"]
    conversation = [
        {"role": "user", "text": QUESTION},
        {"role": "assistant", "text": "Fetched. "},
        {"role": "assistant", "text": "Summarised."},
    ]
    steps = [
        {"stepId": "fetch", "status": "complete", "attemptCount": 1, "stepClientId": "alice"},
        {"stepId": "summarise", "status": "complete", "attemptCount": 1, "stepClientId": "alice"},
    ]
    assert seen["conversation"] == conversation
    assert seen["runs"] == [{"runId": run.run_id, "clientId": "alice", "status": "complete"}]
    assert seen["steps"] == {run.run_id: steps}
    assert list(phone.tree.runs) == [run.run_id]
    assert phone.view.conversation() == conversation
    assert _steps(phone, run.run_id) == steps


async def test_the_header_constants_are_the_sdks(run_node: RunNode) -> None:
    exported = await run_node("client_steps.mjs", args={"mode": "headers"})
    assert exported == {name: getattr(headers, name) for name in exported}
    assert len(exported) == 14
    # The rest of its constants module, which the entry does not export.
    declared = dict(
        re.findall(r'export declare const (HEADER_\w+) = "([^"]+)"', CONSTANTS.read_text())
    )
    assert declared == {name: getattr(headers, name) for name in headers.__all__}


async def test_a_late_reader_whose_pages_split_the_run_reads_it_as_a_live_reader(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:steps-late"
    phone, agent = await _python_pair(relay, py_client, channel)
    turn, run = await _asked(phone, agent)
    async with run:
        await run.pipe(text_chunks(RIGHT, "r"))
    assert await turn.done(20) == "complete"
    await agent.close()
    # Five messages a page: the newest page starts at the text stream, after the run's start
    # and start-step; both decoders make up the opening they have not seen.
    late = Session(py_realtime(relay, py_client, "late"), channel, history_page_size=5)
    await late.connect()
    answer = phone.view.messages()[-1]
    assert [p["type"] for p in answer["parts"]] == ["step-start", "text"]
    assert late.tree.nodes[answer["id"]].messages == [answer]
    while await late.load_older():
        pass
    assert late.view.messages() == phone.view.messages()
    # The JS reader keeps the step-start its decoder made up at the page split next to the real
    # one from the older page; the Python tree derives the repair again in serial order.
    result = await run_node(
        "client_steps.mjs", args={"mode": "late", "channel": channel, "pageSize": 5}
    )
    assert result["errors"] == []
    js_answer = result["all"][-1]
    assert js_answer["parts"] == [{"type": "step-start"}, *answer["parts"]]
