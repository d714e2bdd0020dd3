"""The README's ably-js snippet runs as pasted (an .mjs file, node, the pinned ably-js): only the
port is changed to the test relay's."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path

from channel_relay.server import Relay

HERE = Path(__file__).resolve().parent
README = HERE.parent.parent / "README.md"


def _snippet() -> str:
    text = README.read_text()
    start = text.index("this runs as it is")
    match = re.search(r"```js\n(.*?)```", text[start:], re.S)
    assert match, "no js block after the quick start's hello.mjs paragraph"
    return match.group(1)


async def test_the_quick_start_snippet_runs_as_pasted(node: str, relay: Relay) -> None:
    code = _snippet()
    assert "port: 8080" in code
    # Beside node_modules, so `import Ably from 'ably'` resolves as in the reader's folder.
    script = HERE / f".readme-{secrets.token_hex(4)}.mjs"
    script.write_text(code.replace("port: 8080", f"port: {relay.port}"))
    try:
        proc = await asyncio.create_subprocess_exec(
            node,
            str(script),
            cwd=str(HERE),
            env={**os.environ, "KEY": relay.default_key},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    finally:
        script.unlink()
    assert proc.returncode == 0, err.decode()
    assert "history [ 'hello' ]" in out.decode(), out.decode()
