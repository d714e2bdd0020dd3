"""The numbers of Ably's wire: ProtocolMessage actions, flags, message and presence actions."""

from __future__ import annotations

from enum import IntEnum, IntFlag

__all__ = [
    "DEFAULT_MODES",
    "MODE_FLAGS",
    "MODE_NAMES",
    "Action",
    "Flag",
    "MessageAction",
    "PresenceAction",
]


class Action(IntEnum):
    HEARTBEAT = 0
    ACK = 1
    NACK = 2
    CONNECT = 3
    CONNECTED = 4
    DISCONNECT = 5
    DISCONNECTED = 6
    CLOSE = 7
    CLOSED = 8
    ERROR = 9
    ATTACH = 10
    ATTACHED = 11
    DETACH = 12
    DETACHED = 13
    PRESENCE = 14
    MESSAGE = 15
    SYNC = 16
    AUTH = 17
    ACTIVATE = 18
    OBJECT = 19
    OBJECT_SYNC = 20
    ANNOTATION = 21


class Flag(IntFlag):
    HAS_PRESENCE = 1 << 0
    HAS_BACKLOG = 1 << 1
    RESUMED = 1 << 2
    TRANSIENT = 1 << 4
    ATTACH_RESUME = 1 << 5
    HAS_OBJECTS = 1 << 7
    PRESENCE = 1 << 16
    PUBLISH = 1 << 17
    SUBSCRIBE = 1 << 18
    PRESENCE_SUBSCRIBE = 1 << 19
    ANNOTATION_PUBLISH = 1 << 21
    ANNOTATION_SUBSCRIBE = 1 << 22
    OBJECT_SUBSCRIBE = 1 << 24
    OBJECT_PUBLISH = 1 << 25


# The channel modes a client may request on ATTACH, and the capability operation each needs.
MODE_FLAGS: dict[Flag, str] = {
    Flag.PRESENCE: "presence",
    Flag.PUBLISH: "publish",
    Flag.SUBSCRIBE: "subscribe",
    Flag.PRESENCE_SUBSCRIBE: "subscribe",
    Flag.ANNOTATION_PUBLISH: "annotation-publish",
    Flag.ANNOTATION_SUBSCRIBE: "annotation-subscribe",
    Flag.OBJECT_SUBSCRIBE: "object-subscribe",
    Flag.OBJECT_PUBLISH: "object-publish",
}

# The mode names of the `modes` attach param ("presence,subscribe"), as ably-js spells them.
MODE_NAMES: dict[str, Flag] = {mode.name.lower(): mode for mode in MODE_FLAGS if mode.name}

# Modes granted when an ATTACH requests none: Ably's default set (ably-js's
# attachWithInvalidChannelParams expects exactly these; no annotation-subscribe or objects).
DEFAULT_MODES = (
    Flag.PRESENCE
    | Flag.PUBLISH
    | Flag.SUBSCRIBE
    | Flag.PRESENCE_SUBSCRIBE
    | Flag.ANNOTATION_PUBLISH
)


class MessageAction(IntEnum):
    CREATE = 0
    UPDATE = 1
    DELETE = 2
    META = 3
    SUMMARY = 4
    APPEND = 5


class PresenceAction(IntEnum):
    ABSENT = 0
    PRESENT = 1
    ENTER = 2
    LEAVE = 3
    UPDATE = 4
