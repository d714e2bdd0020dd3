"""The relay's Prometheus metrics, served at GET /metrics (channel_relay.ops).

Each Relay has its own CollectorRegistry, so several relays in one process (tests) keep apart.
The hot paths pay one addition per publish batch and per fan-out (deliveries count
`len(subscribers)` at once, never one per subscriber frame), one bucket count per ACK, and per
store commit one histogram observation each for batch size and latency (made by the writer
thread). What the event loop counts per publish is kept as plain numbers (`LoopCounter`,
`LoopHistogram`): prometheus_client's own take a lock per increment, which was a few percent of
the loop's time per publish. Gauges of connections and channels are read when scraped, not
maintained.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from channel_relay import __version__

__all__ = ["CONTENT_TYPE_LATEST", "LoopCounter", "LoopHistogram", "Metrics"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class Metrics:
    """Every metric of one relay. Names follow Prometheus conventions (`_total` is added to
    counters by the client library)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        Gauge("relay_info", "The relay's version", ["version"], registry=r).labels(__version__).set(
            1
        )
        self.connections = Gauge("relay_connections", "WebSocket connections open now", registry=r)
        self.retained_connections = Gauge(
            "relay_connections_retained",
            "Connections kept for resume (open, or dropped within connectionStateTtl)",
            registry=r,
        )
        self.channels = Gauge("relay_channels", "Channels loaded in memory", registry=r)
        self.publishes = LoopCounter(
            "relay_messages_published",
            "Messages accepted from publishers (realtime and REST), counted when durable",
            r,
        )
        self.deliveries = LoopCounter(
            "relay_deliveries",
            "Message protocol messages written to subscribers (one per subscriber per fan-out)",
            r,
        )
        self.ack_latency = LoopHistogram(
            "relay_ack_latency_seconds",
            "From a realtime publish's arrival to its ACK or NACK",
            _LATENCY_BUCKETS,
            r,
        )
        self.loop_lag = LoopHistogram(
            "relay_event_loop_lag_seconds",
            "How long after its due time the event loop ran a timer due every 0.25 s",
            _LATENCY_BUCKETS,
            r,
        )
        self.commit_batch = Histogram(
            "relay_store_commit_batch_size",
            "Operations (publish batches and other writes) per store commit",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.commit_latency = Histogram(
            "relay_store_commit_seconds",
            "Duration of one store commit: the transaction and its fsync",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.resumes = Counter(
            "relay_connection_resumes",
            "Connection resume (or recover) attempts by outcome: resumed, expired, invalid",
            ["outcome"],
            registry=r,
        )
        self.channel_resumes = Counter(
            "relay_channel_resumes",
            "Attaches from a channelSerial by outcome: resumed (replayed from the log) or "
            "continuity_lost (80006/80012: the serial is not in the kept log)",
            ["outcome"],
            registry=r,
        )
        self.auth_failures = Counter(
            "relay_auth_failures",
            "Refused credentials (realtime connect and REST) by Ably error code",
            ["code"],
            registry=r,
        )
        self.refused_connections = Counter(
            "relay_connections_refused",
            "New connections refused by a limit, by Ably error code (40150: max_connections)",
            ["code"],
            registry=r,
        )
        self.rate_limited = Counter(
            "relay_rate_limited_publishes",
            "Publishes NACKed with 42911 for exceeding max_inbound_rate",
            registry=r,
        )
        self.slow_consumers = Counter(
            "relay_slow_consumer_disconnects",
            "Sockets disconnected as too slow (max_outbound_buffer or max_outbound_total)",
            registry=r,
        )
        self.retention_deleted = Counter(
            "relay_retention_deleted_messages",
            "Messages removed by retention",
            registry=r,
        )

    def store_commit(self, operations: int, seconds: float) -> None:
        """One store commit (called by the writer thread; the client library is thread-safe)."""
        self.commit_batch.observe(operations)
        self.commit_latency.observe(seconds)

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric."""
        return generate_latest(self.registry)


class LoopCounter:
    """A counter that only the event loop adds to (`count += n`) and reads (scrapes run on the
    loop), exposed like prometheus_client's Counter."""

    def __init__(self, name: str, documentation: str, registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.count = 0
        self._created = time.time()
        registry.register(self)

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            self.name, self.documentation, value=self.count, created=self._created
        )


class LoopHistogram:
    """A histogram that only the event loop observes and reads, exposed like
    prometheus_client's Histogram."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._bounds = tuple(buckets)
        # Observations per bucket (the last: above every bound), not cumulative.
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        self._created = time.time()
        registry.register(self)

    def observe(self, value: float) -> None:
        # A bucket holds the values at or below its bound, as Prometheus's `le` says.
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[Metric]:
        buckets: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip((*self._bounds, float("inf")), self._counts, strict=True):
            total += count
            buckets.append((floatToGoString(bound), total))
        family = HistogramMetricFamily(
            self.name, self.documentation, buckets=buckets, sum_value=self._sum
        )
        family.add_sample(f"{self.name}_created", {}, self._created)
        yield family
