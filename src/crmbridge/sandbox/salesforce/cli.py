"""Command line: ``python -m crmbridge.sandbox.salesforce --port 8443 --data demo.sqlite``."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from crmbridge.sandbox.salesforce.server import SalesforceSandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crmbridge.sandbox.salesforce",
        description="Serve a local Salesforce sandbox (REST, Collections, Bulk API 2.0) "
        "over HTTPS.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8443, help="port (0 picks a free one)")
    parser.add_argument("--data", help="SQLite file, created and seeded when missing")
    parser.add_argument("--accounts", type=int, default=40, help="seed size (accounts)")
    parser.add_argument(
        "--tls-dir",
        help="folder for the CA, certificate and JWT keys (default: DATA.tls next to --data, "
        "else a temporary folder)",
    )
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="a user that can log in (repeatable; default admin@crmbridge.sandbox:admin)",
    )
    parser.add_argument("--api-limit", type=int, default=15_000, help="daily API request limit")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Start a sandbox, print where it is and how to log in, serve until Ctrl-C."""
    args = _parser().parse_args(argv)
    users = dict(u.partition(":")[::2] for u in args.user) or None
    tls_dir = args.tls_dir or (f"{args.data}.tls" if args.data else None)
    sandbox = SalesforceSandbox(
        args.data,
        accounts=args.accounts,
        users=users,
        tls_dir=Path(tls_dir) if tls_dir else None,
        api_limit=args.api_limit,
    )
    try:
        server = sandbox.serve(args.host, args.port)
    except OSError as err:
        sandbox.close()
        print(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"Salesforce sandbox at {server.url}")
    print(f"  CA certificate (ca_file): {sandbox.ca_file}")
    print(f"  consumer key {sandbox.consumer_key!r}, secret {sandbox.consumer_secret!r}")
    print(f"  JWT private key: {sandbox.jwt_key_file}")
    for name, password in (users or {"admin@crmbridge.sandbox": "admin"}).items():
        print(f"  user {name!r}, password {password!r}")
    print("Ctrl-C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sandbox.close()
