"""The Vercel AI SDK UIMessage codec, on the wire as @ably/ai-transport 0.8.0's vercel codec.

Three jobs, each a pure function or a small class over plain dicts (no I/O):

- Inputs: a user UIMessage ({id, role, parts}) becomes one `ai-input` per encodable part (text,
  file, data-*), codec headers {kind: user-message, messageId, partType, id?/mediaType?}; the
  reverse assembles the parts sharing a codec-message-id back into one UIMessage.
- Outputs: `encode_chunk` says how one UIMessageChunk (text-start, text-delta, tool-input-*,
  tool-output-available, data-*, start, finish, ...) goes on the wire: a discrete `ai-output`,
  or the create / append / closing append of a streamed message (text, reasoning, tool-input).
  `decode_discrete` and the stream_*_chunk builders turn received `ai-output` messages back
  into chunks (driven by `codecs.codec.OutputDecoder`: a stream met mid-way yields its start
  chunk and the text so far).
- `fold_chunks` builds the assistant UIMessage from a chunk sequence, as useChat would.

Codec header values are strings; booleans are "true"/"false" and structured values JSON text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from channel_relay.client.codecs import jsjson
from channel_relay.client.codecs.codec import (
    LifecyclePolicy,
    LifecycleTracker,
    MessageDecoder,
    WireOp,
)
from channel_relay.client.errors import AblyError

__all__ = [
    "CODEC",
    "STREAM_KINDS",
    "Decoder",
    "VercelCodec",
    "WireOp",
    "apply_tool_response",
    "approved_pending_tool_calls",
    "decode_discrete",
    "decode_input",
    "decode_input_part",
    "decoder_lifecycle",
    "encode_chunk",
    "encode_input",
    "encode_user_message",
    "fold_chunks",
    "fork_seed",
    "pending_tool_calls",
    "stream_start_chunk",
]

UIMessage = dict[str, Any]
Chunk = dict[str, Any]
# Streamed groups: codec kind -> (start, delta, end) chunk types and the delta's field.
STREAM_KINDS: dict[str, tuple[str, str, str, str]] = {
    "text": ("text-start", "text-delta", "text-end", "delta"),
    "reasoning": ("reasoning-start", "reasoning-delta", "reasoning-end", "delta"),
    "tool-input": (
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "inputTextDelta",
    ),
}
_START_TYPES = {v[0]: k for k, v in STREAM_KINDS.items()}
_DELTA_TYPES = {v[1]: k for k, v in STREAM_KINDS.items()}
_END_TYPES = {v[2]: k for k, v in STREAM_KINDS.items()}
_BOOL_FIELDS = ("dynamic", "providerExecuted", "preliminary", "transient", "approved")
_JSON_FIELDS = ("providerMetadata", "messageMetadata")
# Codec header fields per discrete chunk type (besides `kind`), in the SDK's order.
_DISCRETE_FIELDS: dict[str, tuple[str, ...]] = {
    "start": ("messageId", "messageMetadata"),
    "start-step": (),
    "finish-step": (),
    "finish": ("finishReason", "messageMetadata"),
    "message-metadata": ("messageMetadata",),
    "error": (),
    "abort": (),
    "file": ("mediaType", "providerMetadata"),
    "source-url": ("sourceId", "title", "providerMetadata"),
    "source-document": ("sourceId", "mediaType", "title", "filename", "providerMetadata"),
    "tool-input-error": (
        "toolCallId",
        "toolName",
        "dynamic",
        "title",
        "providerExecuted",
        "providerMetadata",
    ),
    "tool-output-available": ("toolCallId", "dynamic", "providerExecuted", "preliminary"),
    "tool-output-error": ("toolCallId", "dynamic", "providerExecuted"),
    "tool-approval-request": ("toolCallId", "approvalId"),
    "tool-output-denied": ("toolCallId",),
}
_STREAM_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("id", "providerMetadata"),
    "reasoning": ("id", "providerMetadata"),
    "tool-input": (
        "toolCallId",
        "toolName",
        "dynamic",
        "title",
        "providerExecuted",
        "providerMetadata",
    ),
}
# Fields that read as "" when absent (the SDK's defaulted header fields).
_TOTAL = {"toolCallId": "", "toolName": "", "mediaType": "", "sourceId": ""}
_FINISH_REASONS = ("stop", "length", "content-filter", "tool-calls", "error", "other")


def _write(headers: dict[str, str], key: str, value: Any) -> None:
    if value is None:
        return
    if key in _BOOL_FIELDS:
        if isinstance(value, bool):
            headers[key] = "true" if value else "false"
    elif key in _JSON_FIELDS:
        headers[key] = jsjson.dumps(value)
    elif isinstance(value, str):
        headers[key] = value


def _read(headers: dict[str, str], key: str) -> Any:
    raw = headers.get(key)
    if raw is None:
        return None
    if key in _BOOL_FIELDS:
        return {"true": True, "false": False}.get(raw)
    if key in _JSON_FIELDS:
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw


def _codec(kind: str, source: dict[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    headers = {"kind": kind}
    for key in keys:
        _write(headers, key, source.get(key))
    return headers


def _fields(headers: dict[str, str], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for key in keys:
        value = _read(headers, key)
        if value is None:
            value = _TOTAL.get(key)
        if value is not None:
            out[key] = value
    return out


# Inputs


def encode_user_message(message: UIMessage) -> list[tuple[Any, dict[str, str]]]:
    """(data, codec headers) for each wire part of a user message; at least one part (an
    empty text) so the message's id and role always reach the wire."""
    parts = [
        p
        for p in message.get("parts") or []
        if p.get("type") in ("text", "file") or str(p.get("type", "")).startswith("data-")
    ] or [{"type": "text", "text": ""}]
    out = []
    for part in parts:
        kind = part["type"]
        headers = {"kind": "user-message"}
        if kind == "text":
            data: Any = part.get("text")
        elif kind == "file":
            data = part.get("url")
            _write(headers, "mediaType", part.get("mediaType"))
        else:
            data = part.get("data")
            _write(headers, "id", part.get("id"))
        if message.get("id") is not None:
            headers["messageId"] = message["id"]
        headers["partType"] = kind
        out.append((data, headers))
    return out


def encode_input(
    event: dict[str, Any],
) -> tuple[bool, list[tuple[Any, dict[str, str], dict[str, str]]]]:
    """How one client input goes on the `ai-input` wire: (atomic batch?, [(data, codec headers,
    transport headers)]). `event` as the JS VercelInput: {kind: user-message, message},
    {kind: tool-result, payload: {toolCallId, output, forkSeed?}}, {kind: tool-result-error,
    payload: {toolCallId, message, forkSeed?}}, {kind: tool-approval-response, payload:
    {toolCallId, approved, reason?}} or {kind: regenerate}."""
    kind = event.get("kind", "")
    if kind == "user-message":
        message = event["message"]
        role = {"role": message.get("role", "user")}
        return True, [(data, codec, role) for data, codec in encode_user_message(message)]
    if kind == "regenerate":
        return False, [("", {"kind": kind}, {})]
    payload = event.get("payload") or {}
    codec = {"kind": kind}
    _write(codec, "toolCallId", payload.get("toolCallId"))
    data: Any = ""
    if kind == "tool-approval-response":
        _write(codec, "approved", payload.get("approved"))
        _write(codec, "reason", payload.get("reason"))
    elif kind in ("tool-result", "tool-result-error"):
        field_name = "output" if kind == "tool-result" else "message"
        data = {k: payload[k] for k in (field_name, "forkSeed") if k in payload}
    else:
        raise AblyError(40003, 400, f"unsupported input kind '{kind}'")
    return False, [(data, codec, {})]


def decode_input_part(data: Any, codec: dict[str, str]) -> dict[str, Any]:
    """One UIMessage part from a user-message wire part."""
    part_type = codec.get("partType", "text")
    if part_type == "text":
        return {"type": "text", "text": data if isinstance(data, str) else ""}
    if part_type == "file":
        return {
            "type": "file",
            "mediaType": codec.get("mediaType", ""),
            "url": data if isinstance(data, str) else "",
        }
    part: dict[str, Any] = {"type": part_type}
    if codec.get("id") is not None:
        part["id"] = codec["id"]
    part["data"] = data
    return part


# Outputs: encoding


def encode_chunk(chunk: Chunk, open_streams: set[str], message_id: str | None) -> WireOp:
    """The wire operation for one UIMessageChunk. `open_streams` holds the stream ids opened
    (a tool-input-available without one goes out discrete); `message_id` is the assistant
    message id a `start` chunk carries when it has none."""
    kind = chunk.get("type", "")
    if kind in _START_TYPES:
        group = _START_TYPES[kind]
        sid = chunk.get("toolCallId") if group == "tool-input" else chunk.get("id")
        return WireOp("create", _codec(group, chunk, _STREAM_FIELDS[group]), "", sid)
    if kind in _DELTA_TYPES:
        group = _DELTA_TYPES[kind]
        sid = chunk.get("toolCallId") if group == "tool-input" else chunk.get("id")
        delta = chunk.get(STREAM_KINDS[group][3]) or ""
        return WireOp("append", {}, delta, sid)
    if kind in _END_TYPES:
        group = _END_TYPES[kind]
        if group == "tool-input":
            sid = chunk.get("toolCallId")
            if sid in open_streams:
                keys = ("toolCallId", "toolName", "providerMetadata")
                return WireOp("close", _codec(group, chunk, keys), "", sid)
            codec = _codec(group, chunk, _STREAM_FIELDS[group])
            return WireOp("discrete", codec, chunk.get("input"), sid)
        return WireOp("close", _codec(group, chunk, _STREAM_FIELDS[group]), "", chunk.get("id"))
    if kind.startswith("data-"):
        codec = _codec(kind, chunk, ("id", "transient"))
        return WireOp(
            "discrete", codec, chunk.get("data"), ephemeral=chunk.get("transient") is True
        )
    if kind not in _DISCRETE_FIELDS:
        return WireOp("none")
    source = dict(chunk)
    if kind == "start" and source.get("messageId") is None:
        source["messageId"] = message_id
    codec = _codec(kind, source, _DISCRETE_FIELDS[kind])
    data: Any = ""
    if kind == "error":
        data = chunk.get("errorText", "")
    elif kind == "abort":
        data = chunk.get("reason") or ""
    elif kind in ("file", "source-url"):
        data = chunk.get("url", "")
    elif kind == "tool-input-error":
        data = {"errorText": chunk.get("errorText"), "input": chunk.get("input")}
    elif kind == "tool-output-available":
        data = {"output": chunk.get("output")}
    elif kind == "tool-output-error":
        data = {"errorText": chunk.get("errorText")}
    return WireOp("discrete", codec, data)


# Outputs: decoding


def stream_start_chunk(kind: str, codec: dict[str, str]) -> Chunk:
    """The start chunk of a streamed group from its opening codec headers."""
    chunk: Chunk = {"type": STREAM_KINDS[kind][0]}
    fields = _fields(codec, _STREAM_FIELDS[kind])
    if kind == "tool-input":
        fields.setdefault("toolCallId", "")
        fields.setdefault("toolName", "")
    chunk.update(fields)
    return chunk


def stream_delta_chunk(kind: str, codec: dict[str, str], stream_id: str, delta: str) -> Chunk:
    key = "toolCallId" if kind == "tool-input" else "id"
    return {
        "type": STREAM_KINDS[kind][1],
        key: codec.get(key, stream_id),
        STREAM_KINDS[kind][3]: delta,
    }


def stream_end_chunk(
    kind: str, codec: dict[str, str], closing: dict[str, str], stream_id: str, text: str
) -> Chunk:
    if kind != "tool-input":
        return {"type": STREAM_KINDS[kind][2], **_fields(closing, _STREAM_FIELDS[kind])}
    chunk: Chunk = {
        "type": "tool-input-available",
        "toolCallId": stream_id,
        "toolName": closing.get("toolName") or codec.get("toolName", ""),
    }
    if text:
        chunk["input"] = _json_or_string(text)
    meta = _read(closing, "providerMetadata")
    if meta is not None:
        chunk["providerMetadata"] = meta
    return chunk


def decode_discrete(kind: str, codec: dict[str, str], data: Any) -> list[Chunk]:
    """The chunks of one discrete ai-output (kind = codec `kind`)."""
    if kind == "tool-input":
        start = {"type": "tool-input-start", "toolCallId": codec.get("toolCallId", "")}
        start.update(_fields(codec, _STREAM_FIELDS["tool-input"]))
        start.setdefault("toolName", "")
        available = {
            "type": "tool-input-available",
            "toolCallId": codec.get("toolCallId", ""),
            "toolName": codec.get("toolName", ""),
            "input": data,
        }
        meta = _read(codec, "providerMetadata")
        if meta is not None:
            available["providerMetadata"] = meta
        return [start, available]
    if kind.startswith("data-"):
        chunk: Chunk = {"type": kind, **_fields(codec, ("id", "transient")), "data": data}
        return [chunk]
    if kind not in _DISCRETE_FIELDS:
        return []
    chunk = {"type": kind, **_fields(codec, _DISCRETE_FIELDS[kind])}
    if kind == "finish" and chunk.get("finishReason") not in _FINISH_REASONS:
        chunk["finishReason"] = "stop"
    if kind in ("tool-output-available", "tool-output-error", "tool-approval-request"):
        chunk.setdefault("toolCallId", "")
    if kind == "tool-approval-request":
        chunk.setdefault("approvalId", "")
    if kind == "source-document":
        chunk.setdefault("title", "")
    text = data if isinstance(data, str) else ""
    if kind == "error":
        chunk["errorText"] = text
    elif kind == "abort" and text:
        chunk["reason"] = text
    elif kind in ("file", "source-url"):
        chunk["url"] = text
    elif kind == "tool-input-error":
        body = data if isinstance(data, dict) else {}
        chunk["errorText"] = body.get("errorText") or ""
        chunk["input"] = body.get("input")
    elif kind == "tool-output-available":
        if isinstance(data, dict) and "output" in data:
            chunk["output"] = data["output"]
    elif kind == "tool-output-error":
        body = data if isinstance(data, dict) else {}
        chunk["errorText"] = body.get("errorText") or ""
    return [chunk]


def decoder_lifecycle() -> LifecyclePolicy:
    """The SDK's Vercel decode lifecycle: a run whose first sight is a stream or a tool call gets
    the `start` / `start-step` it missed, once per run (`start-step` again after a
    `finish-step`, everything again after its `finish`, `error` or `abort`)."""
    tracker = LifecycleTracker(
        [
            ("start", lambda ctx: [_strip({"type": "start", "messageId": ctx.get("messageId")})]),
            ("start-step", lambda ctx: [{"type": "start-step"}]),
        ]
    )

    def mark(phase: str) -> Callable[[str, dict[str, str]], list[Chunk]]:
        def seen(run_id: str, codec: dict[str, str]) -> list[Chunk]:
            tracker.mark_emitted(run_id, phase)
            return []

        return seen

    def step_done(run_id: str, codec: dict[str, str]) -> list[Chunk]:
        tracker.reset_phase(run_id, "start-step")
        return []

    def clear(run_id: str, codec: dict[str, str]) -> list[Chunk]:
        tracker.clear_scope(run_id)
        return []

    def ensure(run_id: str, codec: dict[str, str]) -> list[Chunk]:
        return tracker.ensure_phases(run_id, {"messageId": codec.get("messageId")})

    return LifecyclePolicy(
        on_discrete={
            "start": mark("start"),
            "start-step": mark("start-step"),
            "finish-step": step_done,
            "finish": clear,
            "error": clear,
            "abort": clear,
            "tool-input": ensure,
        },
        on_stream_start=ensure,
    )


def _strip(chunk: Chunk) -> Chunk:
    return {k: v for k, v in chunk.items() if v is not None}


class Decoder(MessageDecoder):
    """What the SDK's `codec.createDecoder()` does: inbound messages to (inputs, outputs).

    Outputs are UIMessageChunks, repaired by `decoder_lifecycle` for a run met mid-way. Inputs
    are the JS VercelInput shapes (see `decode_input`).
    """

    def __init__(self) -> None:
        super().__init__(CODEC, decode_input, decoder_lifecycle())


def decode_input(
    data: Any, codec: dict[str, str], transport: dict[str, str]
) -> list[dict[str, Any]]:
    """The client input one `ai-input` message carries, as the JS VercelInput: a user message
    (one part of it: parts sharing a codec-message-id make the message), or a tool input with
    the codec-message-id it addresses. A regenerate carries nothing to decode."""
    kind = codec.get("kind", "")
    if kind == "user-message":
        message = {
            "id": codec.get("messageId", ""),
            "role": transport.get("role", "user"),
            "parts": [decode_input_part(data, codec)],
        }
        return [{"kind": kind, "message": message}]
    if kind not in ("tool-result", "tool-result-error", "tool-approval-response"):
        return []
    payload: dict[str, Any] = {"toolCallId": codec.get("toolCallId", "")}
    body = data if isinstance(data, dict) else None
    if kind == "tool-approval-response":
        payload["approved"] = codec.get("approved") == "true"
        if codec.get("reason") is not None:
            payload["reason"] = codec["reason"]
    elif kind == "tool-result":
        if body is not None and "output" in body:
            payload["output"] = body["output"]
    else:
        message = body.get("message") if body is not None else None
        payload["message"] = message if isinstance(message, str) else ""
    seed = fork_seed(body)
    if seed is not None:
        payload["forkSeed"] = seed
    cmid = transport.get("codec-message-id", "")
    return [{"kind": kind, "codecMessageId": cmid, "payload": payload}]


def fork_seed(data: Any) -> dict[str, Any] | None:
    """The validated `forkSeed` of a tool-result envelope: messages without a string
    codecMessageId or a parts list are dropped, and parts that are not typed objects."""
    seed = data.get("forkSeed") if isinstance(data, dict) else None
    if not isinstance(seed, dict) or not isinstance(seed.get("messages"), list):
        return None
    messages = []
    for entry in seed["messages"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("codecMessageId"), str):
            continue
        message = entry.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("parts"), list):
            continue
        parts = [
            p for p in message["parts"] if isinstance(p, dict) and isinstance(p.get("type"), str)
        ]
        messages.append(
            {"codecMessageId": entry["codecMessageId"], "message": {**message, "parts": parts}}
        )
    return {"messages": messages}


def _json_or_string(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# Folding chunks into a UIMessage


def fold_chunks(chunks: list[Chunk], message_id: str = "", role: str = "assistant") -> UIMessage:
    """The UIMessage a chunk sequence builds (text and reasoning parts, tool parts with their
    state, data parts replaced by id, step-start markers), as the AI SDK's reader does."""
    message: UIMessage = {"id": message_id, "role": role, "parts": []}
    parts: list[dict[str, Any]] = message["parts"]
    open_text: dict[tuple[str, str], dict[str, Any]] = {}
    tools: dict[str, dict[str, Any]] = {}
    tool_text: dict[str, str] = {}
    for chunk in chunks:
        kind = chunk.get("type", "")
        if kind == "start":
            if chunk.get("messageId"):
                message["id"] = chunk["messageId"]
            if chunk.get("messageMetadata") is not None:
                message["metadata"] = chunk["messageMetadata"]
        elif kind in ("finish", "message-metadata"):
            if chunk.get("messageMetadata") is not None:
                message["metadata"] = chunk["messageMetadata"]
        elif kind == "start-step":
            parts.append({"type": "step-start"})
        elif kind in ("text-start", "reasoning-start"):
            # As the SDK's reducer folds them: the text only (no state, no provider metadata).
            part = {"type": kind[:-6], "text": ""}
            open_text[(part["type"], chunk.get("id", ""))] = part
            parts.append(part)
        elif kind in ("text-delta", "reasoning-delta"):
            part = open_text.get((kind[:-6], chunk.get("id", "")))
            if part is not None:
                part["text"] += chunk.get("delta", "")
        elif kind in ("text-end", "reasoning-end"):
            open_text.pop((kind[:-4], chunk.get("id", "")), None)
        elif kind == "tool-input-start":
            part = _tool_part(chunk)
            part.update(state="input-streaming", input=None)
            tools[chunk.get("toolCallId", "")] = part
            tool_text[chunk.get("toolCallId", "")] = ""
            parts.append(part)
        elif kind == "tool-input-delta":
            call = chunk.get("toolCallId", "")
            tool_text[call] = tool_text.get(call, "") + chunk.get("inputTextDelta", "")
            if call in tools:
                tools[call]["input"] = _json_or_string(tool_text[call]) if tool_text[call] else None
        elif kind in ("tool-input-available", "tool-input-error"):
            call = chunk.get("toolCallId", "")
            part = tools.get(call)
            if part is None:
                part = tools[call] = _tool_part(chunk)
                parts.append(part)
            part["input"] = chunk.get("input")
            if kind == "tool-input-error":
                part.update(state="output-error", errorText=chunk.get("errorText", ""))
            else:
                part["state"] = "input-available"
        elif kind == "tool-approval-request":
            part = tools.get(chunk.get("toolCallId", ""))
            if part is not None:
                part.update(state="approval-requested", approval={"id": chunk.get("approvalId")})
        elif kind == "tool-output-available":
            part = tools.get(chunk.get("toolCallId", ""))
            if part is not None:
                part.update(state="output-available", output=chunk.get("output"))
                if chunk.get("preliminary"):
                    part["preliminary"] = True
        elif kind == "tool-output-error":
            part = tools.get(chunk.get("toolCallId", ""))
            if part is not None:
                part.update(state="output-error", errorText=chunk.get("errorText", ""))
        elif kind == "tool-output-denied":
            part = tools.get(chunk.get("toolCallId", ""))
            if part is not None:
                part["state"] = "output-denied"
        elif kind.startswith("data-"):
            if chunk.get("transient"):
                continue
            part = {"type": kind, "data": chunk.get("data")}
            if chunk.get("id") is not None:
                part = {"type": kind, "id": chunk["id"], "data": chunk.get("data")}
                for i, existing in enumerate(parts):
                    if existing.get("type") == kind and existing.get("id") == chunk["id"]:
                        parts[i] = part
                        break
                else:
                    parts.append(part)
            else:
                parts.append(part)
        elif kind == "file":
            parts.append(
                {
                    "type": "file",
                    "mediaType": chunk.get("mediaType", ""),
                    "url": chunk.get("url", ""),
                }
            )
        elif kind in ("source-url", "source-document"):
            part = {k: v for k, v in chunk.items() if k != "type"}
            parts.append({"type": kind, **part})
    return message


def apply_tool_response(message: UIMessage, codec: dict[str, str], kind: str, data: Any) -> None:
    """Fold a client's tool input (approval response, tool result) into the assistant message
    holding the tool call."""
    call = codec.get("toolCallId", "")
    for part in message.get("parts", []):
        if part.get("toolCallId") != call:
            continue
        if kind == "tool-approval-response":
            approval = dict(part.get("approval") or {})
            approval["approved"] = codec.get("approved") == "true"
            if codec.get("reason"):
                approval["reason"] = codec["reason"]
            part.update(state="approval-responded", approval=approval)
        elif kind == "tool-result":
            output = data.get("output") if isinstance(data, dict) else None
            part.update(state="output-available", output=output)
        elif kind == "tool-result-error":
            message_text = data.get("message") if isinstance(data, dict) else ""
            part.update(state="output-error", errorText=message_text or "")


def pending_tool_calls(messages: list[UIMessage]) -> list[dict[str, Any]]:
    """The tool calls of the last assistant message still owed an output: parts in state
    input-available ({toolCallId, toolName, input}), as the JS pendingToolCalls."""
    return _tool_calls(messages, "input-available")


def approved_pending_tool_calls(messages: list[UIMessage]) -> list[dict[str, Any]]:
    """The tool calls of the last assistant message the user approved and that have not run
    yet: state approval-responded with approval.approved true (JS approvedPendingToolCalls)."""
    return _tool_calls(messages, "approval-responded")


def _tool_calls(messages: list[UIMessage], state: str) -> list[dict[str, Any]]:
    last = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    calls = []
    for part in last["parts"] if last else []:
        kind = str(part.get("type", ""))
        if not (kind.startswith("tool-") or kind == "dynamic-tool"):
            continue
        if part.get("state") != state or part.get("input") is None:
            continue
        if (
            state == "approval-responded"
            and (part.get("approval") or {}).get("approved") is not True
        ):
            continue
        name = part.get("toolName", "") if kind == "dynamic-tool" else kind[len("tool-") :]
        calls.append(
            {"toolCallId": part.get("toolCallId", ""), "toolName": name, "input": part["input"]}
        )
    return calls


def _tool_part(chunk: Chunk) -> dict[str, Any]:
    name = chunk.get("toolName", "")
    if chunk.get("dynamic"):
        part = {"type": "dynamic-tool", "toolName": name, "toolCallId": chunk.get("toolCallId", "")}
    else:
        part = {"type": f"tool-{name}", "toolCallId": chunk.get("toolCallId", "")}
    for key in ("title", "providerExecuted", "providerMetadata"):
        if chunk.get(key) is not None:
            part[key] = chunk[key]
    return part


class VercelCodec:
    """The Vercel AI SDK UIMessage codec as a `Codec` (JS `createUIMessageCodec()`): outputs
    are UIMessageChunks, inputs VercelInputs, messages UIMessages."""

    stream_kinds = STREAM_KINDS
    adapter_tag: str | None = "vercel-ai-sdk-ui-message"
    tool_call_key = "toolCallId"

    def encode_output(self, event: Chunk, open_streams: set[str], message_id: str | None) -> WireOp:
        return encode_chunk(event, open_streams, message_id)

    def encode_input(
        self, event: dict[str, Any]
    ) -> tuple[bool, list[tuple[Any, dict[str, str], dict[str, str]]]]:
        return encode_input(event)

    def decode_discrete(self, kind: str, codec: dict[str, str], data: Any) -> list[Chunk]:
        return decode_discrete(kind, codec, data)

    def stream_start(self, kind: str, codec: dict[str, str]) -> list[Chunk]:
        return [stream_start_chunk(kind, codec)]

    def stream_delta(
        self, kind: str, codec: dict[str, str], stream_id: str, delta: str
    ) -> list[Chunk]:
        return [stream_delta_chunk(kind, codec, stream_id, delta)]

    def stream_end(
        self, kind: str, codec: dict[str, str], closing: dict[str, str], stream_id: str, text: str
    ) -> list[Chunk]:
        return [stream_end_chunk(kind, codec, closing, stream_id, text)]

    def fold(self, events: list[Chunk], message_id: str) -> list[UIMessage]:
        return [fold_chunks(events, message_id, "assistant")]

    def decoder_lifecycle(self) -> LifecyclePolicy:
        return decoder_lifecycle()

    def decode_input_part(self, data: Any, codec: dict[str, str]) -> dict[str, Any]:
        return decode_input_part(data, codec)

    def apply_input(self, message: UIMessage, codec: dict[str, str], kind: str, data: Any) -> None:
        apply_tool_response(message, codec, kind, data)

    def tool_outputs(self, events: list[Chunk]) -> list[tuple[str, str, Any]]:
        outputs: list[tuple[str, str, Any]] = []
        for chunk in events:
            call = chunk.get("toolCallId") or ""
            if chunk.get("type") == "tool-output-available":
                outputs.append((call, "tool-result", {"output": chunk.get("output")}))
            elif chunk.get("type") == "tool-output-error":
                outputs.append((call, "tool-result-error", {"message": chunk.get("errorText")}))
        return outputs

    def holds_tool_call(self, message: UIMessage, tool_call_id: str) -> bool:
        return any(p.get("toolCallId") == tool_call_id for p in message.get("parts", []))

    def fork_seed(self, data: Any) -> dict[str, Any] | None:
        return fork_seed(data)

    def new_message(self, message_id: str, role: str, parts: list[Any]) -> UIMessage:
        return {"id": message_id, "role": role, "parts": parts}

    def text_message(self, text: str) -> UIMessage:
        return {
            "id": f"msg-{uuid.uuid4()}",
            "role": "user",
            "parts": [{"type": "text", "text": text}],
        }

    def text(self, message: UIMessage) -> str:
        return "".join(p.get("text", "") for p in message["parts"] if p.get("type") == "text")

    async def text_events(self, tokens: AsyncIterable[str], text_id: str) -> AsyncIterator[Chunk]:
        yield {"type": "start"}
        yield {"type": "start-step"}
        yield {"type": "text-start", "id": text_id}
        async for token in tokens:
            yield {"type": "text-delta", "id": text_id, "delta": token}
        yield {"type": "text-end", "id": text_id}
        yield {"type": "finish-step"}
        yield {"type": "finish", "finishReason": "stop"}


CODEC = VercelCodec()
