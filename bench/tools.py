"""The plain implementations and the dlt pipelines that `compare.py` measures, one per process.

    python bench/tools.py NAME ARG...

Each program does one case's whole work and nothing else, so that its process can be timed
as a whole, like `crmbridge run` and `sling run`:

  floor-insert CSV URL TABLE        psycopg COPY of the file into the table
  floor-upsert CSV URL TABLE        COPY into a staging table, one INSERT ... ON CONFLICT
                                    DO UPDATE ... WHERE ... IS DISTINCT FROM
  floor-rerun CSV URL TABLE STATE   hash the file; when the hash in STATE is the same, stop;
                                    otherwise floor-upsert, then remember the hash
  floor-xlsx XLSX URL TABLE         fastexcel reads the sheet into Arrow, the columns are cast
                                    to the table's types, COPY
  dlt SOURCE URL TABLE MODE DIR     a dlt pipeline (state in DIR) loading a CSV or XLSX file
                                    as Arrow tables, MODE append or merge (upsert)
  sugar-raw URL PAGE_SIZE CONCURRENCY OUT
                                    v4_1 get_entry_list page after page with httpx (pages at
                                    offsets in parallel with CONCURRENCY > 1), each record a
                                    line of OUT (JSON Lines)
Imports are inside the programs: a process loads only what its own work needs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from generate import COLUMNS, KEY

CHUNK = 1 << 20
NAMES = [name for name, _, _ in COLUMNS]


def copy_file(cur: Any, table: str, path: str) -> None:
    with (
        cur.copy(f"COPY {table} ({', '.join(NAMES)}) FROM STDIN (FORMAT csv, HEADER true)") as copy,
        open(path, "rb") as f,
    ):
        while chunk := f.read(CHUNK):
            copy.write(chunk)


def floor_insert(path: str, url: str, table: str) -> None:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        copy_file(cur, table, path)


def floor_upsert(path: str, url: str, table: str) -> None:
    import psycopg

    rest = [n for n in NAMES if n != KEY]
    sets = ", ".join(f"{n} = excluded.{n}" for n in rest)
    old = ", ".join(f"{table}.{n}" for n in rest)
    new = ", ".join(f"excluded.{n}" for n in rest)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE staging (LIKE {table}) ON COMMIT DROP")
        copy_file(cur, "staging", path)
        cur.execute(
            f"INSERT INTO {table} SELECT * FROM staging ON CONFLICT ({KEY}) "
            f"DO UPDATE SET {sets} WHERE ({old}) IS DISTINCT FROM ({new})"
        )


def floor_rerun(path: str, url: str, table: str, state: str) -> None:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    seen = Path(state)
    if seen.exists() and seen.read_text() == digest.hexdigest():
        return
    floor_upsert(path, url, table)
    seen.write_text(digest.hexdigest())


def _pg_arrow_types() -> dict[str, Any]:
    import pyarrow as pa

    types = {
        "integer": pa.int32(),
        "text": pa.string(),
        "numeric(12,2)": pa.decimal128(12, 2),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "boolean": pa.bool_(),
    }
    return {name: types[pg] for name, pg, _ in COLUMNS}


def _xlsx_tables(path: str) -> Iterator[Any]:
    """The sheet as one Arrow table with the PostgreSQL table's types (fastexcel)."""
    import fastexcel
    import pyarrow as pa
    import pyarrow.compute as pc

    table = fastexcel.read_excel(path).load_sheet(0).to_arrow()
    columns = []
    for name, dtype in _pg_arrow_types().items():
        column = table.column(name)
        if pa.types.is_decimal(dtype):  # Excel keeps numbers as doubles: round to the scale
            column = pc.round(column, dtype.scale)
        if pa.types.is_date(dtype):
            column = column.cast(pa.timestamp("ms")).cast(pa.date32())
        else:
            column = column.cast(dtype)
        columns.append(column)
    yield pa.table(columns, names=list(_pg_arrow_types()))


def floor_xlsx(path: str, url: str, table: str) -> None:
    import io

    import psycopg
    import pyarrow.csv as pacsv

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for arrow in _xlsx_tables(path):
            buffer = io.BytesIO()
            pacsv.write_csv(arrow, buffer)
            copy_sql = f"COPY {table} ({', '.join(NAMES)}) FROM STDIN (FORMAT csv, HEADER true)"
            with cur.copy(copy_sql) as copy:
                copy.write(buffer.getbuffer())


def _csv_tables(path: str) -> Iterator[Any]:
    """The CSV file as Arrow tables of 16 MB blocks, typed by pyarrow's own reader."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=16 << 20),
        convert_options=pacsv.ConvertOptions(
            column_types=_pg_arrow_types(),
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    for batch in reader:
        yield pa.Table.from_batches([batch])


def dlt_load(source: str, url: str, table: str, mode: str, pipelines_dir: str) -> None:
    """dlt's fastest path: Arrow tables (typed by pyarrow / fastexcel), loaded as CSV (COPY)."""
    import dlt

    schema, name = table.split(".")
    disposition: Any = "append"
    if mode == "merge":
        disposition = {"disposition": "merge", "strategy": "upsert"}
    tables = _xlsx_tables if source.endswith(".xlsx") else _csv_tables

    @dlt.resource(name=name, write_disposition=disposition, primary_key=KEY)
    def records() -> Iterator[Any]:
        yield from tables(source)

    # dlt asks for a password; PostgreSQL on loopback trusts, so any will do
    credentials = url.replace("postgres@", "postgres:bench@", 1)
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=pipelines_dir,
        destination=dlt.destinations.postgres(credentials),
        dataset_name=schema,
    )
    info = pipeline.run(records(), loader_file_format="csv")
    info.raise_on_failed_jobs()


def sugar_raw(url: str, page_size: str, concurrency: str, out: str) -> None:
    """Log in, read every Account page by page (same fields, order and page size as the
    connector), write each record as a JSON line."""
    import hashlib
    import json
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from sugar_cases import FIELDS, ORDER

    endpoint = f"{url}/service/v4_1/rest.php"
    size = int(page_size)

    def call(client: httpx.Client, method: str, args: list[object]) -> dict[str, Any]:
        form = {"method": method, "input_type": "JSON", "response_type": "JSON"}
        response = client.post(endpoint, data={**form, "rest_data": json.dumps(args)})
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    with httpx.Client(timeout=120) as client, open(out, "w", encoding="utf-8") as f:
        auth = {"user_name": "admin", "password": hashlib.md5(b"admin").hexdigest()}
        session = call(client, "login", [auth, "bench", []])["id"]

        def page(offset: int) -> tuple[list[dict[str, Any]], int]:
            args = [session, "Accounts", "", ORDER, offset, FIELDS, [], size, 0, False]
            answer = call(client, "get_entry_list", args)
            records = [
                {k: v["value"] for k, v in entry["name_value_list"].items()}
                for entry in answer["entry_list"]
            ]
            return records, int(answer["total_count"])

        def write(records: list[dict[str, Any]]) -> None:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)

        records, total = page(0)  # the first page tells how many there are, as for the connector
        write(records)
        offsets = range(len(records), total, size) if records else range(0)
        if int(concurrency) <= 1:
            for offset in offsets:
                write(page(offset)[0])
            return
        with ThreadPoolExecutor(int(concurrency)) as pool:
            for records, _ in pool.map(page, offsets):
                write(records)


PROGRAMS: dict[str, Callable[..., None]] = {
    "floor-insert": floor_insert,
    "floor-upsert": floor_upsert,
    "floor-rerun": floor_rerun,
    "floor-xlsx": floor_xlsx,
    "dlt": dlt_load,
    "sugar-raw": sugar_raw,
}

if __name__ == "__main__":
    PROGRAMS[sys.argv[1]](*sys.argv[2:])
