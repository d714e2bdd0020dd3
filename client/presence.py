"""Presence on a realtime channel: enter/update/leave, the member set (kept in step by SYNC and
PRESENCE events), and subscriptions to presence events.

Members this client entered are re-entered automatically when a re-attach is not RESUMED (the
relay may have dropped them), as the Ably SDKs do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from channel_relay.client.events import Subscription
from channel_relay.client.message import PresenceMessage, encode_data
from channel_relay.protocol.actions import Action, Flag, PresenceAction

if TYPE_CHECKING:
    from channel_relay.client.channel import Channel

__all__ = ["Presence", "PresenceListener"]

PresenceListener = Callable[[PresenceMessage], Any]


class Presence:
    """`channel.presence`. Members are keyed by clientId:connectionId."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.members: dict[str, PresenceMessage] = {}
        self._synced = asyncio.Event()
        self._syncing: set[str] | None = None
        self._own: dict[str, Any] = {}
        self._subscribers: list[tuple[PresenceListener | None, Subscription[PresenceMessage]]] = []

    async def enter(self, data: Any = None, *, client_id: str | None = None) -> None:
        """Enter this client (or `client_id`, for a key with a wildcard identity) with `data`.
        Attaches the channel first. Raises AblyError 91000 without a clientId."""
        await self._send(PresenceAction.ENTER, data, client_id)
        self._own[client_id or self.channel.client.client_id or ""] = data

    async def update(self, data: Any = None, *, client_id: str | None = None) -> None:
        """Change the data of an entered member (enters it if it is not present)."""
        await self._send(PresenceAction.UPDATE, data, client_id)
        self._own[client_id or self.channel.client.client_id or ""] = data

    async def leave(self, data: Any = None, *, client_id: str | None = None) -> None:
        """Leave the presence set."""
        self._own.pop(client_id or self.channel.client.client_id or "", None)
        await self._send(PresenceAction.LEAVE, data, client_id)

    async def get(
        self,
        *,
        wait_for_sync: bool = True,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[PresenceMessage]:
        """The current members (after the initial SYNC completes, unless told not to wait)."""
        await self.channel.attach()
        if wait_for_sync:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        return list(self.members.values())

    def subscribe(self, listener: PresenceListener | None = None) -> Subscription[PresenceMessage]:
        """Presence events (enter, update, leave, present) as they happen: a callback or an
        async iterator, like Channel.subscribe. Attaches in the background if needed."""
        entry: tuple[PresenceListener | None, Subscription[PresenceMessage]]
        subscription: Subscription[PresenceMessage] = Subscription(
            on_close=lambda: self._subscribers.remove(entry)
        )
        entry = (listener, subscription)
        self._subscribers.append(entry)
        if self.channel.state in ("initialized", "detached"):
            self.channel._spawn(self.channel.attach())
        return subscription

    async def _send(self, action: PresenceAction, data: Any, client_id: str | None) -> None:
        await self.channel.attach()
        item: dict[str, Any] = {"action": int(action)}
        wire_data, encoding = encode_data(data)
        if wire_data is not None:
            item["data"] = wire_data
        if encoding:
            item["encoding"] = encoding
        if client_id:
            item["clientId"] = client_id
        await self.channel.client.connection.send_and_ack(
            {"action": Action.PRESENCE, "channel": self.channel.name, "presence": [item]}
        )

    # From the channel

    def _on_attached(self, flags: Flag) -> None:
        if flags & Flag.HAS_PRESENCE:
            self._synced.clear()
            self._syncing = set(self.members)
        else:
            # No members on the relay: whatever we held is gone.
            for member in list(self.members.values()):
                self._emit(
                    PresenceMessage(
                        PresenceAction.LEAVE, member.client_id, member.connection_id, member.data
                    )
                )
            self.members.clear()
            self._syncing = None
            self._synced.set()
        if not flags & Flag.RESUMED and self._own:
            for client_id, data in list(self._own.items()):
                explicit = client_id if client_id != self.channel.client.client_id else None
                self.channel._spawn(self._send(PresenceAction.ENTER, data, explicit))

    def _on_message(self, message: dict[str, Any]) -> None:
        is_sync = message.get("action") == Action.SYNC
        if is_sync and self._syncing is None:
            self._syncing = set(self.members)
        for index, raw in enumerate(message.get("presence") or ()):
            event = PresenceMessage.from_wire(raw, message, index)
            if event.action == PresenceAction.LEAVE:
                self.members.pop(event.key, None)
            else:
                self.members[event.key] = event
                if self._syncing is not None:
                    self._syncing.discard(event.key)
            if not is_sync:
                self._emit(event)
        if is_sync:
            cursor = str(message.get("channelSerial") or "").partition(":")[2]
            if not cursor:
                for key in self._syncing or ():
                    gone = self.members.pop(key, None)
                    if gone is not None:
                        self._emit(
                            PresenceMessage(
                                PresenceAction.LEAVE, gone.client_id, gone.connection_id, gone.data
                            )
                        )
                self._syncing = None
                self._synced.set()

    def _emit(self, event: PresenceMessage) -> None:
        for listener, subscription in list(self._subscribers):
            if listener is not None:
                result = listener(event)
                if asyncio.iscoroutine(result):
                    self.channel._spawn(result)
            else:
                subscription.push(event)
