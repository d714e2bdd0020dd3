"""The OpenAI Responses codec's wire: @ably/ai-transport 0.8.0's `ResponsesCodec`
(`@ably/ai-transport/openai`) for an agent's Responses stream events and a client's inputs,
byte-exact with it.

Covered, and proven by golden vectors made by the JS codec itself
(tests/interop/test_interop_client_codec.py):
- streamed: assistant text (`response.content_part.added` of an `output_text` part, then
  `response.output_text.delta` / `.done`), refusals (`refusal` part, `response.refusal.*`),
  reasoning text (`reasoning_text` part, `response.reasoning_text.*`), reasoning summaries
  (`response.reasoning_summary_part.added`, `response.reasoning_summary_text.*`) and function
  call arguments (`response.output_item.added` of a `function_call`, then
  `response.function_call_arguments.delta` / `.done`);
- discrete: `response.output_item.added` (message, reasoning), `response.output_item.done` (the
  lean wire item: id, status, a reasoning item's `encrypted_content`, a message's logprobs), the
  codec's own `function_call_output` and `tool-approval-request`;
- dropped (never on the wire): `response.created` / `.in_progress` / `.queued` / `.completed` /
  `.incomplete` / `.failed`, `error`, `response.content_part.done`,
  `response.reasoning_summary_part.done`; any other event type is refused (40003), as the JS
  encoder throws on it;
- decoding: a stream's first sighting is preceded by the `response.output_item.added` of its
  message or reasoning item, as the JS decode lifecycle synthesises for a mid-stream join;
- inputs: a user message (one message item of `input_text` parts, one wire part each, at least
  one), `tool-result`, `tool-result-error`, `tool-approval-response`, `regenerate`; other item
  or part types (images, files) are refused (40003) as in JS.

Messages: `CODEC` is a full `Codec`, so `Session(..., codec=openai.CODEC)` and
`AgentSession(..., codec=openai.CODEC)` speak it. A message is {role, items, toolCallStates?},
folded by `openai_messages.Projection` (the JS reducer); `to_responses_input`,
`resolved_call_ids`, `unanswered_calls` and `approved_unexecuted_calls` read a conversation of
them (re-exported here).

Not covered, as in the JS codec: a client tool result as a fork (`forkSeed` is Vercel's), so a
client answers its tool with `Session.send_tool_result` (a continuation of the turn that asked),
not `Session.add_tool_result`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from channel_relay.client.codecs import jsjson
from channel_relay.client.codecs.codec import InputPart, MessageDecoder, WireOp
from channel_relay.client.codecs.openai_messages import (
    OpenAIMessage,
    Projection,
    apply_tool_input,
    approved_unexecuted_calls,
    resolved_call_ids,
    to_responses_input,
    unanswered_calls,
)
from channel_relay.client.errors import AblyError

__all__ = [
    "CODEC",
    "STREAM_KINDS",
    "Decoder",
    "ResponsesCodec",
    "ResponsesWireCodec",
    "approved_unexecuted_calls",
    "decode_input",
    "encode_input",
    "resolved_call_ids",
    "to_responses_input",
    "unanswered_calls",
]

Event = dict[str, Any]

# Header fields the JS codec writes as JSON text; the others are plain strings.
_JSON_FIELDS = frozenset(("output_index", "content_index", "summary_index", "part", "item"))
_MODELLED_ITEMS = ("message", "reasoning", "function_call")


@dataclass(frozen=True, slots=True)
class _Group:
    """A streamed output group (a JS `stream` descriptor)."""

    start: str
    delta: str
    end: str
    fields: tuple[str, ...]
    # The fields a decoded delta carries besides the delta text.
    delta_fields: tuple[str, ...]
    # The key of the accumulated text on the decoded end event.
    text_key: str


_SLOT_FIELDS = ("item_id", "output_index", "content_index", "part")
STREAM_KINDS: dict[str, _Group] = {
    "output_text": _Group(
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        _SLOT_FIELDS,
        ("item_id", "content_index"),
        "text",
    ),
    "refusal": _Group(
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.done",
        _SLOT_FIELDS,
        ("item_id", "content_index"),
        "refusal",
    ),
    "reasoning_text": _Group(
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        _SLOT_FIELDS,
        ("item_id", "content_index"),
        "text",
    ),
    "reasoning_summary_text": _Group(
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        ("item_id", "output_index", "summary_index", "part"),
        ("item_id", "summary_index"),
        "text",
    ),
    "function_call_arguments": _Group(
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        ("item", "output_index"),
        (),
        "arguments",
    ),
}
_CONTENT_PARTS = ("output_text", "refusal", "reasoning_text")
_PHASES = {
    phase: (kind, name)
    for kind, group in STREAM_KINDS.items()
    for phase, name in ((group.delta, "delta"), (group.end, "end"))
}
_DROPPED = frozenset(
    (
        "response.completed",
        "response.incomplete",
        "response.failed",
        "response.created",
        "response.in_progress",
        "response.queued",
        "error",
        "response.content_part.done",
        "response.reasoning_summary_part.done",
    )
)
# The part type a stream's `part` header names -> its item's type, for the synthesised opener.
_CONTAINERS = {
    "output_text": "message",
    "refusal": "message",
    "reasoning_text": "reasoning",
    "summary_text": "reasoning",
}


def _unsupported(what: str, value: Any) -> AblyError:
    return AblyError(40003, 400, f"unable to publish; unsupported {what} '{value}'")


def _headers(kind: str, source: Event, fields: tuple[str, ...]) -> dict[str, str]:
    """JS `writeFields`: `kind`, then each present field (JSON ones as JSON text)."""
    headers = {"kind": kind}
    for key in fields:
        value = source.get(key)
        if key in _JSON_FIELDS:
            if value is not None:
                headers[key] = jsjson.dumps(value)
        elif isinstance(value, str):
            headers[key] = value
    return headers


def _read(headers: dict[str, str], key: str) -> Any:
    raw = headers.get(key)
    if raw is None or key not in _JSON_FIELDS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _fields(headers: dict[str, str], fields: tuple[str, ...]) -> Event:
    """JS `readFields`: the fields present in the headers."""
    out: Event = {}
    for key in fields:
        value = _read(headers, key)
        if value is not None:
            out[key] = value
    return out


def _stream_id(kind: str, event: Event) -> str:
    if kind == "function_call_arguments":
        if event.get("type") != "response.output_item.added":
            return str(event.get("item_id"))
        item_id = event["item"].get("id")
        if item_id is None:
            raise AblyError(40003, 400, "unable to stream function-call arguments; item has no id")
        return str(item_id)
    if kind == "reasoning_summary_text":
        return f"{event.get('item_id')}:summary:{jsjson.number(event.get('summary_index', 0))}"
    return f"{event.get('item_id')}:{jsjson.number(event.get('content_index', 0))}"


def _start_kind(event: Event) -> str | None:
    """The stream group an event opens, if it opens one."""
    kind = event.get("type")
    if kind == "response.content_part.added":
        part_type = (event.get("part") or {}).get("type")
        return part_type if part_type in _CONTENT_PARTS else None
    if kind == "response.reasoning_summary_part.added":
        return "reasoning_summary_text"
    if kind == "response.output_item.added" and event["item"].get("type") == "function_call":
        return "function_call_arguments"
    return None


def _wire_item(item: Event) -> Event:
    """The lean `output_item.done` item: what the streams did not already carry."""
    kind = item.get("type")
    if kind not in _MODELLED_ITEMS:
        raise _unsupported("output item type", kind)
    wire = {k: item[k] for k in ("type", "id", "status") if k in item}
    if kind == "reasoning" and isinstance(item.get("encrypted_content"), str):
        wire["encrypted_content"] = item["encrypted_content"]
    content = item.get("content") if kind == "message" else None
    if content and any(_has_logprobs(p) for p in content):
        wire["content"] = [
            {"type": "output_text", "logprobs": p["logprobs"]}
            if _has_logprobs(p)
            else {"type": p.get("type")}
            for p in content
        ]
    return wire


def _has_logprobs(part: Event) -> bool:
    return part.get("type") == "output_text" and bool(part.get("logprobs"))


def _opening_item(codec: dict[str, str]) -> list[Event]:
    """The `output_item.added` a part stream's item needs before it (JS decode lifecycle)."""
    item_id = codec.get("item_id")
    part = _read(codec, "part")
    container = _CONTAINERS.get(part.get("type")) if isinstance(part, dict) else None
    if item_id is None or container is None:
        return []
    if container == "message":
        item: Event = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
    else:
        item = {"id": item_id, "type": "reasoning", "summary": []}
    index = _read(codec, "output_index")
    return [
        {
            "type": "response.output_item.added",
            "item": item,
            "output_index": 0 if index is None else index,
        }
    ]


def encode_input(event: Event) -> tuple[bool, list[InputPart]]:
    """How one client input goes on the `ai-input` wire (JS `OpenAIInput`): {kind:
    user-message, message: {role, items: [one message item of input_text parts]}} (one wire
    part per content part, as one atomic batch), {kind: tool-result, payload: {call_id,
    output}}, {kind: tool-result-error, payload: {call_id, message}}, {kind:
    tool-approval-response, payload: {call_id, approved, reason?}} or {kind: regenerate}."""
    kind = event.get("kind", "")
    if kind == "user-message":
        message = event["message"]
        items = message.get("items") or []
        if len(items) != 1 or items[0].get("type") != "message":
            raise AblyError(
                40003,
                400,
                "unable to publish; a user message must be exactly one message item, "
                f"got {len(items)} item(s)",
            )
        texts = []
        for part in items[0].get("content") or []:
            if part.get("type") != "input_text":
                raise _unsupported("input content part type", part.get("type"))
            texts.append(part.get("text"))
        role = {"role": message.get("role")} if isinstance(message.get("role"), str) else {}
        codec = {"kind": kind, "partType": "input_text"}
        return True, [(text, dict(codec), dict(role)) for text in texts or [""]]
    if kind == "regenerate":
        return False, [("", {"kind": kind}, {})]
    payload = event.get("payload") or {}
    codec = _headers(kind, payload, ("call_id",))
    data: Any = ""
    if kind == "tool-approval-response":
        if isinstance(payload.get("approved"), bool):
            codec["approved"] = "true" if payload["approved"] else "false"
        if isinstance(payload.get("reason"), str):
            codec["reason"] = payload["reason"]
    elif kind in ("tool-result", "tool-result-error"):
        key = "output" if kind == "tool-result" else "message"
        data = {key: payload[key]} if key in payload else {}
    else:
        raise _unsupported("input kind", kind)
    return False, [(data, codec, {})]


def decode_input(data: Any, codec: dict[str, str], transport: dict[str, str]) -> list[Event]:
    """The client input one `ai-input` message carries, as the JS `OpenAIInput`: one part of
    a user message, or a tool input with the codec-message-id it addresses. A regenerate
    carries nothing to decode."""
    kind = codec.get("kind", "")
    if kind == "user-message":
        if codec.get("partType") != "input_text":
            return []
        part = {"text": data if isinstance(data, str) else "", "type": "input_text"}
        item = {"type": "message", "role": "user", "content": [part]}
        return [{"kind": kind, "message": {"role": transport.get("role", "user"), "items": [item]}}]
    if kind not in ("tool-result", "tool-result-error", "tool-approval-response"):
        return []
    payload: Event = {"call_id": codec.get("call_id", "")}
    body = data if isinstance(data, dict) else None
    if kind == "tool-approval-response":
        payload["approved"] = codec.get("approved") == "true"
        if codec.get("reason") is not None:
            payload["reason"] = codec["reason"]
    elif kind == "tool-result":
        if body is None:
            payload["output"] = ""
        elif "output" in body:
            payload["output"] = body["output"]
    else:
        message = body.get("message") if body is not None else None
        payload["message"] = message if isinstance(message, str) else ""
    cmid = transport.get("codec-message-id", "")
    return [{"kind": kind, "codecMessageId": cmid, "payload": payload}]


class ResponsesWireCodec:
    """The wire of `ResponsesCodec` (see the module docstring for its coverage)."""

    stream_kinds = STREAM_KINDS

    def encode_input(self, event: Event) -> tuple[bool, list[InputPart]]:
        return encode_input(event)

    def encode_output(self, event: Event, open_streams: set[str], message_id: str | None) -> WireOp:
        kind = event.get("type", "")
        group = _start_kind(event)
        if group is not None:
            codec = _headers(group, event, STREAM_KINDS[group].fields)
            return WireOp("create", codec, "", _stream_id(group, event))
        if kind in _PHASES:
            group, phase = _PHASES[kind]
            sid = _stream_id(group, event)
            if phase == "delta":
                return WireOp("append", {}, event.get("delta"), sid)
            return WireOp("close", _headers(group, event, STREAM_KINDS[group].fields), "", sid)
        if kind in _DROPPED:
            return WireOp("none")
        if kind == "response.output_item.added":
            item = event["item"]
            if item.get("type") not in _MODELLED_ITEMS:
                raise _unsupported("output item type", item.get("type"))
            return WireOp("discrete", {"kind": kind}, {"item": item})
        if kind == "response.output_item.done":
            return WireOp("discrete", {"kind": kind}, {"item": _wire_item(event["item"])})
        if kind == "function_call_output":
            return WireOp("discrete", {"kind": kind}, {"item": event.get("item")})
        if kind == "tool-approval-request":
            codec = _headers(kind, event, ("call_id", "name"))
            return WireOp("discrete", codec, event.get("arguments"))
        raise _unsupported("event type", kind)

    def decode_discrete(self, kind: str, codec: dict[str, str], data: Any) -> list[Event]:
        if kind in (
            "response.output_item.added",
            "response.output_item.done",
            "function_call_output",
        ):
            # Another publisher's malformed envelope decodes without its item rather than
            # breaking the reader (JS reads `data.item` and strips it when undefined).
            if isinstance(data, dict) and "item" in data:
                return [{"type": kind, "item": data["item"]}]
            return [{"type": kind}]
        if kind == "tool-approval-request":
            return [
                {
                    "type": kind,
                    "call_id": codec.get("call_id", ""),
                    "name": codec.get("name", ""),
                    "arguments": data if isinstance(data, str) else "",
                }
            ]
        return []

    def stream_start(self, kind: str, codec: dict[str, str]) -> list[Event]:
        group = STREAM_KINDS[kind]
        return [*_opening_item(codec), {"type": group.start, **_fields(codec, group.fields)}]

    def stream_delta(
        self, kind: str, codec: dict[str, str], stream_id: str, delta: str
    ) -> list[Event]:
        group = STREAM_KINDS[kind]
        if kind == "function_call_arguments":
            return [{"type": group.delta, **self._call_fields(codec), "delta": delta}]
        return [{"type": group.delta, **_fields(codec, group.delta_fields), "delta": delta}]

    def stream_end(
        self, kind: str, codec: dict[str, str], closing: dict[str, str], stream_id: str, text: str
    ) -> list[Event]:
        group = STREAM_KINDS[kind]
        if kind == "function_call_arguments":
            item = _read(closing, "item")
            is_call = isinstance(item, dict) and item.get("type") == "function_call"
            end = {"type": group.end, **self._call_fields(closing), "arguments": text}
            name = item.get("name") if is_call else ""
            if name is not None:
                end["name"] = name
            return [end]
        index_key = "summary_index" if kind == "reasoning_summary_text" else "content_index"
        index = _read(closing, index_key)
        output_index = _read(closing, "output_index")
        return [
            {
                "type": group.end,
                "item_id": closing.get("item_id", ""),
                "output_index": 0 if output_index is None else output_index,
                index_key: 0 if index is None else index,
                group.text_key: text,
            }
        ]

    @staticmethod
    def _call_fields(codec: dict[str, str]) -> Event:
        item = _read(codec, "item")
        output_index = _read(codec, "output_index")
        return {
            "item_id": (item.get("id") if isinstance(item, dict) else None) or "",
            "output_index": 0 if output_index is None else output_index,
        }


class ResponsesCodec(ResponsesWireCodec):
    """The OpenAI Responses codec as a `Codec` (JS `ResponsesCodec`): outputs are Responses
    stream events (plus `function_call_output` and `tool-approval-request`), messages
    {role, items, toolCallStates?}."""

    tool_call_key = "call_id"

    adapter_tag = "openai-responses"

    def fold(self, events: list[Event], message_id: str) -> list[OpenAIMessage]:
        projection = Projection()
        for event in events:
            projection.fold_output(event, message_id)
        return [message for _, message in projection.messages()]

    def decode_input_part(self, data: Any, codec: dict[str, str]) -> dict[str, Any]:
        # A part the JS decoder would not read (no input_text partType) stays out.
        inputs = decode_input(data, {**codec, "kind": "user-message"}, {})
        return inputs[0]["message"]["items"][0]["content"][0] if inputs else {}

    def new_message(self, message_id: str, role: str, parts: list[Any]) -> OpenAIMessage:
        content = [p for p in parts if p]
        if not content:
            return {"role": role, "items": []}
        return {"role": role, "items": [{"type": "message", "role": "user", "content": content}]}

    def text_message(self, text: str) -> OpenAIMessage:
        return self.new_message("", "user", [{"type": "input_text", "text": text}])

    def text(self, message: OpenAIMessage) -> str:
        return "".join(
            part.get("text", "")
            for item in message.get("items", [])
            if item.get("type") == "message"
            for part in item.get("content") or []
            if part and part.get("type") in ("output_text", "input_text")
        )

    async def text_events(self, tokens: AsyncIterable[str], text_id: str) -> AsyncIterator[Event]:
        slot = {"item_id": text_id, "output_index": 0, "content_index": 0}
        item = {"id": text_id, "type": "message", "role": "assistant"}
        yield {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**item, "status": "in_progress", "content": []},
        }
        part = {"type": "output_text", "text": "", "annotations": []}
        yield {"type": "response.content_part.added", **slot, "part": part}
        text = ""
        async for token in tokens:
            text += token
            yield {"type": "response.output_text.delta", **slot, "delta": token}
        yield {"type": "response.output_text.done", **slot, "text": text}
        content = [{**part, "text": text}]
        yield {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**item, "status": "completed", "content": content},
        }

    def apply_input(
        self, message: OpenAIMessage, codec: dict[str, str], kind: str, data: Any
    ) -> None:
        for event in decode_input(data, {**codec, "kind": kind}, {}):
            apply_tool_input(message, kind, event["payload"])

    def tool_outputs(self, events: list[Event]) -> list[tuple[str, str, Any]]:
        # A server tool's output stays in the message that published it (JS reducer): none
        # is routed to the message holding its call.
        return []

    def holds_tool_call(self, message: OpenAIMessage, tool_call_id: str) -> bool:
        return any(
            item.get("type") == "function_call" and item.get("call_id") == tool_call_id
            for item in message.get("items", [])
        )

    def fork_seed(self, data: Any) -> dict[str, Any] | None:
        return None


CODEC = ResponsesCodec()


class Decoder(MessageDecoder):
    """What the JS `ResponsesCodec.createDecoder()` does: inbound messages to (inputs,
    outputs). Its decode lifecycle lives in `stream_start` (the synthesised item opener)."""

    def __init__(self) -> None:
        super().__init__(CODEC, decode_input)
