"""Command line: ``python -m crmbridge.sandbox.quickbooks --port 8090 --data books.sqlite``."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from crmbridge.sandbox.quickbooks.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REALM,
    QuickBooksSandbox,
)

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crmbridge.sandbox.quickbooks",
        description="Serve a local QuickBooks Online sandbox (Accounting API v3, OAuth 2.0).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="port (0 picks a free one)")
    parser.add_argument("--data", help="SQLite file, created and seeded when missing")
    parser.add_argument("--customers", type=int, default=30, help="seed size (customers)")
    parser.add_argument("--realm-id", default=DEFAULT_REALM, help="the company's realmId")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="OAuth client id")
    parser.add_argument(
        "--client-secret", default=DEFAULT_CLIENT_SECRET, help="OAuth client secret"
    )
    parser.add_argument(
        "--batch-limit", type=int, default=30, help="items a batch request may hold"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Start a sandbox, print how to connect (with a fresh refresh token), serve until Ctrl-C."""
    args = _parser().parse_args(argv)
    sandbox = QuickBooksSandbox(
        args.data,
        customers=args.customers,
        realm_id=args.realm_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
        batch_limit=args.batch_limit,
    )
    try:
        server = sandbox.serve(args.host, args.port)
    except OSError as err:
        sandbox.close()
        reason = "the port is in use" if err.errno in (48, 98) else (err.strerror or str(err))
        print(f"error: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    print(f"QuickBooks Online sandbox at {server.url}")
    print(f"  API:           {server.url}/v3/company/{args.realm_id}/")
    print(f"  token URL:     {server.url}/oauth2/v1/tokens/bearer")
    print(f"  realm_id:      {args.realm_id}")
    print(f"  client_id:     {args.client_id}")
    print(f"  client_secret: {args.client_secret}")
    print(f"  refresh_token: {sandbox.issue_refresh_token()}  (new; it rotates on first use)")
    print("Ctrl-C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sandbox.close()
