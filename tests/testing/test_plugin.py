"""The pytest plugin (channel_relay.testing), tested as an application would use it: sample test
files run by pytester, with ably-js through node and with a plain WebSocket client, in parallel
under pytest-xdist, and leaving no thread, loop or temporary file behind."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from channel_relay.testing import RelayThread, create_app

pytest_plugins = ["pytester"]

NODE_PACKAGES = Path(__file__).resolve().parent.parent / "interop"

# A sample test module of an application using the plugin (it gets it by the entry point).
SAMPLE = textwrap.dedent(
    """
    import json
    import os
    import subprocess

    from websockets.sync.client import connect

    NODE_PACKAGES = {node_packages!r}
    SCRIPT = '''
    const Ably = require('ably');
    const options = JSON.parse(process.env.OPTIONS);
    (async () => {{
      const client = new Ably.Realtime(options);
      const channel = client.channels.get('greetings');
      const received = new Promise((resolve) => channel.subscribe((m) => resolve(m.data)));
      await channel.attach();
      await channel.publish('hi', 'hello from ably-js');
      console.log('RECEIVED ' + (await received));
      const page = await channel.history();
      console.log('HISTORY ' + page.items.length);
      client.close();
    }})().catch((err) => {{ console.error(err); process.exit(1); }});
    '''


    def record(relay_app, name):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(f"{{name}}.{{worker}}.port", "w") as f:
            f.write(str(relay_app.port))


    def test_ably_js(relay_app):
        record(relay_app, "ably_js")
        env = {{**os.environ, "OPTIONS": json.dumps(relay_app.ably_js_options())}}
        proc = subprocess.run(
            ["node", "-e", SCRIPT], cwd=NODE_PACKAGES, env=env, capture_output=True,
            text=True, timeout=30,
        )
        assert proc.returncode == 0, proc.stderr
        assert "RECEIVED hello from ably-js" in proc.stdout
        # A fresh app per test: only this test's message is in the history.
        assert "HISTORY 1" in proc.stdout


    def test_plain_websocket(relay_app):
        record(relay_app, "websocket")
        options = relay_app.client_options()
        url = options["url"].replace("http://", "ws://") + "/?format=json&key=" + options["key"]
        with connect(url) as ws:
            assert json.loads(ws.recv())["action"] == 4  # CONNECTED
            ws.send(json.dumps({{"action": 10, "channel": "greetings"}}))
            assert json.loads(ws.recv())["action"] == 11  # ATTACHED
            ws.send(json.dumps({{
                "action": 15, "channel": "greetings", "msgSerial": 0,
                "messages": [{{"name": "hi", "data": "hello from a socket"}}],
            }}))
            frames = [json.loads(ws.recv()) for _ in range(2)]
        actions = sorted(f["action"] for f in frames)
        assert actions == [1, 15]  # the ACK and the message itself
        delivered = next(f for f in frames if f["action"] == 15)
        assert delivered["messages"][0]["data"] == "hello from a socket"


    def test_faults_and_reset(relay_app, relay_faults):
        relay_faults.fail_publishes("orders", count=1, code=50003)
        options = relay_app.client_options()
        url = options["url"].replace("http://", "ws://") + "/?format=json&key=" + options["key"]
        with connect(url) as ws:
            ws.recv()
            ws.send(json.dumps({{"action": 10, "channel": "orders"}}))
            ws.recv()
            ws.send(json.dumps({{"action": 15, "channel": "orders", "msgSerial": 0,
                                 "messages": [{{"data": "x"}}]}}))
            nack = json.loads(ws.recv())
        assert nack["action"] == 2 and nack["error"]["code"] == 50003
        relay_app.reset()
        relay_app.drop()
    """
)


def _write_sample(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_sample=SAMPLE.format(node_packages=str(NODE_PACKAGES)))


def _relay_temp_dirs(root: Path) -> list[Path]:
    return sorted(root.glob("relay-*"))


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary directory of our own for what the relay creates (its throwaway database)."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_sample_passes_and_leaves_nothing_behind(
    pytester: pytest.Pytester, private_tmp: Path
) -> None:
    if shutil.which("node") is None or not (NODE_PACKAGES / "node_modules" / "ably").exists():
        pytest.fail("node and tests/interop/node_modules are needed (run `make test`)")
    _write_sample(pytester)
    threads_before = set(threading.enumerate())
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3)
    leftover = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert leftover == [], f"threads left running: {leftover}"
    assert _relay_temp_dirs(private_tmp) == []


def test_sample_runs_in_parallel_under_xdist(pytester: pytest.Pytester, private_tmp: Path) -> None:
    _write_sample(pytester)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-n", "2")
    result.assert_outcomes(passed=3)
    ports: dict[str, set[str]] = {}
    for path in pytester.path.glob("*.port"):
        _, worker, _ = path.name.split(".")
        ports.setdefault(worker, set()).add(path.read_text())
    assert set(ports) <= {"gw0", "gw1"} and ports
    # Each worker has its own relay (its own port); no worker's relay was shared.
    all_ports = [port for worker_ports in ports.values() for port in worker_ports]
    for worker_ports in ports.values():
        assert len(worker_ports) == 1
    assert len(all_ports) == len(set(all_ports))
    assert _relay_temp_dirs(private_tmp) == []


def test_relay_thread_starts_fast_and_stops_clean(private_tmp: Path) -> None:
    threads_before = set(threading.enumerate())
    started = time.monotonic()
    server = RelayThread()
    server.start()
    elapsed = time.monotonic() - started
    try:
        app = create_app(server)
        assert app.key.startswith(app.app_id + ".")
        assert _relay_temp_dirs(private_tmp) != []
        loop = server._loop
    finally:
        server.stop()
    assert elapsed < 1.0, f"the relay took {elapsed:.2f} s to start"
    assert loop is not None and loop.is_closed()
    leftover = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert leftover == []
    assert _relay_temp_dirs(private_tmp) == []


def test_ably_python_options_hold_a_token(relay_server: RelayThread) -> None:
    app = create_app(relay_server)
    try:
        options = app.ably_python_options()
        assert "key" not in options and options["token"]
        assert (options["endpoint"], options["port"], options["tls"]) == (
            "localhost",
            relay_server.port,
            False,
        )
        identity = relay_server.relay.authenticator.token(options["token"])  # type: ignore[union-attr]
        assert identity.app_id == app.app_id
        realtime = app.ably_python_realtime_options()
        assert realtime["realtime_host"] == f"localhost:{relay_server.port}"
        assert realtime["tls"] is False and "key" not in realtime
    finally:
        app.drop()


def test_push_notifications_are_recorded_per_device_and_go_with_the_app(
    relay_server: RelayThread,
) -> None:
    app = create_app(relay_server)
    auth = "Basic " + base64.b64encode(app.key.encode()).decode()

    def call(method: str, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            app.url + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Authorization": auth, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    device = {
        "id": "pixel",
        "clientId": "ann",
        "platform": "android",
        "formFactor": "phone",
        "push": {"recipient": {"transportType": "fcm", "registrationToken": "t"}},
    }
    try:
        call("PUT", "/push/deviceRegistrations/pixel", device)
        call("POST", "/push/channelSubscriptions", {"channel": "alerts", "clientId": "ann"})
        call("POST", "/push/publish", {"recipient": {"deviceId": "pixel"}, "data": {"k": "v"}})
        pushed = {"notification": {"title": "Alert"}}
        call("POST", "/channels/alerts/messages", {"name": "a", "extras": {"push": pushed}})
        # A channel's push goes out after the publish is ACKed: wait until it is recorded.
        relay_server.run(relay_server.relay.push.settled())  # type: ignore[union-attr]
        notes = app.push_notifications(device_id="pixel")
        assert [n["payload"] for n in notes] == [{"data": {"k": "v"}}, pushed]
        assert notes[1]["channel"] == "alerts"
        assert app.push_notifications(client_id="nobody") == []
    finally:
        app.drop()
    assert app.push_notifications() == []


# A fixture file as a person writes one (docs/fixtures.md): serials follow from epoch and seq.
FIXTURE = "\n".join(
    json.dumps(line)
    for line in [
        {"format": "channel-relay-fixture", "version": 1},
        {
            "type": "channel",
            "appId": "any",
            "name": "chat:1",
            "epoch": "0fixture0000",
            "lastSeq": 2,
        },
        {"type": "message", "seq": 1, "message": {"name": "greet", "data": "hello"}},
        {"type": "message", "seq": 2, "message": {"name": "greet", "data": {"n": 2}}},
    ]
)

FIXTURE_SAMPLE = textwrap.dedent(
    """
    import base64
    import json
    import urllib.request

    import pytest


    def history(relay_app, channel):
        request = urllib.request.Request(
            f"{relay_app.url}/channels/{channel}/messages?direction=forwards",
            headers={"Authorization": "Basic " + base64.b64encode(relay_app.key.encode()).decode()},
        )
        with urllib.request.urlopen(request) as response:
            return json.load(response)


    @pytest.mark.relay_fixture("chat.jsonl")
    def test_marked_fixture_is_loaded_into_the_app(relay_app):
        items = history(relay_app, "chat:1")
        assert [(m["serial"], m["data"]) for m in items] == [
            ("0fixture0000-0000000000000001", "hello"),
            ("0fixture0000-0000000000000002", {"n": 2}),
        ]


    def test_load_fixture_by_hand(relay_app, tmp_path):
        summary = relay_app.load_fixture(__file__.rpartition("/")[0] + "/chat.jsonl")
        assert (summary.channels, summary.messages) == (1, 2)
        assert len(history(relay_app, "chat:1")) == 2
    """
)


def test_fixture_files_load_into_a_tests_app(pytester: pytest.Pytester, private_tmp: Path) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (pytester.path / "chat.jsonl").write_text(FIXTURE + "\n")
    pytester.makepyfile(test_fixture_sample=FIXTURE_SAMPLE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)
