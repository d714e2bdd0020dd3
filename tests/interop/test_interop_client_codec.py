"""The Python codecs are byte-exact with @ably/ai-transport 0.8.0's: golden vectors made by the
SDK's own encoder and decoder (scripts/client_codec_vectors.mjs over
scripts/client_codec_corpus.json for the Vercel codec, scripts/client_codec_corpus_openai.json
for the OpenAI Responses codec, scripts/client_codec_corpus_poem.json for a custom codec declared
with `define_codec` in Python and `defineCodec` in JS) must come out of the Python encoder as the
same bytes, and the Python decoder must rebuild the same events and inputs from them. For the
OpenAI codec the Python reducer must fold them into the messages the SDK's reducer folds, and
`to_responses_input` and the call helpers must read the same out of a conversation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from interop_support import RunNode
from poem_codec import POEM

from channel_relay.client.codecs import jsjson, openai, openai_messages, vercel
from channel_relay.client.codecs.codec import MessageDecoder, WireCodec
from channel_relay.client.errors import AblyError
from channel_relay.client.message import Message, decode_data
from channel_relay.client.turns.encoder import Encoder, Write
from channel_relay.client.turns.wire import codec_headers, transport_headers

SCRIPTS = Path(__file__).parent / "scripts"
# The wire codec and the decoder factory of each codec the golden vectors cover.
CODECS: dict[str, tuple[WireCodec, Callable[[], MessageDecoder]]] = {
    "vercel": (vercel.CODEC, vercel.Decoder),
    "openai": (openai.CODEC, openai.Decoder),
    "poem": (POEM, POEM.decoder),
}
CORPORA = {
    "vercel": SCRIPTS / "client_codec_corpus.json",
    "openai": SCRIPTS / "client_codec_corpus_openai.json",
    "poem": SCRIPTS / "client_codec_corpus_poem.json",
}


def _recorded(writes: list[Write]) -> list[dict[str, Any]]:
    """The writes as the node recorder reports them: serials s0001.. per published message,
    appends naming the serial of the message that opened their stream."""
    out: list[dict[str, Any]] = []
    opened: dict[str, str] = {}
    count = 0
    for write in writes:
        texts = [jsjson.dumps(m.to_wire()) for m in write.messages]
        if write.op == "publish":
            serials = []
            for _ in write.messages:
                count += 1
                serials.append(f"s{count:04d}")
            if write.stream_id is not None:
                opened[write.stream_id] = serials[0]
            out.append({"op": "publish", "serials": serials, "messages": texts})
        else:
            out.append({"op": "append", "serial": opened[write.stream_id or ""], "messages": texts})
    return out


def _decoded(codec: str, recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deliver the recorded writes to a fresh Python decoder, as the node script does; each
    result names the codec-message-id of its message (`cmid`)."""
    decoder = CODECS[codec][1]()
    out = []
    version = 0
    cmids: dict[str, str] = {}
    for write in recorded:
        for i, text in enumerate(write["messages"]):
            raw = json.loads(text)
            message = Message(name=raw.get("name"), extras=raw.get("extras"))
            message.data, _ = decode_data(raw.get("data"), raw.get("encoding"))
            if write["op"] == "publish":
                serial = version_serial = write["serials"][i]
            else:
                version += 1
                serial = write["serial"]
                version_serial = f"{serial}:v{version:04d}"
            inputs, outputs = decoder.decode(
                message.name,
                message.data,
                transport_headers(message),
                codec_headers(message),
                serial=serial,
                version=version_serial,
                action="create" if write["op"] == "publish" else write["op"],
            )
            cmid = transport_headers(message).get("codec-message-id") or cmids.get(serial)
            if cmid is not None:
                cmids[serial] = cmid
            out.append({"inputs": inputs, "outputs": outputs, "cmid": cmid})
    return out


def _messages(decoded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold decoded messages as a session does (serial order, by codec-message-id), in the
    shape of the SDK's `getMessages`."""
    projection = openai_messages.Projection()
    for result in decoded:
        for event in result["inputs"]:
            projection.fold_input(event, result["cmid"])
        for event in result["outputs"]:
            projection.fold_output(event, result["cmid"])
    return [{"codecMessageId": c, "message": m} for c, m in projection.messages()]


def _joined_at(recorded: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The writes a reader joining at the k-th message sees, as the node script makes them: a
    stream opened before arrives as a message.update with its text so far."""
    flat: list[dict[str, Any]] = []
    for write in recorded:
        if write["op"] == "publish":
            for serial, text in zip(write["serials"], write["messages"], strict=True):
                flat.append({"op": "publish", "serials": [serial], "messages": [text]})
        else:
            flat.append(write)
    texts: dict[str, str] = {}
    names: dict[str, str | None] = {}
    seen: set[str] = set()
    out = []
    for i, write in enumerate(flat):
        raw = json.loads(write["messages"][0])
        serial = write["serials"][0] if write["op"] == "publish" else write["serial"]
        if write["op"] == "publish":
            names[serial], texts[serial] = raw.get("name"), ""
        texts[serial] += raw.get("data", "")
        if i < k:
            continue
        if write["op"] == "append" and serial not in seen:
            # The aggregated message: the create's name, the latest extras, all the text.
            update = {"name": names[serial], **raw, "data": texts[serial]}
            out.append({"op": "update", "serial": serial, "messages": [jsjson.dumps(update)]})
        else:
            out.append(write)
        seen.add(serial)
    return out


def _plain(decoded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"inputs": d["inputs"], "outputs": d["outputs"]} for d in decoded]


def _conversation(item: dict[str, Any]) -> dict[str, Any]:
    writes: list[Write] = []
    for step in item["messages"]:
        encoder = Encoder(headers=dict(step.get("headers", {})), codec=openai.CODEC)
        cmid = step["codecMessageId"]
        if "input" in step:
            headers = dict(step.get("headers", {}))
            writes.append(encoder.input(step["input"], headers=headers, codec_message_id=cmid))
            continue
        for event in step["outputs"]:
            writes += encoder.output(event, codec_message_id=cmid)
        if step.get("cancel"):
            writes += encoder.cancel_streams()
    recorded = _recorded(writes)
    messages = _messages(_decoded("openai", recorded))
    conversation = [m["message"] for m in messages]
    late = {}
    if "joinAt" in item:
        late["lateMessages"] = _messages(_decoded("openai", _joined_at(recorded, item["joinAt"])))
    return {
        **late,
        "name": item["name"],
        "messages": messages,
        "responsesInput": openai_messages.to_responses_input(conversation),
        "resolvedCallIds": sorted(openai_messages.resolved_call_ids(conversation)),
        "unansweredCalls": openai_messages.unanswered_calls(conversation),
        "approvedUnexecutedCalls": openai_messages.approved_unexecuted_calls(conversation),
    }


def _python_vectors(codec: str, corpus: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    result: dict[str, list[dict[str, Any]]] = {"outputs": [], "inputs": []}
    for item in corpus["outputs"]:
        encoder = Encoder(
            headers=dict(item["headers"]),
            message_id=item["messageId"],
            codec=CODECS[codec][0],
        )
        writes: list[Write] = []
        for chunk in item["chunks"]:
            writes += encoder.output(chunk, codec_message_id=item["codecMessageId"])
        if item.get("cancel"):
            writes += encoder.cancel_streams()
        result["outputs"].append(_case(codec, item["name"], _recorded(writes)))
    for item in corpus["inputs"]:
        write = Encoder(codec=CODECS[codec][0]).input(
            item["input"], headers=dict(item["headers"]), codec_message_id=item["codecMessageId"]
        )
        result["inputs"].append(_case(codec, item["name"], _recorded([write])))
    result["conversations"] = [_conversation(c) for c in corpus.get("conversations", [])]
    return result


def _case(codec: str, name: str, recorded: list[dict[str, Any]]) -> dict[str, Any]:
    decoded = _decoded(codec, recorded)
    case = {"name": name, "writes": recorded, "decoded": _plain(decoded)}
    if codec == "openai":
        case["messages"] = _messages(decoded)
    return case


def _python_rejects(codec: str, corpus: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in corpus.get("rejects", []):
        encoder = Encoder(codec=CODECS[codec][0])
        code = None
        try:
            if "input" in item:
                encoder.input(item["input"])
            else:
                encoder.output(item["output"])
        except AblyError as error:
            code = error.code
        out.append({"name": item["name"], "code": code, "writes": []})
    return out


@pytest.mark.parametrize("codec", sorted(CORPORA))
async def test_python_codec_writes_the_bytes_the_js_sdk_writes_and_decodes_alike(
    run_node: RunNode, codec: str
) -> None:
    corpus = json.loads(CORPORA[codec].read_text(encoding="utf-8"))
    golden = await run_node(
        "client_codec_vectors.mjs", args={"corpus": str(CORPORA[codec]), "codec": codec}
    )
    ours = _python_vectors(codec, corpus)
    for direction in ("outputs", "inputs"):
        assert len(ours[direction]) == len(golden[direction])
        for mine, theirs in zip(ours[direction], golden[direction], strict=True):
            assert mine["writes"] == theirs["writes"], mine["name"]
            assert mine["decoded"] == theirs["decoded"], mine["name"]
            assert mine.get("messages") == theirs.get("messages"), mine["name"]
    assert _python_rejects(codec, corpus) == golden["rejects"]
    assert ours["conversations"] == golden["conversations"]
