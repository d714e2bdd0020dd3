"""The encoder core: what a codec's events become on the channel, with no I/O.

The same rules as @ably/ai-transport's encoder core, so the messages are byte-identical:
- a discrete message carries transport headers {caller headers..., payload headers...,
  codec-message-id (when given), stream: "false"} (plus discrete: "true" inside an atomic batch),
  and its codec headers; the codec tier is left out when empty;
- a stream opens with a message whose transport adds stream "true", status "streaming" and its
  stream-id; each append repeats all its headers (an append replaces extras); the closing
  append layers the closing headers over them with status "complete" (or "cancelled").

`EncoderCore` returns `Write`s; the caller performs them in order, remembering the serial the
relay gives each stream's opening message (an append names its stream, not a serial).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from channel_relay.client.codecs import vercel
from channel_relay.client.codecs.codec import WireCodec
from channel_relay.client.errors import AblyError
from channel_relay.client.message import Message
from channel_relay.client.turns.wire import AI_INPUT, AI_OUTPUT, ai_extras

__all__ = ["Encoder", "EncoderCore", "Write"]


@dataclass(slots=True)
class Write:
    """One channel operation. "publish": `messages` in one atomic publish (when `stream_id` is
    set it opens that stream: remember the serial of its message). "append": `messages[0]`
    appended to the message that opened `stream_id`."""

    op: Literal["publish", "append"]
    messages: list[Message]
    stream_id: str | None = None


@dataclass(slots=True)
class _Stream:
    name: str
    transport: dict[str, str]
    codec: dict[str, str]
    accumulated: str
    done: bool = False


@dataclass(slots=True)
class EncoderCore:
    """Header merging and stream tracking for one writer (an agent step, a client session).

    `headers`: transport headers stamped on every message (JS `EncoderOptions.extras.headers`);
    `message_id`: the fallback domain message id a codec may use (the Vercel `start` chunk).
    Per-write `headers` and `codec_message_id` are JS `WriteOptions`.
    """

    headers: dict[str, str] = field(default_factory=dict)
    message_id: str | None = None
    streams: dict[str, _Stream] = field(default_factory=dict)

    def _transport(
        self, payload: dict[str, str] | None, headers: dict[str, str] | None, cmid: str | None
    ) -> dict[str, str]:
        transport = {**self.headers, **(headers or {}), **(payload or {})}
        if cmid is not None:
            transport["codec-message-id"] = cmid
        return transport

    def discrete(
        self,
        name: str,
        data: Any,
        codec: dict[str, str],
        *,
        transport: dict[str, str] | None = None,
        ephemeral: bool = False,
        headers: dict[str, str] | None = None,
        codec_message_id: str | None = None,
        batch: bool = False,
    ) -> Message:
        """One discrete message (`batch`: a part of an atomic batch publish)."""
        merged = self._transport(transport, headers, codec_message_id)
        merged["stream"] = "false"
        if batch:
            merged["discrete"] = "true"
        return Message(name=name, data=data, extras=ai_extras(merged, codec or None, ephemeral))

    def publish(self, name: str, data: Any, codec: dict[str, str], **options: Any) -> Write:
        return Write("publish", [self.discrete(name, data, codec, **options)])

    def start_stream(
        self,
        stream_id: str,
        name: str,
        data: str,
        codec: dict[str, str],
        *,
        headers: dict[str, str] | None = None,
        codec_message_id: str | None = None,
    ) -> Write:
        transport = self._transport(None, headers, codec_message_id)
        transport.update({"stream": "true", "status": "streaming", "stream-id": stream_id})
        self.streams[stream_id] = _Stream(name, transport, dict(codec), data)
        return Write(
            "publish",
            [Message(name=name, data=data, extras=ai_extras(transport, codec or None))],
            stream_id,
        )

    def is_open(self, stream_id: str) -> bool:
        stream = self.streams.get(stream_id)
        return stream is not None and not stream.done

    def _stream(self, stream_id: str) -> _Stream:
        stream = self.streams.get(stream_id)
        if stream is None:
            raise AblyError(40003, 400, f"No active stream for streamId '{stream_id}'")
        return stream

    def append(self, stream_id: str, data: str) -> Write:
        stream = self._stream(stream_id)
        stream.accumulated += data
        extras = ai_extras(dict(stream.transport), dict(stream.codec) or None)
        return Write("append", [Message(data=data, extras=extras)], stream_id)

    def close_stream(
        self,
        stream_id: str,
        data: str = "",
        codec: dict[str, str] | None = None,
        *,
        status: str = "complete",
        headers: dict[str, str] | None = None,
    ) -> Write:
        stream = self._stream(stream_id)
        stream.accumulated += data
        stream.done = True
        transport = {**stream.transport, **self.headers, **(headers or {})}
        transport["status"] = status
        merged = {**stream.codec, **(codec or {})}
        extras = ai_extras(transport, merged or None)
        return Write("append", [Message(data=data, extras=extras)], stream_id)

    def cancel_streams(self, headers: dict[str, str] | None = None) -> list[Write]:
        """The cancelled closing append of every stream still open."""
        return [
            self.close_stream(sid, status="cancelled", headers=headers)
            for sid, stream in self.streams.items()
            if not stream.done
        ]


@dataclass(slots=True)
class Encoder(EncoderCore):
    """A codec's encoder (JS `codec.createEncoder(writer, options)`): `output()` for the
    agent's output events, `input()` for a client's inputs; `codec` is the Vercel UIMessage
    codec unless given."""

    codec: WireCodec = vercel.CODEC

    def output(
        self,
        chunk: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        codec_message_id: str | None = None,
    ) -> list[Write]:
        op = self.codec.encode_output(chunk, set(self.streams), self.message_id)
        opts: dict[str, Any] = {"headers": headers, "codec_message_id": codec_message_id}
        sid = op.stream_id or ""
        if op.op == "discrete":
            if op.stream_id is not None:
                # A tool input that never streamed: the SDK publishes it without the write's
                # options (so without a per-write codec-message-id).
                opts = {}
            return [self.publish(AI_OUTPUT, op.data, op.codec, ephemeral=op.ephemeral, **opts)]
        if op.op == "create":
            return [self.start_stream(sid, AI_OUTPUT, "", op.codec, **opts)]
        if op.op == "append":
            return [self.append(sid, op.data)]
        if op.op == "close":
            return [self.close_stream(sid, "", op.codec)]
        return []

    def input(
        self,
        event: dict[str, Any],
        *,
        headers: dict[str, str] | None = None,
        codec_message_id: str | None = None,
    ) -> Write:
        batch, parts = self.codec.encode_input(event)
        messages = [
            self.discrete(
                AI_INPUT,
                data,
                codec,
                transport=transport,
                headers=headers,
                codec_message_id=codec_message_id,
                batch=batch,
            )
            for data, codec, transport in parts
        ]
        return Write("publish", messages)
