"""Vercel AI SDK UI message chunks for the tests that pipe an agent's output."""

from __future__ import annotations

from typing import Any


def text_chunks(text: str, text_id: str = "t") -> list[dict[str, Any]]:
    """One step of one text part, `text` in a single delta, finished with "stop"."""
    return [
        {"type": "start"},
        {"type": "start-step"},
        {"type": "text-start", "id": text_id},
        {"type": "text-delta", "id": text_id, "delta": text},
        {"type": "text-end", "id": text_id},
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "stop"},
    ]
