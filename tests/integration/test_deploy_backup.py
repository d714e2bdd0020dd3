"""The operator's promises about backups: `relay backup` copies the database of a running relay
under write load, consistently, holding every message ACKed before it started; `relay restore`
puts it back (with the relay stopped) and the relay serves it."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import msgpack
from raw_client import connect_raw

from channel_relay.config import Settings
from channel_relay.server import Relay

APP_KEY = "app1.key1:secret1"
ACK, ATTACH, ATTACHED, MESSAGE = 1, 10, 11, 15
RESUMED = 1 << 2


async def _relay_cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "channel_relay",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _serials(db: Path) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {
            serial
            for (body,) in conn.execute("SELECT body FROM messages")
            for serial in [msgpack.unpackb(body)["serial"]]
        }


async def test_a_backup_under_write_load_holds_everything_acked_before_it_began(
    tmp_path: Path,
) -> None:
    db = tmp_path / "relay.db"
    relay = Relay(Settings(host="127.0.0.1", port=0, db_path=str(db), keys=[APP_KEY]))
    await relay.start()
    acked: list[str] = []
    stop = asyncio.Event()
    enough = asyncio.Event()
    client, _ = await connect_raw(relay.port, APP_KEY, "json")

    async def write_load() -> None:
        index = 0
        while not stop.is_set():
            # A pipeline of 20 publishes of 10 messages, then their ACKs.
            for _ in range(20):
                await client.publish(f"load-{index % 7}", [{"data": "x" * 200}] * 10)
                index += 1
            answered = 0
            while answered < 20:  # consecutive ACKs may come as one frame (count > 1)
                ack = await client.recv_action(ACK)
                answered += ack.get("count", 1)
                acked.extend(s for res in ack["res"] for s in res["serials"])
            if len(acked) >= 5000:
                enough.set()

    load = asyncio.create_task(write_load())
    try:
        await asyncio.wait_for(enough.wait(), 30)
        acked_before = set(acked)
        code, out, err = await _relay_cli("backup", str(tmp_path / "copy.db"), "--db", str(db))
        during = len(acked) - len(acked_before)
        stop.set()
        await load
    finally:
        await client.close()
        await relay.stop()
    assert code == 0, err
    assert "written to" in out
    in_backup = _serials(tmp_path / "copy.db")
    assert acked_before <= in_backup, f"{len(acked_before - in_backup)} ACKed messages missing"
    print(f"\nbackup: {len(in_backup)} messages copied while {during} more were ACKed meanwhile")
    # The copy is one self-contained file, not a WAL database needing its -wal.
    assert not (tmp_path / "copy.db-wal").exists()


async def test_restore_puts_the_backup_in_place_and_the_relay_serves_it(tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    relay = Relay(Settings(host="127.0.0.1", port=0, db_path=str(db), keys=[APP_KEY]))
    await relay.start()
    client, _ = await connect_raw(relay.port, APP_KEY, "json")
    await client.publish("kept", [{"data": "before the backup"}])
    (kept,) = (await client.recv_action(ACK))["res"][0]["serials"]
    code, _, err = await _relay_cli("backup", str(tmp_path / "copy.db"), "--db", str(db))
    assert code == 0, err
    await client.publish("kept", [{"data": "after the backup"}])
    await client.recv_action(ACK)
    # Refused while the relay runs (its -wal file is there).
    code, _, err = await _relay_cli("restore", str(tmp_path / "copy.db"), "--db", str(db))
    assert code == 1
    assert "Stop it first" in err
    await client.close()
    await relay.stop()
    code, out, err = await _relay_cli("restore", str(tmp_path / "copy.db"), "--db", str(db))
    assert code == 0, err
    assert "restored" in out
    relay = Relay(Settings(host="127.0.0.1", port=0, db_path=str(db), keys=[APP_KEY]))
    await relay.start()
    try:
        assert _serials(db) == {kept}
        channel = await relay.channels.get("app1", "kept")
        # The restored log holds what the backup held, and numbering continues after the
        # message published after the backup (lost by the restore): no serial is reused.
        assert channel.log.last_seq == 2
        assert kept < channel.serial
    finally:
        await relay.stop()


async def test_after_a_restore_a_client_that_saw_lost_messages_is_not_resumed(
    tmp_path: Path,
) -> None:
    """The README's promise: a client whose channelSerial is newer than the restored log
    re-attaches without RESUMED (80006); one whose serial the restored log still has resumes."""
    db = tmp_path / "relay.db"
    relay = Relay(Settings(host="127.0.0.1", port=0, db_path=str(db), keys=[APP_KEY]))
    await relay.start()
    client, _ = await connect_raw(relay.port, APP_KEY, "json")
    await client.publish("chat", [{"data": "kept"}])
    (kept,) = (await client.recv_action(ACK))["res"][0]["serials"]
    code, _, err = await _relay_cli("backup", str(tmp_path / "copy.db"), "--db", str(db))
    assert code == 0, err
    await client.publish("chat", [{"data": "lost by the restore"}])
    (lost,) = (await client.recv_action(ACK))["res"][0]["serials"]
    await client.close()
    await relay.stop()
    code, _, err = await _relay_cli("restore", str(tmp_path / "copy.db"), "--db", str(db))
    assert code == 0, err
    relay = Relay(Settings(host="127.0.0.1", port=0, db_path=str(db), keys=[APP_KEY]))
    await relay.start()
    try:
        saw_lost, _ = await connect_raw(relay.port, APP_KEY, "json")
        await saw_lost.send({"action": ATTACH, "channel": "chat", "channelSerial": lost})
        attached = await saw_lost.recv_action(ATTACHED)
        assert not attached["flags"] & RESUMED
        assert attached["error"]["code"] == 80006
        saw_kept, _ = await connect_raw(relay.port, APP_KEY, "json")
        await saw_kept.send({"action": ATTACH, "channel": "chat", "channelSerial": kept})
        attached = await saw_kept.recv_action(ATTACHED)
        assert attached["flags"] & RESUMED
        assert "error" not in attached
        # New messages are numbered after the lost one, and both clients get them.
        await saw_kept.publish("chat", [{"data": "after the restore"}])
        for client in (saw_lost, saw_kept):
            delivered = await client.recv_action(MESSAGE)
            assert delivered["messages"][0]["serial"] > lost
        await saw_lost.close()
        await saw_kept.close()
    finally:
        await relay.stop()
