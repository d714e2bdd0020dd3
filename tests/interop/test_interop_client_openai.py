"""The OpenAI Responses codec across the SDKs through the relay, both ways: a Python agent with
`codecs.openai` answering an unmodified @ably/ai-transport client session with `ResponsesCodec`,
and a JS agent with `ResponsesCodec` answering a Python client session. An answer is a function
call, its output and a text; the second question is cancelled from the client side. Each side
folds the conversation into the same OpenAI messages, and so into the same Responses input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from interop_support import RunNode
from test_interop_client import js_agent, paced, py_client, py_realtime

from channel_relay.client import Realtime
from channel_relay.client.codecs import openai
from channel_relay.client.turns import AgentSession, Session, View, wait_until

if TYPE_CHECKING:
    from channel_relay.server import Relay

__all__ = ["py_client"]

QUESTION = "Wie ist das Wetter in Zürich?"
TOKENS = ["Es sind ", "21 °C ", "und ", "sonnig ", "☀ ", "(1.0 ", "Ünïcödé)"]
SLOW = [f"t{i} " for i in range(300)]
ARGS = ['{"city": "Zürich", ', '"precision": 1.0, ', '"max": 1e21}']
CALL = {
    "id": "fc_1",
    "type": "function_call",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": "",
    "status": "in_progress",
}
OUTPUT = {"type": "function_call_output", "call_id": "call_1", "output": '{"t": 21, "unit": "°C"}'}


def _call_events() -> list[dict[str, Any]]:
    """A streamed function call as the Responses API streams it."""
    slot = {"item_id": "fc_1", "output_index": 0}
    done = {**CALL, "arguments": "".join(ARGS), "status": "completed"}
    return [
        {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0, "item": CALL},
        *({"type": "response.function_call_arguments.delta", **slot, "delta": d} for d in ARGS),
        {"type": "response.function_call_arguments.done", **slot, "arguments": "".join(ARGS)},
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}},
    ]


async def _text_events(tokens: Iterable[str], item_id: str) -> list[dict[str, Any]]:
    """The Responses events of one streamed text (as `AgentRun.stream_text` pipes them)."""

    async def aiter() -> AsyncIterator[str]:
        for token in tokens:
            yield token

    return [event async for event in openai.CODEC.text_events(aiter(), item_id)]


def _codec_messages(view: View) -> list[dict[str, Any]]:
    """A Python view's messages in the shape of the JS `view.getMessages()`."""
    return [
        {"codecMessageId": node.codec_message_id, "message": message}
        for node in view.nodes()
        for message in node.messages
    ]


def _deltas(events: list[dict[str, Any]]) -> list[str]:
    return [e["delta"] for e in events if e["type"] == "response.output_text.delta"]


async def test_a_python_openai_agent_answers_the_js_session_and_honours_its_cancel(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:openai-py-agent"
    agent = AgentSession(py_realtime(relay, py_client, "py-agent"), channel, codec=openai.CODEC)
    await agent.connect()

    async def serve() -> list[str]:
        invocations = agent.invocations()
        reasons = []
        async with await agent.accept(await invocations.get(20)) as run:
            # An agent loop: the model's call, the tool's output, the model's answer.
            assert await run.pipe(paced(_call_events(), 0.002)) == "complete"
            assert await run.pipe([{"type": "function_call_output", "item": OUTPUT}])
            reasons.append(await run.stream_text(TOKENS, text_id="msg_1", delay=0.005))
        async with await agent.accept(await invocations.get(20)) as run:
            reasons.append(await run.stream_text(SLOW, text_id="msg_2", delay=0.02))
        invocations.close()
        return reasons

    served = asyncio.create_task(serve())
    result = await run_node(
        "client_openai.mjs", args={"channel": channel, "question": QUESTION, "second": "Mehr."}
    )
    assert await served == ["complete", "cancelled"]
    assert result["errors"] == []
    first, second = result["runIds"]
    assert [(r["runId"], r["status"]) for r in result["runs"]] == [
        (first, "complete"),
        (second, "cancelled"),
    ]
    assert result["deltas"][0] == TOKENS  # every token live, once, in order
    assert 3 <= len(result["deltas"][1]) < len(SLOW)

    # The agent's own view folds the conversation into the messages the JS client folds.
    view = agent.session.view
    await wait_until(agent.session, lambda: _codec_messages(view) == result["messages"])
    assert openai.to_responses_input(view.messages()) == result["responsesInput"]
    items = result["responsesInput"]
    assert [i["type"] for i in items] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
        "message",
    ]
    assert items[1]["arguments"] == "".join(ARGS)
    assert items[3]["content"][0]["text"] == "".join(TOKENS)
    cancelled = items[5]
    assert cancelled["status"] == "in_progress"
    assert "".join(SLOW).startswith(cancelled["content"][0]["text"])
    await agent.close()


async def test_a_js_openai_agent_answers_the_python_session_and_honours_its_cancel(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:openai-js-agent"
    session = Session(py_realtime(relay, py_client, "alice"), channel, codec=openai.CODEC)
    await session.connect()
    answer = [
        *_call_events(),
        {"type": "function_call_output", "item": OUTPUT},
        *await _text_events(TOKENS, "msg_1"),
    ]
    answers = [
        {"chunks": answer, "delayMs": 2},
        {"chunks": await _text_events(SLOW, "msg_2"), "delayMs": 20},
    ]
    node = await js_agent(
        run_node, session, "client_js_agent.mjs", {"answers": answers, "codec": "openai"}
    )

    turn = await session.send(QUESTION)
    events = [event async for event in turn]
    assert await turn.done(20) == "complete"
    assert _deltas(events) == TOKENS
    assert turn.text == "".join(TOKENS)

    second = await session.send("Mehr, langsam.")
    await second.started
    await wait_until(session, lambda: len(second.text) > 0)
    assert await session.cancel(own=True) == [second.run_id]
    assert await second.done(20) == "cancelled"
    result = await node
    assert result["errors"] == []
    outcomes = result["outcomes"]
    assert [o["reason"] for o in outcomes] == ["complete", "cancelled"]
    assert [o["runId"] for o in outcomes] == [turn.run_id, second.run_id]

    # The JS agent's run view, when the first run ended, holds what the Python session folded.
    call = {**CALL, "arguments": "".join(ARGS), "status": "completed"}
    first_messages = _codec_messages(session.view)[:2]
    assert outcomes[0]["messages"] == first_messages
    assert first_messages[1]["message"]["items"][:2] == [call, OUTPUT]
    # After the cancel both sides hold the same cut-off answer.
    await wait_until(session, lambda: _codec_messages(session.view) == outcomes[1]["messages"])
    [*_, cancelled] = openai.to_responses_input(session.view.messages())
    assert cancelled["status"] == "in_progress"
    assert 0 < len(cancelled["content"][0]["text"]) < len("".join(SLOW))


async def test_a_python_client_tool_result_continues_the_js_openai_agents_turn(
    run_node: RunNode, relay: Relay, py_client: list[Realtime]
) -> None:
    channel = "ai:openai-client-tool"
    session = Session(py_realtime(relay, py_client, "alice"), channel, codec=openai.CODEC)
    await session.connect()
    answers = [
        {"chunks": _call_events(), "suspend": True},
        {"chunks": await _text_events(TOKENS, "msg_1")},
    ]
    node = await js_agent(
        run_node, session, "client_js_agent.mjs", {"answers": answers, "codec": "openai"}
    )
    asked = await session.send(QUESTION)
    assert await asked.done(20) == "suspended"
    [call] = openai.unanswered_calls(session.view.messages())
    turn = await session.send_tool_result(call["call_id"], {"t": 21, "unit": "°C"})
    assert await turn.done(20) == "complete"
    assert turn.run_id == asked.run_id
    result = await node
    assert result["errors"] == []
    assert [(o["kind"], o["reason"]) for o in result["outcomes"]] == [
        ("user-message", "suspend"),
        ("tool-result", "complete"),
    ]
    # The JS agent's view folded the result into the call's message as the Python one did.
    messages = result["outcomes"][1]["messages"]
    await wait_until(session, lambda: _codec_messages(session.view) == messages)
    [_, asking, *_] = session.view.messages()
    assert asking["toolCallStates"] == {"call_1": {"result": "ok"}}
    assert openai.unanswered_calls(session.view.messages()) == []
