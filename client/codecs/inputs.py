"""The well-known client inputs every codec speaks (the JS codec factories `createUserMessage`,
`createRegenerate`, `createToolResult`, `createToolResultError`, `createToolApprovalResponse`).

Each returns the input event a codec encodes onto `ai-input`: {kind, ...} with the domain
message or the codec's payload. `Session` builds its inputs with them; an application calls
them to hand inputs to an `Encoder` directly.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "create_regenerate",
    "create_tool_approval_response",
    "create_tool_result",
    "create_tool_result_error",
    "create_user_message",
]

Input = dict[str, Any]


def create_user_message(message: dict[str, Any]) -> Input:
    """A user message in the codec's domain form (a UIMessage for the Vercel codec)."""
    return {"kind": "user-message", "message": message}


def create_regenerate(target: str | None = None, parent: str | None = None) -> Input:
    """A request to answer again: `target` the assistant codec-message-id regenerated, `parent`
    the user message the new answer hangs under (both also ride transport headers)."""
    event: Input = {"kind": "regenerate"}
    if target is not None:
        event["target"] = target
    if parent is not None:
        event["parent"] = parent
    return event


def create_tool_result(codec_message_id: str, payload: dict[str, Any]) -> Input:
    """A client tool's result for the call held by assistant message `codec_message_id`
    (Vercel payload: {toolCallId, output, forkSeed?})."""
    return {"kind": "tool-result", "codecMessageId": codec_message_id, "payload": payload}


def create_tool_result_error(codec_message_id: str, payload: dict[str, Any]) -> Input:
    """A client tool's failure (Vercel payload: {toolCallId, message, forkSeed?})."""
    return {"kind": "tool-result-error", "codecMessageId": codec_message_id, "payload": payload}


def create_tool_approval_response(codec_message_id: str, payload: dict[str, Any]) -> Input:
    """A user's decision on a tool call awaiting approval (Vercel payload: {toolCallId,
    approved, reason?})."""
    return {
        "kind": "tool-approval-response",
        "codecMessageId": codec_message_id,
        "payload": payload,
    }
