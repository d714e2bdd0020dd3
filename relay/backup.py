"""`relay backup` and `relay restore`: consistent copies of the database, taken while it runs.

A backup opens the database read-only from its own process (WAL mode lets a reader beside the
running relay's writer) and copies it with SQLite's online backup API in one step, which reads
one snapshot: the copy holds every transaction committed before the backup began (so every
message ACKed by then) and none of one that was half done. The copy is written to a temporary
file beside the target, switched out of WAL mode (a single self-contained file), checked with
`PRAGMA integrity_check`, synced and only then renamed into place.

A restore is: stop the relay, put the backup where the database was, start it. `restore()`
does the middle step: it checks the backup, refuses while the database looks in use (its -wal
file exists: a running relay, or one that stopped uncleanly; `force` overrides), carries over
how far each channel was numbered in the database it replaces (so no serial is issued twice),
replaces the file and removes stale -wal and -shm files, which SQLite would otherwise apply to
the restored database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from channel_relay.store.schema import apply_schema

__all__ = ["BackupError", "BackupInfo", "backup", "restore"]


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why."""


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: str
    bytes: int
    channels: int
    messages: int
    seconds: float


def backup(source: str | Path, target: str | Path) -> BackupInfo:
    """Copy the database at `source` to `target` (replaced if it exists), consistently, while
    a relay may be writing to it."""
    started = time.monotonic()
    source, target = Path(source), Path(target)
    if not source.exists():
        raise BackupError(f"no database at {source}")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(f"file:{quote(str(source.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open {source} read-only: {exc}") from exc
    try:
        dst = sqlite3.connect(partial)
        try:
            # pages=-1: the whole database in one step, hence from one read snapshot.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = DELETE")
            _check(dst, partial)
            channels, messages = _counts(dst)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"backup of {source} failed: {exc}") from exc
    finally:
        src.close()
    _fsync(partial)
    os.replace(partial, target)
    _fsync_dir(target.parent)
    return BackupInfo(
        str(target), target.stat().st_size, channels, messages, time.monotonic() - started
    )


def restore(backup_path: str | Path, database: str | Path, *, force: bool = False) -> BackupInfo:
    """Put the backup at `backup_path` in place of `database` (the relay must be stopped)."""
    started = time.monotonic()
    backup_path, database = Path(backup_path), Path(database)
    if not backup_path.exists():
        raise BackupError(f"no backup at {backup_path}")
    wal = database.with_name(database.name + "-wal")
    if wal.exists() and not force:
        raise BackupError(
            f"{wal} exists: the relay is running or did not stop cleanly. Stop it first "
            "(or pass --force to discard what that file holds)"
        )
    try:
        check = sqlite3.connect(f"file:{quote(str(backup_path.resolve()))}?mode=ro", uri=True)
        try:
            _check(check, backup_path)
            channels, messages = _counts(check)
        finally:
            check.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{backup_path} is not a usable database: {exc}") from exc
    staging = database.with_name(database.name + ".restoring")
    shutil.copyfile(backup_path, staging)
    _keep_numbering(database, staging)
    _fsync(staging)
    os.replace(staging, database)
    for suffix in ("-wal", "-shm", "-journal"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    _fsync_dir(database.parent)
    return BackupInfo(
        str(database), database.stat().st_size, channels, messages, time.monotonic() - started
    )


def _keep_numbering(database: Path, staging: Path) -> None:
    """Serials must not be issued twice: where the database being replaced numbered a channel
    further than the backup did, the restored channel continues from there, and the range in
    between is recorded as lost, so a client that saw part of it is not told it resumed."""
    if not database.exists():
        return
    try:
        old = sqlite3.connect(f"file:{quote(str(database.resolve()))}?mode=ro", uri=True)
        try:
            rows = old.execute("SELECT app_id, name, last_seq FROM channels").fetchall()
        finally:
            old.close()
    except sqlite3.Error:
        return  # unreadable (the reason for restoring, perhaps): nothing to carry over
    new = sqlite3.connect(staging)
    try:
        # A backup taken before a table or column existed gets it now.
        apply_schema(new)
        with new:
            for app_id, name, seq in rows:
                found = new.execute(
                    "SELECT id, last_seq FROM channels WHERE app_id = ? AND name = ?",
                    (app_id, name),
                ).fetchone()
                if found is None or found[1] >= seq:
                    continue
                channel_id, restored_seq = found
                new.execute("UPDATE channels SET last_seq = ? WHERE id = ?", (seq, channel_id))
                new.execute(
                    "INSERT OR REPLACE INTO restored (channel_id, after_seq, upto_seq) "
                    "VALUES (?, ?, ?)",
                    (channel_id, restored_seq, seq),
                )
    finally:
        new.close()


def _check(db: sqlite3.Connection, path: Path) -> None:
    result = db.execute("PRAGMA integrity_check").fetchone()
    if result is None or result[0] != "ok":
        raise BackupError(f"{path} failed its integrity check: {result}")


def _counts(db: sqlite3.Connection) -> tuple[int, int]:
    try:
        channels = db.execute("SELECT count(*) FROM channels").fetchone()[0]
        messages = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    except sqlite3.OperationalError as exc:
        raise BackupError(f"not a relay database: {exc}") from exc
    return channels, messages


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
