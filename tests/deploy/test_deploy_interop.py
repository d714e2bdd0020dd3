"""The operator's promises, checked with the unmodified ably-js against relay processes:
TLS with a private CA, and a SIGTERM under a live subscriber and publisher after which the
subscriber resumes on the restarted relay with nothing lost."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import aiohttp
import pytest
from conftest import CertAuthority, RelayProcess, free_port, run_script, start_relay


async def test_ably_js_with_tls_true_round_trips_over_wss_and_https_with_a_private_ca(
    node: str, test_ca: CertAuthority, relays: list[RelayProcess], tmp_path: Path
) -> None:
    port = free_port()
    relays.append(
        await start_relay(
            "--db",
            str(tmp_path / "relay.db"),
            "--tls-cert",
            str(test_ca.cert),
            "--tls-key",
            str(test_ca.key),
            port=port,
        )
    )
    result = await run_script(
        node,
        "deploy_tls.mjs",
        port=port,
        env={"NODE_EXTRA_CA_CERTS": str(test_ca.ca_cert)},
    )
    assert result["received"] == ["over wss", "over https"]
    assert result["history"] == ["over wss", "over https"]
    assert result["time"] is True
    assert result["transport"] in ("wss", None)


async def test_https_is_verified_against_the_ca_and_refused_without_it(
    test_ca: CertAuthority, relays: list[RelayProcess]
) -> None:
    """The certificate really is checked: trusted with the CA (as SSL_CERT_FILE would make
    it), refused by the default trust store."""
    port = free_port()
    relays.append(
        await start_relay(
            "--memory", "--tls-cert", str(test_ca.cert), "--tls-key", str(test_ca.key), port=port
        )
    )
    trusted = ssl.create_default_context(cafile=str(test_ca.ca_cert))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://localhost:{port}/healthz", ssl=trusted) as resp:
            assert resp.status == 200
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"https://localhost:{port}/healthz", ssl=ssl.create_default_context())
        # Plain http on the TLS port is not served.
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"http://localhost:{port}/healthz")


async def test_sigterm_under_live_traffic_loses_nothing_and_the_subscriber_resumes(
    node: str, relays: list[RelayProcess], tmp_path: Path
) -> None:
    port = free_port()
    db = str(tmp_path / "relay.db")
    relays.append(await start_relay("--db", db, port=port))
    count = 150
    restarted = asyncio.Event()
    timings: dict[str, float] = {}

    async def on_line(line: str) -> None:
        if line == "PROGRESS 50" and not restarted.is_set():
            restarted.set()
            started = time.perf_counter()
            code = await relays[0].stop()
            timings["shutdown"] = time.perf_counter() - started
            timings["exit"] = code
            relays.append(await start_relay("--db", db, port=port))
            timings["restart"] = time.perf_counter() - started

    result = await run_script(
        node,
        "deploy_sigterm.mjs",
        port=port,
        args={"channel": "handover", "count": count, "gapMs": 10, "waitMs": 15000},
        on_line=on_line,
        deadline=90.0,
    )
    print(
        f"\nSIGTERM: relay exited {timings.get('exit')} in {timings.get('shutdown', 0):.2f} s; "
        f"serving again {timings.get('restart', 0):.2f} s after the signal"
    )
    assert restarted.is_set()
    assert timings["exit"] == 0, relays[0].stderr.decode()
    assert result["failed"] == []
    assert result["received"] == [str(i) for i in range(count)], "lost, duplicated or reordered"
    assert result["serialsIncreasing"] is True
    # The relay said why it went away (DISCONNECTED 80003), and the subscriber came back.
    codes = [c["code"] for c in result["connectionChanges"] if c["state"] == "disconnected"]
    assert 80003 in codes, result["connectionChanges"]
    assert result["connectionChanges"][-1]["state"] == "connected"
    # The channel re-attached from its channelSerial and the log filled the gap.
    reattached = [c for c in result["channelChanges"] if c["state"] == "attached"]
    assert reattached, result["channelChanges"]
    assert not any(c["state"] == "failed" for c in result["channelChanges"])
    assert b"Traceback" not in relays[0].stderr, relays[0].stderr.decode()
