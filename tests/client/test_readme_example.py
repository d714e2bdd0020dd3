"""The README's Python examples, run as a user would run them (their own process, warnings as
errors, asyncio debug mode) against a real relay: each streams its answer and closes everything
it opens."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from channel_relay.server import Relay

README = Path(__file__).parents[2] / "README.md"


def _example(codec: str) -> str:
    """The README's agent example with `codec` ("vercel": the one without a codec)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    examples = [b for b in blocks if "AgentSession" in b]
    openai = "codec=openai.CODEC"
    [example] = [b for b in examples if (openai in b) == (codec == "openai")]
    return example


async def _run(relay: Relay, codec: str) -> list[str]:
    """Run the example in its own process; its output lines."""
    code = _example(codec)
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
    return out.decode().splitlines()


async def test_the_readme_example_streams_and_closes_what_it_opens(relay: Relay) -> None:
    lines = await _run(relay, "vercel")
    prefix = "phone text-delta "
    deltas = [line[len(prefix) :].split(" {")[0] for line in lines if line.startswith(prefix)]
    assert deltas == ["Hello ", "from ", "the ", "agent."]
    assert lines[-1] == (
        "complete [{'role': 'user', 'text': 'Hi!'}, "
        "{'role': 'assistant', 'text': 'Hello from the agent.'}]"
    )


async def test_the_readme_openai_example_folds_the_next_responses_input(relay: Relay) -> None:
    lines = await _run(relay, "openai")
    assert lines[0] == (
        "model input [{'type': 'message', 'role': 'user', "
        "'content': [{'text': 'Weather in Paris?', 'type': 'input_text'}]}]"
    )
    assert [line for line in lines if line.startswith("alice ")] == [
        "alice It is ",
        "alice 18 °C ",
        "alice in Paris.",
    ]
    assert lines[-2:] == [
        "complete It is 18 °C in Paris.",
        "['message', 'function_call', 'function_call_output', 'message']",
    ]
