"""The codec interface: what the turn layer asks of a content codec (the Python face of
@ably/ai-transport's `defineCodec`), and the codec-agnostic output decoder driving it.

The turn layer owns the wire around the content: transport headers, runs, steps, streams
(create, appends, closing append), the conversation tree. A codec owns the content: how one
domain event (a Vercel UIMessageChunk, your own) becomes a discrete `ai-output` or one
operation on a streamed one, how a client input becomes `ai-input` parts, which events a
stream or a discrete message decodes to, and how the events of an assistant message fold back
into domain messages (usually one; JS `getMessages` may return several for a node). Events and
messages are plain dicts (messages {id, role, parts}); the codec headers (`extras.ai.codec`) are
strings, `kind` first.

Most codecs are best declared with `channel_relay.client.codecs.define.define_codec` (the JS
`defineCodec`: descriptor tables, header fields, a reducer, a lifecycle policy); a hand-written
class implementing `Codec` works as well.

`channel_relay.client.codecs.vercel.CODEC` is the Vercel AI SDK UIMessage codec, the default of
`Session`, `AgentSession` and `Encoder`; `channel_relay.client.codecs.openai.CODEC` is the OpenAI
Responses codec; pass another `Codec` to speak another content model. A `WireCodec` is the wire
half alone (encoding, and decoding to events), enough for `Encoder` and `OutputDecoder`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Container
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "Codec",
    "InputPart",
    "LifecyclePolicy",
    "LifecycleTracker",
    "MessageDecoder",
    "OutputDecoder",
    "Stream",
    "WireCodec",
    "WireOp",
    "lifecycle_policy",
    "stream_events",
]

Event = dict[str, Any]
DomainMessage = dict[str, Any]
# One ai-input message of an input: (data, codec headers, transport headers of the payload).
InputPart = tuple[Any, dict[str, str], dict[str, str]]


@dataclass(slots=True)
class WireOp:
    """What one output event becomes on the wire.

    op "discrete": publish an ai-output with `data` and `codec` (a `stream_id` here names a
    stream that never opened, as a tool input sent whole). "create": open the stream
    `stream_id` (an ai-output with data "" and status streaming). "append": append `data`.
    "close": the closing append (data "", status complete) with `codec` as closing headers.
    "none": nothing (an event the wire does not carry). `ephemeral`: keep out of history.
    """

    op: Literal["discrete", "create", "append", "close", "none"]
    codec: dict[str, str] = field(default_factory=dict)
    data: Any = ""
    stream_id: str | None = None
    ephemeral: bool = False


class WireCodec(Protocol):
    """The wire of a codec: what the `Encoder` and the `OutputDecoder` need.

    `stream_kinds`: the codec `kind`s whose ai-outputs stream (JS `stream` descriptors); every
    other kind is discrete (JS `event` descriptors).
    """

    stream_kinds: Container[str]

    def encode_output(self, event: Event, open_streams: set[str], message_id: str | None) -> WireOp:
        """The wire operation for one output event. `open_streams`: the stream ids this
        writer opened; `message_id`: the assistant message id, for events that carry one."""
        ...

    def encode_input(self, event: Event) -> tuple[bool, list[InputPart]]:
        """How one client input goes on the `ai-input` wire: (one atomic batch?, parts).
        Inputs are {kind, ...}: user-message {message}, regenerate, and the tool inputs
        tool-result, tool-result-error, tool-approval-response {payload}."""
        ...

    def decode_discrete(self, kind: str, codec: dict[str, str], data: Any) -> list[Event]:
        """The events of one discrete ai-output."""
        ...

    def stream_start(self, kind: str, codec: dict[str, str]) -> list[Event]:
        """The events opening a stream, from its opening codec headers."""
        ...

    def stream_delta(
        self, kind: str, codec: dict[str, str], stream_id: str, delta: str
    ) -> list[Event]: ...

    def stream_end(
        self, kind: str, codec: dict[str, str], closing: dict[str, str], stream_id: str, text: str
    ) -> list[Event]:
        """The events closing a complete stream (`closing`: its closing codec headers, `text`:
        all it streamed). A cancelled stream closes without events."""
        ...


class Codec(WireCodec, Protocol):
    """A content codec: pure functions over dicts; the turn layer does the I/O.

    `adapter_tag`: the codec's Ably agent identifier (JS `adapterTag`), sent as
    `<tag>/<version>` in the channel's `agent` attach param by sessions using it; None for none.
    `tool_call_key`: the payload key naming the tool call in tool inputs (Vercel `toolCallId`,
    OpenAI `call_id`).
    """

    adapter_tag: str | None
    tool_call_key: str

    def fold(self, events: list[Event], message_id: str) -> list[DomainMessage]:
        """The assistant messages a sequence of output events of one codec-message-id builds,
        in order (JS `getMessages` over the node's projection): usually one; empty when the
        events build none yet."""
        ...

    def decode_input_part(self, data: Any, codec: dict[str, str]) -> dict[str, Any]:
        """One part of a user message from one of its `ai-input` messages."""
        ...

    def apply_input(
        self, message: DomainMessage, codec: dict[str, str], kind: str, data: Any
    ) -> None:
        """Fold a client's tool input (approval response, tool result) into the assistant
        message holding the tool call."""
        ...

    def tool_outputs(self, events: list[Event]) -> list[tuple[str, str, Any]]:
        """The tool results among output events, as (tool call id, input kind, input data):
        an agent's answer to a call made in an earlier message of its run."""
        ...

    def holds_tool_call(self, message: DomainMessage, tool_call_id: str) -> bool: ...

    def fork_seed(self, data: Any) -> dict[str, Any] | None:
        """The validated `forkSeed` of a tool-result envelope ({messages: [{codecMessageId,
        message}]}), or None."""
        ...

    def new_message(self, message_id: str, role: str, parts: list[Any]) -> DomainMessage:
        """The message of `role` made of `parts`: a user input's decoded parts
        (`decode_input_part` gives each; `message_id`: the codec's own message id, else the
        codec-message-id), or none for a node whose codec has built nothing yet."""
        ...

    def text_message(self, text: str) -> DomainMessage:
        """A user message of one text: what `Session.send("...")` sends."""
        ...

    def text(self, message: DomainMessage) -> str:
        """The text of a message, its text parts joined."""
        ...

    def text_events(self, tokens: AsyncIterable[str], text_id: str) -> AsyncIterator[Event]:
        """The output events streaming `tokens` as one text of an assistant message: what
        `AgentRun.stream_text` pipes."""
        ...


@dataclass(slots=True)
class LifecycleTracker:
    """Which lifecycle phases a decoder has seen per scope (a run), and the events that stand
    in for the ones it missed (JS `createLifecycleTracker`): `phases` is the ordered list of
    (key, build) where build(context) returns the phase's synthetic events."""

    phases: list[tuple[str, Callable[[dict[str, Any]], list[Event]]]]
    _emitted: dict[str, set[str]] = field(default_factory=dict)

    def ensure_phases(self, scope: str, context: dict[str, Any]) -> list[Event]:
        """The synthetic events of every phase not seen yet in `scope`, now marked seen."""
        emitted = self._emitted.setdefault(scope, set())
        events: list[Event] = []
        for key, build in self.phases:
            if key not in emitted:
                emitted.add(key)
                events += build(context)
        return events

    def mark_emitted(self, scope: str, key: str) -> None:
        self._emitted.setdefault(scope, set()).add(key)

    def reset_phase(self, scope: str, key: str) -> None:
        """Make a repeating phase (a step) due again."""
        self._emitted.get(scope, set()).discard(key)

    def clear_scope(self, scope: str) -> None:
        self._emitted.pop(scope, None)


@dataclass(slots=True)
class LifecyclePolicy:
    """A decoder's repair of a run it meets mid-way (JS `LifecyclePolicy`, made fresh per decoder
    by a codec's `decoder_lifecycle`): `on_discrete[kind](run_id, codec headers)` runs before a
    discrete output of that kind is decoded, `on_stream_start(run_id, codec headers)` before a
    stream's first sight; each returns events to put before the decoded ones."""

    on_discrete: dict[str, Callable[[str, dict[str, str]], list[Event]]] = field(
        default_factory=dict
    )
    on_stream_start: Callable[[str, dict[str, str]], list[Event]] | None = None

    def discrete_lead_in(self, kind: str, run_id: str, codec: dict[str, str]) -> list[Event]:
        repair = self.on_discrete.get(kind)
        return repair(run_id, codec) if repair is not None else []

    def stream_lead_in(self, run_id: str, codec: dict[str, str]) -> list[Event]:
        start = self.on_stream_start
        return start(run_id, codec) if start is not None else []


def lifecycle_policy(codec: object) -> LifecyclePolicy | None:
    """A fresh lifecycle policy from the codec's `decoder_lifecycle()`, a method a codec has only
    when it repairs runs met mid-way (the JS `decoderSynthesiseLifecycle`)."""
    make = getattr(codec, "decoder_lifecycle", None)
    return make() if callable(make) else None


@dataclass(slots=True)
class Stream:
    """A streamed ai-output as a reader has seen it so far."""

    kind: str
    stream_id: str
    codec: dict[str, str]
    text: str = ""
    version: str = ""
    status: str = "streaming"
    closing: dict[str, str] = field(default_factory=dict)


def stream_events(codec: WireCodec, stream: Stream) -> list[Event]:
    """The events a stream seen so far amounts to (its start, all its text as one delta, its
    end once complete): how a message is rebuilt from any mix of live appends and history."""
    events = codec.stream_start(stream.kind, stream.codec)
    if stream.text:
        events += codec.stream_delta(stream.kind, stream.codec, stream.stream_id, stream.text)
    if stream.status == "complete":
        events += codec.stream_end(
            stream.kind, stream.codec, stream.closing, stream.stream_id, stream.text
        )
    return events


class OutputDecoder:
    """Turns ai-output messages into a codec's output events, keeping each streamed message's
    text (the JS decoder core, with the codec's build hooks).

    A stream is keyed by its message serial. An append whose version serial does not grow past
    what was seen is dropped (a replay or history overlap), an update carries the whole text
    (the first sighting of a stream, or history) and yields only what is new.
    """

    def __init__(self, codec: WireCodec) -> None:
        self.codec = codec
        self.streams: dict[str, Stream] = {}

    def decode(
        self,
        serial: str,
        version: str,
        is_append: bool,
        data: Any,
        transport: dict[str, str],
        codec: dict[str, str],
    ) -> list[Event]:
        kind = codec.get("kind", "")
        if transport.get("stream") != "true" or kind not in self.codec.stream_kinds:
            return self.codec.decode_discrete(kind, codec, data)
        text = data if isinstance(data, str) else ""
        status = transport.get("status", "streaming")
        stream = self.streams.get(serial)
        events: list[Event] = []
        if stream is None:
            sid = transport.get("stream-id") or codec.get("id") or codec.get("toolCallId") or ""
            stream = Stream(kind, sid, dict(codec), version=version)
            self.streams[serial] = stream
            events += self.codec.stream_start(kind, codec)
            delta = text
        else:
            if version and stream.version and version <= stream.version:
                return []
            stream.version = version or stream.version
            if stream.status != "streaming":
                return []
            if is_append:
                delta = text
            elif text.startswith(stream.text):
                delta = text[len(stream.text) :]
            else:
                # A rewrite (updateMessage recovery): the whole text is new.
                stream.text, delta = "", text
        if delta:
            stream.text += delta
            events += self.codec.stream_delta(kind, stream.codec, stream.stream_id, delta)
        if status == "complete":
            stream.status = status
            stream.closing = dict(codec)
            events += self.codec.stream_end(
                kind, stream.codec, codec, stream.stream_id, stream.text
            )
        elif status == "cancelled":
            # A cancelled stream closes silently, as the SDK's decoder does.
            stream.status = status
        return events


class MessageDecoder:
    """What a JS codec's `createDecoder()` does: inbound messages to (inputs, outputs).

    `decode_input` reads one `ai-input` message (data, codec headers, transport headers).
    `lifecycle` repairs a mid-run join: the events it puts before a discrete output of a run
    (`discrete_lead_in`) or before a stream's first sight (`stream_lead_in`).
    """

    def __init__(
        self,
        codec: WireCodec,
        decode_input: Callable[[Any, dict[str, str], dict[str, str]], list[dict[str, Any]]],
        lifecycle: LifecyclePolicy | None = None,
    ) -> None:
        self.codec = codec
        self.outputs = OutputDecoder(codec)
        self.lifecycle = lifecycle
        self._decode_input = decode_input

    def decode(
        self,
        name: str | None,
        data: Any,
        transport: dict[str, str],
        codec: dict[str, str],
        *,
        serial: str = "",
        version: str = "",
        action: str = "create",
    ) -> tuple[list[dict[str, Any]], list[Event]]:
        """`action`: create, append or update (a message.update, e.g. a first sight). An
        append carries no name: it belongs to the stream its serial opened."""
        tracked = serial in self.outputs.streams
        if name == "ai-input" and not tracked:
            if action != "create" or transport.get("stream") == "true":
                return [], []
            return self._decode_input(data, codec, transport), []
        if name != "ai-output" and not tracked:
            return [], []
        run_id = transport.get("run-id", "")
        if action == "create" and transport.get("stream") != "true":
            kind = codec.get("kind", "")
            lead_in = self.discrete_lead_in(kind, run_id, codec)
            return [], lead_in + self.codec.decode_discrete(kind, codec, data)
        events = self.outputs.decode(
            serial, version or serial, action == "append", data, transport, codec
        )
        if not tracked and serial in self.outputs.streams:
            events = self.stream_lead_in(run_id, codec) + events
        return [], events

    def discrete_lead_in(self, kind: str, run_id: str, codec: dict[str, str]) -> list[Event]:
        return self.lifecycle.discrete_lead_in(kind, run_id, codec) if self.lifecycle else []

    def stream_lead_in(self, run_id: str, codec: dict[str, str]) -> list[Event]:
        return self.lifecycle.stream_lead_in(run_id, codec) if self.lifecycle else []
