"""The conformance suite every connector runs (built-in and third-party alike).

Subclass :class:`ConnectorConformance` in a test module (name it ``Test...``) and provide the
fixtures ``connector`` (an *opened* connector), ``sample`` (an object already holding known rows)
and, for writable connectors, ``write_target`` (an object to write to)::

    class TestCsvConformance(ConnectorConformance):
        @pytest.fixture
        def connector(self, tmp_path): ...
        @pytest.fixture
        def sample(self, connector): return Sample("people.csv", rows=[...], key="id")
        @pytest.fixture
        def write_target(self, connector): return WriteTarget("out.csv", rows=[...], key=None)

Rows are plain dicts of Python values as the connector returns them (``str`` for untyped
sources such as CSV; ``int``, ``Decimal``, ``date``, aware ``datetime`` ... for typed ones).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from sqlglot import exp

from crmbridge.connectors.base import (
    ID_COLUMN,
    ROW_COLUMN,
    VERSION_COLUMN,
    Capabilities,
    Connector,
    DeleteReporting,
    MatchRequest,
    ReadRequest,
    Since,
)
from crmbridge.core.outcomes import Outcome, WriteMode, WriteResult
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ConfigError


@dataclass
class Sample:
    """An object the connector can read, and exactly the rows it holds."""

    object: str
    rows: list[dict[str, Any]]
    #: a field whose values are unique across ``rows`` (used to compare and to filter)
    key: str
    #: filters (in the expression language) to try for pushdown; defaults are derived from rows
    predicates: list[str] = field(default_factory=list)
    #: a field that grows when a record changes (for incremental reads, ``ReadRequest.since``)
    cursor: str | None = None


@dataclass
class WriteTarget:
    """An object the suite may write to, and rows to write (all new to the object)."""

    object: str
    rows: list[dict[str, Any]]
    #: the match key for update/upsert/delete; None for append-only targets (files)
    key: str | None = None
    #: a field the suite may change to test update/upsert (not the key)
    changeable: str | None = None


def _read_all(connector: Connector, request: ReadRequest) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for batch in connector.read(request):
        assert isinstance(batch, pa.RecordBatch), f"read() yielded {type(batch).__name__}"
        rows.extend(batch.to_pylist())
    return rows


def _by_key(rows: Sequence[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


def _literal(value: Any) -> str:
    """The expression-language literal for a Python value."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    return exp.Literal.string(str(value)).sql()


def default_predicates(sample: Sample) -> list[str]:
    """Simple filters over every sampled field: equality, IN, NULL checks and ranges."""
    out: list[str] = []
    first, last = sample.rows[0], sample.rows[-1]
    for name, value in first.items():
        col = exp.to_identifier(name, quoted=True).sql()
        out += [f"{col} IS NULL", f"{col} IS NOT NULL"]
        if value is None:
            continue
        out += [f"{col} = {_literal(value)}", f"{col} <> {_literal(value)}"]
        other = last.get(name)
        if other is not None:
            out.append(f"{col} IN ({_literal(value)}, {_literal(other)})")
        if not isinstance(value, str | bool):
            out.append(f"{col} >= {_literal(value)}")
    return out


def _rows_batch(rows: Sequence[dict[str, Any]], schema: ObjectSchema) -> pa.RecordBatch:
    names = list(rows[0])
    fields = [pa.field(n, schema.field(n).arrow_type) for n in names]
    arrays = [pa.array([r[n] for r in rows], f.type) for n, f in zip(names, fields, strict=True)]
    arrays.append(pa.array(range(1, len(rows) + 1), pa.int64()))
    fields.append(pa.field(ROW_COLUMN, pa.int64()))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


class ConnectorConformance:
    """Behaviour every connector must show. See the module docstring for how to use it."""

    # -- fixtures a subclass provides ---------------------------------------------------
    @pytest.fixture
    def connector(self) -> Iterator[Connector]:
        raise NotImplementedError("provide a `connector` fixture yielding an opened connector")

    @pytest.fixture
    def sample(self, connector: Connector) -> Sample:
        raise NotImplementedError("provide a `sample` fixture")

    @pytest.fixture
    def write_target(self, connector: Connector) -> WriteTarget | None:
        return None

    # -- discovery ----------------------------------------------------------------------
    def test_capabilities_are_declared(self, connector: Connector) -> None:
        caps = connector.capabilities()
        assert isinstance(caps, Capabilities)
        assert all(isinstance(m, WriteMode) for m in caps.write_modes)
        if not connector.writable:
            assert not caps.write_modes

    def test_objects_lists_the_sample(self, connector: Connector, sample: Sample) -> None:
        assert sample.object in connector.objects()

    def test_describe_lists_the_sample_fields(self, connector: Connector, sample: Sample) -> None:
        schema = connector.describe(sample.object)
        assert isinstance(schema, ObjectSchema)
        assert set(sample.rows[0]) <= set(schema.field_names)

    def test_describe_unknown_object_suggests_close_names(
        self, connector: Connector, sample: Sample
    ) -> None:
        typo = sample.object[:-1] + ("x" if not sample.object.endswith("x") else "y")
        with pytest.raises(ConfigError) as info:
            connector.describe(typo)
        message = str(info.value)
        assert typo in message
        assert sample.object in message, "the message should suggest the close match"

    # -- read ---------------------------------------------------------------------------
    def test_read_returns_exactly_the_sample_rows(
        self, connector: Connector, sample: Sample
    ) -> None:
        names = list(sample.rows[0])
        got = _read_all(connector, ReadRequest(sample.object, fields=names))
        assert _by_key(got, sample.key) == _by_key(sample.rows, sample.key)
        assert len(got) == len(sample.rows)

    def test_read_returns_columns_in_the_requested_order_and_types(
        self, connector: Connector, sample: Sample
    ) -> None:
        names = list(reversed(list(sample.rows[0])))[:3]
        schema = connector.describe(sample.object)
        batches = list(connector.read(ReadRequest(sample.object, fields=names)))
        assert batches
        for batch in batches:
            assert batch.schema.names == names
            for name in names:
                assert batch.schema.field(name).type == schema.field(name).arrow_type, name

    def test_read_all_fields_when_none_are_named(
        self, connector: Connector, sample: Sample
    ) -> None:
        schema = connector.describe(sample.object)
        batches = list(connector.read(ReadRequest(sample.object)))
        assert batches[0].schema.names == schema.default_field_names

    def test_read_honours_the_batch_size(self, connector: Connector, sample: Sample) -> None:
        size = max(1, len(sample.rows) // 3)
        batches = list(
            connector.read(ReadRequest(sample.object, fields=[sample.key], batch_size=size))
        )
        assert all(1 <= batch.num_rows <= size for batch in batches)
        assert sum(b.num_rows for b in batches) == len(sample.rows)

    def test_pushed_down_filters_select_what_local_evaluation_selects(
        self, connector: Connector, sample: Sample
    ) -> None:
        from crmbridge.core.expressions import BatchTransform, parse

        names = list(sample.rows[0])
        full = _read_all(connector, ReadRequest(sample.object, fields=names))
        table = pa.Table.from_pylist(full).combine_chunks()
        rows = table.append_column(
            ROW_COLUMN, pa.array(range(1, table.num_rows + 1), pa.int64())
        ).to_batches()[0]
        pushed = 0
        for text in sample.predicates or default_predicates(sample):
            predicate = parse(text, what="filter")
            if not connector.can_push_down(sample.object, predicate):
                continue
            pushed += 1
            remote = _read_all(
                connector, ReadRequest(sample.object, fields=names, filter=predicate)
            )
            with BatchTransform(
                rows.schema, {sample.key: exp.column(sample.key, quoted=True)}, predicate
            ) as local:
                expected = local.apply(rows).batch.column(0).to_pylist()
            assert sorted(r[sample.key] for r in remote) == sorted(expected), text
        caps = connector.capabilities()
        if caps.pushdown != "none":
            assert pushed, "the connector says it pushes filters down but accepted none"

    # -- write --------------------------------------------------------------------------
    def _write(
        self,
        connector: Connector,
        target: WriteTarget,
        rows: Sequence[dict[str, Any]],
        mode: WriteMode,
    ) -> WriteResult:
        from crmbridge.testing.writes import write_records

        schema = connector.describe(target.object)
        batch = _rows_batch(rows, schema)
        keys = [target.key] if target.key else []
        result = write_records(connector, target.object, batch, mode, keys=keys)
        assert len(result) == len(rows), "one outcome per record, in order"
        return result

    def _target(
        self, connector: Connector, write_target: WriteTarget | None, mode: WriteMode
    ) -> WriteTarget:
        if write_target is None or mode not in connector.capabilities().write_modes:
            pytest.skip(f"{connector.type_name} does not {mode.value}")
        return write_target

    def test_insert_creates_every_record(
        self, connector: Connector, write_target: WriteTarget | None
    ) -> None:
        target = self._target(connector, write_target, WriteMode.INSERT)
        result = self._write(connector, target, target.rows, WriteMode.INSERT)
        assert result.outcome.to_pylist() == [Outcome.CREATED.value] * len(target.rows)
        if connector.capabilities().read and target.key:
            connector.close()  # a file target is complete only once closed
            connector.open()
            got = _read_all(connector, ReadRequest(target.object, fields=list(target.rows[0])))
            assert _by_key(got, target.key) == _by_key(target.rows, target.key)

    def test_insert_of_an_existing_key_is_rejected_not_raised(
        self, connector: Connector, write_target: WriteTarget | None
    ) -> None:
        target = self._target(connector, write_target, WriteMode.INSERT)
        if target.key is None:
            pytest.skip("append-only target")
        self._write(connector, target, target.rows[:1], WriteMode.INSERT)
        again = self._write(connector, target, target.rows[:2], WriteMode.INSERT)
        assert again.outcome.to_pylist() == [Outcome.REJECTED.value, Outcome.CREATED.value]
        assert again.reason[0].as_py(), "a rejection says why"

    def test_update_of_a_missing_record_is_rejected(
        self, connector: Connector, write_target: WriteTarget | None
    ) -> None:
        target = self._target(connector, write_target, WriteMode.UPDATE)
        result = self._write(connector, target, target.rows[:1], WriteMode.UPDATE)
        assert result.outcome.to_pylist() == [Outcome.REJECTED.value]
        assert result.reason[0].as_py()

    def test_upsert_creates_then_updates_then_leaves_unchanged(
        self, connector: Connector, write_target: WriteTarget | None
    ) -> None:
        target = self._target(connector, write_target, WriteMode.UPSERT)
        assert target.changeable, "a write target for upsert names a changeable field"
        rows = target.rows[:2]
        first = self._write(connector, target, rows, WriteMode.UPSERT)
        assert first.outcome.to_pylist() == [Outcome.CREATED.value] * 2
        changed = [dict(rows[0], **{target.changeable: rows[1][target.changeable]}), rows[1]]
        second = self._write(connector, target, changed, WriteMode.UPSERT)
        assert second.outcome.to_pylist()[0] == Outcome.UPDATED.value
        assert second.outcome.to_pylist()[1] in (Outcome.UNCHANGED.value, Outcome.UPDATED.value)
        assert second.target_id.to_pylist() == first.target_id.to_pylist()

    def test_delete_removes_existing_and_rejects_missing(
        self, connector: Connector, write_target: WriteTarget | None
    ) -> None:
        target = self._target(connector, write_target, WriteMode.DELETE)
        assert target.key
        self._write(connector, target, target.rows[:1], WriteMode.INSERT)
        result = self._write(connector, target, target.rows[:2], WriteMode.DELETE)
        assert result.outcome.to_pylist() == [Outcome.DELETED.value, Outcome.REJECTED.value]
        left = _read_all(connector, ReadRequest(target.object, fields=[target.key]))
        assert target.rows[0][target.key] not in {r[target.key] for r in left}

    def test_match_finds_existing_records_with_id_and_version(
        self, connector: Connector, write_target: WriteTarget | None
    ) -> None:
        target = self._target(connector, write_target, WriteMode.INSERT)
        if not connector.capabilities().match or target.key is None:
            pytest.skip("no match")
        self._write(connector, target, target.rows[:1], WriteMode.INSERT)
        schema = connector.describe(target.object)
        wanted = [target.rows[0][target.key], target.rows[1][target.key]]
        keys = pa.RecordBatch.from_arrays(
            [pa.array(wanted, schema.field(target.key).arrow_type)], names=[target.key]
        )
        rules = {target.key: schema.field(target.key).key_rule}
        found = connector.match(MatchRequest(target.object, [target.key], keys, rules=rules))
        assert {ID_COLUMN, VERSION_COLUMN, target.key} <= set(found.schema.names)
        assert wanted[0] in found.column(target.key).to_pylist()
        assert wanted[1] not in found.column(target.key).to_pylist()
        assert all(v is not None for v in found.column(ID_COLUMN).to_pylist())

    # -- reading incrementally and counting ----------------------------------------------
    def test_since_reads_the_records_from_the_cursor_on_in_cursor_order(
        self, connector: Connector, sample: Sample
    ) -> None:
        if not connector.capabilities().incremental or sample.cursor is None:
            pytest.skip("no incremental reads")
        cursor = sample.cursor
        values = sorted(r[cursor] for r in sample.rows if r[cursor] is not None)
        middle = values[len(values) // 2]
        since = Since(cursor, middle, sample.key)
        request = ReadRequest(sample.object, fields=[sample.key, cursor], since=since)
        got = _read_all(connector, request)
        expected = {
            r[sample.key] for r in sample.rows if r[cursor] is not None and r[cursor] >= middle
        }
        assert {r[sample.key] for r in got} == expected
        order = [(r[cursor], r[sample.key]) for r in got]
        assert order == sorted(order), "in (cursor, key) order"
        order_fields = connector.read_order(request)
        assert order_fields is None or set(order_fields) <= {cursor, sample.key, "id"}

    def test_count_is_the_number_of_records_read(
        self, connector: Connector, sample: Sample
    ) -> None:
        counted = connector.count(ReadRequest(sample.object))
        if counted is not None:
            assert counted == len(sample.rows)

    def test_deleted_records_are_read_only_on_request(
        self, connector: Connector, sample: Sample
    ) -> None:
        if connector.capabilities().deletes is not DeleteReporting.FLAG:
            pytest.skip("deleted records are not reported")
        schema = connector.describe(sample.object)
        assert schema.deleted_field, "a connector that reports deletes names the flag field"
        fields = [sample.key, schema.deleted_field]
        live = _read_all(connector, ReadRequest(sample.object, fields=fields))
        every = _read_all(
            connector, ReadRequest(sample.object, fields=fields, include_deleted=True)
        )
        assert {r[sample.key] for r in live} <= {r[sample.key] for r in every}
        assert not any(r[schema.deleted_field] for r in live)

    # -- the plan: a dry run says what the real run then does -----------------------------
    def _keyed_target(self, connector: Connector, write_target: WriteTarget | None) -> WriteTarget:
        target = self._target(connector, write_target, WriteMode.UPSERT)
        if target.key is None or target.changeable is None or not connector.capabilities().match:
            pytest.skip("no keyed target")
        return target

    def test_a_dry_run_plans_exactly_what_the_real_run_does(
        self, connector: Connector, write_target: WriteTarget | None
    ) -> None:
        from crmbridge.testing.writes import write_records

        target = self._keyed_target(connector, write_target)
        assert target.key is not None
        assert target.changeable is not None
        rows = target.rows
        assert len(rows) >= 3, "a keyed write target needs three rows"
        self._write(connector, target, rows[:2], WriteMode.UPSERT)
        other = rows[2][target.changeable]
        key_text = rows[1][target.key]
        variant = dict(rows[1])
        if isinstance(key_text, str):  # a case and space variant: one record or two, by rule
            variant[target.key] = f" {key_text.upper()} "
        corpus = [
            rows[0],  # stored already, the same: unchanged
            dict(rows[0], **{target.changeable: other}),  # the same key again: updated
            rows[2],  # new: created
            dict(rows[2]),  # new, repeated in the batch: unchanged after its creation
            variant,
        ]
        schema = connector.describe(target.object)
        batch = _rows_batch(corpus, schema)
        keys = [target.key]
        dry = write_records(
            connector, target.object, batch, WriteMode.UPSERT, keys=keys, dry_run=True, checks=False
        )
        real = write_records(
            connector, target.object, batch, WriteMode.UPSERT, keys=keys, checks=False
        )
        assert dry.outcome.to_pylist() == real.outcome.to_pylist()
        assert real.outcome.to_pylist()[:4] == ["unchanged", "updated", "created", "unchanged"]
        again = write_records(
            connector, target.object, batch, WriteMode.UPSERT, keys=keys, checks=False
        )
        # a second identical run changes nothing, but what the batch itself changes in order
        assert again.outcome.to_pylist()[2:4] == ["unchanged", "unchanged"]

    def test_update_fields_leave_the_other_fields_of_existing_records(
        self, connector: Connector, write_target: WriteTarget | None
    ) -> None:
        from crmbridge.testing.writes import write_records

        target = self._keyed_target(connector, write_target)
        assert target.key is not None
        assert target.changeable is not None
        rows = target.rows
        self._write(connector, target, rows[:1], WriteMode.UPSERT)
        changed = dict(rows[0], **{target.changeable: rows[1][target.changeable]})
        schema = connector.describe(target.object)
        result = write_records(
            connector,
            target.object,
            _rows_batch([changed], schema),
            WriteMode.UPSERT,
            keys=[target.key],
            update_fields=[],
            checks=False,
        )
        assert result.outcome.to_pylist() == ["unchanged"]
        got = _read_all(connector, ReadRequest(target.object, fields=list(rows[0])))
        stored = _by_key(got, target.key)[rows[0][target.key]]
        assert stored[target.changeable] == rows[0][target.changeable]
