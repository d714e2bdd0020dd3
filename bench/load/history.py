"""History workers: `seed` fills one channel quickly through one WebSocket (array publishes, a
window in flight); `pages` times sequential REST GETs of a page of 100 and checks every page is
whole and in order (newest first)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import msgpack

from ..stats import LatencyHistogram
from .wire import NACK, Endpoint, RelayConnection, parse_data
from .worker import until

__all__ = ["pages", "seed"]


async def seed(params: dict[str, Any], inbox: Any) -> None:
    endpoint = Endpoint(**params["endpoint"])
    channel, total, batch = params["channel"], params["messages"], params["batch"]
    conn = await RelayConnection.open(endpoint, echo=False)
    await conn.attach(channel)
    state = {"next": 0, "acked": 0, "nacks": 0, "error": None}

    def send_batch() -> None:
        first = state["next"]
        if first >= total:
            return
        count = min(batch, total - first)
        state["next"] = first + count
        now = time.time_ns()
        conn.publish(
            channel, [{"name": "m", "data": f"{i} {now}"} for i in range(first, first + count)]
        )

    def on_ack(pm: dict[str, Any]) -> None:
        if pm.get("action") == NACK:
            state["nacks"] += 1
            state["error"] = pm.get("error")
        else:
            state["acked"] += (pm.get("count") or 1) * batch
        send_batch()

    conn.on_ack = on_ack
    start = time.monotonic()
    for _ in range(params.get("window", 16)):
        send_batch()
    done = await until(
        lambda: state["acked"] >= total or state["nacks"] > 0, params.get("limit_s", 600)
    )
    elapsed = time.monotonic() - start
    conn.close()
    inbox.send(
        {
            "done": done and not state["nacks"],
            "seeded": min(state["acked"], total),
            "elapsed": elapsed,
            "nacks": state["nacks"],
            "error": state["error"],
        }
    )


async def pages(params: dict[str, Any], inbox: Any) -> None:
    url: str = params["url"]
    headers = {"Accept": "application/x-msgpack"}
    if params.get("key"):
        headers["Authorization"] = "Basic " + base64.b64encode(params["key"].encode()).decode()
    hist = LatencyHistogram()
    problems: list[str] = []
    newest = params.get("newest")
    async with aiohttp.ClientSession() as session:
        for _ in range(params.get("warmup", 20)):
            async with session.get(url, headers=headers) as resp:
                await resp.read()
        deadline = time.monotonic() + params.get("limit_s", 120)
        for _ in range(params["requests"]):
            if time.monotonic() > deadline:
                problems.append("time limit reached")
                break
            t0 = time.perf_counter_ns()
            async with session.get(url, headers=headers) as resp:
                body = await resp.read()
                status, ctype = resp.status, resp.content_type
            hist.add_us((time.perf_counter_ns() - t0) // 1000)
            if status != 200:
                problems.append(f"HTTP {status}: {body[:200]!r}")
                break
            items = msgpack.unpackb(body) if "msgpack" in ctype else json.loads(body)
            seqs = [parse_data(m["data"])[0] for m in items]
            expect = list(range(newest, newest - 100, -1)) if newest is not None else None
            if len(items) != 100 or (expect is not None and seqs != expect):
                problems.append(f"bad page: {len(items)} items, first seqs {seqs[:3]}")
                break
        await asyncio.sleep(0)
    inbox.send({"latency": hist.summary(), "problems": problems})
