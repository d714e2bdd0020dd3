"""A custom codec declared with `define_codec` (the JS `defineCodec`): header fields, descriptor
tables JS would refuse, the encoder and the decoder's mid-run-join repair without I/O, then a
turn through a real relay with several messages per conversation node and the codec's adapter
tag announced on attach. (Its wire against the JS twin: tests/interop.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from importlib import metadata
from typing import Any

import pytest
from client_support import MakeClient
from poem_codec import POEM

from channel_relay.client.codecs import inputs
from channel_relay.client.codecs.codec import WireOp
from channel_relay.client.codecs.define import (
    Drop,
    InputBatch,
    InputEvent,
    OutputEvent,
    OutputStream,
    Part,
    Reducer,
    define_codec,
)
from channel_relay.client.codecs.fields import (
    bool_field,
    enum_field,
    json_data,
    json_field,
    read_fields,
    str_field,
    write_fields,
)
from channel_relay.client.errors import AblyError
from channel_relay.client.turns import AgentSession, Encoder, Session, wait_until

NOTHING = Reducer(init=dict, fold=lambda state, event, cmid: state, get_messages=lambda s: [])


def test_header_fields_write_what_js_writes_and_read_it_back() -> None:
    fields = [
        str_field("name"),
        str_field("lang", "en"),
        bool_field("pinned"),
        json_field("meta"),
        enum_field("mood", ("calm", "grim"), "calm"),
    ]
    event = {"name": "Zoë", "pinned": False, "meta": {"b": 1.0, "2": [0.5]}, "mood": "grim"}
    headers = write_fields(fields, "note", event)
    assert headers == {
        "kind": "note",
        "name": "Zoë",
        "pinned": "false",
        "meta": '{"2":[0.5],"b":1}',
        "mood": "grim",
    }
    assert read_fields(fields, headers) == {**event, "lang": "en", "meta": {"2": [0.5], "b": 1}}
    # Wrong types are not written; unknown enum values, odd booleans and bad JSON read as JS reads.
    assert write_fields(fields, "k", {"name": 3, "pinned": "yes", "meta": None}) == {"kind": "k"}
    odd = {"pinned": "TRUE", "meta": "{oops", "mood": "ecstatic"}
    assert read_fields(fields, odd) == {"lang": "en", "pinned": False, "mood": "calm"}


@pytest.mark.parametrize(
    ("outputs", "inputs_", "message"),
    [
        ([OutputEvent("a"), OutputEvent("a")], [], "'a' is declared by both"),
        (
            [
                OutputStream("s", "a", "b", "t", "c", lambda e: ""),
                OutputEvent("s"),
            ],
            [],
            "'s' is declared by both",
        ),
        (
            [
                OutputStream("s1", "a", "b", "t", "c", lambda e: ""),
                OutputStream("s2", "b", "d", "t", "e", lambda e: ""),
            ],
            [],
            "stream start 'b'",
        ),
        ([OutputEvent("a"), Drop("a")], [], "'a' is declared by both"),
        ([OutputEvent("a", fields=[str_field("kind")])], [], "reserved header key 'kind'"),
        ([], [InputEvent("x"), InputEvent("x")], "'x' is declared by both"),
        (
            [],
            [
                InputBatch(
                    "m",
                    explode=lambda e: [],
                    parts=[Part("text"), Part("text")],
                    assemble=lambda p, c, t: {},
                )
            ],
            "'text' is declared by both",
        ),
        (
            [],
            [
                InputBatch(
                    "m",
                    explode=lambda e: [],
                    parts=[Part("text", fields=[str_field("partType")])],
                    assemble=lambda p, c, t: {},
                )
            ],
            "reserved header key 'partType'",
        ),
    ],
)
def test_tables_js_refuses_are_refused(
    outputs: list[Any], inputs_: list[Any], message: str
) -> None:
    with pytest.raises(AblyError) as raised:
        define_codec(outputs=outputs, inputs=inputs_, reducer=NOTHING)
    assert raised.value.code == 40003
    assert message in str(raised.value)


def test_a_shared_stream_start_goes_to_the_group_that_matches_or_out_discrete() -> None:
    def group(kind: str) -> OutputStream:
        return OutputStream(
            kind,
            start="part",
            delta=f"{kind}-delta",
            delta_field="delta",
            end=f"{kind}-end",
            stream_id=lambda e: e["id"],
            fields=[str_field("id")],
            start_match=lambda e: e.get("lang") == kind,
        )

    codec = define_codec(
        outputs=[group("text"), group("code"), OutputEvent("part", fields=[str_field("lang")])],
        inputs=[],
        reducer=NOTHING,
    )
    code = codec.encode_output({"type": "part", "lang": "code", "id": "c"}, set(), None)
    assert (code.op, code.codec, code.stream_id) == ("create", {"kind": "code", "id": "c"}, "c")
    other = codec.encode_output({"type": "part", "lang": "image", "id": "i"}, set(), None)
    assert (other.op, other.codec) == ("discrete", {"kind": "part", "lang": "image"})


def test_the_encoder_streams_groups_drops_what_it_must_and_refuses_the_unknown() -> None:
    encoder = Encoder(headers={"role": "assistant", "run-id": "r"}, codec=POEM)
    writes = [
        w
        for event in (
            {"type": "line-start", "id": "l1", "voice": "narrator"},
            {"type": "line-delta", "id": "l1", "text": "Hé"},
            {"type": "debug", "detail": "x"},
            {"type": "line-end", "id": "l1"},
            {"type": "note-margin", "body": "b", "pinned": True},
        )
        for w in encoder.output(event, codec_message_id="c1")
    ]
    assert [(w.op, w.messages[0].data) for w in writes] == [
        ("publish", ""),
        ("append", "Hé"),
        ("append", ""),
        ("publish", {"body": "b"}),
    ]
    assert writes[-1].messages[0].extras["ai"]["codec"] == {"kind": "note-margin", "pinned": "true"}
    with pytest.raises(AblyError) as raised:
        encoder.output({"type": "verse"})
    assert raised.value.code == 40003


def test_a_decoder_joining_a_run_mid_way_gets_the_begin_it_missed_once_per_run() -> None:
    decoder = POEM.decoder()

    def line(serial: str, run: str) -> list[dict[str, Any]]:
        transport = {"run-id": run, "stream": "true", "status": "streaming", "stream-id": serial}
        return decoder.decode(
            "ai-output", "", transport, {"kind": "line", "id": serial}, serial=serial
        )[1]

    def discrete(kind: str, run: str, serial: str) -> list[dict[str, Any]]:
        transport = {"run-id": run, "stream": "false"}
        return decoder.decode("ai-output", "", transport, {"kind": kind}, serial=serial)[1]

    assert line("s1", "r1") == [{"type": "begin"}, {"type": "line-start", "id": "s1"}]
    assert line("s2", "r1") == [{"type": "line-start", "id": "s2"}]
    assert discrete("begin", "r2", "s3") == [{"type": "begin"}]
    assert line("s4", "r2") == [{"type": "line-start", "id": "s4"}]
    assert discrete("end-poem", "r1", "s5") == [{"type": "end-poem", "reason": "done"}]
    assert line("s6", "r1") == [{"type": "begin"}, {"type": "line-start", "id": "s6"}]
    # Each decoder keeps its own lifecycle state.
    assert POEM.decoder().decode(
        "ai-output",
        "",
        {"run-id": "r2", "stream": "true", "stream-id": "s7"},
        {"kind": "line", "id": "s7"},
        serial="s7",
    )[1] == [{"type": "begin"}, {"type": "line-start", "id": "s7"}]


def test_the_input_helpers_build_the_well_known_inputs() -> None:
    message = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    assert inputs.create_user_message(message) == {"kind": "user-message", "message": message}
    assert inputs.create_regenerate("a1", "u1") == {
        "kind": "regenerate",
        "target": "a1",
        "parent": "u1",
    }
    payload = {"toolCallId": "t1", "output": 1}
    for create, kind in (
        (inputs.create_tool_result, "tool-result"),
        (inputs.create_tool_result_error, "tool-result-error"),
        (inputs.create_tool_approval_response, "tool-approval-response"),
    ):
        assert create("a1", payload) == {"kind": kind, "codecMessageId": "a1", "payload": payload}
    # A codec encodes them: a user message is one ai-input per part, in one atomic publish.
    write = Encoder(codec=POEM).input(inputs.create_user_message(message), codec_message_id="u1")
    assert [m.extras["ai"]["codec"] for m in write.messages] == [
        {"kind": "user-message", "messageId": "u1", "partType": "text"}
    ]


POEM_ANSWER = [
    {"type": "begin", "messageId": "poem-1"},
    {"type": "mood", "value": "cheerful", "score": 0.5},
    {"type": "line-start", "id": "l1", "voice": "narrator"},
    {"type": "line-delta", "id": "l1", "text": "Roses "},
    {"type": "line-delta", "id": "l1", "text": "are red, café ✓"},
    {"type": "line-end", "id": "l1"},
    {"type": "aside", "text": "(a bow)"},
    {"type": "end-poem", "reason": "done"},
]


async def test_a_defined_codec_turn_shows_several_messages_per_node_live_and_from_history(
    make_client: MakeClient,
) -> None:
    channel = "ai:poem"
    agent = AgentSession(await make_client("agent"), channel, codec=POEM)
    async with agent, Session(await make_client("alice"), channel, codec=POEM) as alice:
        # The codec's adapter tag rides the ATTACH, after this SDK's own agent.
        version = metadata.version("channel-relay")
        expected_agent = f"ai-transport-py/{version} poem-codec/{version}"
        assert alice.channel.params == {"agent": expected_agent}
        invocations = agent.invocations()
        turn = await alice.send("A poem, please")
        run = await agent.accept(await anext(invocations))
        async with run:
            assert await run.pipe(POEM_ANSWER) == "complete"
        assert await turn.done() == "complete"
        expected = [
            {
                "id": "poem-1",
                "role": "assistant",
                "finished": "done",
                "parts": [
                    {"type": "mood", "value": "cheerful", "score": 0.5},
                    {
                        "type": "line",
                        "text": "Roses are red, café ✓",
                        "state": "done",
                        "voice": "narrator",
                    },
                ],
            },
            {
                "id": f"{run.message_id}:aside",
                "role": "assistant",
                "parts": [{"type": "aside", "text": "(a bow)"}],
            },
        ]
        await wait_until(alice, lambda: len(alice.view.messages()) == 3)
        assert alice.view.messages()[1:] == expected
        # One node, two messages: the node's message is its last one.
        node = alice.view.last()
        assert node is not None and node.messages == expected
        assert node.message == expected[1]
        invocations.close()

        async with Session(await make_client("bob"), channel, codec=POEM) as bob:
            await wait_until(bob, lambda: len(bob.view.messages()) == 3)
            assert bob.view.messages() == alice.view.messages()
            assert bob.view.messages()[0]["parts"] == [{"type": "text", "text": "A poem, please"}]


def test_tool_inputs_fold_through_the_reducer_and_a_close_hatch_can_go_out_discrete() -> None:
    def close_or_discrete(
        event: dict[str, Any],
        headers: Callable[[dict[str, Any]], dict[str, str]],
        open_streams: set[str],
        message_id: str | None,
    ) -> WireOp:
        # As the Vercel tool input: closed if it streamed, else sent whole.
        if event["id"] in open_streams:
            return WireOp("close", headers(event), "", event["id"])
        return WireOp("discrete", headers(event), event.get("args", ""), event["id"])

    def apply(message: dict[str, Any], tool_input: dict[str, Any]) -> None:
        payload = tool_input["payload"]
        for part in message["parts"]:
            if part.get("toolCallId") == payload["toolCallId"]:
                part["output"] = payload["output"]

    codec = define_codec(
        outputs=[
            OutputStream(
                "call",
                start="call-start",
                delta="call-delta",
                delta_field="args",
                end="call-end",
                stream_id=lambda e: e["id"],
                fields=[str_field("id"), str_field("messageRef")],
                end_encode=close_or_discrete,
                end_decode=lambda sid, text, codec, closing: [
                    {"type": "call-end", "id": sid, "args": text}
                ],
            )
        ],
        inputs=[
            InputEvent("tool-result", fields=[str_field("toolCallId")], data=json_data("output"))
        ],
        reducer=Reducer(
            init=dict, fold=lambda s, e, c: s, get_messages=lambda s: [], apply_input=apply
        ),
    )
    closed = codec.encode_output({"type": "call-end", "id": "c1"}, {"c1"}, "m1")
    assert (closed.op, closed.codec) == ("close", {"kind": "call", "id": "c1"})
    whole = codec.encode_output({"type": "call-end", "id": "c2", "args": "{}"}, set(), "m1")
    assert (whole.op, whole.data) == ("discrete", "{}")
    assert codec.stream_end("call", {}, {}, "c1", '{"q": 1}') == [
        {"type": "call-end", "id": "c1", "args": '{"q": 1}'}
    ]

    _, [(data, headers, _)] = codec.encode_input(
        inputs.create_tool_result("m1", {"toolCallId": "c1", "output": {"ok": True}})
    )
    assert headers == {"kind": "tool-result", "toolCallId": "c1"}
    message = {"id": "m1", "role": "assistant", "parts": [{"type": "call", "toolCallId": "c1"}]}
    codec.apply_input(message, headers, "tool-result", data)
    assert message["parts"] == [{"type": "call", "toolCallId": "c1", "output": {"ok": True}}]
    assert codec.holds_tool_call(message, "c1") and not codec.holds_tool_call(message, "c2")
    with pytest.raises(AblyError):
        codec.text_events(_no_tokens(), "t")


async def _no_tokens() -> AsyncIterator[str]:
    for token in ():
        yield token
