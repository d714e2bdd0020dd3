"""@ably/ai-transport's wire vocabulary: message names, transport header keys, and helpers
to read and build `extras.ai.transport` / `extras.ai.codec`."""

from __future__ import annotations

from typing import Any

from channel_relay.client.message import Message

__all__ = [
    "AI_CANCEL",
    "AI_INPUT",
    "AI_OUTPUT",
    "LIFECYCLE",
    "RUN_END",
    "RUN_RESUME",
    "RUN_START",
    "RUN_SUSPEND",
    "STEP_END",
    "STEP_START",
    "ai_extras",
    "codec_headers",
    "transport_headers",
]

AI_INPUT = "ai-input"
AI_OUTPUT = "ai-output"
AI_CANCEL = "ai-cancel"
RUN_START = "ai-run-start"
RUN_RESUME = "ai-run-resume"
RUN_SUSPEND = "ai-run-suspend"
RUN_END = "ai-run-end"
STEP_START = "ai-step-start"
STEP_END = "ai-step-end"
LIFECYCLE = frozenset({RUN_START, RUN_RESUME, RUN_SUSPEND, RUN_END})


def _ai(message: Message) -> dict[str, Any]:
    extras = message.extras if isinstance(message.extras, dict) else {}
    ai = extras.get("ai")
    return ai if isinstance(ai, dict) else {}


def transport_headers(message: Message) -> dict[str, str]:
    """extras.ai.transport (empty when absent: not an SDK message)."""
    headers = _ai(message).get("transport")
    return headers if isinstance(headers, dict) else {}


def codec_headers(message: Message) -> dict[str, str]:
    """extras.ai.codec (empty when absent)."""
    headers = _ai(message).get("codec")
    return headers if isinstance(headers, dict) else {}


def ai_extras(
    transport: dict[str, str], codec: dict[str, str] | None = None, ephemeral: bool = False
) -> dict[str, Any]:
    """The extras of an SDK message."""
    ai: dict[str, Any] = {"transport": transport}
    if codec is not None:
        ai["codec"] = codec
    extras: dict[str, Any] = {"ai": ai}
    if ephemeral:
        extras["ephemeral"] = True
    return extras
