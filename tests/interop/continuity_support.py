"""Helpers for the continuity interop tests (issue 4): relays that can be dropped, black-holed,
killed and restarted on the same port and database, node scripts that report progress while they
run, and a raw protocol client that resumes and re-attaches the way an Ably SDK does.

Importable from tests in this folder as `continuity_support`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import websockets

from channel_relay.config import Settings
from channel_relay.realtime.connection import Connection
from channel_relay.server import Relay

__all__ = [
    "KEY",
    "NodeProcess",
    "RelayProcess",
    "SdkLikeClient",
    "TcpProxy",
    "free_port",
    "in_process_relay",
    "start_cluster",
    "start_relay_process",
]

KEY = "app1.key1:secret1"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPTS = HERE / "scripts"
_LISTENING = re.compile(r"relay listening on http://127\.0\.0\.1:(\d+)")
EVENT_PREFIX = "EVENT "
RESULT_PREFIX = "RESULT "

# Ably protocol actions and flags used here.
HEARTBEAT, ACK, NACK, CONNECTED, DISCONNECTED, ERROR = 0, 1, 2, 4, 6, 9
ATTACH, ATTACHED, DETACH, DETACHED, MESSAGE = 10, 11, 12, 13, 15
RESUMED = 1 << 2


def free_port() -> int:
    """A port of 127.0.0.1 free right now, so a relay can be restarted on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def in_process_relay(port: int, db: Path, *, ttl_ms: int = 120_000, idle_ms: int = 15_000) -> Relay:
    """A relay (not started) on a fixed port and database, with short timers if asked."""
    return Relay(
        Settings(
            host="127.0.0.1",
            port=port,
            db_path=str(db),
            keys=[KEY],
            connection_state_ttl=ttl_ms,
            max_idle_interval=idle_ms,
        )
    )


def find_connection(relay: Relay, client_id: str) -> Connection | None:
    """The relay's connection of `client_id` (the newest if several)."""
    found = [c for c in relay.realtime.connections.values() if c.identity.client_id == client_id]
    return found[-1] if found else None


# A relay in its own process, to SIGKILL.


@dataclass
class RelayProcess:
    proc: asyncio.subprocess.Process
    port: int
    output: list[str]

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)


async def start_relay_process(db: Path, port: int = 0, key: str = KEY, *extra: str) -> RelayProcess:
    """`python -m channel_relay serve` on 127.0.0.1:`port` (0: any free port) with `db`, `key`
    and `extra` arguments; returns once it listens, with the port it listens on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "channel_relay",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        str(db),
        "--key",
        key,
        "--log-level",
        "WARNING",
        *extra,
        cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(20):
            while True:
                line = (await proc.stdout.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError("relay exited before listening:\n" + "".join(output))
                output.append(line)
                listening = _LISTENING.search(line)
                if listening:
                    break
    except TimeoutError:
        proc.kill()
        raise AssertionError("relay did not listen within 20 s:\n" + "".join(output)) from None
    relay = RelayProcess(proc, int(listening.group(1)), output)
    relay_drain = asyncio.get_running_loop().create_task(_drain(proc, output))
    _background.add(relay_drain)
    relay_drain.add_done_callback(_background.discard)
    return relay


async def start_cluster(
    folder: Path, store: str, processes: list[RelayProcess], *extra: str
) -> list[RelayProcess]:
    """Three relay processes (nodes a, b and c) on the PostgreSQL database `store`, each with
    `extra` arguments; each is added to `processes` as it starts (to be killed at teardown)."""
    nodes = []
    for name in "abc":
        node = await start_relay_process(folder / f"{name}.db", 0, KEY, "--store", store, *extra)
        processes.append(node)
        nodes.append(node)
    return nodes


_background: set[asyncio.Task[Any]] = set()


async def _drain(proc: asyncio.subprocess.Process, output: list[str]) -> None:
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        output.append(line.decode(errors="replace"))


# A TCP proxy that can go silent.


@dataclass(eq=False)
class _Pipe:
    writers: list[asyncio.StreamWriter]
    silent: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class TcpProxy:
    """127.0.0.1:`port` -> 127.0.0.1:`target`.

    `black_hole()` makes every current connection stop forwarding in both directions while
    keeping both sockets open (what a dead NAT or a pulled cable looks like); connections made
    afterwards forward normally. `drop()` resets every current connection. `refuse = True`
    closes new connections as soon as they arrive.
    """

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.refuse = False
        self.accepted = 0
        self._pipes: list[_Pipe] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def black_hole(self) -> int:
        """Silence every live connection; return how many were silenced."""
        live = [p for p in self._pipes if not p.silent]
        for pipe in live:
            pipe.silent = True
        return len(live)

    def drop(self) -> int:
        """Reset every live connection at once (a relay restart, as its clients see it); return
        how many were reset."""
        dropped = len(self._pipes)
        for pipe in self._pipes:
            for task in pipe.tasks:
                task.cancel()
            for writer in pipe.writers:
                writer.transport.abort()
        self._pipes.clear()
        return dropped

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.drop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refuse:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.transport.abort()
            return
        pipe = _Pipe([writer, up_writer])
        self._pipes.append(pipe)
        pipe.tasks = [
            asyncio.create_task(self._pump(pipe, reader, up_writer)),
            asyncio.create_task(self._pump(pipe, up_reader, writer)),
        ]

    async def _pump(
        self, pipe: _Pipe, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if pipe.silent:
                    continue  # swallowed: neither side hears anything, neither side is closed
                writer.write(data)
                await writer.drain()
        if not pipe.silent:
            for w in pipe.writers:
                w.transport.abort()


# A node script that reports while it runs.


class NodeProcess:
    """A tests/interop/scripts/ script run with node, whose `EVENT {json}` stdout lines are
    collected as they come so the test can act on the script's progress."""

    def __init__(self, proc: asyncio.subprocess.Process, script: str) -> None:
        self.proc = proc
        self.script = script
        self.events: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = asyncio.Event()
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    @classmethod
    async def start(
        cls,
        script: str,
        *,
        port: int,
        args: dict[str, Any],
        deadline: float,
        format: str = "msgpack",
    ) -> NodeProcess:
        env = {
            **os.environ,
            "RELAY_PORT": str(port),
            "RELAY_KEY": KEY,
            "RELAY_FORMAT": format,
            "RELAY_ARGS": json.dumps(args),
            "RELAY_TIMEOUT_MS": str(int(deadline * 1000)),
        }
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(SCRIPTS / script),
            cwd=str(HERE),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,  # the RESULT line lists every message received
        )
        return cls(proc, script)

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        while raw := await self.proc.stdout.readline():
            line = raw.decode(errors="replace").rstrip("\n")
            self.stdout.append(line)
            if line.startswith(EVENT_PREFIX):
                self.events.append(json.loads(line[len(EVENT_PREFIX) :]))
            elif line.startswith(RESULT_PREFIX):
                self.result = json.loads(line[len(RESULT_PREFIX) :])
            self._changed.set()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            self.stderr.append(raw.decode(errors="replace"))

    def explain(self, why: str) -> str:
        if os.environ.get("CONTINUITY_DUMP"):
            Path(os.environ["CONTINUITY_DUMP"]).write_text("\n".join(self.stdout))
        return (
            f"node {self.script}: {why}\n--- stdout ---\n"
            + "\n".join(line[:2000] for line in self.stdout)[-5000:]
            + "\n--- stderr ---\n"
            + "".join(self.stderr)[-5000:]
        )

    async def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 20.0
    ) -> dict[str, Any]:
        """The first event (past or future) matching `predicate`."""
        seen = 0
        try:
            async with asyncio.timeout(within):
                while True:
                    for event in self.events[seen:]:
                        if predicate(event):
                            return event
                    seen = len(self.events)
                    if self.proc.returncode is not None and self.result is not None:
                        raise AssertionError(self.explain("exited before the awaited event"))
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(self.explain(f"awaited event not seen in {within} s")) from None

    def count(self, kind: str, **match: Any) -> int:
        return sum(
            1
            for e in self.events
            if e.get("ev") == kind and all(e.get(k) == v for k, v in match.items())
        )

    def progress(self, kind: str) -> int:
        """The highest `n` reported by events of `kind` ("recv", "acked")."""
        return max((int(e["n"]) for e in self.events if e.get("ev") == kind), default=0)

    async def wait_progress(self, kind: str, n: int, within: float = 30.0) -> None:
        await self.wait_event(lambda e: e.get("ev") == kind and int(e["n"]) >= n, within)

    async def finish(self, within: float) -> dict[str, Any]:
        """Wait for exit; the RESULT object, or an AssertionError with node's output."""
        try:
            async with asyncio.timeout(within):
                await self.proc.wait()
                await asyncio.gather(*self._readers)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
            raise AssertionError(self.explain(f"still running after {within} s")) from None
        result = self.result
        if self.proc.returncode != 0 or result is None or "failure" in result:
            raise AssertionError(self.explain(f"exit status {self.proc.returncode}"))
        return result

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


# A raw client that behaves like an SDK across drops.


class SdkLikeClient:
    """A msgpack protocol client that keeps its connection and channel state across sockets.

    Like ably-js: it reconnects with `resume=<connectionKey>`, re-attaches each channel with the
    last channelSerial it saw (from ATTACHED or MESSAGE), and records what it receives. For each
    channel, `segments[channel]` is a list of runs: a run starts at an ATTACHED that did not
    resume (the point continuity was promised from: its `attach_serial`), and collects every
    message serial received after it. `resumes` counts connections that kept their id.
    """

    def __init__(self, port: int, name: str) -> None:
        self.port = port
        self.name = name
        self.ws: websockets.ClientConnection | None = None
        self.connection_id: str | None = None
        self.connection_key: str | None = None
        self.channel_serials: dict[str, str | None] = {}
        self.segments: dict[str, list[dict[str, Any]]] = {}
        self.attached: dict[str, asyncio.Event] = {}
        self.resumes = 0
        self.new_connections = 0
        self.errors: list[dict[str, Any]] = []
        # Broken promises seen on the wire (e.g. a resume refused without saying why).
        self.violations: list[str] = []
        self._sent_serial: dict[str, str | None] = {}
        # Channels detached on this socket whose DETACHED has not arrived: what the relay sent
        # for the old attachment until then is not for the new one (an SDK's state machine
        # ignores it the same way).
        self._detaching: set[str] = set()
        self.trace: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._msg_serial = 0

    @property
    def connected(self) -> bool:
        return self.ws is not None and self._reader is not None and not self._reader.done()

    async def connect(self) -> None:
        query = f"key={KEY}&format=msgpack&v=6&clientId={self.name}"
        if self.connection_key:
            query += f"&resume={self.connection_key}"
        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/?{query}", max_size=None, open_timeout=5
        )
        first = await self._recv(5.0)
        assert first["action"] == CONNECTED, f"{self.name}: expected CONNECTED, got {first}"
        if first["connectionId"] == self.connection_id and "error" not in first:
            self.resumes += 1
        else:
            self.new_connections += 1
            self._msg_serial = 0
        self.trace.append(f"CONNECTED {first['connectionId']} err={'error' in first}")
        self.connection_id = first["connectionId"]
        self.connection_key = first["connectionDetails"]["connectionKey"]
        self._detaching.clear()
        self._reader = asyncio.create_task(self._read())
        for channel in self.channel_serials:
            await self._send_attach(channel)

    async def attach(self, channel: str) -> None:
        self.channel_serials.setdefault(channel, None)
        self.segments.setdefault(channel, [])
        if self.connected:
            await self._send_attach(channel)

    async def detach(self, channel: str) -> None:
        """Leave the channel for good (as `channel.detach()` does, the serial is forgotten)."""
        self.channel_serials.pop(channel, None)
        self.attached.pop(channel, None)
        if self.connected:
            self._detaching.add(channel)
            await self._send({"action": DETACH, "channel": channel})

    async def wait_attached(self, channel: str, within: float = 5.0) -> None:
        try:
            async with asyncio.timeout(within):
                await self.attached.setdefault(channel, asyncio.Event()).wait()
        except TimeoutError:
            trace = "\n".join(self.trace[-40:])
            message = f"{self.name}: {channel} not attached in {within} s\n{trace}"
            raise AssertionError(message) from None

    async def publish(self, channel: str, name: str) -> None:
        serial = self._msg_serial
        self._msg_serial += 1
        await self._send(
            {
                "action": MESSAGE,
                "channel": channel,
                "msgSerial": serial,
                "messages": [{"name": name, "data": name}],
            }
        )

    async def drop(self) -> None:
        """Lose the socket without a goodbye (the relay keeps the connection for resume)."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self.ws is not None:
            transport = getattr(self.ws, "transport", None)
            if transport is not None:
                transport.abort()
            with contextlib.suppress(Exception):
                await self.ws.close()
            self.ws = None

    async def _send_attach(self, channel: str) -> None:
        self.attached.setdefault(channel, asyncio.Event()).clear()
        message: dict[str, Any] = {"action": ATTACH, "channel": channel}
        serial = self.channel_serials.get(channel)
        if serial:
            message["channelSerial"] = serial
        self._sent_serial[channel] = serial
        self.trace.append(f"send ATTACH {channel} {serial}")
        await self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(msgpack.packb(message, use_bin_type=True))

    async def _recv(self, within: float) -> dict[str, Any]:
        assert self.ws is not None
        async with asyncio.timeout(within):
            frame = await self.ws.recv()
        assert isinstance(frame, bytes), "msgpack must arrive in binary frames"
        return msgpack.unpackb(frame, raw=False)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes)
                self._on(msgpack.unpackb(frame, raw=False))
        except websockets.ConnectionClosed:
            pass

    def _on(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        channel = message.get("channel")
        if channel is not None and action != MESSAGE:
            self.trace.append(
                f"recv {action} {channel} flags={message.get('flags')} "
                f"cs={message.get('channelSerial')}"
            )
        if channel in self._detaching:
            if action == DETACHED:
                self._detaching.discard(channel)
            return
        if action == ATTACHED and channel in self.channel_serials:
            resumed = bool(message.get("flags", 0) & RESUMED)
            runs = self.segments[channel]
            if self._sent_serial.get(channel) and not resumed and "error" not in message:
                self.violations.append(f"{channel}: ATTACHED without RESUMED and without error")
            if resumed and not self._sent_serial.get(channel):
                self.violations.append(f"{channel}: RESUMED on an attach without channelSerial")
            if not resumed or not runs:
                if "error" in message:
                    self.errors.append(message["error"])
                runs.append({"attach_serial": message.get("channelSerial"), "serials": []})
            if message.get("channelSerial"):
                self.channel_serials[channel] = message["channelSerial"]
            self.attached.setdefault(channel, asyncio.Event()).set()
        elif action == MESSAGE and channel in self.channel_serials:
            runs = self.segments[channel]
            if not runs:
                self.violations.append(f"{channel}: MESSAGE before the first ATTACHED")
                return
            runs[-1]["serials"].extend(m["serial"] for m in message["messages"])
            if message.get("channelSerial"):
                self.channel_serials[channel] = message["channelSerial"]
        elif action == DETACHED and channel in self.channel_serials:
            # An unrequested DETACHED means "attach again" (with the serial kept).
            self.attached.setdefault(channel, asyncio.Event()).clear()
            task = asyncio.get_running_loop().create_task(self._send_attach(channel))
            _background.add(task)
            task.add_done_callback(_background.discard)
        elif action == ERROR and channel is not None:
            self.errors.append(message.get("error", {}))
        elif action == DISCONNECTED:
            pass


StartProxy = Callable[[int], Awaitable[TcpProxy]]
"""Start a TcpProxy in front of a port (the `proxies` fixture); it is closed at teardown."""
