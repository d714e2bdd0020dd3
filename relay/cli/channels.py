"""`relay channels ...`: list, subscribe (tail), publish, history, presence and occupancy,
as the Ably CLI's `ably channels` verbs do against Ably."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from typing import Any, TypeVar
from urllib.parse import quote

from rich.progress import Progress

from channel_relay.cli.output import Output, presence_json
from channel_relay.cli.target import Target, resolve
from channel_relay.client import Message, Realtime

__all__ = ["add_commands"]

T = TypeVar("T")
# How long a live command waits for its connection and attach before giving up.
_CONNECT_TIMEOUT = 15.0


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    channels = commands.add_parser("channels", help="look at and drive channels")
    verbs = channels.add_subparsers(dest="verb", required=True)

    listing = verbs.add_parser("list", parents=[common], help="the app's channels, with occupancy")
    listing.add_argument("--prefix", default="", help="only channels whose name starts so")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    listing.set_defaults(run=list_channels)

    for verb in ("subscribe", "tail"):
        tail = verbs.add_parser(verb, parents=[common], help="print messages as they arrive")
        tail.add_argument("channel")
        tail.add_argument("--rewind", help="start with the last N messages, or those of 30s")
        tail.add_argument("--count", type=int, help="stop after this many messages")
        tail.set_defaults(run=subscribe)

    publish_ = verbs.add_parser("publish", parents=[common], help="publish a message")
    publish_.add_argument("channel")
    publish_.add_argument("name", help="the message name")
    publish_.add_argument("data", help="the data: JSON (object, array) or a string")
    publish_.add_argument("--count", type=int, default=1, help="publish it this many times")
    publish_.add_argument("--client-id", help="publish as this clientId")
    publish_.set_defaults(run=publish)

    history_ = verbs.add_parser("history", parents=[common], help="the channel's messages")
    history_.add_argument("channel")
    history_.add_argument("--limit", type=int, default=50, help="at most this many (50)")
    history_.add_argument("--direction", choices=["backwards", "forwards"], default="backwards")
    history_.set_defaults(run=history)

    presence_ = verbs.add_parser("presence", parents=[common], help="the channel's members")
    presence_.add_argument("channel")
    presence_.add_argument("--watch", action="store_true", help="then print changes live")
    presence_.set_defaults(run=presence)

    occupancy_ = verbs.add_parser("occupancy", parents=[common], help="who is on the channel")
    occupancy_.add_argument("channel")
    occupancy_.set_defaults(run=occupancy)


async def list_channels(args: argparse.Namespace, out: Output) -> int:
    rest = (await resolve(args)).rest()
    try:
        params = {"by": "value", "limit": str(min(args.limit, 1000))}
        if args.prefix:
            params["prefix"] = args.prefix
        page = await rest.paginated("/channels", params, lambda item: item)
        details: list[dict[str, Any]] = []
        while page is not None and len(details) < args.limit:
            details.extend(page.items)
            page = await page.next()
    finally:
        await rest.close()
    details = details[: args.limit]
    if out.as_json:
        out.json(details)
        return 0
    rows = []
    for item in details:
        status = item.get("status") or {}
        metrics = (status.get("occupancy") or {}).get("metrics") or {}
        rows.append(
            [
                item["channelId"],
                "yes" if status.get("isActive") else "no",
                metrics.get("connections", 0),
                metrics.get("publishers", 0),
                metrics.get("subscribers", 0),
                metrics.get("presenceMembers", 0),
            ]
        )
    columns = ["channel", "active", "connections", "publishers", "subscribers", "members"]
    out.table(columns, rows, title=f"{len(rows)} channel(s)")
    return 0


async def subscribe(args: argparse.Namespace, out: Output) -> int:
    target = await resolve(args)
    client = await _connect(target)
    try:
        params = {"rewind": args.rewind} if args.rewind else None
        channel = client.channels.get(args.channel, params=params)
        messages = channel.subscribe()
        await channel.attach(timeout=_CONNECT_TIMEOUT)
        out.note(f"attached to {args.channel} at {target.url}; Ctrl-C to stop")
        seen = 0
        async for message in _until_interrupted(messages):
            out.message(message)
            seen += 1
            if args.count is not None and seen >= args.count:
                break
    finally:
        await client.close()
    return 0


async def publish(args: argparse.Namespace, out: Output) -> int:
    rest = (await resolve(args)).rest()
    data = _data(args.data)
    serials: list[str] = []
    try:
        with Progress(console=out.errors, transient=True, disable=args.count < 2) as progress:
            task = progress.add_task(f"publishing to {args.channel}", total=args.count)
            for _ in range(args.count):
                message = Message(name=args.name, data=data, client_id=args.client_id)
                serials.extend(await rest.publish(args.channel, [message]))
                progress.advance(task)
    finally:
        await rest.close()
    if out.as_json:
        out.json({"channel": args.channel, "serials": serials})
    else:
        last = serials[-1] if serials else "-"
        out.console.print(f"published {len(serials)} message(s) to {args.channel}, last {last}")
    return 0


async def history(args: argparse.Namespace, out: Output) -> int:
    rest = (await resolve(args)).rest()
    try:
        page = await rest.history(
            args.channel, limit=min(args.limit, 1000), direction=args.direction
        )
        messages: list[Message] = []
        while page is not None and len(messages) < args.limit:
            messages.extend(page.items)
            page = await page.next()
    finally:
        await rest.close()
    if not messages:
        out.note(f"{args.channel} has no messages")
    for message in messages[: args.limit]:
        out.message(message)
    return 0


async def presence(args: argparse.Namespace, out: Output) -> int:
    target = await resolve(args)
    if not args.watch:
        rest = target.rest()
        try:
            page = await rest.presence_get(args.channel)
            members = []
            while page is not None:
                members.extend(page.items)
                page = await page.next()
        finally:
            await rest.close()
        if out.as_json:
            out.json([presence_json(m) for m in members])
        else:
            rows = [[m.client_id, m.connection_id, m.data] for m in members]
            title = f"{len(rows)} member(s) of {args.channel}"
            out.table(["clientId", "connectionId", "data"], rows, title=title)
        return 0
    client = await _connect(target)
    try:
        channel = client.channels.get(args.channel)
        events = channel.presence.subscribe()
        await channel.attach(timeout=_CONNECT_TIMEOUT)
        out.note(f"watching presence on {args.channel}; Ctrl-C to stop")
        async for event in _until_interrupted(events):
            out.presence(event)
    finally:
        await client.close()
    return 0


async def occupancy(args: argparse.Namespace, out: Output) -> int:
    rest = (await resolve(args)).rest()
    try:
        details, _ = await rest.request("GET", "/channels/" + quote(args.channel, safe=""))
    finally:
        await rest.close()
    if out.as_json:
        out.json(details)
        return 0
    metrics = ((details.get("status") or {}).get("occupancy") or {}).get("metrics") or {}
    out.table(["metric", "value"], sorted(metrics.items()), title=args.channel)
    return 0


async def _connect(target: Target) -> Realtime:
    """A connected realtime client; the relay's REST answer first, so that a relay that is not
    running is reported at once rather than retried."""
    rest = target.rest()
    try:
        await rest.time()
    finally:
        await rest.close()
    client = target.realtime()
    try:
        async with asyncio.timeout(_CONNECT_TIMEOUT):
            await client.connect()
    except BaseException:
        await client.close()
        raise
    return client


async def _until_interrupted(items: AsyncIterator[T]) -> AsyncIterator[T]:
    """`items` until SIGINT or SIGTERM, the normal end of a live command."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            following = asyncio.ensure_future(anext(items))
            await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                return
            try:
                item = following.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        stopped.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)


def _data(text: str) -> Any:
    """JSON objects and arrays are sent as JSON data; anything else as the string given."""
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
