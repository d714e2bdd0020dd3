"""The relay's settings, with the defaults an Ably SDK expects of a connection."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Settings"]


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
    sandbox: bool = False
