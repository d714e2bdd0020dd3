"""channel-relay's Python `client.turns` against the unmodified @ably/ai-transport 0.8.0 through
the relay, both ways: a Python agent answering a JS client session, and a JS agent session
answering a Python client session (with a cancel)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from unittest.mock import ANY

import pytest
from interop_support import RunNode
from vercel_chunks import text_chunks

from channel_relay.client import Realtime
from channel_relay.client.turns import AgentRun, AgentSession, Session, wait_until

if TYPE_CHECKING:
    from channel_relay.server import Relay

QUESTION = "What colour is the sky?"
TOKENS = ["On ", "a clear ", "day ", "the sky ", "looks ", "blue. ", "Ünïcödé ", "✓"]


@pytest.fixture
async def py_client(relay: Relay) -> AsyncIterator[list[Realtime]]:
    made: list[Realtime] = []
    yield made
    for client in made:
        await client.close()


async def _sessions(
    relay: Relay, made: list[Realtime], channel: str, *client_ids: str
) -> list[Session]:
    """A connected Session on `channel` per clientId (each its own connection: a device)."""
    sessions = [Session(py_realtime(relay, made, client_id), channel) for client_id in client_ids]
    for session in sessions:
        await session.connect()
    return sessions


def py_realtime(relay: Relay, made: list[Realtime], client_id: str) -> Realtime:
    client = Realtime(relay.default_key, client_id=client_id, url=f"http://127.0.0.1:{relay.port}")
    made.append(client)
    return client


class PyAgent:
    """A Python agent serving the live invocations on a channel, concurrently: the i-th with
    answers[i] ({"chunks": [...]} piped, or {"tokens": [...]} streamed as text; "delay" seconds
    between them; "suspend": suspend instead of ending). `outcomes[i]` = (run id, reason)."""

    def __init__(self, agent: AgentSession, answers: list[dict[str, Any]]) -> None:
        self.agent, self.answers = agent, answers
        self.invocations = agent.invocations()
        self.outcomes: dict[int, tuple[str, str]] = {}
        self.runs: list[AgentRun] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._task = asyncio.create_task(self._serve())

    async def _serve(self) -> None:
        async for invocation in self.invocations:
            run = await self.agent.accept(invocation)
            index = len(self.runs)
            self.runs.append(run)
            task = asyncio.create_task(self._run(index, run))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, index: int, run: AgentRun) -> None:
        answer = self.answers[min(index, len(self.answers) - 1)]
        delay = answer.get("delay", 0.002)
        await run.start()
        if "tokens" in answer:
            reason = await run.stream_text(answer["tokens"], delay=delay)
        else:
            reason = await run.pipe(paced(answer["chunks"], delay))
        if answer.get("suspend") and reason == "complete":
            await run.suspend()
            reason = "suspend"
        else:
            await run.end(reason)
        self.outcomes[index] = (run.run_id, reason)

    async def stop(self) -> None:
        self._task.cancel()
        for task in list(self._tasks):
            await task
        await self.agent.close()


async def paced(chunks: list[dict[str, Any]], delay: float) -> AsyncIterator[dict[str, Any]]:
    for chunk in chunks:
        await asyncio.sleep(delay)
        yield chunk


async def _js_agent(
    run_node: RunNode, session: Session, answers: list[dict[str, Any]]
) -> asyncio.Task[dict[str, Any]]:
    """Start client_js_agent.mjs on `session`'s channel serving `answers`, once it listens
    (it enters presence as agent-watch)."""
    return await js_agent(run_node, session, "client_js_agent.mjs", {"answers": answers})


async def js_agent(
    run_node: RunNode, session: Session, script: str, args: dict[str, Any]
) -> asyncio.Task[dict[str, Any]]:
    """Start a JS agent `script` on `session`'s channel with `args`, once it listens (it enters
    presence as agent-watch)."""
    channel = session.channel.name
    node = asyncio.create_task(run_node(script, args={"channel": channel, **args}))
    ready = asyncio.Event()
    session.channel.presence.subscribe(
        lambda m: ready.set() if m.client_id == "agent-watch" else None
    )
    if not any(m.client_id == "agent-watch" for m in await session.channel.presence.get()):
        async with asyncio.timeout(20):
            await ready.wait()
    return node


async def test_python_agent_streams_to_the_js_session(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:py-agent"
    agent = AgentSession(py_realtime(relay, py_client, "py-agent"), channel)
    await agent.connect()

    async def serve() -> str:
        invocations = agent.invocations()
        run = await agent.accept(await invocations.get(20))
        await run.start()
        reason = await run.stream_text(TOKENS, delay=0.005)
        await run.end(reason)
        return run.run_id

    served = asyncio.create_task(serve())
    result = await run_node("client_py_agent.mjs", args={"channel": channel, "question": QUESTION})
    run_id = await served
    assert result["errors"] == []
    assert result["runId"] == run_id
    assert result["status"] == "complete"
    assert result["runs"] == [{"runId": run_id, "clientId": "alice", "status": "complete"}]
    assert result["conversation"] == [
        {"role": "user", "text": QUESTION},
        {"role": "assistant", "text": "".join(TOKENS)},
    ]
    assert result["deltas"] == TOKENS  # every token live, once, in order
    await agent.close()


async def test_js_agent_streams_to_the_python_session_and_honours_cancel(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:js-agent"
    session = Session(py_realtime(relay, py_client, "alice"), channel)
    await session.connect()
    observer = Session(py_realtime(relay, py_client, "bob"), channel)
    await observer.connect()
    slow = [f"t{i} " for i in range(300)]
    answers = [{"tokens": TOKENS, "delayMs": 5}, {"tokens": slow, "delayMs": 20}]
    node = await _js_agent(run_node, session, answers)

    turn = await session.send(QUESTION)
    chunks = [chunk async for chunk in turn]
    assert await turn.done() == "complete"
    assert [c["delta"] for c in chunks if c["type"] == "text-delta"] == TOKENS
    assert turn.text == "".join(TOKENS)
    assert session.turns[turn.run_id].own and session.turns[turn.run_id].client_id == "alice"
    await wait_until(
        observer,
        lambda: (
            observer.tree.runs.get(turn.run_id) is not None
            and observer.tree.runs[turn.run_id].status == "complete"
        ),
    )
    assert not observer.turns[turn.run_id].own
    assert observer.view.conversation() == session.view.conversation()

    # The second run streams slowly; the Python side cancels it and the JS agent stops.
    second = await session.send("Tell me more, slowly.")
    await second.started
    await wait_until(session, lambda: len(second.text) > 0)
    assert await session.cancel(own=True) == [second.run_id]
    assert await second.done(20) == "cancelled"
    result = await node
    assert result["errors"] == []
    assert [o["reason"] for o in result["outcomes"]] == ["complete", "cancelled"]
    assert [o["runId"] for o in result["outcomes"]] == [turn.run_id, second.run_id]
    assert 0 < len(second.text) < len("".join(slow))


# Chunk scripts both agents stream (the JS agent pipes them as given, the Python agent too).
RICH = [
    {"type": "start", "messageMetadata": {"model": "m-1", "temperature": 0.5}},
    {"type": "start-step"},
    {"type": "reasoning-start", "id": "r1"},
    {"type": "reasoning-delta", "id": "r1", "delta": "Look up "},
    {"type": "reasoning-delta", "id": "r1", "delta": "the weather. ✓"},
    {"type": "reasoning-end", "id": "r1"},
    {"type": "tool-input-start", "toolCallId": "call-w", "toolName": "weather"},
    {"type": "tool-input-delta", "toolCallId": "call-w", "inputTextDelta": '{"city":'},
    {"type": "tool-input-delta", "toolCallId": "call-w", "inputTextDelta": '"Zürich"}'},
    {
        "type": "tool-input-available",
        "toolCallId": "call-w",
        "toolName": "weather",
        "input": {"city": "Zürich"},
    },
    {"type": "tool-output-available", "toolCallId": "call-w", "output": {"tempC": 21.5}},
    {"type": "finish-step"},
    {"type": "start-step"},
    {"type": "source-url", "sourceId": "s1", "url": "https://example.com/w", "title": "Wetter"},
    {"type": "file", "url": "data:text/plain;base64,SGk=", "mediaType": "text/plain"},
    {"type": "data-forecast", "id": "f1", "data": {"days": [1, 2.5]}},
    {"type": "text-start", "id": "t1"},
    {"type": "text-delta", "id": "t1", "delta": "It is "},
    {"type": "text-delta", "id": "t1", "delta": "21.5 °C."},
    {"type": "text-end", "id": "t1"},
    {"type": "finish-step"},
    {"type": "finish", "finishReason": "stop", "messageMetadata": {"tokens": 12}},
]
# The assistant UIMessage parts RICH folds into (the AI SDK's reader, in both SDKs).
RICH_PARTS = [
    {"type": "step-start"},
    {"type": "reasoning", "text": "Look up the weather. ✓"},
    {
        "type": "tool-weather",
        "toolCallId": "call-w",
        "state": "output-available",
        "input": {"city": "Zürich"},
        "output": {"tempC": 21.5},
    },
    {"type": "step-start"},
    {"type": "source-url", "sourceId": "s1", "url": "https://example.com/w", "title": "Wetter"},
    {"type": "file", "mediaType": "text/plain", "url": "data:text/plain;base64,SGk="},
    {"type": "data-forecast", "id": "f1", "data": {"days": [1, 2.5]}},
    {"type": "text", "text": "It is 21.5 °C."},
]
APPROVAL_ASK = [
    {"type": "start"},
    {"type": "start-step"},
    {"type": "tool-input-start", "toolCallId": "call-a", "toolName": "pay"},
    {"type": "tool-input-delta", "toolCallId": "call-a", "inputTextDelta": '{"eur":5}'},
    {
        "type": "tool-input-available",
        "toolCallId": "call-a",
        "toolName": "pay",
        "input": {"eur": 5},
    },
    {"type": "tool-approval-request", "toolCallId": "call-a", "approvalId": "ap-1"},
    {"type": "finish-step"},
    {"type": "finish", "finishReason": "tool-calls"},
]
APPROVED = [
    {"type": "tool-output-available", "toolCallId": "call-a", "output": {"paid": True}},
    {"type": "start-step"},
    {"type": "text-start", "id": "t2"},
    {"type": "text-delta", "id": "t2", "delta": "Paid."},
    {"type": "text-end", "id": "t2"},
    {"type": "finish-step"},
    {"type": "finish", "finishReason": "stop"},
]
CLIENT_TOOL = [
    {"type": "start"},
    {"type": "start-step"},
    {"type": "tool-input-available", "toolCallId": "call-loc", "toolName": "where", "input": {}},
    {"type": "finish-step"},
    {"type": "finish", "finishReason": "tool-calls"},
]


async def test_js_agent_reasoning_tools_sources_and_data_reach_python_devices(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    phone, laptop = await _sessions(relay, py_client, "ai:js-rich", "alice", "alice")
    node = await _js_agent(run_node, phone, [{"chunks": RICH}])
    turn = await phone.send("Weather?")
    chunks = [chunk async for chunk in turn]
    assert await turn.done(20) == "complete"
    assert [c for c in chunks if c["type"].startswith("data-")] == [RICH[15]]
    assert turn.message is not None
    assert turn.message["metadata"] == {"tokens": 12}
    assert turn.message["parts"] == RICH_PARTS
    await wait_until(laptop, lambda: laptop.view.messages() == phone.view.messages())
    assert (await node)["errors"] == []


async def test_js_agent_asks_approval_and_another_python_device_grants_it(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    phone, laptop = await _sessions(relay, py_client, "ai:js-approve", "alice", "alice")
    node = await _js_agent(
        run_node, phone, [{"chunks": APPROVAL_ASK, "suspend": True}, {"chunks": APPROVED}]
    )
    turn = await phone.send("Pay 5 EUR")
    assert await turn.done(20) == "suspended"
    await wait_until(laptop, lambda: laptop.tree.runs[turn.run_id].status == "suspended")
    resumed = await laptop.respond("call-a", approved=True)
    assert await resumed.done(20) == "complete"
    result = await node
    assert [o["reason"] for o in result["outcomes"]] == ["suspend", "complete"]
    assert result["outcomes"][1]["runId"] == turn.run_id
    for device in (phone, laptop):
        await wait_until(device, lambda d=device: d.tree.runs[turn.run_id].status == "complete")
        parts = [p for m in device.view.messages()[1:] for p in m["parts"]]
        [tool] = [p for p in parts if p["type"] == "tool-pay"]
        assert tool["state"] == "output-available" and tool["output"] == {"paid": True}
        assert device.view.conversation()[-1] == {"role": "assistant", "text": "Paid."}


async def test_a_python_client_tool_result_fork_is_continued_by_the_js_agent(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    phone, bob = await _sessions(relay, py_client, "ai:js-fork", "alice", "bob")
    answers = [{"chunks": CLIENT_TOOL}, {"chunks": text_chunks("You are in Oslo.", "t9")}]
    node = await _js_agent(run_node, phone, answers)
    turn = await phone.send("Where am I?")
    assert await turn.done(20) == "complete"
    fork = await phone.add_tool_result("call-loc", {"city": "Oslo"})
    assert await fork.done(20) == "complete"
    result = await node
    assert result["errors"] == []
    assert result["outcomes"][1]["kind"] == "tool-result"
    for device in (phone, bob):
        await wait_until(
            device, lambda d=device: d.view.conversation()[-1]["text"] == "You are in Oslo."
        )
        _user, seeded, answer = device.view.nodes()
        assert device.tree.runs[turn.run_id].superseded
        [tool] = [p for p in seeded.message["parts"] if p.get("toolCallId") == "call-loc"]
        assert tool["state"] == "output-available" and tool["output"] == {"city": "Oslo"}
        assert answer.run_id == fork.run_id


async def test_js_agent_regenerates_and_answers_edits_each_python_view_selects_its_branch(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    [phone] = await _sessions(relay, py_client, "ai:js-branches", "alice")
    answers = [{"chunks": text_chunks(t, "t9")} for t in ("First.", "Second.", "Edited.")]
    node = await _js_agent(run_node, phone, answers)
    first = await phone.send("Q1")
    assert await first.done(20) == "complete"
    user, answer = phone.view.nodes()
    regen = await phone.regenerate(answer.codec_message_id)
    assert await regen.done(20) == "complete"
    await wait_until(phone, lambda: phone.view.conversation()[-1]["text"] == "Second.")
    edit = await phone.edit(user.codec_message_id, "Q1, edited")
    assert await edit.done(20) == "complete"
    await wait_until(phone, lambda: phone.view.conversation()[-1]["text"] == "Edited.")
    assert (await node)["errors"] == []
    # Another view over the same tree goes back to the original question and first answer.
    other = phone.create_view()
    other.branch(user.codec_message_id).select(0)
    assert [n["text"] for n in other.conversation()] == ["Q1", "Second."]
    other.branch(answer.codec_message_id).select(0)
    assert [n["text"] for n in other.conversation()] == ["Q1", "First."]
    assert [n["text"] for n in phone.view.conversation()] == ["Q1, edited", "Edited."]


async def test_concurrent_turns_python_cancels_its_own_and_the_js_agent_finishes_the_other(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    alice, bob = await _sessions(relay, py_client, "ai:js-concurrent", "alice", "bob")
    slow = {"tokens": [f"w{i} " for i in range(200)], "delayMs": 20}
    node = await _js_agent(run_node, alice, [slow, {"tokens": TOKENS, "delayMs": 60}])
    mine = await alice.send("long")
    await mine.started
    theirs = await bob.send("short")
    await theirs.started
    await wait_until(alice, lambda: len(alice.active_turns) == 2)
    assert await alice.cancel(own=True) == [mine.run_id]
    assert await mine.done(20) == "cancelled"
    assert await theirs.done(20) == "complete"
    assert theirs.text == "".join(TOKENS)
    result = await node
    assert {o["runId"]: o["reason"] for o in result["outcomes"]} == {
        mine.run_id: "cancelled",
        theirs.run_id: "complete",
    }


async def test_python_late_joiner_and_dropped_device_get_every_js_token_once(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    [phone] = await _sessions(relay, py_client, "ai:js-join", "alice")
    tokens = [f"tok{i} " for i in range(60)]
    node = await _js_agent(run_node, phone, [{"tokens": tokens, "delayMs": 15}])
    turn = await phone.send("stream")
    await wait_until(phone, lambda: len(turn.text) > 0)
    late = Session(py_realtime(relay, py_client, "bob"), "ai:js-join")
    deltas: list[str] = []
    late.on("chunks", lambda _t, _n, cs: deltas.extend(c.get("delta", "") for c in cs))
    await late.connect()
    await wait_until(late, lambda: len(deltas) > 2)
    # Drop the late joiner's socket mid-stream: it resumes and misses nothing.
    connection = relay.realtime.connections[late.client.connection.id or ""]
    assert connection.writer is not None
    connection.writer.abort()
    assert await turn.done(30) == "complete"
    await wait_until(late, lambda: late.tree.runs[turn.run_id].status == "complete")
    assert "".join(deltas) == "".join(tokens)
    assert late.view.conversation() == phone.view.conversation()
    assert (await node)["errors"] == []


async def _py_agent(
    relay: Relay, py_client: list[Realtime], channel: str, answers: list[dict[str, Any]]
) -> PyAgent:
    agent = AgentSession(py_realtime(relay, py_client, "py-agent"), channel)
    await agent.connect()
    return PyAgent(agent, answers)


async def test_python_agent_reasoning_tools_sources_and_data_reach_the_js_session(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    agent = await _py_agent(relay, py_client, "ai:py-rich", [{"chunks": RICH}])
    result = await run_node(
        "client_py_agent.mjs", args={"channel": "ai:py-rich", "question": "Weather?"}
    )
    await agent.stop()
    assert result["errors"] == []
    assert result["status"] == "complete"
    assert result["messages"][1]["parts"] == RICH_PARTS


async def test_python_agent_asks_approval_and_the_js_users_other_device_grants_it(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    answers = [{"chunks": APPROVAL_ASK, "suspend": True}, {"chunks": APPROVED}]
    agent = await _py_agent(relay, py_client, "ai:py-approve", answers)
    result = await run_node(
        "client_py_agent.mjs",
        args={
            "channel": "ai:py-approve",
            "mode": "approval",
            "question": "Pay",
            "toolCallId": "call-a",
        },
    )
    await agent.stop()
    assert result["errors"] == []
    assert agent.outcomes == {0: (result["runId"], "suspend"), 1: (result["runId"], "complete")}
    assert agent.runs[1].continuation
    for device in ("phone", "laptop"):
        seen = result[device]
        assert seen["runs"] == [
            {"runId": result["runId"], "clientId": "alice", "status": "complete"}
        ]
        parts = [p for m in seen["messages"][1:] for p in m["parts"]]
        [tool] = [p for p in parts if p["type"] == "tool-pay"]
        assert tool["state"] == "output-available" and tool["output"] == {"paid": True}
        text = "".join(p["text"] for p in parts if p["type"] == "text")
        assert text == "Paid."


async def test_a_js_client_tool_result_fork_is_continued_by_the_python_agent(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    answers = [{"chunks": CLIENT_TOOL}, {"chunks": text_chunks("You are in Oslo.", "t9")}]
    agent = await _py_agent(relay, py_client, "ai:py-fork", answers)
    args = {
        "channel": "ai:py-fork",
        "mode": "fork",
        "question": "Where am I?",
        "toolCallId": "call-loc",
        "output": {"city": "Oslo"},
        "answer": "You are in Oslo.",
    }
    result = await run_node("client_py_agent.mjs", args=args)
    await agent.stop()
    assert result["errors"] == []
    fork = agent.runs[1]
    assert fork.input_codec["kind"] == "tool-result" and not fork.continuation
    assert result["forkRunId"] == fork.run_id
    assert result["conversation"][-1] == {"role": "assistant", "text": "You are in Oslo."}
    # The superseded run is off the branch: the fork run's messages carry the tool output.
    assert {r["runId"] for r in result["runs"]} == {fork.run_id}
    parts = [p for m in result["messages"] for p in m["parts"]]
    [tool] = [p for p in parts if p.get("toolCallId") == "call-loc"]
    assert tool["state"] == "output-available" and tool["output"] == {"city": "Oslo"}


async def test_python_agent_regenerates_and_answers_edits_the_js_view_selects_branches(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    answers = [{"chunks": text_chunks(t, "t9")} for t in ("First.", "Second.", "Edited.")]
    agent = await _py_agent(relay, py_client, "ai:py-branches", answers)
    args = {"channel": "ai:py-branches", "mode": "branches", "question": "Q1", "edited": "Q1b"}
    result = await run_node("client_py_agent.mjs", args=args)
    await agent.stop()
    assert result["errors"] == []
    assert agent.runs[1].regenerates is not None and agent.runs[2].fork_of is not None
    assert [m["text"] for m in result["afterEdit"]] == ["Q1b", "Edited."]
    assert result["questionBranch"] == {"index": 1, "count": 2}
    assert [m["text"] for m in result["original"]] == ["Q1", "Second."]
    assert result["answerBranch"] == {"index": 1, "count": 2}
    assert [m["text"] for m in result["firstAnswer"]] == ["Q1", "First."]


async def test_a_js_cancel_stops_only_its_python_agent_run_of_two_concurrent(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    answers = [
        {"tokens": [f"w{i} " for i in range(300)], "delay": 0.02},
        {"tokens": TOKENS, "delay": 0.05},
    ]
    agent = await _py_agent(relay, py_client, "ai:py-cancel", answers)
    result = await run_node(
        "client_py_agent.mjs", args={"channel": "ai:py-cancel", "mode": "cancel"}
    )
    await agent.stop()
    assert result["errors"] == []
    statuses = {r["runId"]: r["status"] for r in result["runs"]}
    assert statuses == {result["mine"]: "cancelled", result["theirs"]: "complete"}
    assert agent.runs[0].cancel_request == {"event-id": ANY, "run-id": result["mine"]}
    assert sorted(agent.outcomes.values()) == sorted(
        [(result["mine"], "cancelled"), (result["theirs"], "complete")]
    )


async def test_a_js_late_joiner_whose_socket_drops_gets_every_python_token_once(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:py-late"
    tokens = [f"tok{i} " for i in range(80)]
    agent = await _py_agent(relay, py_client, channel, [{"tokens": tokens, "delay": 0.02}])
    watcher = agent.agent.channel

    def drop(member: Any) -> None:
        if member.client_id != "bob":
            return
        for connection in relay.realtime.connections.values():
            if connection.identity.client_id == "bob" and connection.writer is not None:
                connection.writer.abort()

    watcher.presence.subscribe(drop)
    result = await run_node(
        "client_py_agent.mjs", args={"channel": channel, "mode": "late", "question": "go"}
    )
    await agent.stop()
    assert result["errors"] == []
    assert "disconnected" in result["bobStates"] and result["bobStates"][-1] == "connected"
    assert result["bob"] == result["alice"]
    assert result["bob"][-1]["text"] == "".join(tokens)
    # (The run's clientId is not compared: a JS late joiner that pages the run's outputs in
    # before its ai-run-start sometimes reports it as "".)
    assert [(r["runId"], r["status"]) for r in result["bobRuns"]] == [(result["runId"], "complete")]
    # What bob saw live is the tail of the text: every token after his first sight, once.
    assert "".join(tokens).endswith(result["bobLiveText"])


def _statuses(session: Session, agent_id: str) -> list[str]:
    """The statuses `session` reports for `agent_id`, from now on (consecutive repeats once)."""
    seen: list[str] = []
    if agent_id in session.agents:
        seen.append(session.agents[agent_id])
    session.on(
        "agent_status",
        lambda client_id, status: seen.append(status) if client_id == agent_id else None,
    )
    return seen


async def test_the_js_agents_presence_reads_as_statuses_on_the_python_session(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    [alice] = await _sessions(relay, py_client, "ai:js-status", "alice")
    seen = _statuses(alice, "agent")
    channel = alice.channel.name
    node = asyncio.create_task(
        run_node(
            "client_js_agent.mjs",
            args={"channel": channel, "answers": [{"tokens": TOKENS}], "reportStatus": True},
        )
    )
    await wait_until(alice, lambda: alice.agents.get("agent") == "idle")
    turn = await alice.send("status?")
    assert await turn.done(20) == "complete"
    assert (await node)["errors"] == []
    await wait_until(alice, lambda: alice.agents.get("agent") == "offline")
    assert seen == ["idle", "thinking", "streaming", "idle", "offline"]


async def test_the_python_agents_statuses_reach_the_js_session_and_python_devices(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:py-status"
    laptop = Session(py_realtime(relay, py_client, "alice"), channel)
    await laptop.connect()
    seen = _statuses(laptop, "py-agent")
    agent = AgentSession(py_realtime(relay, py_client, "py-agent"), channel, report_status=True)
    await agent.connect()
    serving = PyAgent(agent, [{"tokens": TOKENS}])
    result = await run_node("client_py_agent.mjs", args={"channel": channel, "question": "?"})
    assert result["errors"] == []
    statuses = [status for client_id, status in result["agentStatuses"] if client_id == "py-agent"]
    assert statuses == ["idle", "thinking", "streaming", "idle"]
    await serving.stop()
    await wait_until(laptop, lambda: laptop.agents.get("py-agent") == "offline")
    assert seen == ["idle", "thinking", "streaming", "idle", "offline"]


async def test_a_js_cancel_sent_before_the_python_agent_started_stops_the_run(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:py-early"
    agent = AgentSession(py_realtime(relay, py_client, "py-agent"), channel)
    await agent.connect()
    invocations = agent.invocations()
    cancelled = asyncio.Event()
    agent.session.tree.on("cancel", lambda _headers, _message: cancelled.set())

    async def serve() -> str:
        invocation = await invocations.get(20)
        await cancelled.wait()  # take the input up only once its cancel is in
        async with await agent.accept(invocation) as run:
            assert run.cancel_request is not None
            assert "input-codec-message-id" in run.cancel_request
            return await run.stream_text(TOKENS)

    served = asyncio.create_task(serve())
    result = await run_node(
        "client_py_agent.mjs", args={"channel": channel, "mode": "early", "question": "stop"}
    )
    assert await served == "cancelled"
    await agent.close()
    assert result["errors"] == []
    assert result["runs"] == [
        {"runId": result["runId"], "clientId": "alice", "status": "cancelled"}
    ]


STEER = "Answer in French, please"
STEER_ANSWER = ["Le ciel ", "est ", "bleu."]


async def test_a_js_steer_reaches_the_python_agents_running_turn(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:py-steer"
    agent = AgentSession(py_realtime(relay, py_client, "py-agent"), channel)
    await agent.connect()
    invocations = agent.invocations()
    steered = asyncio.Event()
    agent.session.tree.on("steer", lambda _run, _cmid: steered.set())

    async def serve() -> list[dict[str, Any]]:
        async with await agent.accept(await invocations.get(20)) as run:
            assert await run.stream_text(TOKENS) == "complete"
            async with asyncio.timeout(20):
                await steered.wait()  # the turn stays open until the user steers it
            steers = run.take_steers()
            await run.stream_text(STEER_ANSWER, text_id="txt-2")
            return steers

    served = asyncio.create_task(serve())
    result = await run_node(
        "client_py_agent.mjs",
        args={
            "channel": channel,
            "mode": "steer",
            "question": QUESTION,
            "answer": "".join(TOKENS),
            "steer": STEER,
        },
    )
    steers = await served
    thread = [
        {"role": "user", "text": QUESTION},
        {"role": "assistant", "text": "".join(TOKENS)},
        {"role": "user", "text": STEER},
        {"role": "assistant", "text": "".join(STEER_ANSWER)},
    ]
    await wait_until(agent.session, lambda: agent.session.view.conversation() == thread)
    await agent.close()
    assert result["errors"] == []
    assert steers == [{"id": ANY, "role": "user", "parts": [{"type": "text", "text": STEER}]}]
    assert result["published"] is True
    # The JS client learns from the answer's steer-codec-message-ids that the agent took it.
    assert result["outcome"] == {"consumed": True, "runTerminalReason": "complete"}
    # Both SDKs thread the steer into the run, between the answers it came between.
    assert result["conversation"] == thread


async def test_a_python_steer_reaches_the_js_agents_running_turn(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    (alice,) = await _sessions(relay, py_client, "ai:js-steer", "alice")
    node = await _js_agent(run_node, alice, [{"tokens": TOKENS, "steerTokens": STEER_ANSWER}])
    turn = await alice.send(QUESTION)
    await wait_until(alice, lambda: alice.view.conversation()[-1]["text"] == "".join(TOKENS))
    steer = await alice.steer(turn.run_id, STEER)
    assert steer.serial is not None
    # The JS agent's loop (run.hasInput()) drains the steer and stamps its next answer with it.
    assert await steer.outcome(20) == (True, "complete")
    assert await turn.done(20) == "complete"
    result = await node
    assert result["errors"] == []
    assert result["outcomes"] == [
        {
            "index": 0,
            "kind": "user-message",
            "runId": turn.run_id,
            "reason": "complete",
            "invocationId": ANY,
            "historyPages": 0,
            "passes": 2,
        }
    ]
    run = alice.tree.runs[turn.run_id]
    assert [p["text"] for p in run.steers[steer.codec_message_id]["parts"]] == [STEER]
    assert alice.view.conversation() == [
        {"role": "user", "text": QUESTION},
        {"role": "assistant", "text": "".join(TOKENS)},
        {"role": "user", "text": STEER},
        {"role": "assistant", "text": "".join(STEER_ANSWER)},
    ]
