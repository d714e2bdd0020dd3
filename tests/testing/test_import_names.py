"""What channel-relay installs never collides with a user's own modules: its import names are
`channel_relay` and `channel_relay.client`, so a project with its own `client.py`, `relay.py` or
`relay/` package still imports those, and its tests still get the `relay_app` fixture."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

USER_TEST = textwrap.dedent(
    """
    import json
    import urllib.request

    import client
    import relay


    def test_own_modules_and_fixture(relay_app):
        assert client.make() == "the user's client"
        assert relay.NAME == "the user's relay"
        with urllib.request.urlopen(relay_app.url + "/time", timeout=10) as response:
            assert isinstance(json.loads(response.read())[0], int)
    """
)


def _user_project(root: Path, relay_as_package: bool) -> Path:
    root.mkdir()
    (root / "client.py").write_text('def make():\n    return "the user\'s client"\n')
    if relay_as_package:
        (root / "relay").mkdir()
        (root / "relay" / "__init__.py").write_text('NAME = "the user\'s relay"\n')
    else:
        (root / "relay.py").write_text('NAME = "the user\'s relay"\n')
    (root / "test_app.py").write_text(USER_TEST)
    return root


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    return subprocess.run(
        [*argv, "-p", "no:cacheprovider", "-q", "test_app.py"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("relay_as_package", [False, True], ids=["relay.py", "relay-package"])
@pytest.mark.parametrize("runner", ["pytest", "python -m pytest"])
def test_user_project_with_own_client_and_relay_modules_runs_its_tests(
    tmp_path: Path, relay_as_package: bool, runner: str
) -> None:
    project = _user_project(tmp_path / "app", relay_as_package)
    bin_dir = Path(sys.executable).parent
    argv = [str(bin_dir / "pytest")] if runner == "pytest" else [sys.executable, "-m", "pytest"]
    result = _run(argv, project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_python_dash_m_channel_relay_serves_help(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "channel_relay", "serve", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: relay serve" in result.stdout


def test_every_package_folder_is_installed_under_its_import_name() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    expected = set()
    for name, folder in config["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            expected.add(".".join((name, *parts)))
    assert set(config["packages"]) == expected
