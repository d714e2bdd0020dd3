"""A channel's details as Ably's REST API reports them: activity and occupancy metrics."""

from __future__ import annotations

from typing import Any

from channel_relay.channels.channel import Channel
from channel_relay.protocol.actions import Flag

__all__ = ["channel_status", "idle_status", "named_status"]


def channel_status(channel: Channel) -> dict[str, Any]:
    modes = list(channel.attached.values())
    metrics = {
        "connections": len(modes),
        "publishers": sum(1 for m in modes if m & Flag.PUBLISH),
        "subscribers": sum(1 for m in modes if m & Flag.SUBSCRIBE),
        # Attachments allowed to enter (PRESENCE mode), whether or not they have entered.
        "presenceConnections": sum(1 for m in modes if m & Flag.PRESENCE),
        "presenceMembers": len(channel.presence.members),
        "presenceSubscribers": sum(1 for m in modes if m & Flag.PRESENCE_SUBSCRIBE),
    }
    return _details(channel.name, bool(modes), metrics)


_EMPTY = (
    "connections",
    "publishers",
    "subscribers",
    "presenceConnections",
    "presenceMembers",
    "presenceSubscribers",
)


def idle_status(name: str) -> dict[str, Any]:
    """The details of a channel that is stored but not loaded: nobody is attached to it."""
    return _details(name, False, dict.fromkeys(_EMPTY, 0))


def named_status(name: str, channel: Channel | None) -> dict[str, Any]:
    """The details `GET /channels/{name}` answers: on Ably the request itself activates the
    channel, so it reports active whether or not anyone is attached."""
    details = idle_status(name) if channel is None else channel_status(channel)
    details["status"]["isActive"] = True
    return details


def _details(name: str, active: bool, metrics: dict[str, int]) -> dict[str, Any]:
    return {
        "channelId": name,
        "name": name,
        "status": {"isActive": active, "occupancy": {"metrics": metrics}},
    }
