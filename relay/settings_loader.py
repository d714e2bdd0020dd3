"""Settings from a TOML file, RELAY_* variables and command-line flags, in that rising order.

Every scalar setting has one row in `OPTIONS`: where it lives in the file (`[section] key`), its
environment variable and its flag. The value that wins is the flag's, else the variable's, else
the file's, else the default of `relay.config.Settings`. Apps (keys with capabilities, namespace
rules, retention) are structured, so they are declared in the file only; `--key`/`RELAY_KEYS`
add plain full-access keys.

Every problem is reported with where it came from: `relay.toml:12: limits.max_connections:
expected an integer >= 0, got -1`, `RELAY_PORT: expected an integer, got 'http'`. Syntax errors
carry the line and column tomllib gives; semantic ones the line of the offending key, found by
scanning the file's table headers and key lines (`KeyLines`).
"""

from __future__ import annotations

import argparse
import difflib
import re
import ssl
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from channel_relay.auth.capability import ALL, Capability
from channel_relay.auth.keys import ApiKey
from channel_relay.channels.rules import ChannelRules
from channel_relay.config import AppSettings, Settings
from channel_relay.protocol.errors import AblyError

__all__ = [
    "OPTIONS",
    "ConfigError",
    "KeyLines",
    "Option",
    "Problem",
    "add_arguments",
    "check_file",
    "load_settings",
    "parse_duration",
]

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the settings: where (`source`, a file line or a variable or flag
    name) and what."""

    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


class ConfigError(Exception):
    """The settings cannot be used; `problems` says why, each with its source."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


# Converters take the raw value (str from env/flags, any TOML type from the file) and return the
# setting's value or raise ValueError with what was expected.


def _int(minimum: int = 0, maximum: int | None = None) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"expected an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"expected an integer {bound}, got {value}")
        return value

    return convert


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("", "0", "false", "no", "off"):
            return False
    raise ValueError(f"expected true or false, got {value!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _store_url(value: Any) -> str | None:
    if value in ("", None):
        return None
    text = _text(value)
    if not text.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"expected postgresql://user@host/database, got {value!r}")
    return text


def _optional_path(value: Any) -> str | None:
    return None if value in ("", None) else _text(value)


def _choice(*choices: str, upper: bool = False) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = _text(value)
        text = text.upper() if upper else text.lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return convert


def parse_duration(value: Any, bare_unit: str) -> int:
    """Milliseconds from "500ms", "10s", "2m", "1h", "7d", or a bare number in `bare_unit`."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s', got {value!r}")
    if isinstance(value, int | float):
        number, unit = float(value), bare_unit
    elif isinstance(value, str):
        text = value.strip()
        match = _DURATION.match(text)
        if match is not None:
            number, unit = float(match.group(1)), match.group(2)
        else:
            try:
                number, unit = float(text), bare_unit
            except ValueError:
                raise ValueError(
                    f"expected a duration like '500ms', '30s', '2m', '1h' or '7d', got {value!r}"
                ) from None
    else:
        raise ValueError(f"expected a duration like '30s', got {value!r}")
    if number <= 0:
        raise ValueError(f"expected a duration above zero, got {value!r}")
    return int(number * _UNIT_MS[unit])


def _ms(value: Any) -> int:
    return parse_duration(value, "ms")


def _seconds(value: Any) -> float:
    return parse_duration(value, "s") / 1000


def _keys(value: Any) -> list[str]:
    items = [k.strip() for k in value.split(",")] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError(f"expected a list of keys, got {value!r}")
    keys = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected a key string, got {item!r}")
        if not item:
            continue
        try:
            ApiKey.parse(item)
        except AblyError:
            raise ValueError("expected keys of the form APPID.KEYID:SECRET") from None
        keys.append(item)
    return keys


@dataclass(frozen=True, slots=True)
class Option:
    """One scalar setting: its Settings field, its place in the file, its variable and flag."""

    field: str
    section: str
    key: str
    convert: Callable[[Any], Any]
    help: str
    # "value", "switch" (store_true), "toggle" (--x and --no-x) or "append"
    flag_kind: str = "value"
    metavar: str | None = None

    @property
    def env(self) -> str:
        return "RELAY_" + self.field.upper().removesuffix("_PATH")

    @property
    def flag(self) -> str:
        return "--" + self.field.replace("_", "-").removesuffix("-path")

    @property
    def where(self) -> str:
        return f"{self.section}.{self.key}"


OPTIONS: tuple[Option, ...] = (
    Option("host", "server", "host", _text, "address to listen on (every address it resolves to)"),
    Option("port", "server", "port", _int(0, 65535), "port for WebSocket and REST (0: any free)"),
    Option("db_path", "server", "database", _text, "SQLite database file", metavar="FILE"),
    Option(
        "store",
        "store",
        "url",
        _store_url,
        "keep the log in PostgreSQL instead of SQLite, shared by every relay node given the "
        "same URL",
        metavar="postgresql://USER@HOST/DB",
    ),
    Option(
        "workers",
        "server",
        "workers",
        _int(1),
        "processes serving the port together (SO_REUSEPORT); more than 1 needs --store",
    ),
    Option(
        "keys",
        "server",
        "keys",
        _keys,
        "an API key to accept (repeatable; RELAY_KEYS takes a comma-separated list)",
        flag_kind="append",
        metavar="APPID.KEYID:SECRET",
    ),
    Option(
        "sandbox",
        "server",
        "sandbox",
        _bool,
        "serve Ably's sandbox routes (POST /apps, DELETE /apps/ID, POST /stats) and fault "
        "injection (/sandbox/faults): for test suites, never for a deployment (RELAY_SANDBOX=1)",
        flag_kind="switch",
    ),
    Option(
        "inspector",
        "server",
        "inspector",
        _bool,
        "serve the web inspector at /inspect (its data needs a key); --no-inspector turns it "
        "off for a deployment",
        flag_kind="toggle",
    ),
    Option("drain_timeout", "server", "drain_timeout", _seconds, "seconds a shutdown may take"),
    Option("tls_cert", "tls", "cert", _optional_path, "TLS certificate chain (PEM)", metavar="PEM"),
    Option("tls_key", "tls", "key", _optional_path, "TLS private key (PEM)", metavar="PEM"),
    Option("log_level", "log", "level", _choice(*_LOG_LEVELS, upper=True), "log level"),
    Option("log_format", "log", "format", _choice("text", "json"), "log format: text or json"),
    Option("max_message_size", "limits", "max_message_size", _int(1), "bytes per message"),
    Option("max_frame_size", "limits", "max_frame_size", _int(1), "bytes per protocol message"),
    Option("max_connections", "limits", "max_connections", _int(0), "connections (0: no limit)"),
    Option(
        "max_inbound_rate",
        "limits",
        "max_inbound_rate",
        _int(0),
        "messages per second a connection may publish (0: no limit)",
    ),
    Option(
        "connection_state_ttl",
        "limits",
        "connection_state_ttl",
        _ms,
        "how long a dropped connection can be resumed (ms, or '2m')",
    ),
    Option("max_idle_interval", "limits", "max_idle_interval", _ms, "heartbeat interval (ms)"),
    Option(
        "presence_grace",
        "limits",
        "presence_grace",
        _ms,
        "how long a dropped connection's presence members stay (ms)",
    ),
    Option(
        "max_outbound_buffer",
        "limits",
        "max_outbound_buffer",
        _int(1024),
        "bytes queued to a subscriber before it is disconnected as too slow",
    ),
    Option(
        "max_outbound_total",
        "limits",
        "max_outbound_total",
        _int(0),
        "bytes queued to all subscribers together before the slowest are disconnected"
        " (0: no limit)",
    ),
    Option("sync_page_size", "limits", "sync_page_size", _int(1), "members per presence SYNC"),
    Option(
        "retention_interval",
        "retention",
        "interval",
        _seconds,
        "seconds between retention passes",
    ),
    Option("retention_batch", "retention", "batch", _int(1), "rows removed per retention delete"),
    Option(
        "stats_flush_interval",
        "stats",
        "flush_interval",
        _seconds,
        "seconds between flushes of live stats to the store",
    ),
)
_BY_WHERE = {(o.section, o.key): o for o in OPTIONS}
# Keys of the file outside OPTIONS: `server.memory` (a throwaway database) and `[[apps]]`.
_SECTIONS = {o.section for o in OPTIONS} | {"apps"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `relay serve` flags: --config, --memory, and one per option (all default None, so
    that an absent flag lets the variable or the file decide)."""
    parser.add_argument("--config", metavar="FILE", help="TOML config file (RELAY_CONFIG)")
    parser.add_argument(
        "--memory",
        action="store_true",
        default=None,
        help="a throwaway database, removed at exit (RELAY_MEMORY=1)",
    )
    for option in OPTIONS:
        help_ = f"{option.help} [{option.env}; {option.where}]"
        if option.flag_kind == "switch":
            parser.add_argument(option.flag, dest=option.field, action="store_true", help=help_)
            parser.set_defaults(**{option.field: None})
        elif option.flag_kind == "toggle":
            parser.add_argument(
                option.flag,
                dest=option.field,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_,
            )
        elif option.flag_kind == "append":
            parser.add_argument(
                option.flag.removesuffix("s"),
                dest=option.field,
                action="append",
                default=None,
                metavar=option.metavar,
                help=help_,
            )
        else:
            parser.add_argument(option.flag, dest=option.field, metavar=option.metavar, help=help_)


def load_settings(
    args: argparse.Namespace | None = None,
    env: Mapping[str, str] | None = None,
    config: str | Path | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from the flags in `args`, the variables in `env` and the file named by
    `config` (or --config, or RELAY_CONFIG), highest first, then `defaults` (the command
    line's own, e.g. host "localhost"), then Settings' defaults; ConfigError lists every
    problem."""
    env = {} if env is None else env
    flags = vars(args) if args is not None else {}
    path = config or flags.get("config") or env.get("RELAY_CONFIG") or None
    problems: list[Problem] = []
    file_values: dict[str, Any] = {}
    apps: list[AppSettings] = []
    memory_sources: list[tuple[str, Any]] = []
    if path is not None:
        loaded = _read_file(Path(path), problems)
        if loaded is not None:
            data, lines = loaded
            file_values, apps = _from_file(data, lines, problems)
            server = data.get("server")
            if isinstance(server, dict) and "memory" in server:
                memory_sources.append((lines.source("server", "memory"), server["memory"]))
    values: dict[str, Any] = dict(defaults or {})
    levels: dict[str, int] = {}  # where each value came from: 3 flag, 2 variable, 1 file
    for option in OPTIONS:
        flag_value = flags.get(option.field)
        if flag_value is not None:
            raw: Any = True if option.flag_kind == "switch" else flag_value
            source, level = option.flag, 3
        elif option.env in env:
            raw, source, level = env[option.env], option.env, 2
        elif option.field in file_values:
            values[option.field] = file_values[option.field]
            levels[option.field] = 1
            continue
        else:
            continue
        try:
            values[option.field] = option.convert(raw)
            levels[option.field] = level
        except ValueError as exc:
            problems.append(Problem(source, str(exc)))
    if flags.get("memory"):
        memory_sources.append(("--memory", True))
    elif "RELAY_MEMORY" in env:
        memory_sources.append(("RELAY_MEMORY", env["RELAY_MEMORY"]))
    settings = Settings(**values)
    if memory_sources:
        source, raw = memory_sources[-1]
        memory_level = {"--memory": 3, "RELAY_MEMORY": 2}.get(source, 1)
        try:
            if _bool(raw) and memory_level >= levels.get("db_path", 0):
                settings.db_path = None
        except ValueError as exc:
            problems.append(Problem(source, str(exc)))
    settings.apps = apps
    _check_whole(settings, problems)
    if problems:
        raise ConfigError(problems)
    return settings


def check_file(path: str | Path) -> tuple[Settings | None, list[Problem]]:
    """`relay config check`: the file's settings (with defaults, ignoring the environment) and
    everything wrong with them, each problem with its line; TLS files are loaded too."""
    try:
        settings = load_settings(config=path)
    except ConfigError as error:
        return None, error.problems
    return settings, []


def _check_whole(settings: Settings, problems: list[Problem]) -> None:
    """What no single value shows: TLS needs both halves, and they must load."""
    if bool(settings.tls_cert) != bool(settings.tls_key):
        problems.append(Problem("tls", "cert and key must be given together"))
    elif settings.tls_cert and settings.tls_key:
        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(settings.tls_cert, settings.tls_key)
        except (OSError, ssl.SSLError) as exc:
            problems.append(Problem("tls", f"cannot load the certificate and key: {exc}"))
    seen: dict[str, str] = {}
    for app in settings.apps:
        for key in app.keys:
            seen[key.name] = app.app_id
    for text in settings.keys:
        key = ApiKey.parse(text)
        if key.name in seen:
            problems.append(Problem("keys", f"key {key.name} is also declared in [[apps]]"))


# The file


def _read_file(path: Path, problems: list[Problem]) -> tuple[dict[str, Any], KeyLines] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(str(path), f"cannot read the config file: {exc}"))
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        where = f"{path}:{match.group(1)}:{match.group(2)}" if match else str(path)
        message = message[: match.start()].strip() if match else message
        problems.append(Problem(where, f"TOML syntax error: {message}"))
        return None
    return data, KeyLines(text, str(path))


class KeyLines:
    """The line of each table and key of a TOML text, by its path (array items by index), so
    that a problem found in the parsed data can name its line."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        self.lines: dict[tuple[Any, ...], int] = {}
        arrays: dict[tuple[Any, ...], int] = {}
        current: tuple[Any, ...] = ()
        for number, line in enumerate(text.splitlines(), 1):
            header = self._HEADER.match(line)
            if header is not None:
                parts = _dotted(header.group(2))
                resolved: list[Any] = []
                for index, part in enumerate(parts):
                    resolved.append(part)
                    is_last = index == len(parts) - 1
                    if is_last and header.group(1) == "[[":
                        count = arrays.get(tuple(resolved), 0)
                        arrays[tuple(resolved)] = count + 1
                        resolved.append(count)
                    elif tuple(resolved) in arrays:
                        resolved.append(arrays[tuple(resolved)] - 1)
                current = tuple(resolved)
                self.lines.setdefault(current, number)
                continue
            key = self._KEY.match(line)
            if key is not None and not line.lstrip().startswith("#"):
                self.lines.setdefault((*current, *_dotted(key.group(1))), number)

    def line(self, *path: Any) -> int | None:
        """The line of `path`, or of its nearest enclosing key or table that has one."""
        for end in range(len(path), 0, -1):
            number = self.lines.get(tuple(path[:end]))
            if number is not None:
                return number
        return None

    def source(self, *path: Any) -> str:
        number = self.line(*path)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)[1:]
        return f"{self.name}:{number}: {where}" if number else f"{self.name}: {where}"


def _dotted(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in text.split(".")]


def _from_file(
    data: dict[str, Any], lines: KeyLines, problems: list[Problem]
) -> tuple[dict[str, Any], list[AppSettings]]:
    values: dict[str, Any] = {}
    for section, body in data.items():
        if section not in _SECTIONS:
            problems.append(_unknown(lines, (section,), section, _SECTIONS))
            continue
        if section == "apps":
            continue
        if not isinstance(body, dict):
            problems.append(Problem(lines.source(section), f"expected a [{section}] table"))
            continue
        known = {o.key for o in OPTIONS if o.section == section}
        if section == "server":
            known.add("memory")
        for key, value in body.items():
            option = _BY_WHERE.get((section, key))
            if option is None:
                if key not in known:
                    problems.append(_unknown(lines, (section, key), key, known))
                continue
            try:
                values[option.field] = option.convert(value)
            except ValueError as exc:
                problems.append(Problem(lines.source(section, key), str(exc)))
    apps: list[AppSettings] = []
    raw_apps = data.get("apps", [])
    if not isinstance(raw_apps, list):
        problems.append(Problem(lines.source("apps"), "expected [[apps]] tables"))
        return values, apps
    ids: set[str] = set()
    for index, raw in enumerate(raw_apps):
        app = _app(raw, ("apps", index), lines, problems)
        if app is None:
            continue
        if app.app_id in ids:
            problems.append(Problem(lines.source("apps", index, "id"), "duplicate app id"))
        ids.add(app.app_id)
        apps.append(app)
    return values, apps


_APP_KEYS = {"id", "keys", "default", "namespaces"}
_KEY_KEYS = {"id", "secret", "secret_file", "capability"}
_RULE_KEYS = {"mutable_messages", "persisted", "push_enabled", "retention"}
_RETENTION_KEYS = {"max_age", "max_messages"}


def _app(
    raw: Any, at: tuple[Any, ...], lines: KeyLines, problems: list[Problem]
) -> AppSettings | None:
    if not isinstance(raw, dict):
        problems.append(Problem(lines.source(*at), "expected an [[apps]] table"))
        return None
    problems.extend(_unknown(lines, (*at, k), k, _APP_KEYS) for k in raw if k not in _APP_KEYS)
    app_id = raw.get("id")
    if not isinstance(app_id, str) or not _ID.match(app_id):
        problems.append(
            Problem(lines.source(*at, "id"), "every app needs an id of letters, digits, - and _")
        )
        return None
    app = AppSettings(app_id)
    raw_keys = raw.get("keys", [])
    if not isinstance(raw_keys, list) or not raw_keys:
        problems.append(Problem(lines.source(*at, "keys"), "an app needs at least one [[keys]]"))
    else:
        for index, raw_key in enumerate(raw_keys):
            key = _key(app_id, raw_key, (*at, "keys", index), lines, problems)
            if key is not None:
                if any(k.key_id == key.key_id for k in app.keys):
                    where = lines.source(*at, "keys", index, "id")
                    problems.append(Problem(where, "duplicate key id"))
                app.keys.append(key)
    if "default" in raw:
        rules = _rules(raw["default"], ChannelRules(), (*at, "default"), lines, problems)
        app.default_rules = rules or app.default_rules
    raw_namespaces = raw.get("namespaces", [])
    if not isinstance(raw_namespaces, list):
        problems.append(Problem(lines.source(*at, "namespaces"), "expected [[namespaces]]"))
        raw_namespaces = []
    for index, raw_ns in enumerate(raw_namespaces):
        where = (*at, "namespaces", index)
        if not isinstance(raw_ns, dict) or not isinstance(raw_ns.get("id"), str):
            problems.append(Problem(lines.source(*where), "every namespace needs a string id"))
            continue
        namespace = raw_ns["id"]
        if not namespace or ":" in namespace:
            problems.append(Problem(lines.source(*where, "id"), "a namespace id has no ':'"))
            continue
        body = {k: v for k, v in raw_ns.items() if k != "id"}
        rules = _rules(body, app.default_rules, where, lines, problems)
        if rules is not None:
            app.namespaces[namespace] = rules
    return app


def _key(
    app_id: str, raw: Any, at: tuple[Any, ...], lines: KeyLines, problems: list[Problem]
) -> ApiKey | None:
    if not isinstance(raw, dict):
        problems.append(Problem(lines.source(*at), "expected a [[apps.keys]] table"))
        return None
    problems.extend(_unknown(lines, (*at, k), k, _KEY_KEYS) for k in raw if k not in _KEY_KEYS)
    key_id = raw.get("id")
    if not isinstance(key_id, str) or not _ID.match(key_id):
        problems.append(
            Problem(lines.source(*at, "id"), "every key needs an id of letters, digits, - and _")
        )
        return None
    secret = raw.get("secret")
    if "secret_file" in raw:
        try:
            secret = Path(_text(raw["secret_file"])).read_text(encoding="utf-8").strip()
        except (OSError, ValueError) as exc:
            problems.append(Problem(lines.source(*at, "secret_file"), f"cannot read: {exc}"))
            return None
    if not isinstance(secret, str) or len(secret) < 8 or ":" in secret:
        problems.append(
            Problem(
                lines.source(*at, "secret" if "secret" in raw else "id"),
                "every key needs a secret (or secret_file) of at least 8 characters, no ':'",
            )
        )
        return None
    capability = ALL
    if "capability" in raw:
        try:
            capability = Capability.parse(raw["capability"])
        except (AblyError, ValueError, TypeError) as exc:
            reason = exc.message if isinstance(exc, AblyError) else str(exc)
            problems.append(Problem(lines.source(*at, "capability"), reason))
            return None
    return ApiKey(app_id, key_id, secret, capability)


def _rules(
    raw: Any,
    base: ChannelRules,
    at: tuple[Any, ...],
    lines: KeyLines,
    problems: list[Problem],
) -> ChannelRules | None:
    if not isinstance(raw, dict):
        problems.append(Problem(lines.source(*at), "expected a table of channel rules"))
        return None
    values: dict[str, Any] = {
        "mutable_messages": base.mutable_messages,
        "persisted": base.persisted,
        "push_enabled": base.push_enabled,
        "max_age_ms": base.max_age_ms,
        "max_messages": base.max_messages,
    }
    ok = True
    for name, value in raw.items():
        if name not in _RULE_KEYS:
            problems.append(_unknown(lines, (*at, name), name, _RULE_KEYS))
            ok = False
        elif name == "retention":
            ok = _retention(value, values, (*at, name), lines, problems) and ok
        else:
            try:
                values[name] = _bool(value)
            except ValueError as exc:
                problems.append(Problem(lines.source(*at, name), str(exc)))
                ok = False
    return ChannelRules(**values) if ok else None


def _retention(
    raw: Any, values: dict[str, Any], at: tuple[Any, ...], lines: KeyLines, problems: list[Problem]
) -> bool:
    if not isinstance(raw, dict):
        problems.append(Problem(lines.source(*at), "expected {max_age = ..., max_messages = ...}"))
        return False
    ok = True
    for name, value in raw.items():
        try:
            if name == "max_age":
                values["max_age_ms"] = parse_duration(value, "s")
            elif name == "max_messages":
                values["max_messages"] = _int(0)(value)
            else:
                problems.append(_unknown(lines, (*at, name), name, _RETENTION_KEYS))
                ok = False
        except ValueError as exc:
            problems.append(Problem(lines.source(*at, name), str(exc)))
            ok = False
    return ok


def _unknown(lines: KeyLines, path: tuple[Any, ...], name: str, known: Iterable[str]) -> Problem:
    close = difflib.get_close_matches(str(name), sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}"
    return Problem(lines.source(*path), f"unknown key {name!r}{hint}")
