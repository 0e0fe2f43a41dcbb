"""Parallel page reads against a sandbox that locks sessions as PHP does.

    python bench/sugarcrm_parallel.py [--accounts 2000] [--latency 0.05]

Reads every Account (``id``, ``name``; pages of 200) through the connector from an in-process
sandbox on a real port that adds ``--latency`` seconds to every call, as a PHP server does for
the work behind a page. Cases: v4_1 one page at a time; v4_1 four pages at a time over one
session (what the connector did before it opened a session per page in flight: the server
serialises them); v4_1 four at a time over four sessions; v10 (one token per user and
platform: one page at a time). Prints a Markdown table: the seconds of the read itself and of
the whole connection (log in, discovery, read, log out), fastest of three; the calls; and the
most calls the sandbox served at once.
"""

from __future__ import annotations

import argparse
import time

from crmbridge.connectors.base import ReadRequest
from crmbridge.connectors.sugarcrm import SugarCrmConnector, SugarCrmSettings
from crmbridge.sandbox.sugarcrm import SugarSandbox


def read(url: str, api: str, concurrency: int, sessions: int | None) -> tuple[int, float]:
    """Records read and the seconds the read took (after discovery, before logging out)."""
    settings = SugarCrmSettings(
        url=url, username="admin", password="admin", api=api, concurrency=concurrency
    )
    with SugarCrmConnector("bench", settings) as crm:
        if sessions is not None:
            crm.api.sessions.size = sessions  # type: ignore[attr-defined]
        crm.describe("Accounts")
        started = time.perf_counter()
        rows = sum(b.num_rows for b in crm.read(ReadRequest("Accounts", fields=["id", "name"])))
        return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    sandbox = SugarSandbox(accounts=args.accounts)
    cases = [
        ("v4_1, 1 page at a time", "v4_1", 1, None),
        ("v4_1, 4 at a time, 1 session", "v4_1", 4, 1),
        ("v4_1, 4 at a time, 4 sessions", "v4_1", 4, None),
        ("v10 (1 page at a time)", "v10", 4, None),
    ]
    print("| case | records | read seconds | run seconds | calls | most calls served at once |")
    print("|---|---|---|---|---|---|")
    try:
        with sandbox.serve() as server:
            for name, api, concurrency, sessions in cases:
                best = (float("inf"), float("inf"))
                for _ in range(3):
                    sandbox.faults.reset()
                    sandbox.faults.latency = args.latency
                    started = time.perf_counter()
                    rows, reading = read(server.url, api, concurrency, sessions)
                    best = min(best, (reading, time.perf_counter() - started))
                calls, peak = sandbox.faults.calls, sandbox.faults.peak_parallel_calls
                print(f"| {name} | {rows} | {best[0]:.2f} | {best[1]:.2f} | {calls} | {peak} |")
    finally:
        sandbox.close()


if __name__ == "__main__":
    main()
