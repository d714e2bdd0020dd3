"""Scenario sizes: the full run (the issue's figures) and `--quick` (a smoke test)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Sizes"]


@dataclass(frozen=True)
class Sizes:
    fanout_subscribers: tuple[int, ...]
    fanout_moderate_rate: float
    fanout_trial_s: float
    fanout_search_budget_s: float
    durable_publishers: int
    durable_channels: int
    durable_window: int
    durable_s: float
    sqlite_s: float
    stream_messages: int
    stream_rate: float
    stream_subscribers: int
    stream_s: float
    history_messages: int
    history_requests: int
    storm_clients: int
    storm_rate: float
    idle_connections: int
    sdk_subscribers: int
    sdk_rate: float
    sdk_s: float
    cluster_nodes: int
    cluster_subscribers: int
    cluster_rate: float
    cluster_s: float


FULL = Sizes(
    fanout_subscribers=(1, 100, 1000),
    fanout_moderate_rate=50.0,
    fanout_trial_s=2.0,
    fanout_search_budget_s=45.0,
    durable_publishers=50,
    durable_channels=1000,
    durable_window=8,
    durable_s=5.0,
    sqlite_s=3.0,
    stream_messages=200,
    stream_rate=50.0,
    stream_subscribers=3,
    stream_s=10.0,
    history_messages=1_000_000,
    history_requests=2000,
    storm_clients=500,
    storm_rate=50.0,
    idle_connections=5000,
    sdk_subscribers=20,
    sdk_rate=50.0,
    sdk_s=5.0,
    cluster_nodes=3,
    cluster_subscribers=1000,
    cluster_rate=50.0,
    cluster_s=5.0,
)

QUICK = Sizes(
    fanout_subscribers=(1, 10, 50),
    fanout_moderate_rate=50.0,
    fanout_trial_s=0.3,
    fanout_search_budget_s=1.5,
    durable_publishers=5,
    durable_channels=20,
    durable_window=4,
    durable_s=0.5,
    sqlite_s=0.3,
    stream_messages=5,
    stream_rate=20.0,
    stream_subscribers=2,
    stream_s=0.5,
    history_messages=10_000,
    history_requests=100,
    storm_clients=20,
    storm_rate=50.0,
    idle_connections=200,
    sdk_subscribers=2,
    sdk_rate=20.0,
    sdk_s=1.0,
    cluster_nodes=3,
    cluster_subscribers=6,
    cluster_rate=20.0,
    cluster_s=0.5,
)
