"""Types of the `relay` command fixtures (tests/cli/conftest.py), imported by the tests as
`cli_support` (pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Done", "Live", "RunCli", "StartCli"]


@dataclass
class Done:
    code: int
    out: str
    err: str


class RunCli(Protocol):
    async def __call__(self, *args: str, env: dict[str, str] | None = None) -> Done: ...


@dataclass
class Live:
    """A `relay` command still running (a tail, a watch): its lines as they come."""

    proc: asyncio.subprocess.Process
    err: list[str] = field(default_factory=list)

    async def line(self, timeout: float = 20.0) -> str:  # noqa: ASYNC109
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            return (await self.proc.stdout.readline()).decode()

    async def note(self, text: str, timeout: float = 20.0) -> None:  # noqa: ASYNC109
        """Wait for a line containing `text` on stderr (where notes for a person go)."""
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.proc.stderr.readline()).decode()
                assert line, f"exited before {text!r}: {''.join(self.err)}"
                self.err.append(line)
                if text in line:
                    return

    async def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            return await self.proc.wait()


class StartCli(Protocol):
    async def __call__(self, *args: str) -> Live: ...
