"""One module per scenario, each with NAME and `run(ctx) -> list[Row]` (details: ctx.details)."""

from __future__ import annotations

from . import cluster, durable, fanout, history, idle, resume, sdk, streaming

__all__ = ["SCENARIOS"]

SCENARIOS = {m.NAME: m for m in (fanout, durable, streaming, history, resume, idle, sdk, cluster)}
