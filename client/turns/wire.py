"""@ably/ai-transport's wire vocabulary: message names, transport header keys, and helpers
to read and build `extras.ai.transport` / `extras.ai.codec`."""

from __future__ import annotations

from importlib import metadata
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
    "build_transport_headers",
    "channel_agent",
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
SDK_AGENT = "ai-transport-py"


def channel_agent(adapter_tag: str | None) -> str:
    """The channel's `agent` attach param a session announces (as the JS SDK's `channelAgent`:
    `ai-transport-js/<version>` plus `<adapterTag>/<version>`): this SDK, and the codec's
    adapter tag when it has one."""
    version = metadata.version("channel-relay")
    agents = [f"{SDK_AGENT}/{version}"]
    if adapter_tag:
        agents.append(f"{adapter_tag}/{version}")
    return " ".join(agents)


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


# The order @ably/ai-transport writes transport headers in (its buildTransportHeaders).
_HEADER_ORDER = (
    "role",
    "codec-message-id",
    "run-id",
    "run-client-id",
    "parent",
    "fork-of",
    "msg-regenerate",
    "supersedes",
    "invocation-id",
    "input-client-id",
    "input-codec-message-id",
    "event-id",
    "step-id",
    "step-start-serial",
    "step-client-id",
)


def build_transport_headers(**values: str | None) -> dict[str, str]:
    """Transport headers in the SDK's order; keyword names use "_" for "-" (run_id=...).
    None leaves a header out; so does "" for the headers the SDK writes only when truthy
    (parent, fork-of, msg-regenerate, supersedes, invocation-id, event-id)."""
    given = {k.replace("_", "-"): v for k, v in values.items()}
    unknown = set(given) - set(_HEADER_ORDER)
    if unknown:
        raise TypeError(f"unknown transport headers {sorted(unknown)}")
    optional_truthy = {
        "parent",
        "fork-of",
        "msg-regenerate",
        "supersedes",
        "invocation-id",
        "event-id",
    }
    headers: dict[str, str] = {}
    for key in _HEADER_ORDER:
        value = given.get(key)
        if value is None or (key in optional_truthy and not value):
            continue
        headers[key] = value
    return headers
