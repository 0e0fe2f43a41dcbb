"""Command line: ``python -m crmbridge.sandbox.sagecrm --port 8091 --data demo.sqlite``."""

from __future__ import annotations

import argparse
import errno
import sys
import threading
from collections.abc import Sequence

from crmbridge.sandbox.sagecrm.server import SageSandbox
from crmbridge.sandbox.sagecrm.settings import DEFAULT_MAX_RECORDS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crmbridge.sandbox.sagecrm",
        description="Serve a local Sage CRM sandbox (SOAP web services and sagecrm2 REST).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8091, help="port (0 picks a free one)")
    parser.add_argument("--data", help="SQLite file, created and seeded when missing")
    parser.add_argument("--companies", type=int, default=40, help="seed size (companies)")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="LOGON:PASSWORD",
        help="a user that may use the web services (repeatable; default admin:admin)",
    )
    parser.add_argument(
        "--max-records",
        type=int,
        default=DEFAULT_MAX_RECORDS,
        help="'Maximum number of records to return' (0 = all)",
    )
    parser.add_argument("--version", default="2024 R2", help="release, e.g. '2023 R1'")
    parser.add_argument("--no-wsdl", action="store_true", help="do not make the WSDL available")
    parser.add_argument("--utc", action="store_true", help="answer dates in UTC")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Start a sandbox server, print where it is and who can log on, serve until Ctrl-C.

    A port in use is one line on stderr and exit code 2."""
    args = _parser().parse_args(argv)
    users = dict(u.partition(":")[::2] for u in args.user) or {"admin": "admin"}
    sandbox = SageSandbox(
        args.data,
        companies=args.companies,
        users=users,
        max_records=args.max_records,
        version=args.version,
        wsdl_available=not args.no_wsdl,
        dates_utc=args.utc,
    )
    try:
        server = sandbox.serve(args.host, args.port)
    except OSError as err:
        sandbox.close()
        reason = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be used ({err})"
        print(
            f"error: port {args.port} on {args.host} {reason}; choose another with --port",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    print(f"Sage CRM sandbox at {server.url}")
    print(f"  WSDL: {server.wsdl_url}")
    print(f"  SOAP: {server.soap_url}")
    print(f"  REST: {server.rest_url}/company")
    for name, password in users.items():
        print(f"  user {name!r}, password {password!r}")
    print("Ctrl-C stops it.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sandbox.close()
