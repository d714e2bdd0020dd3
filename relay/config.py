"""The relay's settings, with the defaults an Ably SDK expects of a connection."""

from __future__ import annotations

from dataclasses import dataclass, field

from channel_relay.auth.keys import ApiKey
from channel_relay.channels.rules import ChannelRules

__all__ = ["AppSettings", "Settings"]


@dataclass(slots=True)
class AppSettings:
    """An app declared in the config file: its keys (with their capabilities) and the rules of
    its channels, per namespace and `default` for channels in no namespace."""

    app_id: str
    keys: list[ApiKey] = field(default_factory=list)
    default_rules: ChannelRules = field(default_factory=ChannelRules)
    namespaces: dict[str, ChannelRules] = field(default_factory=dict)


@dataclass(slots=True)
class Settings:
    """Everything `relay serve` can be told; each field has a CLI flag and a RELAY_* variable.

    `db_path` None means a throwaway database that is removed when the relay stops.
    `keys` are full API keys "APPID.KEYID:SECRET"; when empty, a default app and key are created
    once in the database and reused at every start.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    db_path: str | None = "relay.db"
    # A postgresql:// URL: everything lives there, shared by every relay node given it (then
    # db_path is not used).
    store: str | None = None
    # Processes serving the port together (SO_REUSEPORT); more than one needs `store`.
    workers: int = 1
    keys: list[str] = field(default_factory=list)
    max_message_size: int = 65536
    max_frame_size: int = 524288
    connection_state_ttl: int = 120_000
    max_idle_interval: int = 15_000
    # How long a dropped connection's presence members stay, waiting for it to resume (ms).
    presence_grace: int = 15_000
    # Members per SYNC ProtocolMessage sent to an attaching client.
    sync_page_size: int = 100
    # A subscriber whose unsent output exceeds this is disconnected rather than slowing a channel.
    max_outbound_buffer: int = 8 * 1024 * 1024
    # All subscribers' unsent output together: past it, those holding the most are disconnected.
    # 0: no relay-wide limit.
    max_outbound_total: int = 128 * 1024 * 1024
    sandbox: bool = False
    # The web inspector at /inspect (channel_relay.inspector): on for local development, off
    # for a deployment that wants no browser UI. Its data needs a key either way.
    inspector: bool = True
    # Apps from the config file (settings_loader.py); keys above belong to apps of their own.
    apps: list[AppSettings] = field(default_factory=list)
    # Concurrent WebSocket connections; past it a new one is refused with 40150. 0: no limit.
    max_connections: int = 0
    # Messages (and presence events) a connection may publish per second; past it they are
    # NACKed with 42911. 0: no limit.
    max_inbound_rate: int = 0
    # Serve https:// and wss:// with this certificate chain and private key (PEM files).
    tls_cert: str | None = None
    tls_key: str | None = None
    log_level: str = "INFO"
    # "text" or "json" (one object per line, with connection and channel ids where known).
    log_format: str = "text"
    # Seconds a shutdown may take to hand clients over and flush the store.
    drain_timeout: float = 10.0
    # Seconds between retention passes, and rows removed per delete (channel_relay.retention).
    retention_interval: float = 60.0
    retention_batch: int = 500
    # Seconds between flushes of the live stats counted in memory (channel_relay.usage): on a
    # cluster, how late `GET /stats` on one node may be with another node's counts.
    stats_flush_interval: float = 5.0
