"""The SugarCRM cases of `compare.py`: extraction of every Account from the local sandbox.

The sandbox (`crmbridge sandbox sugarcrm --port 0 --data FILE`) serves a pre-seeded SQLite
file from its own process on a real port; with ``latency`` every call waits that long first,
as a remote server would (a small script sets that knob). Both tools read the Accounts with
the same 12 fields, order and page size and write them as JSON Lines: `crmbridge run` of a
profile (its defaults: 4 pages in parallel), and a plain httpx loop (sequential against the
local sandbox; with latency, 4 pages in parallel like the connector). The check: every
record written once (count and ids), with the same fields.
"""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from cases import Check, Setup, Step

FIELDS = [
    "id", "name", "date_modified", "account_type", "industry", "billing_address_street",
    "billing_address_city", "billing_address_postalcode", "billing_address_country",
    "phone_office", "website", "email1",
]  # fmt: skip
ORDER = "date_modified ASC, id ASC"  # the connector's order
PAGE_SIZE = 200  # the connector's default page_size
CONCURRENCY = 4  # the connector's default concurrency
LATENCY_SANDBOX = """\
import sys, threading
from crmbridge.sandbox.sugarcrm import SugarSandbox
sandbox = SugarSandbox(sys.argv[1])
sandbox.faults.latency = float(sys.argv[2])
server = sandbox.serve(port=0)
print(f"SugarCRM sandbox at {server.url}", flush=True)
threading.Event().wait()
"""


def seeded(out: Path, accounts: int) -> Path:
    """The sandbox's database with ``accounts`` Accounts (seeded once, then reused)."""
    from crmbridge.sandbox.sugarcrm import SugarSandbox

    path = out / f"sugar_{accounts}.sqlite"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        SugarSandbox(partial, accounts=accounts).close()
        partial.rename(path)
    return path


class SugarCase:
    tools: tuple[str, ...] = ("floor", "crmbridge")

    def __init__(self, setup: Setup, accounts: int, latency: float) -> None:
        self.setup = setup
        self.rows = accounts
        self.latency = latency
        self.kind = "sugarcrm-latency" if latency else "sugarcrm"
        self.home = setup.state / self.kind
        self.url = ""
        self._server: subprocess.Popen[str] | None = None

    @property
    def title(self) -> str:
        where = f"{self.latency * 1000:.0f} ms latency" if self.latency else "local"
        return f"SugarCRM extraction of {self.rows:,} Accounts, {where}"

    @property
    def floor(self) -> str:
        if self.latency:
            return f"httpx loop, {CONCURRENCY} pages in parallel"
        return "httpx loop, sequential"

    def open(self) -> None:
        data = seeded(self.setup.out, self.rows)
        if self.latency:
            argv = [sys.executable, "-c", LATENCY_SANDBOX, str(data), str(self.latency)]
        else:
            argv = [sys.executable, "-m", "crmbridge", "sandbox", "sugarcrm", "--port", "0"]
            argv += ["--data", str(data)]
        self._server = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self._server.stdout is not None
        first = self._server.stdout.readline()
        if not first.startswith("SugarCRM sandbox at "):
            self.close()
            raise RuntimeError(f"the SugarCRM sandbox did not start: {first!r}")
        self.url = first.split(" at ", 1)[1].strip()
        self._save_connection()

    def close(self) -> None:
        if self._server is not None:
            self._server.terminate()
            self._server.wait()
            if self._server.stdout is not None:
                self._server.stdout.close()
            self._server = None

    def _save_connection(self) -> None:
        """A v4_1 connection in the crmbridge home of the case (its password encrypted)."""
        from crmbridge.connections import ConnectionStore, KeyFileKeySource

        home = self.home / "crmbridge"
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(stat.S_IRWXU)
        values = {"url": self.url, "username": "admin", "password": "admin", "api": "v4_1"}
        store = ConnectionStore(home, key_source=KeyFileKeySource(home / "secret.key"))
        store.add("sugar", "sugarcrm", values, replace=True)

    def _output(self, tool: str) -> Path:
        return self.home / tool / "accounts.jsonl"

    def prepare(self, tool: str) -> list[Step]:
        out = self._output(tool)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        if tool == "floor":
            concurrency = CONCURRENCY if self.latency else 1
            tools_py = str(Path(__file__).resolve().parent / "tools.py")
            argv = [sys.executable, tools_py, "sugar-raw", self.url, str(PAGE_SIZE)]
            return [Step([*argv, str(concurrency), str(out)])]
        profile = out.parent / "extract.yaml"
        profile.write_text(
            textwrap.dedent(f"""\
            name: bench-{self.kind}
            source:
              connection: sugar
              object: Accounts
              fields: [{", ".join(FIELDS)}]
            target:
              connection: {{type: jsonl, path: "{out.parent}"}}
              object: {out.name}
              mode: insert
            """),
            encoding="utf-8",
        )
        argv = ["-m", "crmbridge", "run", str(profile), "--no-progress"]
        argv += ["-o", str(out.parent / "run")]
        env = {"CRMBRIDGE_HOME": str(self.home / "crmbridge"), "CRMBRIDGE_PASSPHRASE": ""}
        return [Step([sys.executable, *argv], env)]

    def check(self, tool: str, floor: Check | None) -> Check:
        out = self._output(tool)
        if not out.exists():
            return Check(False, note="no output file")
        with out.open(encoding="utf-8") as f:
            records = [json.loads(line) for line in f]
        ids = sorted(str(r.get("id")) for r in records)
        fields = sorted({k for r in records for k in r})
        digest = f"{len(ids)} records, ids md5 {hashlib.md5(''.join(ids).encode()).hexdigest()}"
        if fields != sorted(FIELDS):
            return Check(False, digest, f"fields {fields}")
        if len(ids) != self.rows or len(set(ids)) != len(ids):
            return Check(False, digest, f"{len(set(ids)):,} distinct records of {self.rows:,}")
        if floor is not None and floor.ok and digest != floor.digest:
            return Check(False, digest, "not the floor's records")
        return Check(True, digest)
