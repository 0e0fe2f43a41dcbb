"""Command line: ``python -m crmbridge.sandbox.sugarcrm --port 8080 --data demo.sqlite``."""

from __future__ import annotations

import argparse
import errno
import sqlite3
import sys
import threading
from collections.abc import Sequence

from crmbridge.sandbox.sugarcrm.server import SugarSandbox
from crmbridge.sandbox.sugarcrm.vardefs import STUDIO_FIELDS


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: 0 to 65535")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crmbridge.sandbox.sugarcrm",
        description="Serve a local SugarCRM/SuiteCRM sandbox (v4_1 REST and REST v11).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=8080, help="port (0 picks a free one)")
    parser.add_argument("--data", help="SQLite file, created and seeded when missing")
    parser.add_argument("--accounts", type=int, default=40, help="seed size (accounts)")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="a user that can log in (repeatable; default admin:admin)",
    )
    parser.add_argument("--flavor", default="CE", help="flavor reported by the server")
    parser.add_argument("--version", default="6.5.25", help="version reported by the server")
    parser.add_argument(
        "--max-list-limit", type=int, default=None, help="cap page sizes (as Sugar Pro/Ent)"
    )
    parser.add_argument(
        "--studio-field",
        action="append",
        default=[],
        choices=sorted(STUDIO_FIELDS),
        metavar="MODULE.FIELD",
        help="a custom field an administrator added with Studio (repeatable; a stock server "
        f"has none): {', '.join(sorted(STUDIO_FIELDS))}",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Start a sandbox server, print where it is and who can log in, serve until Ctrl-C.

    A port in use or a data file that cannot be opened is one line on stderr and exit 2."""
    args = _parser().parse_args(argv)
    try:
        _serve(args)
    except SandboxStartError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


class SandboxStartError(Exception):
    """The sandbox cannot start as asked (the user can fix it: another port, another file)."""


def _serve(args: argparse.Namespace) -> None:
    users = dict(u.partition(":")[::2] for u in args.user) or {"admin": "admin"}
    try:
        sandbox = SugarSandbox(
            args.data,
            accounts=args.accounts,
            users=users,
            flavor=args.flavor,
            version=args.version,
            max_list_limit=args.max_list_limit,
            studio_fields=args.studio_field,
        )
    except sqlite3.Error as err:
        raise SandboxStartError(f"cannot open the sandbox data file {args.data}: {err}") from None
    try:
        server = sandbox.serve(args.host, args.port)
    except OSError as err:
        sandbox.close()
        hint = (
            "; another program is listening there: choose another port with --port "
            "(0 picks a free one)"
            if err.errno == errno.EADDRINUSE
            else ""
        )
        raise SandboxStartError(
            f"cannot listen on {args.host}:{args.port}: {err.strerror or err}{hint}"
        ) from None
    print(f"SugarCRM sandbox at {server.url}")
    print(f"  v4_1 REST: {server.url}/service/v4_1/rest.php")
    print(f"  REST v11:  {server.url}/rest/v11/")
    for name, password in users.items():
        print(f"  user {name!r}, password {password!r}")
    for field in args.studio_field:
        print(f"  Studio field {field}")
    print("Ctrl-C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sandbox.close()
