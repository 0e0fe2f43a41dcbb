"""The fixed cost of a SugarCRM run: calls and seconds that do not depend on the records.

    python bench/sugarcrm_fixed_cost.py [--latency 0.03] [--runs 3]

Runs step 1 of the lead-sync recipe (examples/lead-sync, 5 qualified leads: 3 created, 2
unchanged) several times in a row against an in-process sandbox served on a real port, each
time as a new process would (a new connector, the same crmbridge home), on both APIs. For each
run it prints the calls the sandbox served, split into discovery (log in, modules, fields,
filter probes, log out) and record calls (look-ups and writes), and the run's seconds.
``--latency`` adds that many seconds to every call, as a PHP server on the network takes.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from crmbridge.connections import ConnectionStore, KeyFileKeySource
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import run_profile
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import StateStore

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lead-sync"
#: calls that read or write records; everything else is discovery
RECORD_CALLS = ("v4_1:get_entry_list", "v4_1:set_entries", "v10:POST /bulk", "/filter")


def is_record_call(name: str) -> bool:
    return any(part in name for part in RECORD_CALLS) and "count" not in name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"| api | run | discovery calls | record calls | seconds | latency {args.latency} s |")
    print("|---|---|---|---|---|---|")
    for api in ("v4_1", "v10"):
        with tempfile.TemporaryDirectory() as tmp:
            measure(Path(tmp), api, args.latency, args.runs)


def measure(tmp: Path, api: str, latency: float, runs: int) -> None:
    folder = tmp / "lead-sync"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("*.sqlite"))
    with sqlite3.connect(folder / "marketing.sqlite") as db:
        db.executescript((folder / "marketing.sql").read_text(encoding="utf-8"))
    db.close()
    home = tmp / "home"
    home.mkdir(mode=0o700)
    store = ConnectionStore(home, key_source=KeyFileKeySource(home / "secret.key"))
    sandbox = SugarSandbox()
    try:
        with sandbox.serve() as server, StateStore(f"sqlite:///{home}/state.sqlite") as state:
            store.add(
                "crm",
                "sugarcrm",
                {"url": server.url, "username": "admin", "password": "admin", "api": api},
            )
            run_profile(
                load_profile(folder / "0-load-marketing-db.yaml"), connections=store, state=state
            )
            sandbox.faults.latency = latency
            for n in range(1, runs + 1):
                sandbox.faults.reset()
                sandbox.faults.latency = latency
                started = time.perf_counter()
                run_profile(
                    load_profile(folder / "1-leads-to-crm.yaml"), connections=store, state=state
                )
                seconds = time.perf_counter() - started
                counts = sandbox.faults.call_counts()
                records = sum(v for k, v in counts.items() if is_record_call(k))
                discovery = sum(counts.values()) - records
                print(f"| {api} | {n} | {discovery} | {records} | {seconds:.2f} | |")
                if n == 1:
                    detail = ", ".join(
                        f"{k} {v}" for k, v in sorted(counts.items()) if not is_record_call(k)
                    )
                    print(f"|  | discovery of run 1: {detail} | | | | |")
    finally:
        sandbox.close()


if __name__ == "__main__":
    main()
