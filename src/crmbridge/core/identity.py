"""Record identity: when two key values are "the same record". The one place that decides it.

A match key has one equality **rule**, used by every step that compares keys: the plan (which
target record a source record is), repeated keys inside a batch, references, links,
deduplication, the keys of records already sent, and sync later. Nothing else compares keys.

Rules (docs/profiles.md, "Match keys and their rules"):

``exact``
    equal as stored, character for character (SQL text in PostgreSQL, files).
``casefold``
    Unicode NFC, surrounding white space removed, case folded (``Straße`` = ``STRASSE``):
    what a case-insensitive collation compares (MySQL ``*_ci``, SQLite ``NOCASE``, CRM names).
``email``
    an e-mail address: as ``casefold`` (CRMs compare addresses without case); an empty
    address identifies nothing.
``phone``
    the digits only (``+49 (30) 123-45`` = ``493012345``); no digits identify nothing.

A profile chooses a rule per key (``target.key_rules``); the default is the rule the target
declares for the field (:attr:`crmbridge.core.schema.Field.key_rule`), so a match compares
what the target system itself compares.

Keys are compared as one text value per record, :func:`encode`: the normalised parts of a
composite key are joined so that no two different keys give the same text (``('a|b', 'c')``
and ``('a', 'b|c')`` stay apart). A key with a missing part (null, or an empty e-mail
address or phone number) has no identity: it matches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import TypeAlias

import pyarrow as pa
import pyarrow.compute as pc


class KeyRule(enum.StrEnum):
    EXACT = "exact"
    CASEFOLD = "casefold"
    EMAIL = "email"
    PHONE = "phone"


#: joins the parts of a composite key; escaped inside parts, so joining is injective
PART_SEPARATOR = "\x1f"
_ESCAPE = "\\"

Column: TypeAlias = pa.Array | pa.ChunkedArray


def _flat(values: Column) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _casefold(text: pa.Array) -> pa.Array:
    """Unicode case folding: vectorized lower-casing for ASCII, ``str.casefold`` for the rest
    (``ß`` → ``ss``, final sigma, ligatures), which Arrow does not offer."""
    lowered = pc.utf8_lower(text)
    if pc.all(pc.fill_null(pc.string_is_ascii(text), True)).as_py():
        return lowered
    folded = [None if v is None else v.casefold() for v in text.to_pylist()]
    return pa.array(folded, pa.string())


def normalize(values: Column, rule: KeyRule) -> pa.Array:
    """``values`` as text in the form ``rule`` compares (null: no identity)."""
    text = _flat(values)
    if not (pa.types.is_string(text.type) or pa.types.is_large_string(text.type)):
        text = pc.cast(text, pa.string())
    if rule is KeyRule.EXACT:
        return text
    if rule is KeyRule.PHONE:
        text = pc.replace_substring_regex(text, pattern=r"\D+", replacement="")
    else:
        text = _casefold(pc.utf8_trim_whitespace(pc.utf8_normalize(text, form="NFC")))
    if rule is KeyRule.CASEFOLD:
        return text
    # an e-mail address or a phone number with nothing in it identifies nothing
    empty = pc.equal(pc.utf8_length(text), 0)
    return pc.if_else(empty, pa.scalar(None, pa.string()), text)


def _escaped(part: pa.Array) -> pa.Array:
    part = pc.replace_substring(part, pattern=_ESCAPE, replacement=_ESCAPE * 2)
    return pc.replace_substring(part, pattern=PART_SEPARATOR, replacement=_ESCAPE + "s")


def encode(
    data: pa.RecordBatch | pa.Table,
    keys: Sequence[str],
    rules: Mapping[str, KeyRule] | None = None,
) -> pa.Array:
    """One text value per row: the identity of its ``keys`` under ``rules`` (default exact).

    Two rows give the same value exactly when every key part is equal under its rule. Null
    when a part has no identity."""
    if not keys:
        raise ValueError("a key needs at least one field")
    rules = rules or {}
    parts = [normalize(data.column(k), rules.get(k, KeyRule.EXACT)) for k in keys]
    if len(parts) == 1:
        return parts[0]
    joined = pc.binary_join_element_wise(*(_escaped(p) for p in parts), PART_SEPARATOR)
    return _flat(joined)


def describe_key(data: pa.RecordBatch | pa.Table, keys: Sequence[str], i: int) -> str:
    """``email1='a@b.c', country='DE'``: the key of row ``i`` as a person reads it."""
    return ", ".join(f"{k}={data.column(k)[i].as_py()!r}" for k in keys)


def occurrence(identity: pa.Array) -> pa.Array:
    """For each row, how many earlier rows share its identity (0 for the first; nulls: 0).

    Rows with the same identity in one batch are applied one after the other, in source
    order: the n-th occurrence sees what the ones before it did (see :func:`waves`)."""
    n = len(identity)
    if n < 2:
        return pa.array([0] * n, pa.int64())
    if pc.count_distinct(identity, mode="only_valid").as_py() == n - identity.null_count:
        return pa.repeat(0, n).cast(pa.int64())  # the usual case: no identity repeats
    table = pa.table({"k": identity, "i": pa.array(range(n), pa.int64())})
    grouped = table.group_by("k", use_threads=False).aggregate([("i", "list")])
    rank = [0] * n
    for key, rows in zip(
        grouped.column("k").to_pylist(), grouped.column("i_list").to_pylist(), strict=True
    ):
        if key is None:
            continue
        for position, row in enumerate(rows):
            rank[row] = position
    return pa.array(rank, pa.int64())


def waves(identity: pa.Array) -> list[pa.Array]:
    """Row indices split into waves in which no identity repeats, in source order: wave 1
    holds each identity's first row, wave 2 its second row, and so on (nulls in wave 1)."""
    rank = occurrence(identity)
    top = pc.max(rank).as_py() if len(rank) else 0
    indices = pa.array(range(len(identity)), pa.int64())
    if not top:
        return [indices]
    return [indices.filter(pc.equal(rank, w)) for w in range(int(top or 0) + 1)]


def positions(wanted: pa.Array, available: pa.Array) -> pa.Array:
    """For each of ``wanted`` (encoded identities), the index of the first equal value in
    ``available``, or null (no match; a null identity matches nothing)."""
    found = pc.index_in(wanted, value_set=available)
    return pc.if_else(pc.is_null(wanted), pa.scalar(None, found.type), found)


def match_counts(wanted: pa.Array, available: pa.Array) -> pa.Array:
    """For each of ``wanted``, how many values of ``available`` equal it (0 for null)."""
    if len(available) == 0:
        return pa.array([0] * len(wanted), pa.int64())
    counts = pc.value_counts(available.drop_null()) if available.null_count else None
    tally = counts if counts is not None else pc.value_counts(available)
    values = tally.field("values")
    numbers = tally.field("counts")
    at = pc.index_in(wanted, value_set=values)
    return pc.fill_null(pc.take(numbers, at), 0).cast(pa.int64())


def shared(identities: pa.Array, others: pa.Array) -> bool:
    """Whether an identity of ``identities`` is also in ``others`` (nulls share nothing)."""
    mine, theirs = identities.drop_null(), others.drop_null()
    if len(mine) == 0 or len(theirs) == 0:
        return False
    return bool(pc.any(pc.is_in(mine, value_set=theirs)).as_py())


def content_keys(batch: pa.RecordBatch, columns: Sequence[str], position: str) -> pa.Array:
    """The identity of records that have no key of their own (rows of a file): a hash of
    their position (column ``position``) and their content (``columns``).

    The md5 of the values as text, a missing value as ``\x1e``, joined by ``\x1f``: texts
    and integers are joined by Arrow, other types take DuckDB's text form (the same bytes)."""
    if batch.num_rows == 0:
        return pa.array([], pa.string())
    names = [position, *columns]
    from crmbridge.core.duck import connect  # DuckDB is imported when first needed

    con = connect()
    try:
        kinds = [batch.column(n).type for n in names]
        if all(pa.types.is_string(t) or pa.types.is_integer(t) for t in kinds):
            parts = [pc.fill_null(pc.cast(batch.column(n), pa.string()), "\x1e") for n in names]
            joined = pc.binary_join_element_wise(*parts, PART_SEPARATOR)
            con.register("records", pa.table({"j": joined}))
            table = con.sql("SELECT md5(j) AS k FROM records").to_arrow_table()
        else:
            alias = {n: f"c{i}" for i, n in enumerate(names)}
            text = " || chr(31) || ".join(
                f"coalesce(CAST({alias[n]} AS VARCHAR), chr(30))" for n in names
            )
            renamed = batch.select(names).rename_columns([alias[n] for n in names])
            con.register("records", renamed)
            table = con.sql(f"SELECT md5({text}) AS k FROM records").to_arrow_table()
    finally:
        con.close()
    return _flat(table.column("k"))


__all__ = [
    "PART_SEPARATOR",
    "KeyRule",
    "content_keys",
    "describe_key",
    "encode",
    "match_counts",
    "normalize",
    "occurrence",
    "positions",
    "shared",
    "waves",
]
