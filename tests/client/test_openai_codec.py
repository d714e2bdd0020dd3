"""Sessions speaking the OpenAI Responses codec: an agent pipes Responses stream events, every
reader folds them into Responses items (live or from history), and those items are the `input`
of the next Responses request."""

from __future__ import annotations

import asyncio
from typing import Any

from client_support import MakeClient

from channel_relay.client.codecs import openai
from channel_relay.client.turns import AgentSession, Session, wait_until

CALL = {
    "id": "fc_1",
    "type": "function_call",
    "call_id": "call_1",
    "name": "get_weather",
    "arguments": "",
    "status": "in_progress",
}
ARGS = ['{"city": "Zürich", ', '"unit": "°C"}']


def call_events(call: dict[str, Any], deltas: list[str]) -> list[dict[str, Any]]:
    """The Responses events of a streamed function call."""
    args = "".join(deltas)
    slot = {"item_id": call["id"], "output_index": 0}
    return [
        {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
        {"type": "response.output_item.added", "output_index": 0, "item": call},
        *({"type": "response.function_call_arguments.delta", **slot, "delta": d} for d in deltas),
        {"type": "response.function_call_arguments.done", **slot, "arguments": args},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**call, "arguments": args, "status": "completed"},
        },
        {"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}},
    ]


def user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"text": text, "type": "input_text"}]}


def answer_item(text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


async def test_an_openai_agent_loop_folds_to_responses_input_for_every_reader(
    make_client: MakeClient,
) -> None:
    channel = "ai:openai-loop"
    agent = AgentSession(await make_client("agent"), channel, codec=openai.CODEC)
    async with agent, Session(await make_client("alice"), channel, codec=openai.CODEC) as alice:
        invocations = agent.invocations()
        turn = await alice.send("Weather in Zürich?")
        run = await agent.accept(await anext(invocations))
        async with run:
            # What the agent would send the model: the conversation so far.
            assert openai.to_responses_input(run.conversation()) == [
                user_item("Weather in Zürich?")
            ]
            assert await run.pipe(call_events(CALL, ARGS)) == "complete"
            output = {"type": "function_call_output", "call_id": "call_1", "output": "21 °C"}
            assert await run.pipe([{"type": "function_call_output", "item": output}]) == "complete"
            assert await run.stream_text(["It is ", "21 °C ✓"], text_id="msg_1") == "complete"
        assert await turn.done(10) == "complete"
        invocations.close()

        call = {**CALL, "arguments": "".join(ARGS), "status": "completed"}
        expected = [user_item("Weather in Zürich?"), call, output, answer_item("It is 21 °C ✓")]
        await wait_until(alice, lambda: len(alice.view.messages()) == 4)
        assert openai.to_responses_input(alice.view.messages()) == expected
        assert [m["role"] for m in alice.view.messages()] == ["user", *["assistant"] * 3]
        assert turn.text == "It is 21 °C ✓"
        assert openai.resolved_call_ids(alice.view.messages()) == {"call_1"}
        assert openai.unanswered_calls(alice.view.messages()) == []

        # A reader joining afterwards folds the same messages from history alone.
        async with Session(await make_client("bob"), channel, codec=openai.CODEC) as bob:
            await wait_until(bob, lambda: len(bob.view.messages()) == 4)
            assert bob.view.messages() == alice.view.messages()


async def test_an_approval_from_the_client_leaves_the_call_for_the_agent_to_run(
    make_client: MakeClient,
) -> None:
    channel = "ai:openai-approval"
    agent = AgentSession(await make_client("agent"), channel, codec=openai.CODEC)
    async with agent, Session(await make_client("alice"), channel, codec=openai.CODEC) as alice:
        invocations = agent.invocations()
        await alice.send("Delete /tmp/x")
        run = await agent.accept(await anext(invocations))
        call = {**CALL, "name": "delete_file"}
        request = {
            "type": "tool-approval-request",
            "call_id": "call_1",
            "name": "delete_file",
            "arguments": '{"path": "/tmp/x"}',
        }
        await run.start()
        await run.pipe([*call_events(call, ['{"path": "/tmp/x"}']), request])
        await run.suspend()
        await wait_until(alice, lambda: bool(openai.unanswered_calls(alice.view.messages())))
        state = alice.view.messages()[-1]["toolCallStates"]["call_1"]
        assert state == {
            "approval": "pending",
            "name": "delete_file",
            "arguments": '{"path": "/tmp/x"}',
        }

        await alice.respond("call_1", approved=True, reason="fine")
        resumed = await agent.accept(await anext(invocations))
        assert resumed.run_id == run.run_id
        await wait_until(
            agent.session,
            lambda: bool(openai.approved_unexecuted_calls(agent.session.view.messages())),
        )
        messages = agent.session.view.messages()
        [approved] = openai.approved_unexecuted_calls(messages)
        assert approved["call_id"] == "call_1"
        assert openai.unanswered_calls(messages) == []
        assert messages[-1]["toolCallStates"]["call_1"]["approval"] == "approved"
        async with resumed:
            output = {"type": "function_call_output", "call_id": "call_1", "output": "deleted"}
            await resumed.pipe([{"type": "function_call_output", "item": output}])
        invocations.close()
        await wait_until(
            alice, lambda: openai.resolved_call_ids(alice.view.messages()) == {"call_1"}
        )
        assert openai.approved_unexecuted_calls(alice.view.messages()) == []


async def test_a_cancelled_openai_stream_keeps_what_was_said_in_progress(
    make_client: MakeClient,
) -> None:
    channel = "ai:openai-cancel"
    agent = AgentSession(await make_client("agent"), channel, codec=openai.CODEC)
    async with agent, Session(await make_client("alice"), channel, codec=openai.CODEC) as alice:
        invocations = agent.invocations()
        turn = await alice.send("Count")
        run = await agent.accept(await anext(invocations))
        first = asyncio.Event()

        async def tokens() -> Any:
            for n in range(1000):
                yield f"{n} "
                if n == 2:
                    first.set()
                await asyncio.sleep(0.01)

        async with run:
            streaming = asyncio.create_task(run.stream_text(tokens(), text_id="msg_1"))
            await first.wait()
            await wait_until(alice, lambda: "2 " in turn.text)
            await turn.cancel()
            assert await streaming == "cancelled"
        assert await turn.done(10) == "cancelled"
        invocations.close()
        [_, answer] = alice.view.messages()
        [item] = answer["items"]
        assert item["status"] == "in_progress"
        assert item["content"][0]["text"].startswith("0 1 2 ")


async def test_a_client_tool_result_continues_the_turn_that_asked_for_it(
    make_client: MakeClient,
) -> None:
    channel = "ai:openai-client-tool"
    agent = AgentSession(await make_client("agent"), channel, codec=openai.CODEC)
    async with agent, Session(await make_client("alice"), channel, codec=openai.CODEC) as alice:
        invocations = agent.invocations()
        await alice.send("Where am I?")
        run = await agent.accept(await anext(invocations))
        call = {**CALL, "name": "locate"}
        await run.start()
        await run.pipe(call_events(call, ["{}"]))
        await run.suspend()  # the call runs on the client
        await wait_until(alice, lambda: bool(openai.unanswered_calls(alice.view.messages())))

        turn = await alice.send_tool_result("call_1", {"city": "Zürich", "lat": 47.37})
        resumed = await agent.accept(await anext(invocations))
        assert resumed.run_id == run.run_id == turn.run_id
        await wait_until(
            agent.session, lambda: openai.resolved_call_ids(resumed.conversation()) == {"call_1"}
        )
        messages = resumed.conversation()
        assert openai.unanswered_calls(messages) == []
        assert messages[-1]["toolCallStates"] == {"call_1": {"result": "ok"}}
        assert openai.to_responses_input(messages)[-1] == {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": {"city": "Zürich", "lat": 47.37},
        }
        async with resumed:
            await resumed.stream_text(["In Zürich."], text_id="msg_1")
        assert await turn.done(10) == "complete"
        invocations.close()

        # A failed client tool reads as failed, its message as the call's output.
        await alice.send_tool_result("call_1", error="no GPS ✗")
        await wait_until(
            alice, lambda: "failed" in str(alice.view.messages()[1].get("toolCallStates"))
        )
        assert alice.view.messages()[1]["items"][-1]["output"] == "no GPS ✗"
