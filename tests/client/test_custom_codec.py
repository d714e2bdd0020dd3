"""A custom codec (the Python face of the JS `defineCodec`): a content model the library does not
ship goes through the same turn layer (streams, runs, the tree, history) as the Vercel codec."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from client_support import MakeClient

from channel_relay.client.codecs.codec import Codec, InputPart, WireOp
from channel_relay.client.turns import AgentSession, Session, wait_until

Event = dict[str, Any]


class LinesCodec:
    """Answers made of streamed lines and discrete mood notes; questions are plain text.

    Outputs: {type: line-start, id}, {type: line-delta, id, delta}, {type: line-end, id},
    {type: mood, value}. Messages: {id, role, parts: [{type: line, text} | {type: mood, value}]}.
    """

    stream_kinds = frozenset({"line"})
    adapter_tag = None
    tool_call_key = "toolCallId"

    def encode_output(self, event: Event, open_streams: set[str], message_id: str | None) -> WireOp:
        kind = event["type"]
        if kind == "line-start":
            return WireOp("create", {"kind": "line", "id": event["id"]}, "", event["id"])
        if kind == "line-delta":
            return WireOp("append", {}, event["delta"], event["id"])
        if kind == "line-end":
            return WireOp("close", {"kind": "line", "id": event["id"]}, "", event["id"])
        if kind == "mood":
            return WireOp("discrete", {"kind": "mood", "value": event["value"]})
        return WireOp("none")

    def encode_input(self, event: Event) -> tuple[bool, list[InputPart]]:
        message = event["message"]
        text = "".join(p["text"] for p in message["parts"] if p["type"] == "text")
        return True, [(text, {"kind": "user-message", "messageId": message["id"]}, {})]

    def decode_discrete(self, kind: str, codec: dict[str, str], data: Any) -> list[Event]:
        return [{"type": "mood", "value": codec["value"]}] if kind == "mood" else []

    def stream_start(self, kind: str, codec: dict[str, str]) -> list[Event]:
        return [{"type": "line-start", "id": codec["id"]}]

    def stream_delta(
        self, kind: str, codec: dict[str, str], stream_id: str, delta: str
    ) -> list[Event]:
        return [{"type": "line-delta", "id": stream_id, "delta": delta}]

    def stream_end(
        self, kind: str, codec: dict[str, str], closing: dict[str, str], stream_id: str, text: str
    ) -> list[Event]:
        return [{"type": "line-end", "id": stream_id}]

    def fold(self, events: list[Event], message_id: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        lines: dict[str, dict[str, Any]] = {}
        for event in events:
            if event["type"] == "line-start":
                lines[event["id"]] = {"type": "line", "text": ""}
                parts.append(lines[event["id"]])
            elif event["type"] == "line-delta":
                lines[event["id"]]["text"] += event["delta"]
            elif event["type"] == "mood":
                parts.append({"type": "mood", "value": event["value"]})
        return [{"id": message_id, "role": "assistant", "parts": parts}]

    def decode_input_part(self, data: Any, codec: dict[str, str]) -> dict[str, Any]:
        return {"type": "text", "text": data}

    def apply_input(
        self, message: dict[str, Any], codec: dict[str, str], kind: str, data: Any
    ) -> None:
        return None

    def tool_outputs(self, events: list[Event]) -> list[tuple[str, str, Any]]:
        return []

    def holds_tool_call(self, message: dict[str, Any], tool_call_id: str) -> bool:
        return False

    def fork_seed(self, data: Any) -> dict[str, Any] | None:
        return None

    def new_message(self, message_id: str, role: str, parts: list[Any]) -> dict[str, Any]:
        return {"id": message_id, "role": role, "parts": parts}

    def text_message(self, text: str) -> dict[str, Any]:
        return {"id": "q", "role": "user", "parts": [{"type": "text", "text": text}]}

    def text(self, message: dict[str, Any]) -> str:
        return "\n".join(p["text"] for p in message["parts"] if p["type"] in ("text", "line"))

    async def text_events(self, tokens: AsyncIterable[str], text_id: str) -> AsyncIterator[Event]:
        yield {"type": "line-start", "id": text_id}
        async for token in tokens:
            yield {"type": "line-delta", "id": text_id, "delta": token}
        yield {"type": "line-end", "id": text_id}


LINES: Codec = LinesCodec()
ANSWER = [
    {"type": "mood", "value": "cheerful"},
    {"type": "line-start", "id": "l1"},
    {"type": "line-delta", "id": "l1", "delta": "Roses "},
    {"type": "line-delta", "id": "l1", "delta": "are red,"},
    {"type": "line-end", "id": "l1"},
    {"type": "line-start", "id": "l2"},
    {"type": "line-delta", "id": "l2", "delta": "café ✓"},
    {"type": "line-end", "id": "l2"},
]
MESSAGE_PARTS = [
    {"type": "mood", "value": "cheerful"},
    {"type": "line", "text": "Roses are red,"},
    {"type": "line", "text": "café ✓"},
]


async def test_a_custom_codec_streams_folds_and_reads_back_from_history(
    make_client: MakeClient,
) -> None:
    channel = "ai:lines"
    agent = AgentSession(await make_client("agent"), channel, codec=LINES)
    async with agent, Session(await make_client("alice"), channel, codec=LINES) as alice:
        invocations = agent.invocations()
        turn = await alice.send("A poem, please")
        run = await agent.accept(await anext(invocations))
        async with run:
            assert await run.pipe(ANSWER) == "complete"
        # The asker's turn yields the codec's own events, decoded off the wire.
        assert [event async for event in turn] == ANSWER
        assert await turn.done() == "complete"
        assert turn.message == {"id": run.message_id, "role": "assistant", "parts": MESSAGE_PARTS}
        invocations.close()

        # A reader joining afterwards rebuilds the same messages from history alone.
        async with Session(await make_client("bob"), channel, codec=LINES) as bob:
            await wait_until(bob, lambda: len(bob.view.messages()) == 2)
            assert bob.view.messages() == alice.view.messages()
            assert bob.view.messages()[0]["parts"] == [{"type": "text", "text": "A poem, please"}]
            assert bob.view.messages()[1]["parts"] == MESSAGE_PARTS

        # On the wire: the codec's headers on a streamed message per line, a discrete mood.
        history = await alice.channel.history()
        outputs = [m for m in reversed(history.items) if m.name == "ai-output"]
        kinds = [(m.extras["ai"]["codec"], m.extras["ai"]["transport"]["stream"]) for m in outputs]
        assert kinds == [
            ({"kind": "mood", "value": "cheerful"}, "false"),
            ({"kind": "line", "id": "l1"}, "true"),
            ({"kind": "line", "id": "l2"}, "true"),
        ]
        assert [m.data for m in outputs] == ["", "Roses are red,", "café ✓"]
