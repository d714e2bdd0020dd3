"""Why a SQLite database cannot serve the relay, found before the relay starts on it.

A missing or unwritable directory, a read-only file and a corrupt file each become one
`StoreOpenError` naming the cause, so `relay serve` can say so in one line and exit, instead of
starting and then failing every request with 50000. Corruption is found with SQLite's own
`PRAGMA quick_check` (every page and index entry is read; a large database takes a moment).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

__all__ = ["StoreOpenError", "check_database"]


class StoreOpenError(Exception):
    """The database cannot be used; the message says why, in one line."""


def check_database(path: str) -> None:
    """Raise StoreOpenError when the database at `path` (made if absent) cannot serve."""
    file = Path(path)
    directory = file.parent
    if not directory.is_dir():
        raise StoreOpenError(f"the directory {directory} does not exist")
    # SQLite keeps its -wal and -shm files beside the database: the directory must be writable.
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreOpenError(f"the directory {directory} is not writable")
    if not file.exists():
        return
    if not os.access(file, os.R_OK | os.W_OK):
        raise StoreOpenError(f"{file} is read-only")
    try:
        db = sqlite3.connect(file)
        try:
            problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise StoreOpenError(f"{file} is not a SQLite database ({exc})") from None
        problems = [str(exc)]
    if problems != ["ok"]:
        found = "; ".join(" ".join(p.split()) for p in problems)
        raise StoreOpenError(f"{file} is corrupt ({found}); restore a backup (relay restore)")
