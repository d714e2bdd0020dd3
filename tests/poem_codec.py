"""The poem codec: a custom content model declared with `define_codec`, the same tables as
tests/interop/lib/poem_codec.mjs declares with the JS `defineCodec` (the two must stay in step:
the golden vectors and the cross-SDK tests hold them to the same wire).

Outputs: `begin` {messageId?}; streamed lines `line-start` {id, voice?} / `line-delta` {id, text}
/ `line-end` {id, voice?}; `mood` {value: calm | cheerful | grim, score?}; `aside` {text} (folded
into a second message of its own); the `note-*` family {body?, pinned?}; `end-poem` {reason};
`debug` is dropped. Inputs: `user-message` (text and data-* parts, one wire message each),
`regenerate` (a bare signal), `rate` {stars, comment}. A decoder meeting a run mid-way puts the
`begin` it missed before the first line.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from channel_relay.client.codecs.codec import LifecyclePolicy, LifecycleTracker
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
    DataCodec,
    bool_field,
    enum_field,
    json_data,
    json_field,
    str_field,
    text_data,
)

Event = dict[str, Any]
MOODS = ("calm", "cheerful", "grim")


def _lifecycle() -> LifecyclePolicy:
    tracker = LifecycleTracker([("begin", lambda ctx: [{"type": "begin"}])])

    def begun(run_id: str, codec: dict[str, str]) -> list[Event]:
        tracker.mark_emitted(run_id, "begin")
        return []

    def ended(run_id: str, codec: dict[str, str]) -> list[Event]:
        tracker.clear_scope(run_id)
        return []

    return LifecyclePolicy(
        on_discrete={"begin": begun, "end-poem": ended},
        on_stream_start=lambda run_id, codec: tracker.ensure_phases(run_id, {}),
    )


def _init() -> dict[str, Any]:
    return {"main": None, "aside": None, "lines": {}}


def _fold(state: dict[str, Any], event: Event, codec_message_id: str) -> dict[str, Any]:
    if state["main"] is None:
        state["main"] = {"id": codec_message_id, "role": "assistant", "parts": []}
    main = state["main"]
    kind = event["type"]
    if kind == "begin" and event.get("messageId"):
        main["id"] = event["messageId"]
    elif kind == "line-start":
        part = {"type": "line", "text": "", "state": "streaming"}
        if "voice" in event:
            part["voice"] = event["voice"]
        state["lines"][event.get("id")] = part
        main["parts"].append(part)
    elif kind == "line-delta":
        line = state["lines"].get(event.get("id"))
        if line is not None:
            line["text"] += event.get("text", "")
    elif kind == "line-end":
        line = state["lines"].get(event.get("id"))
        if line is not None:
            line["state"] = "done"
    elif kind == "mood":
        part = {"type": "mood", "value": event["value"]}
        if "score" in event:
            part["score"] = event["score"]
        main["parts"].append(part)
    elif kind == "aside":
        if state["aside"] is None:
            state["aside"] = {"id": f"{codec_message_id}:aside", "role": "assistant", "parts": []}
        state["aside"]["parts"].append({"type": "aside", "text": event.get("text", "")})
    elif kind.startswith("note-"):
        main["parts"].append({k: v for k, v in event.items()})
    elif kind == "end-poem":
        main["finished"] = event["reason"]
    return state


def _messages(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in (state["main"], state["aside"]) if m is not None]


async def _text_events(tokens: AsyncIterable[str], text_id: str) -> AsyncIterator[Event]:
    yield {"type": "begin"}
    yield {"type": "line-start", "id": text_id}
    async for token in tokens:
        yield {"type": "line-delta", "id": text_id, "text": token}
    yield {"type": "line-end", "id": text_id}
    yield {"type": "end-poem", "reason": "done"}


def _text(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message["parts"] if p["type"] in ("text", "line"))


def _line_delta(stream_id: str, delta: str, codec: dict[str, str]) -> list[Event]:
    return [{"type": "line-delta", "id": codec.get("id", stream_id), "text": delta}]


def _assemble(part: dict[str, Any], codec: dict[str, str], transport: dict[str, str]) -> Event:
    message = {
        "id": codec.get("messageId", ""),
        "role": transport.get("role", "user"),
        "parts": [part],
    }
    return {"message": message}


def _message_headers(event: Event) -> tuple[dict[str, str], dict[str, str]]:
    message = event["message"]
    return {"messageId": message["id"]}, {"role": message.get("role", "user")}


POEM = define_codec(
    adapter_tag="poem-codec",
    outputs=[
        OutputEvent("begin", fields=[str_field("messageId")]),
        OutputStream(
            "line",
            start="line-start",
            delta="line-delta",
            delta_field="text",
            end="line-end",
            stream_id=lambda event: event["id"],
            fields=[str_field("id"), str_field("voice")],
            delta_decode=_line_delta,
        ),
        OutputEvent("mood", fields=[enum_field("value", MOODS, "calm"), json_field("score")]),
        OutputEvent("aside", data=text_data("text")),
        OutputEvent("note-*", fields=[bool_field("pinned")], data=json_data("body")),
        OutputEvent("end-poem", fields=[enum_field("reason", ("done", "cut"), "done")]),
        # Tracing for the author's eyes only: no reader folds it.
        Drop("debug"),
    ],
    inputs=[
        InputBatch(
            "user-message",
            explode=lambda event: event["message"].get("parts") or [],
            parts=[
                Part("text", data=text_data("text")),
                Part(
                    "data-*",
                    fields=[str_field("id")],
                    data=DataCodec(lambda p: p.get("data"), lambda d: {"data": d}),
                ),
            ],
            message_headers=_message_headers,
            assemble=_assemble,
        ),
        InputEvent("regenerate", wire_only=True),
        InputEvent("rate", fields=[json_field("stars")], data=text_data("comment")),
    ],
    reducer=Reducer(
        init=_init, fold=_fold, get_messages=_messages, text=_text, text_events=_text_events
    ),
    lifecycle=_lifecycle,
)
