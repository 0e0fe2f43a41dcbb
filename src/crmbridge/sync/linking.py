"""Pairing records that are not linked yet: the duplicate check before anything is created.

A record of one side without a link is paired with a record of the other side, in this order:

1. **stored id**: the other side's record names it in its ``link.store_in`` field;
2. **link key**: the link fields are equal under the link's rules (:mod:`crmbridge.core.identity`)
   — looked for among the records read *and* with the other connector's ``match`` (so a
   record outside the other side's read, or outside its filter, is found too; a side read
   whole and without a filter needs no such look-up);
3. **fuzzy** (``link.fuzzy``): the link fields' text is this similar (rapidfuzz ratio) —
   a *proposal*, made a link only with ``--accept-links`` (or at ``link.accept_above``).

A key found on exactly one free record of the other side (in its subset, not linked) links
the two. Anything less certain is *held*, with the reason, and neither linked nor created:
several records with the key, the record found is linked to another one already, or it lies
outside the other side's filter. What is neither linked nor held is new: the insert policy
creates it on the other side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from crmbridge.connectors.base import MatchRequest
from crmbridge.errors import ErrorContext
from crmbridge.state.syncstate import SyncState
from crmbridge.sync.sides import FETCH_PAGE, SideSetup
from crmbridge.sync.workspace import LINKS_SCHEMA, Workspace

#: fuzzy pairing compares at most this many pairs of records (leftovers of a × of b)
FUZZY_LIMIT = 50_000_000


@dataclass
class LinkFinder:
    ws: Workspace
    a: SideSetup
    b: SideSetup
    state: SyncState | None
    sync_key: str
    #: link.fuzzy, link.accept_above, --accept-links
    fuzzy: float | None = None
    accept_above: float | None = None
    accept_links: bool = False
    #: the sides this run read whole: their records are all in the workspace already
    whole: frozenset[str] = frozenset()

    def run(self) -> None:
        for this, other in ((self.a, self.b), (self.b, self.a)):
            self._stored(this, other)
        for this, other in ((self.a, self.b), (self.b, self.a)):
            self._by_key(this, other)
        if self.fuzzy is not None:
            self._fuzzy()

    # -- what is linked already -----------------------------------------------------------
    def load_links(self, side: str, ids: list[str]) -> None:
        load_links(self.ws, self.state, self.sync_key, side, ids)

    def _free(self, side: SideSetup, extra: str = "") -> str:
        """SQL: the rows of ``side`` in its subset, not linked and not held."""
        n = side.name
        return (
            f"SELECT * FROM {n}_rows r WHERE r.st = 'in' {extra} "
            f"AND NOT EXISTS (SELECT 1 FROM links l WHERE l.{n}_id = r.id) "
            f"AND NOT EXISTS (SELECT 1 FROM holds h WHERE h.side = '{n}' AND h.id = r.id)"
        )

    # -- 1. stored ids --------------------------------------------------------------------
    def _stored(self, this: SideSetup, other: SideSetup) -> None:
        """Records of ``this`` whose store_in field names a record of ``other``."""
        if not this.store_in:
            return
        t, o = this.name, other.name
        pointed = self.ws.column(
            f"SELECT DISTINCT si FROM ({self._free(this, 'AND r.si IS NOT NULL')})"
        )
        if not pointed:
            return
        self.load_links(o, pointed)
        missing = self.ws.column(
            f"SELECT s.si FROM (SELECT UNNEST(?::VARCHAR[]) AS si) s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {o}_rows r WHERE r.id = s.si)",
            [pointed],
        )
        self._fetch_into(other, missing)
        rows = self.ws.table(
            f"SELECT f.id AS this_id, f.si AS other_id, o.st AS other_st, "
            f"(SELECT l.{t}_id FROM links l WHERE l.{o}_id = f.si) AS linked_to, "
            f"count(*) OVER (PARTITION BY f.si) AS claims "
            f"FROM ({self._free(this, 'AND r.si IS NOT NULL')}) f "
            f"LEFT JOIN {o}_rows o ON o.id = f.si"
        ).to_pylist()
        links, holds = [], []
        for row in rows:
            if row["other_st"] is None or row["other_st"] == "del":
                continue  # names a record that is gone: paired by key instead
            names = f"its {this.store_in} names {o} record {row['other_id']}"
            if row["linked_to"] is not None:
                why = f"{names}, which is linked to {t} record {row['linked_to']}"
            elif row["claims"] > 1:
                why = f"{names}, and so do {row['claims'] - 1} other records of {t}"
            elif row["other_st"] == "out":
                why = f"{names}, which is outside {o}'s filter"
            else:
                links.append(_pair(t, row["this_id"], row["other_id"], "stored"))
                continue
            holds.append((t, row["this_id"], why, row["other_id"], None))
        self.ws.add_links(pa.Table.from_pylist(links, schema=LINKS_SCHEMA))
        self.ws.add_holds(holds)

    def _fetch_into(self, side: SideSetup, ids: list[str]) -> None:
        """Fetch these records of ``side`` by id into its rows (those not found: none)."""
        if not ids:
            return
        found = side.fetch(ids)
        if found is None or found.num_rows == 0:
            return
        rows, _problems = side.rows(found, src="fetched", whole_condition=True)
        self.ws.add_rows(side.name, rows)

    # -- 2. link keys ---------------------------------------------------------------------
    def _by_key(self, this: SideSetup, other: SideSetup) -> None:
        t, o = this.name, other.name
        free = self._free(this, "AND r.lk IS NOT NULL")
        if not self.ws.scalar(f"SELECT count(*) FROM ({free})"):
            return
        # a side read whole and without a subset holds every record the match could find
        read_all = other.name in self.whole and other.condition is None
        if other.caps.match and not read_all:
            self._match_in(other, free)
        candidates = self.ws.table(
            f"SELECT f.id AS this_id, f.lk AS lk, o.id AS other_id, o.st AS other_st "
            f"FROM ({free}) f JOIN {o}_rows o ON o.lk = f.lk WHERE o.st <> 'del'"
        )
        if candidates.num_rows == 0:
            return
        other_ids = sorted(set(candidates.column("other_id").to_pylist()))
        self.load_links(o, other_ids)
        linked = {
            r[0]: r[1]
            for r in self.ws.con.execute(
                f"SELECT {o}_id, {t}_id FROM links WHERE {o}_id IN (SELECT UNNEST(?::VARCHAR[]))",
                [other_ids],
            ).fetchall()
        }
        by_this: dict[str, list[dict[str, Any]]] = {}
        claims: dict[str, int] = {}
        for row in candidates.to_pylist():
            by_this.setdefault(row["this_id"], []).append(row)
            if row["other_st"] == "in" and row["other_id"] not in linked:
                claims[row["other_id"]] = claims.get(row["other_id"], 0) + 1
        links, holds = [], []
        for this_id, found in by_this.items():
            free_ones = [r for r in found if r["other_st"] == "in" and r["other_id"] not in linked]
            if len(found) == 1 and len(free_ones) == 1 and claims[free_ones[0]["other_id"]] == 1:
                links.append(_pair(t, this_id, free_ones[0]["other_id"], "key"))
                continue
            holds.append(
                (
                    t,
                    this_id,
                    self._why_held(this, other, found, linked, claims),
                    found[0]["other_id"],
                    None,
                )
            )
        self.ws.add_links(pa.Table.from_pylist(links, schema=LINKS_SCHEMA))
        self.ws.add_holds(holds)

    def _why_held(
        self,
        this: SideSetup,
        other: SideSetup,
        found: list[dict[str, Any]],
        linked: dict[str, str],
        claims: dict[str, int],
    ) -> str:
        o = other.name
        keys = ", ".join(other.link_fields)
        if len(found) > 1:
            ids = ", ".join(str(r["other_id"]) for r in found[:5])
            return (
                f"{len(found)} records of {o} have its {keys} ({ids}): link by hand or "
                "tell them apart"
            )
        (row,) = found
        if row["other_id"] in linked:
            return (
                f"{o} record {row['other_id']} has its {keys} but is linked to {this.name} "
                f"record {linked[row['other_id']]}: a duplicate?"
            )
        if row["other_st"] == "out":
            return f"{o} record {row['other_id']} has its {keys} but is outside {o}'s filter"
        n = claims.get(row["other_id"], 0)
        return f"{n} records of {this.name} have the {keys} of {o} record {row['other_id']}"

    def _match_in(self, other: SideSetup, free: str) -> None:
        """Ask ``other``'s connector for records with the link keys of the free records (it
        finds records the read did not return)."""
        this = self.a if other is self.b else self.b
        names = [f"lw{j}" for j in range(len(this.link_fields))]
        present = " AND ".join(f"{n} IS NOT NULL" for n in names)
        sql = f"SELECT DISTINCT {', '.join(names)} FROM ({free}) WHERE {present}"
        for batch in self.ws.batches(sql, FETCH_PAGE):
            values = pa.RecordBatch.from_arrays(list(batch.columns), names=other.link_fields)
            request = MatchRequest(
                other.spec.object,
                other.link_fields,
                values,
                rules=dict(other.link_rules),
                fields=[n for n in other.read_fields if n not in other.link_fields],
                context=ErrorContext(object=other.spec.object),
            )
            found = other.connector.match(request)
            if found.num_rows == 0:
                continue
            ids = [str(v) for v in found.column(_id_column(found, other)).to_pylist()]
            fetched = other.fetch(ids)
            if fetched is not None and fetched.num_rows:
                rows, _problems = other.rows(fetched, src="fetched", whole_condition=True)
                self.ws.add_rows(other.name, rows)

    # -- 3. fuzzy -------------------------------------------------------------------------
    def _fuzzy(self) -> None:
        from rapidfuzz import fuzz, process

        threshold = float(self.fuzzy or 100)
        left = self.ws.table(f"SELECT id, lk FROM ({self._free(self.a, 'AND r.lk IS NOT NULL')})")
        right = self.ws.table(f"SELECT id, lk FROM ({self._free(self.b, 'AND r.lk IS NOT NULL')})")
        if left.num_rows == 0 or right.num_rows == 0:
            return
        if left.num_rows * right.num_rows > FUZZY_LIMIT:
            return  # too many to compare; docs/sync.md says so
        choices = [_words(v) for v in right.column("lk").to_pylist()]
        right_ids = right.column("id").to_pylist()
        scored = []
        for a_id, key in zip(
            left.column("id").to_pylist(), left.column("lk").to_pylist(), strict=True
        ):
            best = process.extractOne(
                _words(key), choices, scorer=fuzz.ratio, score_cutoff=threshold
            )
            if best is not None:
                scored.append((float(best[1]), a_id, right_ids[best[2]]))
        scored.sort(key=lambda s: -s[0])
        taken_a: set[str] = set()
        taken_b: set[str] = set()
        links, holds = [], []
        for score, a_id, b_id in scored:
            if a_id in taken_a or b_id in taken_b:
                continue
            taken_a.add(a_id)
            taken_b.add(b_id)
            sure = self.accept_links or (
                self.accept_above is not None and score >= self.accept_above
            )
            if sure:
                links.append({**_pair("a", a_id, b_id, "fuzzy"), "score": score})
            else:
                why = (
                    f"proposed link to %s record %s (similarity {score:.0f}): accept with "
                    "--accept-links"
                )
                holds.append(("a", a_id, why % ("b", b_id), b_id, score))
                holds.append(("b", b_id, why % ("a", a_id), a_id, score))
        self.ws.add_links(pa.Table.from_pylist(links, schema=LINKS_SCHEMA))
        self.ws.add_holds(holds)


def load_links(
    ws: Workspace, state: SyncState | None, sync_key: str, side: str, ids: list[str]
) -> None:
    """Bring the state store's links of these records of ``side`` into the workspace."""
    if state is None or not ids:
        return
    found = state.links(sync_key, a_ids=ids) if side == "a" else state.links(sync_key, b_ids=ids)
    if not found:
        return
    rows = [
        {"a_id": f.a_id, "b_id": f.b_id, "base": f.base, "kind": "old", "score": None}
        for f in found
    ]
    ws.add_links(pa.Table.from_pylist(rows, schema=LINKS_SCHEMA))


def _pair(side: str, this_id: str, other_id: str, kind: str) -> dict[str, Any]:
    a_id, b_id = (this_id, other_id) if side == "a" else (other_id, this_id)
    return {"a_id": a_id, "b_id": b_id, "base": None, "kind": kind, "score": None}


def _id_column(found: pa.RecordBatch, side: SideSetup) -> str:
    from crmbridge.core.plan import ID_COLUMN

    return ID_COLUMN if ID_COLUMN in found.column_names else side.id_field


def _words(key: str | None) -> str:
    return (key or "").replace("\x1f", " ").casefold()


def _quote(text: str) -> str:
    return text.replace("'", "''")


__all__ = ["FUZZY_LIMIT", "LinkFinder", "load_links"]
