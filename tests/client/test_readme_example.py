"""The README's Python example, run as a user would run it (its own process, warnings as errors,
asyncio debug mode) against a real relay: it streams the answer and closes everything it opens."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from channel_relay.server import Relay

README = Path(__file__).parents[2] / "README.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    [example] = [b for b in blocks if "AgentSession" in b]
    return example


async def test_the_readme_example_streams_and_closes_what_it_opens(relay: Relay) -> None:
    code = _example()
    code = code.replace('"APPID.KEYID:SECRET"', repr(relay.default_key))
    code = code.replace('"http://localhost:8080"', repr(f"http://127.0.0.1:{relay.port}"))
    code = code.replace("delay=0.2", "delay=0.01")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-X",
        "dev",
        "-W",
        "error",
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    # Debug mode also reports callbacks slower than 0.1 s: that is the machine's load, not the
    # example's fault, so only those lines are let through.
    slow = re.compile(r"^Executing <.*> took [0-9.]+ seconds$")
    assert [line for line in err.decode().splitlines() if not slow.match(line)] == []
    assert process.returncode == 0
    lines = out.decode().splitlines()
    prefix = "phone text-delta "
    deltas = [line[len(prefix) :].split(" {")[0] for line in lines if line.startswith(prefix)]
    assert deltas == ["Hello ", "from ", "the ", "agent."]
    assert lines[-1] == (
        "complete [{'role': 'user', 'text': 'Hi!'}, "
        "{'role': 'assistant', 'text': 'Hello from the agent.'}]"
    )
