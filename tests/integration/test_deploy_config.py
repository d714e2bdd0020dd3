"""The operator's promises about configuration: one file, RELAY_* variables and flags with
flag > variable > file > default, and every mistake reported with the line it is on."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from channel_relay.auth.capability import ALL
from channel_relay.config import Settings
from channel_relay.settings_loader import (
    OPTIONS,
    ConfigError,
    add_arguments,
    check_file,
    load_settings,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "relay.example.toml"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "relay.toml"
    path.write_text(text)
    return path


def test_a_flag_beats_a_variable_which_beats_the_file_which_beats_the_default(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        '[server]\nport = 1111\nhost = "0.0.0.0"\ndatabase = "file.db"\n'
        "[limits]\nmax_connections = 5\nmax_inbound_rate = 7\n",
    )
    env = {"RELAY_PORT": "2222", "RELAY_MAX_CONNECTIONS": "6", "RELAY_CONFIG": str(path)}
    settings = load_settings(_args("--port", "3333"), env)
    assert settings.port == 3333  # flag
    assert settings.max_connections == 6  # variable over file
    assert settings.max_inbound_rate == 7  # file
    assert settings.host == "0.0.0.0"
    assert settings.db_path == "file.db"
    assert settings.max_message_size == Settings().max_message_size  # default
    assert load_settings(_args(), env).port == 2222
    assert load_settings(_args("--config", str(path)), {}).port == 1111
    assert load_settings(_args(), {}).port == Settings().port


def test_every_setting_has_a_flag_a_variable_and_a_key_of_the_example_file() -> None:
    example = EXAMPLE.read_text()
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {a for action in parser._actions for a in action.option_strings}
    for option in OPTIONS:
        assert option.env.startswith("RELAY_")
        assert option.env in example, f"{option.env} is not documented in the example"
        assert f"{option.key} =" in example, f"{option.where} is not in the example"
        flag = option.flag.removesuffix("s") if option.flag_kind == "append" else option.flag
        assert flag in flags
        assert hasattr(Settings(), option.field)


def test_the_example_config_is_valid_and_declares_apps_keys_and_retention() -> None:
    settings, problems = check_file(EXAMPLE)
    assert problems == []
    assert settings is not None
    (app,) = settings.apps
    assert [k.name for k in app.keys] == ["myapp.server", "myapp.browser"]
    assert app.keys[0].capability == ALL
    assert app.keys[1].capability.allows("chat:room", "publish")
    assert not app.keys[1].capability.allows("notices", "publish")
    chat = app.namespaces["chat"]
    assert (chat.max_age_ms, chat.max_messages) == (7 * 86_400_000, 10_000)
    assert chat.mutable_messages is False and chat.persisted is True
    assert app.default_rules.max_age_ms == 30 * 86_400_000
    # A namespace inherits what it does not set from [apps.default].
    assert app.namespaces["ai"].max_age_ms == 30 * 86_400_000


def test_mistakes_are_reported_each_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[server]\n"  # 1
        "prot = 8080\n"  # 2
        'port = "http"\n'  # 3
        "[limits]\n"  # 4
        "max_connections = -1\n"  # 5
        "[[apps]]\n"  # 6
        'id = "a"\n'  # 7
        "  [[apps.keys]]\n"  # 8
        '  id = "k"\n'  # 9
        '  secret = "short"\n'  # 10
        "  [[apps.namespaces]]\n"  # 11
        '  id = "chat"\n'  # 12
        '  retention = { max_age = "7 weeks" }\n',  # 13
    )
    settings, problems = check_file(path)
    assert settings is None
    found = {(str(p).split(":")[1], str(p).split(": ")[1]) for p in problems}
    assert found == {
        ("2", "server.prot"),
        ("3", "server.port"),
        ("5", "limits.max_connections"),
        ("10", "apps[0].keys[0].secret"),
        ("13", "apps[0].namespaces[0].retention.max_age"),
    }
    text = "\n".join(str(p) for p in problems)
    assert "did you mean 'port'?" in text
    assert "expected an integer >= 0, got -1" in text


def test_a_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, "[server]\nport = 80\nhost = \n")
    _, (problem,) = check_file(path)
    assert problem.source == f"{path}:3:8"
    assert "TOML syntax error" in problem.message


def test_a_bad_variable_or_flag_is_named_as_such() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_args("--max-inbound-rate", "lots"), {"RELAY_PORT": "http"})
    sources = {p.source for p in caught.value.problems}
    assert sources == {"--max-inbound-rate", "RELAY_PORT"}


def test_tls_needs_both_halves(tmp_path: Path) -> None:
    path = _write(tmp_path, '[tls]\ncert = "/nonexistent.pem"\n')
    _, problems = check_file(path)
    assert [p.message for p in problems] == ["cert and key must be given together"]


def test_memory_follows_the_same_precedence_as_the_database(tmp_path: Path) -> None:
    path = _write(tmp_path, "[server]\nmemory = true\n")
    assert load_settings(config=path).db_path is None
    assert load_settings(config=path, env={"RELAY_DB": "x.db"}).db_path == "x.db"
    assert load_settings(_args("--memory"), {"RELAY_DB": "x.db"}).db_path is None


def test_relay_config_check_exits_nonzero_with_the_lines(tmp_path: Path) -> None:
    bad = _write(tmp_path, "[limits]\nmax_frame_size = 0\n")
    run = subprocess.run(
        [sys.executable, "-m", "channel_relay", "config", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert f"{bad}:2: limits.max_frame_size: expected an integer >= 1, got 0" in run.stderr
    good = subprocess.run(
        [sys.executable, "-m", "channel_relay", "config", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert "OK" in good.stdout
