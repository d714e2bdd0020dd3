"""`relay token`, `relay apps ...` and `relay keys list`: credentials and apps of a relay.

Tokens are Ably's: a native token from the relay's requestToken, or an Ably JWT signed here
with the key (HS256, `kid` the key name). Apps and keys go through the relay's admin routes
(relay/rest/admin.py), open to its admin key only.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from urllib.parse import quote

import jwt

from channel_relay.cli.output import Output
from channel_relay.cli.target import CliError, Target, resolve
from channel_relay.client import request_token

__all__ = ["add_commands"]

# Ably's default token lifetime: one hour.
_DEFAULT_TTL = 3600


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    token = commands.add_parser("token", parents=[common], help="issue a token for the key")
    token.add_argument("--client-id", help="the token's clientId ('*': any)")
    token.add_argument("--capability", help='JSON, e.g. \'{"chat:*":["subscribe"]}\'')
    token.add_argument("--ttl", type=int, default=_DEFAULT_TTL, help="seconds (3600)")
    token.add_argument("--jwt", action="store_true", help="an Ably JWT signed with the key")
    token.set_defaults(run=issue_token)

    apps = commands.add_parser("apps", help="the relay's apps (needs its admin key)")
    app_verbs = apps.add_subparsers(dest="verb", required=True)
    app_verbs.add_parser("list", parents=[common], help="every app").set_defaults(run=list_apps)
    create = app_verbs.add_parser("create", parents=[common], help="a new app with one key")
    create.add_argument("--spec", metavar="JSON", help="an Ably sandbox app spec (post_apps)")
    create.set_defaults(run=create_app)
    delete = app_verbs.add_parser("delete", parents=[common], help="an app and all its data")
    delete.add_argument("app_id", metavar="APP")
    delete.set_defaults(run=delete_app)

    keys = commands.add_parser("keys", help="an app's keys (needs the admin key)")
    key_verbs = keys.add_subparsers(dest="verb", required=True)
    listing = key_verbs.add_parser("list", parents=[common], help="the keys of an app")
    listing.add_argument("--app", help="the app (default: the app of the key in use)")
    listing.set_defaults(run=list_keys)


async def issue_token(args: argparse.Namespace, out: Output) -> int:
    target = await resolve(args)
    capability = _capability(args.capability)
    if args.jwt:
        details = _jwt(target.key, args.ttl, capability, args.client_id)
    else:
        details = await request_token(
            target.url,
            target.key,
            ttl=args.ttl * 1000,
            capability=capability,
            client_id=args.client_id,
        )
    if out.as_json:
        out.json(details)
        return 0
    out.console.print(details["token"], soft_wrap=True)
    expires = time.strftime("%H:%M:%S", time.localtime(details["expires"] / 1000))
    out.note(
        f"{'JWT' if args.jwt else 'token'} of {target.key.partition(':')[0]}, expires {expires}, "
        f"clientId {details.get('clientId') or '(none)'}, capability {details['capability']}"
    )
    return 0


async def list_apps(args: argparse.Namespace, out: Output) -> int:
    apps = await _admin(await resolve(args), "GET", "/admin/apps")
    if out.as_json:
        out.json(apps)
        return 0
    rows = [
        [a["appId"] + (" (admin)" if a.get("admin") else ""), ", ".join(a["keys"]), a["channels"]]
        for a in apps
    ]
    out.table(["app", "keys", "channels"], rows, title=f"{len(rows)} app(s)")
    return 0


async def create_app(args: argparse.Namespace, out: Output) -> int:
    spec = json.loads(args.spec) if args.spec else {}
    app = await _admin(await resolve(args), "POST", "/admin/apps", spec)
    if out.as_json:
        out.json(app)
        return 0
    out.console.print(f"app {app['appId']} created; key:")
    out.console.print(app["keys"][0]["keyStr"], soft_wrap=True)
    return 0


async def delete_app(args: argparse.Namespace, out: Output) -> int:
    await _admin(await resolve(args), "DELETE", "/admin/apps/" + quote(args.app_id, safe=""))
    if out.as_json:
        out.json({"deleted": args.app_id})
    else:
        out.console.print(f"app {args.app_id} deleted, with its keys, channels and messages")
    return 0


async def list_keys(args: argparse.Namespace, out: Output) -> int:
    target = await resolve(args)
    app_id = args.app or target.key.partition(".")[0]
    keys = await _admin(target, "GET", f"/admin/apps/{quote(app_id, safe='')}/keys")
    if out.as_json:
        out.json(keys)
        return 0
    rows = [[k["keyName"], k["key"], k["capability"]] for k in keys]
    out.table(["name", "key", "capability"], rows, title=f"keys of {app_id}")
    return 0


async def _admin(target: Target, method: str, path: str, body: Any = None) -> Any:
    rest = target.rest()
    try:
        value, _ = await rest.request(method, path, body=body)
    finally:
        await rest.close()
    return value


def _capability(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise CliError(f"--capability is not JSON: {text}") from None
    return json.dumps(value, separators=(",", ":"))


def _jwt(key: str, ttl: int, capability: str | None, client_id: str | None) -> dict[str, Any]:
    """An Ably JWT for `key`: what an app's auth server hands its clients."""
    key_name, _, secret = key.partition(":")
    now = int(time.time())
    claims: dict[str, Any] = {
        "iat": now,
        "exp": now + ttl,
        "x-ably-capability": capability or '{"*":["*"]}',
    }
    if client_id:
        claims["x-ably-clientId"] = client_id
    token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key_name})
    return {
        "token": token,
        "issued": now * 1000,
        "expires": (now + ttl) * 1000,
        "capability": claims["x-ably-capability"],
        "clientId": client_id,
    }
