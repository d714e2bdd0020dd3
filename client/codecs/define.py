"""Declare a custom codec from descriptor tables (the JS `defineCodec` of @ably/ai-transport).

A codec author lists, once per event type, how it goes on the wire; `define_codec` turns the
tables into a `Codec` the turn layer (`Session`, `AgentSession`, `Encoder`) uses, with the same
wire as a JS codec declared with the same tables:

- outputs (agent events, each a dict with a `type`): `OutputEvent` (one discrete `ai-output`,
  the type as codec `kind`; a type ending in `-*` covers a family), `OutputStream` (a group of
  start / delta / end events streamed as one message whose `kind` is the group id), `Drop` (a
  type deliberately kept off the wire); any other type is refused (Ably error 40003);
- inputs (client inputs, each a dict with a `kind`): `InputEvent` (one `ai-input` carrying the
  input's `payload`; `wire_only` for a bare signal such as a regenerate) and `InputBatch` (a
  message exploded into one `ai-input` per `Part`, published atomically);
- a `Reducer` folding output events into messages (several per codec-message-id if it likes);
- an optional `lifecycle` making each decoder's `LifecyclePolicy` (mid-run-join repair);
- an optional `adapter_tag` (the Ably agent identifier sessions announce).

Header fields (`fields.str_field`, ...) name both the header and the event property, and the
`kind` and `partType` headers are the drivers' own. Escape hatches (`encode`, `decode`) take
over where a field table cannot say it, and stay sans-I/O: an encode hatch returns a `WireOp`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from channel_relay.client.codecs import vercel
from channel_relay.client.codecs.codec import (
    Event,
    InputPart,
    LifecyclePolicy,
    MessageDecoder,
    WireOp,
)
from channel_relay.client.codecs.fields import DataCodec, HeaderField, read_fields, write_fields
from channel_relay.client.errors import AblyError

__all__ = [
    "DefinedCodec",
    "Drop",
    "InputBatch",
    "InputEvent",
    "OutputEvent",
    "OutputStream",
    "Part",
    "Reducer",
    "define_codec",
]

# (event, headers of the descriptor's fields, the writer's open streams, message id) -> op
EncodeHatch = Callable[[Event, Callable[[Event], dict[str, str]], set[str], str | None], WireOp]
_RESERVED = ("kind", "partType")


def _wildcard(literal: str) -> Callable[[str], bool] | None:
    if not literal.endswith("-*"):
        return None
    prefix = literal[:-1]
    return lambda value: value.startswith(prefix)


def _strip(bag: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in bag.items() if v is not None}


@dataclass(frozen=True, slots=True)
class OutputEvent:
    """A discrete output event `type` (or a `prefix-*` family). `data`: its message data
    (omitted: ""); `ephemeral(event)`: keep it out of history; `encode`: an escape hatch
    returning the `WireOp` instead."""

    type: str
    fields: Sequence[HeaderField] = ()
    data: DataCodec | None = None
    ephemeral: Callable[[Event], bool] | None = None
    encode: EncodeHatch | None = None

    @property
    def match(self) -> Callable[[str], bool] | None:
        return _wildcard(self.type)


@dataclass(frozen=True, slots=True)
class OutputStream:
    """A streamed group: events `start`, `delta` (its text in property `delta_field`) and `end`
    types go out as one message of codec `kind` (the group id) opened, appended and closed.

    `stream_id(event)`: the stream an event belongs to (the Ably `stream-id`). `fields`: headers
    of the start (and closing) event. `start_match(event)`: for a start type shared by several
    groups, whether this group takes the event (none does: it goes out as a discrete event).
    Escape hatches: `delta_decode(stream_id, delta, codec headers)` rebuilds the delta events,
    `end_encode` closes differently (then `end_decode(stream_id, text, codec headers, closing
    headers)` must rebuild the end), `decode_discrete(codec headers, data)` rebuilds the group
    when it arrives as one discrete message.
    """

    kind: str
    start: str
    delta: str
    delta_field: str
    end: str
    stream_id: Callable[[Event], str]
    fields: Sequence[HeaderField] = ()
    start_match: Callable[[Event], bool] | None = None
    delta_decode: Callable[[str, str, dict[str, str]], list[Event]] | None = None
    end_encode: EncodeHatch | None = None
    end_decode: Callable[[str, str, dict[str, str], dict[str, str]], list[Event]] | None = None
    decode_discrete: Callable[[dict[str, str], Any], list[Event]] | None = None


@dataclass(frozen=True, slots=True)
class Drop:
    """An output type kept off the wire on purpose (say why where you declare it)."""

    type: str


@dataclass(frozen=True, slots=True)
class InputEvent:
    """An input `kind` carried by one `ai-input`: `fields` and `data` map its `payload`;
    `wire_only`: a bare signal (codec headers {kind} only, nothing to decode)."""

    kind: str
    fields: Sequence[HeaderField] = ()
    data: DataCodec | None = None
    wire_only: bool = False


@dataclass(frozen=True, slots=True)
class Part:
    """One part type of an `InputBatch` (a `prefix-*` family allowed): the part's `fields` and
    `data`; the part's `type` rides the `partType` header."""

    part_type: str
    fields: Sequence[HeaderField] = ()
    data: DataCodec | None = None

    @property
    def match(self) -> Callable[[str], bool] | None:
        return _wildcard(self.part_type)


@dataclass(frozen=True, slots=True)
class InputBatch:
    """An input `kind` carried by one `ai-input` per part, published atomically.

    `explode(input)`: its parts (dicts); `part_type_of(part)`: a part's type (default: its
    `type`); `message_headers(input)`: (codec headers, transport headers) stamped on every part;
    `assemble(part, codec headers, transport headers)`: the one-part input a decoder yields
    for one wire part (without `kind`).
    """

    kind: str
    explode: Callable[[Event], Sequence[dict[str, Any]]]
    parts: Sequence[Part]
    assemble: Callable[[dict[str, Any], dict[str, str], dict[str, str]], dict[str, Any]]
    part_type_of: Callable[[dict[str, Any]], str] = lambda part: str(part.get("type", ""))
    message_headers: Callable[[Event], tuple[dict[str, str], dict[str, str]]] | None = None

    def part_for(self, part_type: str) -> Part | None:
        exact = next((p for p in self.parts if p.match is None and p.part_type == part_type), None)
        if exact is not None:
            return exact
        return next((p for p in self.parts if p.match is not None and p.match(part_type)), None)


def _new_message(message_id: str, role: str, parts: list[Any]) -> dict[str, Any]:
    return {"id": message_id, "role": role, "parts": parts}


def _text_message(text: str) -> dict[str, Any]:
    return {"id": f"msg-{uuid.uuid4()}", "role": "user", "parts": [{"type": "text", "text": text}]}


def _text(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message.get("parts", []) if p.get("type") == "text")


@dataclass(frozen=True, slots=True)
class Reducer:
    """How output events become domain messages (JS `CodecReducer`): `fold(state, event,
    codec_message_id)` folds one output event of the message `codec_message_id` into the state
    `init()` made; `get_messages(state)` lists the messages (several allowed).

    What the turn layer asks of messages, each with a default for {id, role, parts} messages
    whose text parts are {type: text, text}: `new_message(message_id, role, parts)` (a user
    message from its decoded input parts), `text_message(text)` (what `Session.send("...")`
    sends), `text(message)`, and `text_events(tokens, text_id)` (the output events streaming
    plain text, for `AgentRun.stream_text`; no default). For tools, all optional:
    `apply_input(message, input)` folds a client tool input (decoded, {kind, codecMessageId,
    payload}) into the message holding the call; `tool_outputs(events)` lists the tool results
    among output events as (tool call id, input kind, input data); `holds_tool_call(message,
    tool_call_id)` (default: a part with that `toolCallId`).
    """

    init: Callable[[], Any]
    fold: Callable[[Any, Event, str], Any]
    get_messages: Callable[[Any], list[dict[str, Any]]]
    new_message: Callable[[str, str, list[Any]], dict[str, Any]] = _new_message
    text_message: Callable[[str], dict[str, Any]] = _text_message
    text: Callable[[dict[str, Any]], str] = _text
    text_events: Callable[[AsyncIterable[str], str], AsyncIterator[Event]] | None = None
    apply_input: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
    tool_outputs: Callable[[list[Event]], list[tuple[str, str, Any]]] | None = None
    holds_tool_call: Callable[[dict[str, Any], str], bool] | None = None


Output = OutputEvent | OutputStream | Drop
Input = InputEvent | InputBatch


@dataclass(eq=False)
class DefinedCodec:
    """A `Codec` made by `define_codec` from descriptor tables; `decoder()` is the JS
    `createDecoder()` (inbound messages to (inputs, outputs), with the lifecycle repair)."""

    outputs: tuple[Output, ...]
    inputs: tuple[Input, ...]
    reducer: Reducer
    lifecycle: Callable[[], LifecyclePolicy] | None = None
    adapter_tag: str | None = None
    tool_call_key: str = "toolCallId"
    stream_kinds: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        _validate(self.outputs, self.inputs)
        streams = [d for d in self.outputs if isinstance(d, OutputStream)]
        self.stream_kinds = frozenset(d.kind for d in streams)
        self._stream_by_kind = {d.kind: d for d in streams}
        self._starts: dict[str, list[OutputStream]] = {}
        self._phases: dict[str, tuple[OutputStream, str]] = {}
        for d in streams:
            self._starts.setdefault(d.start, []).append(d)
            self._phases[d.delta] = (d, "delta")
            self._phases[d.end] = (d, "end")
        events = [d for d in self.outputs if isinstance(d, OutputEvent)]
        self._events = {d.type: d for d in events if d.match is None}
        self._wildcards = [d for d in events if d.match is not None]
        self._dropped = {d.type for d in self.outputs if isinstance(d, Drop)}
        self._inputs = {d.kind: d for d in self.inputs}

    # Outputs: encoding

    def encode_output(self, event: Event, open_streams: set[str], message_id: str | None) -> WireOp:
        kind = str(event.get("type", ""))
        for group in self._starts.get(kind, ()):
            if group.start_match is None or group.start_match(event):
                headers = write_fields(group.fields, group.kind, event)
                return WireOp("create", headers, "", group.stream_id(event))
        if kind in self._phases:
            group, phase = self._phases[kind]
            sid = group.stream_id(event)
            if phase == "delta":
                return WireOp("append", {}, event.get(group.delta_field) or "", sid)
            if group.end_encode is not None:
                return group.end_encode(
                    event,
                    lambda e: write_fields(group.fields, group.kind, e),
                    open_streams,
                    message_id,
                )
            return WireOp("close", write_fields(group.fields, group.kind, event), "", sid)
        descriptor = self._events.get(kind)
        if descriptor is None and kind in self._dropped:
            return WireOp("none")
        if descriptor is None:
            descriptor = next((w for w in self._wildcards if w.match and w.match(kind)), None)
        if descriptor is None:
            raise AblyError(40003, 400, f"unable to publish; unsupported event type '{kind}'")
        fields = descriptor.fields
        if descriptor.encode is not None:
            return descriptor.encode(
                event,
                lambda e: write_fields(fields, str(e.get("type", "")), e),
                open_streams,
                message_id,
            )
        data = descriptor.data.encode(event) if descriptor.data else ""
        ephemeral = bool(descriptor.ephemeral(event)) if descriptor.ephemeral else False
        return WireOp("discrete", write_fields(fields, kind, event), data, ephemeral=ephemeral)

    # Outputs: decoding

    def decode_discrete(self, kind: str, codec: dict[str, str], data: Any) -> list[Event]:
        descriptor = self._events.get(kind)
        if descriptor is None and kind in self._stream_by_kind:
            group = self._stream_by_kind[kind]
            return group.decode_discrete(codec, data) if group.decode_discrete else []
        if descriptor is None:
            descriptor = next((w for w in self._wildcards if w.match and w.match(kind)), None)
        if descriptor is None:
            return []
        bag = read_fields(descriptor.fields, codec)
        if descriptor.data is not None:
            bag.update(descriptor.data.decode(data))
        return [{**_strip(bag), "type": kind}]

    def stream_start(self, kind: str, codec: dict[str, str]) -> list[Event]:
        group = self._stream_by_kind.get(kind)
        if group is None:
            return []
        return [{**read_fields(group.fields, codec), "type": group.start}]

    def stream_delta(
        self, kind: str, codec: dict[str, str], stream_id: str, delta: str
    ) -> list[Event]:
        group = self._stream_by_kind.get(kind)
        if group is None:
            return []
        if group.delta_decode is not None:
            return group.delta_decode(stream_id, delta, codec)
        return [{group.delta_field: delta, "type": group.delta}]

    def stream_end(
        self, kind: str, codec: dict[str, str], closing: dict[str, str], stream_id: str, text: str
    ) -> list[Event]:
        group = self._stream_by_kind.get(kind)
        if group is None:
            return []
        if group.end_decode is not None:
            return group.end_decode(stream_id, text, codec, closing)
        return [{**read_fields(group.fields, closing), "type": group.end}]

    # Inputs

    def encode_input(self, event: Event) -> tuple[bool, list[InputPart]]:
        kind = str(event.get("kind", ""))
        descriptor = self._inputs.get(kind)
        if descriptor is None:
            raise AblyError(40003, 400, f"unable to publish; unsupported input kind '{kind}'")
        if isinstance(descriptor, InputBatch):
            return True, _explode(descriptor, event)
        if descriptor.wire_only:
            return False, [("", {"kind": kind}, {})]
        payload = event.get("payload")
        if not isinstance(payload, dict):
            raise AblyError(
                40003,
                400,
                f"unable to encode input; event '{kind}' carries no payload object",
            )
        data = descriptor.data.encode(payload) if descriptor.data else ""
        return False, [(data, write_fields(descriptor.fields, kind, payload), {})]

    def decode_input(
        self, data: Any, codec: dict[str, str], transport: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The inputs one `ai-input` message carries (JS input descriptor decoder)."""
        descriptor = self._inputs.get(codec.get("kind", ""))
        if descriptor is None:
            return []
        if isinstance(descriptor, InputBatch):
            part = self._decode_part(descriptor, data, codec)
            if part is None:
                return []
            return [{"kind": descriptor.kind, **descriptor.assemble(part, codec, transport)}]
        if descriptor.wire_only:
            return []
        bag = read_fields(descriptor.fields, codec)
        if descriptor.data is not None:
            bag.update(descriptor.data.decode(data))
        return [
            {
                "kind": descriptor.kind,
                "codecMessageId": transport.get("codec-message-id", ""),
                "payload": _strip(bag),
            }
        ]

    def _decode_part(
        self, batch: InputBatch, data: Any, codec: dict[str, str]
    ) -> dict[str, Any] | None:
        part_type = codec.get("partType", "")
        descriptor = batch.part_for(part_type)
        if descriptor is None:
            return None
        bag = read_fields(descriptor.fields, codec)
        if descriptor.data is not None:
            bag.update(descriptor.data.decode(data))
        bag["type"] = part_type
        return _strip(bag)

    def decode_input_part(self, data: Any, codec: dict[str, str]) -> dict[str, Any]:
        batch = self._inputs.get(codec.get("kind", ""))
        part = self._decode_part(batch, data, codec) if isinstance(batch, InputBatch) else None
        return part if part is not None else {"type": codec.get("partType", "")}

    def decoder(self) -> MessageDecoder:
        """A fresh decoder (JS `codec.createDecoder()`), with its own lifecycle state."""
        return MessageDecoder(self, self.decode_input, self.decoder_lifecycle())

    def decoder_lifecycle(self) -> LifecyclePolicy | None:
        """A fresh lifecycle policy (None without `lifecycle`)."""
        return self.lifecycle() if self.lifecycle else None

    # Messages

    def fold(self, events: list[Event], message_id: str) -> list[dict[str, Any]]:
        state = self.reducer.init()
        for event in events:
            state = self.reducer.fold(state, event, message_id)
        return self.reducer.get_messages(state)

    def apply_input(
        self, message: dict[str, Any], codec: dict[str, str], kind: str, data: Any
    ) -> None:
        if self.reducer.apply_input is None:
            return
        for event in self.decode_input(data, codec, {}):
            self.reducer.apply_input(message, event)

    def tool_outputs(self, events: list[Event]) -> list[tuple[str, str, Any]]:
        return self.reducer.tool_outputs(events) if self.reducer.tool_outputs else []

    def holds_tool_call(self, message: dict[str, Any], tool_call_id: str) -> bool:
        if self.reducer.holds_tool_call is not None:
            return self.reducer.holds_tool_call(message, tool_call_id)
        return any(p.get("toolCallId") == tool_call_id for p in message.get("parts", []))

    def fork_seed(self, data: Any) -> dict[str, Any] | None:
        return vercel.fork_seed(data)

    def new_message(self, message_id: str, role: str, parts: list[Any]) -> dict[str, Any]:
        return self.reducer.new_message(message_id, role, parts)

    def text_message(self, text: str) -> dict[str, Any]:
        return self.reducer.text_message(text)

    def text(self, message: dict[str, Any]) -> str:
        return self.reducer.text(message)

    def text_events(self, tokens: AsyncIterable[str], text_id: str) -> AsyncIterator[Event]:
        if self.reducer.text_events is None:
            raise AblyError(40003, 400, "unable to stream text; the codec has no text_events")
        return self.reducer.text_events(tokens, text_id)


def _explode(batch: InputBatch, event: Event) -> list[InputPart]:
    codec_extra, transport = batch.message_headers(event) if batch.message_headers else ({}, {})
    parts: list[InputPart] = []
    for part in batch.explode(event):
        part_type = batch.part_type_of(part)
        descriptor = batch.part_for(part_type)
        if descriptor is None:
            continue
        codec = {**write_fields(descriptor.fields, batch.kind, part), **codec_extra}
        codec["partType"] = part_type
        data = descriptor.data.encode(part) if descriptor.data else ""
        parts.append((data, codec, dict(transport)))
    if not parts:
        # At least one message, so the per-message headers (id, role) reach the wire.
        parts.append(("", {"kind": batch.kind, **codec_extra}, dict(transport)))
    return parts


def _reserve(seen: dict[str, str], literal: str, owner: str) -> None:
    holder = seen.get(literal)
    if holder is not None:
        raise AblyError(
            40003,
            400,
            f"unable to define codec; dispatch literal '{literal}' is declared by both {holder}"
            f" and {owner}",
        )
    seen[literal] = owner


def _no_reserved_keys(fields: Sequence[HeaderField], owner: str) -> None:
    for f in fields:
        if f.key in _RESERVED:
            raise AblyError(
                40003,
                400,
                f"unable to define codec; {owner} binds the driver-reserved header key '{f.key}'",
            )


def _validate(outputs: Sequence[Output], inputs: Sequence[Input]) -> None:
    """Refuse the tables JS `defineCodec` refuses: a wire kind or an event type described twice,
    a stream start that is another group's delta or end, a field on `kind` or `partType`."""
    kinds: dict[str, str] = {}
    sole: dict[str, str] = {}
    phases: set[str] = set()
    starts: dict[str, str] = {}
    for d in outputs:
        if isinstance(d, OutputEvent):
            owner = f"output event '{d.type}'"
            _reserve(sole, d.type, owner)
            _reserve(kinds, d.type, owner)
            _no_reserved_keys(d.fields, owner)
        elif isinstance(d, OutputStream):
            owner = f"output stream '{d.kind}'"
            _reserve(kinds, d.kind, owner)
            starts[d.start] = owner
            _reserve(sole, d.delta, owner)
            _reserve(sole, d.end, owner)
            phases.update((d.delta, d.end))
            _no_reserved_keys(d.fields, owner)
        else:
            _reserve(sole, d.type, f"dropped output '{d.type}'")
    for start, owner in starts.items():
        if start in phases:
            raise AblyError(
                40003,
                400,
                f"unable to define codec; stream start '{start}' ({owner}) collides with the"
                f" delta/end phase of {sole[start]}",
            )
    input_kinds: dict[str, str] = {}
    for i in inputs:
        owner = f"input {'event' if isinstance(i, InputEvent) else 'batch'} '{i.kind}'"
        _reserve(input_kinds, i.kind, owner)
        if isinstance(i, InputEvent):
            _no_reserved_keys(i.fields, owner)
            continue
        part_types: dict[str, str] = {}
        for part in i.parts:
            part_owner = f"{owner} part '{part.part_type}'"
            _reserve(part_types, part.part_type, part_owner)
            _no_reserved_keys(part.fields, part_owner)


def define_codec(
    *,
    outputs: Sequence[Output],
    inputs: Sequence[Input],
    reducer: Reducer,
    lifecycle: Callable[[], LifecyclePolicy] | None = None,
    adapter_tag: str | None = None,
    tool_call_key: str = "toolCallId",
) -> DefinedCodec:
    """A `Codec` from descriptor tables (JS `defineCodec()({output, input, reducer,
    decoderSynthesiseLifecycle, adapterTag})`). Raises AblyError 40003 for a table JS refuses.
    `lifecycle` makes a fresh `LifecyclePolicy` per decoder (keep its tracker inside);
    `tool_call_key`: the payload key naming the call in the codec's tool inputs."""
    return DefinedCodec(
        tuple(outputs), tuple(inputs), reducer, lifecycle, adapter_tag, tool_call_key
    )
