"""A custom codec across the SDKs: the poem codec declared with `define_codec` in Python
(tests/poem_codec.py) and with `defineCodec` in @ably/ai-transport 0.8.0
(lib/poem_codec.mjs) exchanges a turn through the relay in both directions, a Python agent
answering a JS client session and a JS agent answering a Python session, each cancelled by the
asker mid-line. The interrupted turn (its open line closed as cancelled, no `line-end`, no
`end-poem`) reads the same on both sides: live, and rebuilt from history by late joiners of
either SDK; the node's second message (the aside) included."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from interop_support import RunNode
from poem_codec import POEM
from test_interop_client import js_agent, paced, py_client, py_realtime

from channel_relay.client import Realtime
from channel_relay.client.turns import AgentSession, Session, wait_until

if TYPE_CHECKING:
    from channel_relay.server import Relay

__all__ = ["py_client"]

QUESTION = "A poem about cafés ✓, please"
WORDS = [f"wörd{i} " for i in range(80)]
EVENTS: list[dict[str, Any]] = [
    {"type": "begin", "messageId": "poem-1"},
    {"type": "mood", "value": "cheerful", "score": 0.5},
    {"type": "aside", "text": "(clears throat)"},
    {"type": "debug", "detail": "kept off the wire"},
    {"type": "line-start", "id": "l1", "voice": "narrator"},
    *({"type": "line-delta", "id": "l1", "text": word} for word in WORDS),
    {"type": "line-end", "id": "l1"},
    {"type": "end-poem", "reason": "done"},
]
# Cancel once this much of the line is seen: well before its end at any pace.
CANCEL_AT = 12


def _line(messages: list[dict[str, Any]]) -> str:
    return "".join(p["text"] for m in messages for p in m["parts"] if p["type"] == "line")


def _assert_interrupted(messages: list[dict[str, Any]], asker: str) -> None:
    """The turn as the asker sent it and the agent left it when cancelled mid-line."""
    user, main, aside = messages
    assert user["role"] == "user"
    assert user["parts"] == [{"type": "text", "text": QUESTION}]
    assert main["id"] == "poem-1"
    assert "finished" not in main  # no end-poem: the run was cut
    mood, line = main["parts"]
    assert mood == {"type": "mood", "value": "cheerful", "score": 0.5}
    assert line["state"] == "streaming"  # the cancelled stream closed without its line-end
    assert line["voice"] == "narrator"
    assert CANCEL_AT <= len(line["text"]) < len("".join(WORDS)), asker
    assert "".join(WORDS).startswith(line["text"])
    assert aside["parts"] == [{"type": "aside", "text": "(clears throat)"}]
    assert aside["id"].endswith(":aside")


async def _late_python_reader(relay: Relay, made: list[Realtime], channel: str) -> list[Any]:
    async with Session(py_realtime(relay, made, "carol"), channel, codec=POEM) as carol:
        await wait_until(carol, lambda: len(carol.view.messages()) == 3)
        return carol.view.messages()


async def test_a_python_poem_agent_cancelled_mid_line_by_a_js_client_reads_alike_on_both_sides(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:poem-py-agent"
    agent = AgentSession(py_realtime(relay, py_client, "py-agent"), channel, codec=POEM)
    await agent.connect()

    async def serve() -> str:
        invocations = agent.invocations()
        run = await agent.accept(await invocations.get(20))
        await run.start()
        reason = await run.pipe(paced(EVENTS, 0.04))
        await run.end(reason)
        return reason

    served = asyncio.create_task(serve())
    result = await run_node(
        "client_poem.mjs",
        args={
            "mode": "client",
            "channel": channel,
            "question": QUESTION,
            "cancelAt": CANCEL_AT,
            "expectMessages": 3,
        },
        deadline=60,
    )
    assert await served == "cancelled"
    assert result["errors"] == [] and result["late"]["errors"] == []
    assert result["status"] == "cancelled"
    _assert_interrupted(result["messages"], "the JS asker")
    # The JS late joiner, the Python agent and a Python late joiner all read the same turn.
    assert result["late"]["messages"] == result["messages"]
    await wait_until(
        agent.session, lambda: _line(agent.session.view.messages()) == _line(result["messages"])
    )
    assert agent.session.view.messages() == result["messages"]
    assert await _late_python_reader(relay, py_client, channel) == result["messages"]
    await agent.close()


async def test_a_js_poem_agent_cancelled_mid_line_by_a_python_client_reads_alike_on_both_sides(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:poem-js-agent"
    async with Session(py_realtime(relay, py_client, "alice"), channel, codec=POEM) as alice:
        node = await js_agent(
            run_node,
            alice,
            "client_poem.mjs",
            {"mode": "agent", "events": EVENTS, "delayMs": 40, "expectMessages": 3},
        )
        turn = await alice.send(QUESTION)
        await wait_until(alice, lambda: len(_line(alice.view.messages())) >= CANCEL_AT)
        await turn.cancel()
        result = await node
        assert result["reason"] == "cancelled"
        assert result["errors"] == [] and result["late"]["errors"] == []
        await wait_until(
            alice, lambda: _line(alice.view.messages()) == _line(result["late"]["messages"])
        )
        _assert_interrupted(alice.view.messages(), "the Python asker")
        assert alice.view.messages() == result["late"]["messages"]
        assert await _late_python_reader(relay, py_client, channel) == alice.view.messages()
