"""What discovery learned about a server, remembered between runs in the connection's cache.

Discovering a server costs calls before the first record moves: the module list, one
description per module a run touches and per module its links lead to, and one probe per
field a filter names. The answers are kept in ``<cache_dir>/sugarcrm-discovery.json``
(``Connector.cache_dir``, one folder per saved connection) so that the next run only logs in.

The file is tied to the server and user it was made for (URL, user, API family and REST
version); it is ignored when any of them changed. It is forgotten (deleted) when the
connector meets a *metadata error*, an answer showing that what it remembers is out of date:
a module or field a profile names that the remembered description lacks, or a filter the
server refuses. ``crmbridge describe CONNECTION MODULE --refresh`` forgets it too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crmbridge.connectors.sugarcrm.discovery import RawField, RawModule

log = logging.getLogger("crmbridge.connectors.sugarcrm")

FILE_NAME = "sugarcrm-discovery.json"
FORMAT = 1


class DiscoveryCache:
    """The remembered discovery of one connection (in memory; :meth:`save` writes it).

    ``folder`` None: nothing is remembered between runs (everything else works the same).
    """

    def __init__(self, folder: Path | None, identity: Mapping[str, str]) -> None:
        self.path = folder / FILE_NAME if folder is not None else None
        self.identity = dict(identity)
        self.modules: list[str] | None = None
        self.described: dict[str, RawModule] = {}
        #: (module, field) -> whether the server accepts a filter on it
        self.filterable: dict[tuple[str, str], bool] = {}
        #: when the remembered answers were saved; None when nothing came from the file
        self.saved_at: dt.datetime | None = None
        self._load()
        self._clean = self._key()  # what the file holds (or would hold) now

    @property
    def remembered(self) -> bool:
        """Whether what this run knows came (partly) from an earlier run."""
        return self.saved_at is not None

    def since(self) -> str:
        """When the remembered answers were saved, for messages (UTC, to the minute)."""
        return self.saved_at.strftime("%Y-%m-%d %H:%M UTC") if self.saved_at else "this run"

    def forget(self, why: str) -> None:
        """Delete the file (the next run asks the server again); this run keeps its answers."""
        if self.path is not None and self.path.exists():
            log.info("forgetting the remembered discovery of the CRM (%s): %s", self.path, why)
            with contextlib.suppress(OSError):
                self.path.unlink()
        self.saved_at = None
        self._clean = self._key()  # do not write it back at the end of this run

    def save(self) -> None:
        """Write what is known now, if anything changed since it was read (atomically)."""
        key = self._key()
        if self.path is None or key == self._clean:
            return
        document = {**self._body(), "saved_at": dt.datetime.now(dt.UTC).isoformat()}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".discovery-")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(document, out, indent=1)
            os.replace(tmp, self.path)
        except OSError as err:  # remembering is an optimisation: never fail a run on it
            log.warning("cannot remember the CRM's discovery in %s: %s", self.path, err)
            return
        self._clean = key

    # -- the file ------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "identity": self.identity,
            "modules": self.modules,
            "described": {name: asdict(raw) for name, raw in sorted(self.described.items())},
            "filterable": sorted([m, f, ok] for (m, f), ok in self.filterable.items()),
        }

    def _key(self) -> str:
        return json.dumps(self._body(), sort_keys=True)

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            if document.get("format") != FORMAT or document.get("identity") != self.identity:
                return  # another server, user or API: start afresh (and overwrite it)
            modules = document.get("modules")
            described = {n: _load_module(raw) for n, raw in document["described"].items()}
            filterable = {(str(m), str(f)): bool(ok) for m, f, ok in document["filterable"]}
            saved_at = dt.datetime.fromisoformat(document["saved_at"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.info("ignoring the remembered discovery in %s: %s", self.path, err)
            return
        self.modules = [str(m) for m in modules] if isinstance(modules, list) else None
        self.described = described
        self.filterable = filterable
        self.saved_at = saved_at


def _load_module(data: Mapping[str, Any]) -> RawModule:
    fields = [
        RawField(**{**f, "options": tuple(f["options"]) if f.get("options") else None})
        for f in data["fields"]
    ]
    return RawModule(
        name=str(data["name"]),
        fields=fields,
        links={str(k): str(v) for k, v in data["links"].items()},
        table=data.get("table"),
        relationships={str(k): str(v) for k, v in data.get("relationships", {}).items()},
    )
