"""The container and service files, checked without building them (no container runtime on
the CI machine): hadolint when it is installed, and always the essentials an operator relies
on: a pinned slim base, a non-root user, a health check on /healthz, a volume for the
database, and a hardened systemd unit."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "a continuation line runs off the end of the Dockerfile"
    result = []
    for text in logical:
        word, _, rest = text.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def test_dockerfile_base_image_is_slim_and_pinned() -> None:
    froms = [args for word, args in _instructions(DEPLOY / "Dockerfile") if word == "FROM"]
    assert len(froms) == 1
    image = froms[0].split()[0]
    name, _, tag = image.partition(":")
    assert name == "python"
    assert tag and tag != "latest", "the base image must be pinned, never :latest"
    assert re.match(r"^3\.1[1-9]\.\d+-slim-\w+$", tag), f"pin a full version of slim: {tag}"


def test_dockerfile_runs_as_a_non_root_user() -> None:
    instructions = _instructions(DEPLOY / "Dockerfile")
    users = [args for word, args in instructions if word == "USER"]
    assert users, "no USER: the relay would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    last_user = max(i for i, (word, _) in enumerate(instructions) if word == "USER")
    entry = max(i for i, (word, _) in enumerate(instructions) if word == "ENTRYPOINT")
    assert last_user < entry


def test_dockerfile_has_a_healthcheck_on_healthz_a_volume_and_the_relay_entrypoint() -> None:
    instructions = dict(_instructions(DEPLOY / "Dockerfile"))
    assert "/healthz" in instructions["HEALTHCHECK"]
    assert "--interval=" in instructions["HEALTHCHECK"]
    assert "/data" in instructions["VOLUME"]
    assert instructions["EXPOSE"].split()[0] == "8080"
    assert instructions["ENTRYPOINT"] == '["relay", "serve"]'
    assert instructions.get("STOPSIGNAL", "SIGTERM") == "SIGTERM"
    text = (DEPLOY / "Dockerfile").read_text()
    assert "RELAY_DB=/data/relay.db" in text
    assert "RELAY_HOST=0.0.0.0" in text


def test_dockerfile_copies_only_what_exists() -> None:
    for word, args in _instructions(DEPLOY / "Dockerfile"):
        if word == "COPY":
            *sources, _ = shlex.split(args)
            for source in sources:
                if not source.startswith("--"):
                    assert (ROOT / source).exists(), f"COPY {source}: no such path"


def test_dockerfile_passes_hadolint_when_it_is_installed() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed; the checks above stand in for it")
    run = subprocess.run(
        [hadolint, "--ignore", "DL3008", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_compose_keeps_the_database_in_a_named_volume_and_allows_the_drain() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    assert re.search(r"^\s+- relay-data:/data$", text, re.M)
    assert re.search(r"^volumes:\n  relay-data:", text, re.M)
    assert "dockerfile: deploy/Dockerfile" in text
    grace = re.search(r"stop_grace_period: (\d+)s", text)
    assert grace is not None and int(grace.group(1)) > 10  # longer than drain_timeout


def test_the_systemd_unit_is_hardened_and_keeps_state_in_its_state_directory() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(DEPLOY / "relay.service")
    service = unit["Service"]
    assert service["ExecStart"].split()[1:3] == ["serve", "--config"]
    assert service["DynamicUser"] == "yes"
    assert service["StateDirectory"] == "channel-relay"
    assert "/var/lib/channel-relay/" in service["ExecStart"]
    for option, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "RestrictSUIDSGID": "yes",
        "KillSignal": "SIGTERM",
    }.items():
        assert service.get(option) == value, option
    assert service["CapabilityBoundingSet"] == ""
    assert int(service["TimeoutStopSec"]) > 10
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_the_cluster_compose_runs_three_nodes_on_one_postgresql_behind_haproxy() -> None:
    text = (DEPLOY / "compose.cluster.yaml").read_text()
    assert "image: postgres:" in text
    assert re.search(r"RELAY_STORE: postgresql://\S+@postgres:5432/", text)
    assert re.findall(r"^  (relay-[abc]): \*relay$", text, re.M) == [
        "relay-a",
        "relay-b",
        "relay-c",
    ]
    assert "condition: service_healthy" in text
    haproxy = (DEPLOY / "haproxy.cfg").read_text()
    assert re.findall(r"^\s+server (relay-[abc]) \1:8080$", haproxy, re.M) == [
        "relay-a",
        "relay-b",
        "relay-c",
    ]
    # Health-checked on readiness, and WebSockets outlive the request timeouts.
    assert "option httpchk GET /readyz" in haproxy
    assert re.search(r"^\s+timeout tunnel \d+[hm]$", haproxy, re.M)
