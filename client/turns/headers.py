"""The transport header names of @ably/ai-transport 0.8.0 (its `HEADER_*` constants), under
the same names and with the same values, for code that reads or stamps `extras.ai.transport`
(an `on_ably_message` hook, an `on_cancel` check). The package's entry exports the first
fourteen; the others are the rest of its `constants` module."""

from __future__ import annotations

__all__ = [
    "HEADER_CODEC_MESSAGE_ID",
    "HEADER_DISCRETE",
    "HEADER_ERROR_CODE",
    "HEADER_ERROR_MESSAGE",
    "HEADER_EVENT_ID",
    "HEADER_FORK_OF",
    "HEADER_INPUT_CLIENT_ID",
    "HEADER_INPUT_CODEC_MESSAGE_ID",
    "HEADER_INVOCATION_ID",
    "HEADER_MSG_REGENERATE",
    "HEADER_PARENT",
    "HEADER_ROLE",
    "HEADER_RUN_CLIENT_ID",
    "HEADER_RUN_ID",
    "HEADER_RUN_REASON",
    "HEADER_STATUS",
    "HEADER_STEER_CODEC_MESSAGE_IDS",
    "HEADER_STEP_CLIENT_ID",
    "HEADER_STEP_ID",
    "HEADER_STEP_REASON",
    "HEADER_STEP_START_SERIAL",
    "HEADER_STREAM",
    "HEADER_STREAM_ID",
    "HEADER_SUPERSEDES",
]

# Exported by the package's entry.
HEADER_CODEC_MESSAGE_ID = "codec-message-id"
HEADER_ERROR_CODE = "error-code"
HEADER_ERROR_MESSAGE = "error-message"
HEADER_FORK_OF = "fork-of"
HEADER_INPUT_CLIENT_ID = "input-client-id"
HEADER_MSG_REGENERATE = "msg-regenerate"
HEADER_PARENT = "parent"
HEADER_ROLE = "role"
HEADER_RUN_CLIENT_ID = "run-client-id"
HEADER_RUN_ID = "run-id"
HEADER_RUN_REASON = "run-reason"
HEADER_STATUS = "status"
HEADER_STREAM = "stream"
HEADER_STREAM_ID = "stream-id"

# The rest of its constants module.
HEADER_DISCRETE = "discrete"
HEADER_EVENT_ID = "event-id"
HEADER_INPUT_CODEC_MESSAGE_ID = "input-codec-message-id"
HEADER_INVOCATION_ID = "invocation-id"
HEADER_STEER_CODEC_MESSAGE_IDS = "steer-codec-message-ids"
HEADER_STEP_CLIENT_ID = "step-client-id"
HEADER_STEP_ID = "step-id"
HEADER_STEP_REASON = "step-reason"
HEADER_STEP_START_SERIAL = "step-start-serial"
HEADER_SUPERSEDES = "supersedes"
