"""A realtime channel: attach/detach, subscribe, publish (with serials), mutations, history.

Continuity: the channel remembers the channelSerial of the last message it received and
re-attaches from it after any reconnect; the relay then replays what was missed and flags the
ATTACHED as RESUMED. An ATTACHED without RESUMED on a re-attach means messages may be lost:
the channel emits "continuity_lost" with a ContinuityLostError (code 80006) and subscriptions
created with `raise_on_gap=True` raise it; `history(until_attach=True)` fills the gap.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from channel_relay.client.errors import (
    AblyError,
    ChannelFailedError,
    ContinuityLostError,
    error_from_info,
)
from channel_relay.client.events import EventEmitter, Subscription
from channel_relay.client.message import Message, encode_data
from channel_relay.client.presence import Presence
from channel_relay.client.rest import PaginatedResult
from channel_relay.protocol.actions import Action, Flag, MessageAction

if TYPE_CHECKING:
    from channel_relay.client.realtime import Realtime

__all__ = ["Channel", "ChannelState", "MessageListener"]

ATTACH_TIMEOUT = 10.0
MessageListener = Callable[[Message], Any]


class ChannelState(enum.StrEnum):
    INITIALIZED = "initialized"
    ATTACHING = "attaching"
    ATTACHED = "attached"
    DETACHING = "detaching"
    DETACHED = "detached"
    SUSPENDED = "suspended"
    FAILED = "failed"


class _Subscriber:
    __slots__ = ("listener", "names", "raise_on_gap", "subscription")

    def __init__(
        self,
        names: frozenset[str] | None,
        listener: MessageListener | None,
        subscription: Subscription[Message] | None,
        raise_on_gap: bool,
    ) -> None:
        self.names = names
        self.listener = listener
        self.subscription = subscription
        self.raise_on_gap = raise_on_gap


class Channel(EventEmitter):
    """Get one with `client.channels.get(name)`. Events: "state" (state, error),
    "continuity_lost" (ContinuityLostError), "attached" (resumed: bool)."""

    def __init__(
        self,
        client: Realtime,
        name: str,
        *,
        params: dict[str, str] | None = None,
        modes: Flag | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.name = name
        self.params = params
        self.modes = modes
        self.state = ChannelState.INITIALIZED
        self.error: AblyError | None = None
        # The attach point of the last non-resumed ATTACHED (ably-js's attachSerial).
        self.attach_serial: str | None = None
        # The serial of the last event received: where a re-attach resumes from.
        self.channel_serial: str | None = None
        self.granted_modes = Flag(0)
        self.presence = Presence(self)
        self._subscribers: list[_Subscriber] = []
        self._state_changed = asyncio.Event()
        self._was_attached = False

    # Attach / detach

    async def attach(self, timeout: float = ATTACH_TIMEOUT) -> None:  # noqa: ASYNC109
        """Attach (if not attached) and wait for ATTACHED.

        Raises ChannelFailedError (e.g. 40160 not permitted) or TimeoutError (after `timeout`).
        """
        if self.state == ChannelState.ATTACHED:
            return
        if self.state != ChannelState.ATTACHING:
            self._set_state(ChannelState.ATTACHING)
            await self._send_attach()
        await self._wait_for(ChannelState.ATTACHED, timeout)

    async def detach(self, timeout: float = ATTACH_TIMEOUT) -> None:  # noqa: ASYNC109
        """Detach and wait for DETACHED; the channel stops receiving messages."""
        if self.state in (ChannelState.INITIALIZED, ChannelState.DETACHED):
            return
        self._set_state(ChannelState.DETACHING)
        await self.client.connection.send({"action": Action.DETACH, "channel": self.name})
        await self._wait_for(ChannelState.DETACHED, timeout)

    async def _send_attach(self) -> None:
        message: dict[str, Any] = {"action": Action.ATTACH, "channel": self.name}
        if self.params:
            message["params"] = self.params
        if self.modes:
            message["flags"] = int(self.modes)
        if self.channel_serial:
            message["channelSerial"] = self.channel_serial
        await self.client.connection.send(message)

    async def _wait_for(self, state: ChannelState, timeout: float) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while self.state != state:
                if self.state == ChannelState.FAILED:
                    error = self.error or ChannelFailedError(90000, 500, "Channel failed")
                    raise ChannelFailedError(error.code, error.status, error.message)
                self._state_changed.clear()
                await self._state_changed.wait()

    # Subscribing

    def subscribe(
        self,
        listener: MessageListener | None = None,
        *,
        name: str | Iterable[str] | None = None,
        raise_on_gap: bool = False,
    ) -> Subscription[Message]:
        """Receive messages (all, or only those named `name`). With `listener` each message is
        passed to it (a function or a coroutine function); without, iterate the returned
        Subscription: `async for message in channel.subscribe(): ...`. Attaches the channel in
        the background if it is not attached (await attach() to know it is).
        `raise_on_gap=True`: the iterator raises ContinuityLostError when continuity is lost."""
        names = frozenset([name] if isinstance(name, str) else name) if name else None
        subscriber: _Subscriber
        subscription: Subscription[Message] = Subscription(
            on_close=lambda: self._subscribers.remove(subscriber)
        )
        subscriber = _Subscriber(names, listener, None if listener else subscription, raise_on_gap)
        self._subscribers.append(subscriber)
        if self.state in (ChannelState.INITIALIZED, ChannelState.DETACHED):
            self._spawn(self.attach())
        return subscription

    def unsubscribe(self) -> None:
        """Remove every subscriber (their iterators end)."""
        for subscriber in list(self._subscribers):
            if subscriber.subscription is not None:
                subscriber.subscription.close()
        self._subscribers.clear()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # Publishing

    async def publish(
        self,
        name: str | Message | dict[str, Any] | list[Message | dict[str, Any]] | None = None,
        data: Any = None,
        *,
        extras: dict[str, Any] | None = None,
        id: str | None = None,
    ) -> list[str]:
        """Publish one message (`name`, `data`) or a list of messages atomically (one
        ProtocolMessage); returns their serials once the relay has ACKed them.

        Raises AblyError from the NACK (40160 not permitted, 40009 too large, ...).
        """
        if isinstance(name, list):
            messages = [_as_message(m) for m in name]
        elif isinstance(name, Message | dict):
            messages = [_as_message(name)]
        else:
            messages = [Message(name=name, data=data, extras=extras, id=id)]
        res = await self.client.connection.send_and_ack(
            {
                "action": Action.MESSAGE,
                "channel": self.name,
                "messages": [m.to_wire() for m in messages],
            }
        )
        return list(res[0].get("serials") or []) if res else []

    def mutate(
        self,
        action: MessageAction,
        serial: str,
        *,
        name: str | None = None,
        data: Any = None,
        extras: dict[str, Any] | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> asyncio.Future[list[dict[str, Any]]]:
        """Send an update/delete/append of the message `serial` without waiting; the future
        resolves on the ACK. Successive calls go out in call order."""
        item: dict[str, Any] = {"action": int(action), "serial": serial}
        wire_data, encoding = encode_data(data)
        if name is not None:
            item["name"] = name
        if wire_data is not None:
            item["data"] = wire_data
        if encoding:
            item["encoding"] = encoding
        if extras is not None:
            item["extras"] = extras
        version = {"description": description, "metadata": metadata}
        version = {k: v for k, v in version.items() if v is not None}
        if version:
            item["version"] = version
        return self.client.connection.send_and_ack(
            {"action": Action.MESSAGE, "channel": self.name, "messages": [item]}
        )

    async def update_message(self, serial: str, **fields: Any) -> str:
        """Update message `serial` (name, data, extras, description, metadata); returns the
        new version serial. Raises AblyError (93002 when the namespace is not mutable)."""
        return _version_serial(await self.mutate(MessageAction.UPDATE, serial, **fields))

    async def delete_message(self, serial: str, **fields: Any) -> str:
        """Delete message `serial`; returns the version serial of the delete."""
        return _version_serial(await self.mutate(MessageAction.DELETE, serial, **fields))

    async def append_message(self, serial: str, data: Any, **fields: Any) -> str:
        """Append `data` to message `serial`; returns the version serial of the append."""
        return _version_serial(await self.mutate(MessageAction.APPEND, serial, data=data, **fields))

    # History and single messages (REST)

    async def history(
        self,
        *,
        limit: int | None = None,
        direction: str | None = None,
        start: int | None = None,
        end: int | None = None,
        until_attach: bool = False,
    ) -> PaginatedResult[Message]:
        """A page of the channel's history (newest first by default). `until_attach=True`
        stops at the attach point, so history and the live subscription neither overlap nor
        leave a gap; it needs the channel attached (40000 otherwise)."""
        from_serial = None
        if until_attach:
            if self.state != ChannelState.ATTACHED or not self.attach_serial:
                raise AblyError(40000, 400, "untilAttach needs an attached channel")
            from_serial = self.attach_serial
        return await self.client.rest.history(
            self.name,
            limit=limit,
            direction=direction,
            start=start,
            end=end,
            from_serial=from_serial,
        )

    async def get_message(self, serial: str) -> Message:
        """The latest version of message `serial` (appends aggregated)."""
        return await self.client.rest.get_message(self.name, serial)

    async def get_message_versions(self, serial: str) -> PaginatedResult[Message]:
        """Every version of message `serial`."""
        return await self.client.rest.get_message_versions(self.name, serial)

    # Protocol messages from the connection

    def _on_connected(self, resumed: bool) -> None:
        if self.state in (ChannelState.ATTACHING, ChannelState.ATTACHED, ChannelState.SUSPENDED):
            if self.state != ChannelState.ATTACHING:
                self._set_state(ChannelState.ATTACHING)
            self._spawn(self._send_attach())
        elif self.state == ChannelState.DETACHING:
            self._spawn(
                self.client.connection.send({"action": Action.DETACH, "channel": self.name})
            )

    def _on_message(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        if action == Action.ATTACHED:
            self._on_attached(message)
        elif action == Action.DETACHED:
            if self.state == ChannelState.DETACHING:
                self._set_state(ChannelState.DETACHED)
            elif self.state in (ChannelState.ATTACHED, ChannelState.ATTACHING):
                # An unrequested DETACHED means "please re-attach".
                self._set_state(ChannelState.ATTACHING, _error(message))
                self._spawn(self._send_attach())
        elif action == Action.ERROR:
            self.error = error_from_info(message.get("error"), ChannelFailedError)
            self.channel_serial = None
            self._set_state(ChannelState.FAILED, self.error)
        elif action == Action.MESSAGE:
            self._on_messages(message)
        elif action in (Action.PRESENCE, Action.SYNC):
            if message.get("channelSerial") and action == Action.PRESENCE:
                self.channel_serial = message["channelSerial"]
            self.presence._on_message(message)

    def _on_attached(self, message: dict[str, Any]) -> None:
        flags = Flag(message.get("flags") or 0)
        resumed = bool(flags & Flag.RESUMED)
        serial = message.get("channelSerial")
        if not resumed:
            self.attach_serial = serial
            if self._was_attached:
                lost = ContinuityLostError(
                    80006, 400, f"Continuity lost on channel {self.name}: attach not resumed"
                )
                if message.get("error"):
                    info = error_from_info(message["error"])
                    lost = ContinuityLostError(info.code, info.status, info.message)
                self.emit("continuity_lost", lost)
                for subscriber in self._subscribers:
                    if subscriber.raise_on_gap and subscriber.subscription is not None:
                        subscriber.subscription.fail(lost)
        if serial:
            self.channel_serial = serial
        self.granted_modes = flags & ~(Flag.RESUMED | Flag.HAS_BACKLOG | Flag.HAS_PRESENCE)
        self._was_attached = True
        self.presence._on_attached(flags)
        self._set_state(ChannelState.ATTACHED, _error(message))
        self.emit("attached", resumed)

    def _on_messages(self, message: dict[str, Any]) -> None:
        if message.get("channelSerial"):
            self.channel_serial = message["channelSerial"]
        for index, raw in enumerate(message.get("messages") or ()):
            item = Message.from_wire(raw, message, index)
            for subscriber in list(self._subscribers):
                if subscriber.names is not None and item.name not in subscriber.names:
                    continue
                if subscriber.listener is not None:
                    try:
                        result = subscriber.listener(item)
                    except Exception:
                        continue
                    if asyncio.iscoroutine(result):
                        self._spawn(result)
                elif subscriber.subscription is not None:
                    subscriber.subscription.push(item)

    def _on_connection_failed(self, error: AblyError) -> None:
        if self.state not in (ChannelState.DETACHED, ChannelState.INITIALIZED):
            self.error = error
            self._set_state(ChannelState.FAILED, error)

    def _set_state(self, state: ChannelState, error: AblyError | None = None) -> None:
        if state == self.state:
            return
        self.state = state
        self._state_changed.set()
        self.emit("state", state, error)


def _as_message(value: Message | dict[str, Any]) -> Message:
    if isinstance(value, Message):
        return value
    return Message(
        name=value.get("name"),
        data=value.get("data"),
        extras=value.get("extras"),
        id=value.get("id"),
        client_id=value.get("clientId") or value.get("client_id"),
        encoding=value.get("encoding"),
    )


def _version_serial(res: list[dict[str, Any]]) -> str:
    serials = res[0].get("serials") if res else None
    if not serials:
        raise AblyError(50000, 500, "ACK carried no version serial")
    return serials[0]


def _error(message: dict[str, Any]) -> AblyError | None:
    return error_from_info(message["error"]) if message.get("error") else None
