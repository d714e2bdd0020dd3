"""The `relay` command.

    relay serve                      run the relay
    relay channels list|subscribe|tail|publish|history|presence|occupancy
    relay token | apps list|create|delete | keys list
    relay export | import            fixture files
    relay config check | backup | restore

The client commands talk to a running relay (channel_relay.cli.target says how it is found)
through the project's own client, and print tables for a person or JSON with `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import sys
from collections.abc import Sequence

import aiohttp

from channel_relay import __version__
from channel_relay.cli import auth, channels, fixtures, maintenance, serve
from channel_relay.cli.output import Output
from channel_relay.cli.target import CliError, add_target_arguments
from channel_relay.client import AblyError
from channel_relay.settings_loader import ConfigError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description="An Ably-compatible channel relay")
    parser.add_argument("--version", action="version", version=f"channel-relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    # The flags every client command takes.
    common = argparse.ArgumentParser(add_help=False)
    add_target_arguments(common)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    serve.add_commands(commands)
    channels.add_commands(commands, common)
    auth.add_commands(commands, common)
    fixtures.add_commands(commands)
    maintenance.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if "json" not in vars(args):
            return args.run(args)
        result = args.run(args, Output(args.json))
        return asyncio.run(result) if inspect.iscoroutine(result) else result
    except ConfigError as error:
        print("relay: invalid settings:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except CliError as error:
        print(f"relay: {error}", file=sys.stderr)
        return 1
    except AblyError as error:
        print(f"relay: {error.message} (error {error.code})", file=sys.stderr)
        return 1
    except aiohttp.ClientConnectionError as error:
        print(f"relay: cannot reach the relay ({error}); is it running?", file=sys.stderr)
        return 1
    except TimeoutError:
        print("relay: the relay did not answer in time", file=sys.stderr)
        return 1
