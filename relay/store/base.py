"""The storage interface the channel layer is written against.

SQLite (`sqlite.py`) is the embedded default; PostgreSQL (`postgres.py`) serves several relay
nodes. The store is the source of truth: serials, idempotency and message aggregates are decided
inside the commit transaction, and the channel layer's memory only caches what a commit returned.
Writes are submitted, not awaited, so a connection can pipeline its publishes; the store calls
back in submission order once a write is durable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from channel_relay.auth.keys import ApiKey
from channel_relay.auth.revocation import Revocation

if TYPE_CHECKING:
    from channel_relay.store.health import WriteHealth

__all__ = [
    "CHANNEL_TABLES",
    "DEFAULT_KEY_SETTING",
    "UNSTORED",
    "ChannelLog",
    "HistoryQuery",
    "LogEvent",
    "Mutate",
    "MutateResult",
    "MutationApply",
    "PresenceEvents",
    "Publish",
    "PublishResult",
    "Store",
    "StoredMessage",
    "StoredVersion",
    "WriteOp",
]


# The tables holding rows of a channel's log, keyed by channel_id, in both engines' schemas.
CHANNEL_TABLES = (
    "messages",
    "versions",
    "presence",
    "idempotency",
    "trimmed",
    "restored",
    "presence_members",
)

# The setting naming the default app's key of local development, made once per database.
DEFAULT_KEY_SETTING = "default_key"

UNSTORED = 0
"""The channel_id of a channel that has no log in the store yet (no store numbers one 0)."""


@dataclass(slots=True)
class ChannelLog:
    """A channel's place in the store: its id, the epoch of its serials and its last sequence."""

    channel_id: int
    epoch: str
    last_seq: int
    # The oldest seq retention may have kept: every event before it was removed (1: none).
    # Never above last_seq + 1; last_seq itself never goes back.
    first_seq: int = 1
    # Ranges (after, upto] of seqs whose events a restore from backup lost.
    lost: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class StoredMessage:
    seq: int
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """An update, delete or append: its own seq, the seq of the message it changes, and the
    operation as subscribers received it."""

    seq: int
    target_seq: int
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One event of a channel's log in seq order: a message (`target_seq == seq`, body its
    latest aggregate) or a version of an earlier message."""

    seq: int
    target_seq: int
    message: dict[str, Any]

    @property
    def is_version(self) -> bool:
        return self.seq != self.target_seq


@dataclass(slots=True)
class Publish:
    """New messages for a channel's log, numbered by the store when it commits them.

    `messages` are wire dicts stamped with everything but their serial; the store gives each
    the next seq of the channel and the serial `epoch:seq`, in the transaction that stores it.
    `idempotent_ids` holds, per message, its client-supplied id (or None): a message whose id
    the channel already stored is not stored again, and gets its earlier seq.
    """

    channel_id: int
    epoch: str
    messages: Sequence[dict[str, Any]]
    idempotent_ids: Sequence[str | None]
    done: Callable[[PublishResult | None, BaseException | None], None]
    # Messages delivered but never stored (extras.ephemeral): a store shared by several nodes
    # hands them to the others with the commit's notification.
    ephemeral: Sequence[dict[str, Any]] = ()


# Not frozen, like MutateResult: the writer makes one per publish, and a frozen dataclass sets
# each field through object.__setattr__.
@dataclass(slots=True)
class PublishResult:
    """Per message of a `Publish`: its seq, and whether this commit stored it (False: its id
    was stored before, and the seq is that earlier one)."""

    seqs: list[int]
    fresh: list[bool]


MutationApply = Callable[[dict[str, Any], str], tuple[dict[str, Any], dict[str, Any]]]
"""(the message's current aggregate, the version serial) -> (new aggregate, the operation as
delivered); raises an AblyError when the change is refused. Runs inside the commit."""


@dataclass(slots=True)
class Mutate:
    """An update, delete or append of the message at `target_seq`: the store reads the current
    aggregate in the transaction, numbers the version, applies `apply` and stores both."""

    channel_id: int
    epoch: str
    target_seq: int
    apply: MutationApply
    done: Callable[[MutateResult | None, BaseException | None], None]


# Not frozen: a frozen dataclass sets each field through object.__setattr__ (0.9 against 0.2 us
# to make one), and the writer makes one per streamed append.
@dataclass(slots=True)
class MutateResult:
    seq: int
    target_seq: int
    aggregate: dict[str, Any]
    operation: dict[str, Any]


@dataclass(slots=True)
class PresenceEvents:
    """Presence events (enter, update, leave) for a channel's presence history, numbered by the
    store at commit apart from messages."""

    channel_id: int
    events: Sequence[dict[str, Any]]
    done: Callable[[None, BaseException | None], None]


WriteOp = Publish | Mutate | PresenceEvents


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """One page of a channel's history; seq bounds are inclusive."""

    channel_id: int
    limit: int
    forwards: bool = False
    min_seq: int | None = None
    max_seq: int | None = None
    start: int | None = None
    end: int | None = None


class Store(Protocol):
    # The relay node this store writes for (presence members and notifications name it).
    node_id: str
    # Called after each commit with (operations, seconds): metrics.
    on_commit: Callable[[int, float], None] | None
    # Wraps the reporting of each commit's outcomes (the relay corks its sockets in it).
    completions: Callable[[], AbstractContextManager[None]]
    # Whether commits are failing (readiness).
    health: WriteHealth

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def submit(self, op: WriteOp) -> None:
        """Queue an operation for the next group commit; never blocks. Its `done` is called on
        the event loop, in submission order, once it is durable or has failed; a failure
        leaves nothing of it in the store."""

    async def channel(self, app_id: str, name: str) -> ChannelLog:
        """The channel's log, created (with a fresh epoch) the first time it is named."""

    async def find_channel(self, app_id: str, name: str) -> ChannelLog | None:
        """The channel's log if it has one; never creates it (reads must not)."""

    async def history(self, query: HistoryQuery) -> list[StoredMessage]: ...

    async def presence_history(self, query: HistoryQuery) -> list[StoredMessage]:
        """A page of a channel's presence events (seq and time bounds as for messages)."""

    async def last_presence(self, channel_id: int, connection_id: str) -> dict[str, Any] | None:
        """The latest presence event a connection published on a channel."""

    async def message(self, channel_id: int, seq: int) -> dict[str, Any] | None:
        """The latest aggregate of the message first published at `seq`."""

    async def versions(
        self, channel_id: int, target_seq: int, query: HistoryQuery
    ) -> list[StoredVersion]:
        """A page of the recorded versions of one message (bounds in `query` apply to seq)."""

    async def events(
        self, channel_id: int, start_seq: int, after_seq: int, until_seq: int, limit: int
    ) -> list[LogEvent]:
        """A page of the log after `after_seq` up to `until_seq`, in seq order, for replaying to
        a client that last saw `start_seq` (`after_seq` is the page cursor, >= `start_seq`):
        messages first published after `start_seq` come as their latest aggregate, so versions
        of those messages are left out."""

    async def log_since(self, channel_id: int, after_seq: int, limit: int) -> list[LogEvent]:
        """Up to `limit` events of the log after `after_seq`, as they were delivered live: each
        message as first published, each change as its operation (catching up on what another
        node committed)."""

    async def last_seq(self, channel_id: int) -> int:
        """The channel's last seq as committed (by any node)."""

    async def idempotent_seqs(self, channel_id: int, ids: Sequence[str]) -> dict[str, int]:
        """The seqs already stored under any of these client-supplied message ids."""

    async def keys(self) -> list[ApiKey]:
        """Every API key kept in the database."""

    async def add_keys(self, keys: Sequence[ApiKey]) -> None: ...

    async def get_setting(self, name: str) -> str | None: ...

    async def set_setting(self, name: str, value: str) -> None: ...

    # Credentials state shared by every node: nonces and revocations

    async def claim_nonce(self, key_name: str, nonce: str, expires_ms: int, now_ms: int) -> bool:
        """Hold a TokenRequest nonce of `key_name` until `expires_ms`, durably; False when it is
        already held (a replay). Nonces expired by `now_ms` are forgotten."""

    async def add_revocations(self, revocations: Sequence[Revocation], horizon_ms: int) -> None:
        """Commit revocations; those applying before `horizon_ms` are dropped (past retention)."""

    async def revocations(self, after_id: int) -> list[tuple[int, Revocation]]:
        """Revocations committed after the one numbered `after_id`, in order, with their ids."""

    # Connections and nodes: what lets a connection resume on another node or after a restart

    async def node_alive(self, node_id: str, now_ms: int, ttl_ms: int) -> None:
        """Record that `node_id` is alive at `now_ms`; forget connections that can no longer
        be resumed (gone for longer than `ttl_ms`) and nodes silent for that long."""

    async def save_connection(
        self, connection_id: str, app_id: str, key_hash: str, node_id: str
    ) -> None:
        """Record a connection `node_id` serves now, under its current key."""

    async def drop_connections(
        self, node_id: str, connection_ids: Sequence[str], at_ms: int
    ) -> None:
        """Their sockets went away at `at_ms` (only rows `node_id` still owns change)."""

    async def forget_connections(self, node_id: str, connection_ids: Sequence[str]) -> None:
        """Closed or expired on `node_id`: no longer resumable (rows another node took stay)."""

    async def claim_connection(
        self,
        connection_id: str,
        app_id: str,
        key_hash: str,
        node_id: str,
        now_ms: int,
        ttl_ms: int,
    ) -> bool | None:
        """Take over a connection for a resume on `node_id`, atomically: True when it is
        resumable (now served by `node_id`), False when the key or app do not match, None when
        it is unknown or expired (its state is then forgotten)."""

    async def presence_members(self, channel_id: int) -> list[tuple[str, dict[str, Any]]]:
        """The channel's present members (their latest enter or update), each with the node
        that serves its connection."""

    async def claim_orphans(
        self, node_id: str, alive_since_ms: int
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """Take over, for `node_id` to announce their leaves, the members whose node has not
        been heard of since `alive_since_ms`: (app_id, channel name, member), each once across
        every node."""

    # Apps provisioned at run time (the sandbox)

    async def add_app(self, app_id: str, spec: str, keys: Sequence[ApiKey]) -> None:
        """Keep an app's spec (JSON) and its keys, in one transaction."""

    async def apps(self) -> list[tuple[str, str]]:
        """Every provisioned app: (app_id, spec JSON)."""

    async def delete_app_data(self, app_id: str, *, keep_app: bool = False) -> None:
        """Remove an app's channels and everything logged on them (messages, versions,
        presence, idempotency ids) and its stats; unless `keep_app`, its spec and keys too."""

    async def add_stats(self, app_id: str, intervals: Sequence[tuple[int, str]]) -> None:
        """Store (or replace) an app's stats per minute: (interval start ms, entries JSON)."""

    async def stats(self, app_id: str, start: int, end: int) -> list[tuple[int, str]]:
        """An app's stored minutes with start <= interval start <= end, oldest first."""

    # Operations: readiness, shutdown, retention

    async def ping(self, size: int = 0) -> None:
        """A durable write of one row, of about `size` bytes, through the writer: raises when
        the database cannot be written."""

    async def flush(self) -> None:
        """Return once everything submitted before the call is committed and reported."""

    async def channel_list(self) -> list[tuple[int, str, str]]:
        """Every channel in the store: (channel_id, app_id, name)."""

    async def channel_names(
        self, app_id: str, prefix: str, after: str | None, limit: int
    ) -> list[str]:
        """Up to `limit` names of the app's channels that start with `prefix`, in code point
        order, each after `after` when it is given (the page cursor)."""

    # Fixtures (channel_relay.store.fixtures): a channel's log out, and back in as it was

    async def version_rows(
        self, channel_id: int, after_seq: int, limit: int
    ) -> list[StoredVersion]:
        """Up to `limit` of every version recorded on the channel (the originals kept once
        their messages changed among them), in seq order after `after_seq`."""

    async def replace_channel(
        self, app_id: str, name: str, epoch: str, last_seq: int, first_seq: int
    ) -> int:
        """Make the channel anew with this epoch, last seq and first kept seq, dropping any
        channel of that name with everything logged on it; returns its channel_id."""

    async def add_log_rows(
        self,
        channel_id: int,
        messages: Sequence[StoredMessage],
        versions: Sequence[StoredVersion],
        presence: Sequence[StoredMessage],
    ) -> None:
        """Store rows of a channel's log already numbered (a fixture's), as they are, in one
        write."""

    async def retention_cutoff(
        self, channel_id: int, before_ms: int | None, keep: int | None
    ) -> int:
        """The highest seq retention should remove: of the newest message older than
        `before_ms`, and of the newest message beyond the `keep` most recent; 0 for none."""

    async def trim(self, channel_id: int, upto_seq: int, batch: int) -> tuple[int, int]:
        """Remove the oldest `batch` messages at or below `upto_seq` (and the versions among
        them) in one write; (messages removed, the seq at or below which all is now gone)."""
