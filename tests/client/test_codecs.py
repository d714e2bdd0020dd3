"""The wire codecs in isolation: JSON text as JS writes it, the Vercel UIMessage and OpenAI
Responses codecs' encoders and decoders (golden vectors from the JS SDK:
tests/interop/test_interop_client_codec.py)."""

from __future__ import annotations

import json

import pytest

from channel_relay.client.codecs import jsjson, openai
from channel_relay.client.codecs.vercel import (
    Decoder,
    approved_pending_tool_calls,
    pending_tool_calls,
)
from channel_relay.client.message import Message
from channel_relay.client.turns.encoder import Encoder


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.5, "0.5"),
        (100.0, "100"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (0.00001, "0.00001"),
        (-2.5e-10, "-2.5e-10"),
        (1.5e300, "1.5e+300"),
        (0.1 + 0.2, "0.30000000000000004"),
        (5e-324, "5e-324"),
        (2**60, "1152921504606847000"),
        (123456789012345678901, "123456789012345680000"),
        (float("nan"), "null"),
        (float("inf"), "null"),
        (12, "12"),
    ],
)
def test_numbers_print_as_javascript_prints_them(value: float, text: str) -> None:
    assert jsjson.dumps(value) == text


def test_strings_keep_non_ascii_and_escape_what_json_stringify_escapes() -> None:
    text = 'Café ✓ 😀 " \\ \n \t \x00 \x1f \x7f \u2028'
    assert jsjson.dumps(text) == '"Café ✓ 😀 \\" \\\\ \\n \\t \\u0000 \\u001f \x7f \u2028"'
    assert jsjson.dumps("\ud800x") == '"\\ud800x"'  # a lone surrogate is escaped
    assert json.loads(jsjson.dumps(text)) == text


def test_objects_put_array_index_keys_first_and_keep_the_rest_in_order() -> None:
    value = {"b": 1, "10": 2, "2": 3, "a": {"1": 1.0, "0": None}, "01": [1.0, True, False]}
    assert jsjson.dumps(value) == '{"2":3,"10":2,"b":1,"a":{"0":null,"1":1},"01":[1,true,false]}'


def test_message_data_objects_go_out_as_json_stringify_text() -> None:
    wire = Message(name="n", data={"score": 1.0, "text": "Café ✓"}).to_wire()
    assert wire == {"name": "n", "data": '{"score":1,"text":"Café ✓"}', "encoding": "json"}


def test_a_streamed_text_part_is_one_message_with_appends_repeating_its_headers() -> None:
    encoder = Encoder(headers={"role": "assistant", "run-id": "r1"}, message_id="m1")
    writes = [
        w
        for chunk in (
            {"type": "text-start", "id": "t"},
            {"type": "text-delta", "id": "t", "delta": "Hé"},
            {"type": "text-end", "id": "t"},
        )
        for w in encoder.output(chunk, codec_message_id="c1")
    ]
    assert [(w.op, w.stream_id) for w in writes] == [
        ("publish", "t"),
        ("append", "t"),
        ("append", "t"),
    ]
    create, delta, close = (w.messages[0] for w in writes)
    transport = {
        "role": "assistant",
        "run-id": "r1",
        "codec-message-id": "c1",
        "stream": "true",
        "status": "streaming",
        "stream-id": "t",
    }
    assert create.extras == {"ai": {"transport": transport, "codec": {"kind": "text", "id": "t"}}}
    assert (delta.data, delta.extras) == ("Hé", create.extras)
    assert close.data == ""
    assert close.extras["ai"]["transport"] == {**transport, "status": "complete"}


def test_cancel_closes_every_open_stream_as_cancelled_once() -> None:
    encoder = Encoder()
    encoder.output({"type": "text-start", "id": "a"})
    encoder.output({"type": "text-start", "id": "b"})
    encoder.output({"type": "text-end", "id": "a"})
    cancels = encoder.cancel_streams()
    assert [w.stream_id for w in cancels] == ["b"]
    assert cancels[0].messages[0].extras["ai"]["transport"]["status"] == "cancelled"
    assert encoder.cancel_streams() == []


def test_a_user_message_is_one_atomic_publish_of_its_encodable_parts() -> None:
    message = {
        "id": "u1",
        "role": "user",
        "parts": [
            {"type": "step-start"},
            {"type": "text", "text": "Hi"},
            {"type": "data-ctx", "id": "d", "data": {"n": 1.0}},
        ],
    }
    write = Encoder().input({"kind": "user-message", "message": message}, codec_message_id="c")
    assert write.op == "publish"
    assert [m.to_wire()["data"] for m in write.messages] == ["Hi", '{"n":1}']
    first = write.messages[0].extras["ai"]
    assert first["transport"] == {
        "role": "user",
        "codec-message-id": "c",
        "stream": "false",
        "discrete": "true",
    }
    assert first["codec"] == {"kind": "user-message", "messageId": "u1", "partType": "text"}


def test_a_decoder_meeting_a_run_mid_stream_supplies_the_start_it_missed() -> None:
    decoder = Decoder()
    transport = {"run-id": "r", "stream": "true", "status": "streaming", "stream-id": "t"}
    codec = {"kind": "text", "id": "t"}
    # First sight of a stream already under way: an update with the text so far.
    _, chunks = decoder.decode("ai-output", "Hello", transport, codec, serial="s1", action="update")
    assert chunks == [
        {"type": "start"},
        {"type": "start-step"},
        {"type": "text-start", "id": "t"},
        {"type": "text-delta", "id": "t", "delta": "Hello"},
    ]
    # A replayed append at or below the version seen is dropped; a newer one goes on.
    assert decoder.decode(
        None, "x", transport, codec, serial="s1", version="s1", action="append"
    ) == ([], [])
    _, more = decoder.decode(
        None, "!", transport, codec, serial="s1", version="s2", action="append"
    )
    assert more == [{"type": "text-delta", "id": "t", "delta": "!"}]


def test_tool_results_decode_with_their_validated_fork_seed() -> None:
    seed = {
        "messages": [
            {"codecMessageId": "a1", "message": {"id": "m", "parts": [{"type": "text"}, {}, 3]}},
            {"codecMessageId": 7, "message": {"parts": []}},
        ]
    }
    inputs, _ = Decoder().decode(
        "ai-input",
        {"output": None, "forkSeed": seed},
        {"codec-message-id": "c"},
        {"kind": "tool-result", "toolCallId": "call"},
    )
    assert inputs == [
        {
            "kind": "tool-result",
            "codecMessageId": "c",
            "payload": {
                "toolCallId": "call",
                "output": None,
                "forkSeed": {
                    "messages": [
                        {
                            "codecMessageId": "a1",
                            "message": {"id": "m", "parts": [{"type": "text"}]},
                        }
                    ]
                },
            },
        }
    ]


def test_pending_and_approved_tool_calls_are_read_off_the_last_assistant_message() -> None:
    older = {
        "role": "assistant",
        "parts": [{"type": "tool-a", "toolCallId": "0", "state": "input-available", "input": {}}],
    }
    last = {
        "role": "assistant",
        "parts": [
            {"type": "text", "text": "calling"},
            {
                "type": "tool-search",
                "toolCallId": "1",
                "state": "input-available",
                "input": {"q": "x"},
            },
            {
                "type": "dynamic-tool",
                "toolName": "calc",
                "toolCallId": "2",
                "state": "input-available",
                "input": 1,
            },
            {
                "type": "tool-pay",
                "toolCallId": "3",
                "state": "approval-responded",
                "input": {},
                "approval": {"id": "a", "approved": True},
            },
            {
                "type": "tool-pay",
                "toolCallId": "4",
                "state": "approval-responded",
                "input": {},
                "approval": {"id": "b", "approved": False},
            },
            {
                "type": "tool-done",
                "toolCallId": "5",
                "state": "output-available",
                "input": {},
                "output": 1,
            },
        ],
    }
    messages = [older, {"role": "user", "parts": []}, last]
    assert pending_tool_calls(messages) == [
        {"toolCallId": "1", "toolName": "search", "input": {"q": "x"}},
        {"toolCallId": "2", "toolName": "calc", "input": 1},
    ]
    assert approved_pending_tool_calls(messages) == [
        {"toolCallId": "3", "toolName": "pay", "input": {}}
    ]
    assert pending_tool_calls([{"role": "user", "parts": []}]) == []


def test_an_openai_reader_joining_mid_stream_gets_the_item_its_text_belongs_to() -> None:
    # A first sight by update (history or a late join) of a message's text stream: the item
    # the JS decode lifecycle synthesises comes first, so a reducer has somewhere to put it.
    codec = {
        "kind": "output_text",
        "item_id": "msg_1",
        "output_index": "2",
        "content_index": "0",
        "part": '{"type":"output_text","text":"","annotations":[]}',
    }
    transport = {"stream": "true", "status": "streaming", "stream-id": "msg_1:0"}
    _, outputs = openai.Decoder().decode(
        "ai-output", "Héllo", transport, codec, serial="s1", version="s1:v2", action="update"
    )
    assert [event["type"] for event in outputs] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert outputs[0]["item"] == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    assert outputs[0]["output_index"] == 2
    assert outputs[2] == {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "content_index": 0,
        "delta": "Héllo",
    }


def test_an_openai_item_envelope_without_its_item_decodes_without_breaking_the_reader() -> None:
    decoder = openai.Decoder()
    for data in ("not an envelope", None, {"other": 1}):
        _, outputs = decoder.decode(
            "ai-output", data, {}, {"kind": "response.output_item.done"}, serial="s1"
        )
        assert outputs == [{"type": "response.output_item.done"}]
