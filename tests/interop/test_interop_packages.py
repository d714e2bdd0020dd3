"""The Node packages the interop tests drive are the pinned ones, and they load on this node."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "RESULT "


async def test_pinned_sdk_packages_are_installed_and_load(node: str) -> None:
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]
    proc = await asyncio.create_subprocess_exec(
        node,
        str(HERE / "scripts" / "versions.mjs"),
        cwd=str(HERE),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    line = next(x for x in out.decode().splitlines() if x.startswith(RESULT_PREFIX))
    result = json.loads(line[len(RESULT_PREFIX) :])
    assert result["versions"] == pinned
    assert int(result["node"].split(".")[0]) >= 20
