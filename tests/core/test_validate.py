import pyarrow as pa

from crmbridge.connectors.base import ROW_COLUMN
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import Field, FieldType, ObjectSchema
from crmbridge.core.validate import TargetRules, validate

SCHEMA = ObjectSchema(
    "Leads",
    (
        Field("email", FieldType.STRING, length=10),
        Field("last_name", FieldType.STRING, required=True),
        Field("status", FieldType.ENUM, allowed_values=("New", "Dead")),
    ),
)


def _batch(rows: list[dict[str, object]]) -> pa.RecordBatch:
    for i, row in enumerate(rows, 1):
        row[ROW_COLUMN] = i
    return pa.RecordBatch.from_pylist(rows)


def _rules(mode: WriteMode = WriteMode.UPSERT, truncate: bool = False, **kw: object) -> TargetRules:
    return TargetRules(SCHEMA, mode, ["email"], truncate=lambda name: truncate, **kw)  # type: ignore[arg-type]


ROWS = [
    {"email": "a@b.c", "last_name": "Ng", "status": "New"},
    {"email": "much-too-long@b.c", "last_name": "Li", "status": "New"},
    {"email": "x@y.z", "last_name": None, "status": "New"},
    {"email": "q@r.s", "last_name": "Oz", "status": "Maybe"},
    {"email": None, "last_name": "Po", "status": None},
]


def test_each_problem_rejects_its_record_naming_field_and_reason() -> None:
    out, rejected = validate(_batch([dict(r) for r in ROWS]), _rules())
    assert out.column(ROW_COLUMN).to_pylist() == [1]
    reasons = {r.row: (r.field, r.reason) for r in rejected}
    assert reasons == {
        2: ("email", "'much-too-long@b.c' is 17 characters, the limit is 10"),
        3: ("last_name", "required field has no value"),
        4: ("status", "'Maybe' is not one of the options of 'status': New, Dead"),
        5: ("email", "match key 'email' has no value"),
    }


def test_truncation_policy_cuts_instead_of_rejecting() -> None:
    out, rejected = validate(_batch([dict(ROWS[1])]), _rules(truncate=True))
    assert rejected == []
    assert out.column("email").to_pylist() == ["much-too-l"]


def test_unlisted_enum_values_pass_when_allowed() -> None:
    out, rejected = validate(_batch([dict(ROWS[3])]), _rules(allow_unlisted_values=True))
    assert rejected == []
    assert out.num_rows == 1


def test_insert_does_not_need_match_keys_and_delete_checks_only_keys() -> None:
    _, rejected = validate(_batch([dict(ROWS[4])]), _rules(WriteMode.INSERT))
    assert rejected == []
    out, rejected = validate(_batch([dict(ROWS[2]), dict(ROWS[1])]), _rules(WriteMode.DELETE))
    assert rejected == []
    assert out.num_rows == 2


NOTES = ObjectSchema(
    "Notes",
    (
        Field("description", FieldType.TEXT, max_bytes=10),
        Field("tags", FieldType.LIST, allowed_values=("a", "b")),
    ),
)


def _notes(truncate: bool = False, **kw: object) -> TargetRules:
    return TargetRules(NOTES, WriteMode.INSERT, [], truncate=lambda name: truncate, **kw)  # type: ignore[arg-type]


def _notes_batch(rows: list[dict[str, object]]) -> pa.RecordBatch:
    schema = pa.schema([("description", pa.string()), ("tags", pa.list_(pa.string()))])
    return pa.RecordBatch.from_pylist(rows, schema=schema).append_column(
        ROW_COLUMN, pa.array(range(1, len(rows) + 1), pa.int64())
    )


def test_a_byte_limit_rejects_or_cuts_at_a_character_boundary() -> None:
    rows = [{"description": "ééééé"}, {"description": "éééééé"}, {"description": "abcdefghijk"}]
    out, rejected = validate(_notes_batch(rows), _notes())
    assert out.column(ROW_COLUMN).to_pylist() == [1]
    assert {r.row: r.reason for r in rejected} == {
        2: "'éééééé' is 12 bytes (UTF-8), the limit is 10 bytes",
        3: "'abcdefghijk' is 11 bytes (UTF-8), the limit is 10 bytes",
    }
    cut, none = validate(_notes_batch(rows), _notes(truncate=True))
    assert none == []
    assert cut.column("description").to_pylist() == ["ééééé", "ééééé", "abcdefghij"]
    odd = validate(_notes_batch([{"description": "aéééééé"}]), _notes(truncate=True))[0]
    assert odd.column("description").to_pylist() == ["aéééé"]  # 9 bytes: no half é


def test_each_item_of_a_list_must_be_an_option() -> None:
    rows = [{"tags": ["a", "b"]}, {"tags": ["a", "zzz"]}, {"tags": []}, {"tags": None}]
    out, rejected = validate(_notes_batch(rows), _notes())
    assert out.column(ROW_COLUMN).to_pylist() == [1, 3, 4]
    assert [(r.row, r.field, r.reason) for r in rejected] == [
        (2, "tags", "'zzz' is not one of the options of 'tags': a, b")
    ]
    assert validate(_notes_batch(rows), _notes(allow_unlisted_values=True))[1] == []
