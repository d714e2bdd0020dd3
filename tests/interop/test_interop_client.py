"""channel-relay's Python `client.turns` against the unmodified @ably/ai-transport 0.8.0 through
the relay, both ways: a Python agent answering a JS client session, and a JS agent session
answering a Python client session (with a cancel)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest
from interop_support import RunNode

from channel_relay.client import Realtime
from channel_relay.client.turns import AgentSession, Session, wait_until

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


def _realtime(relay: Relay, made: list[Realtime], client_id: str) -> Realtime:
    client = Realtime(relay.default_key, client_id=client_id, url=f"http://127.0.0.1:{relay.port}")
    made.append(client)
    return client


async def test_python_agent_streams_to_the_js_session(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:py-agent"
    agent = AgentSession(_realtime(relay, py_client, "py-agent"), channel)
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
    session = Session(_realtime(relay, py_client, "alice"), channel)
    await session.connect()
    observer = Session(_realtime(relay, py_client, "bob"), channel)
    await observer.connect()
    slow = [f"t{i} " for i in range(300)]
    answers = [{"tokens": TOKENS, "delayMs": 5}, {"tokens": slow, "delayMs": 20}]
    node = asyncio.create_task(
        run_node("client_js_agent.mjs", args={"channel": channel, "answers": answers})
    )
    # Wait until the JS agent listens (it enters presence as agent-watch).
    ready = asyncio.Event()
    session.channel.presence.subscribe(
        lambda m: ready.set() if m.client_id == "agent-watch" else None
    )
    if not any(m.client_id == "agent-watch" for m in await session.channel.presence.get()):
        async with asyncio.timeout(20):
            await ready.wait()

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
