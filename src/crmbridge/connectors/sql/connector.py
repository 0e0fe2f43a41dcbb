"""The SQL connector: tables and views of a database reached through SQLAlchemy 2."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import sqlalchemy as sa
from sqlglot import exp

from crmbridge.connectors.base import (
    ApplyRequest,
    BadRecord,
    Capabilities,
    ConnectionInfo,
    Connector,
    CreateIdentity,
    MatchRequest,
    ReadRequest,
)
from crmbridge.connectors.common.files import report_bad
from crmbridge.connectors.sql.applied import TABLE_NAME as MARKER_TABLE
from crmbridge.connectors.sql.applied import Markers
from crmbridge.connectors.sql.engine import create_engine, system_name
from crmbridge.connectors.sql.failures import connect_error, translate
from crmbridge.connectors.sql.matching import match_rows
from crmbridge.connectors.sql.reading import bind_value, select_rows, stream_batches
from crmbridge.connectors.sql.settings import SqlSettings
from crmbridge.connectors.sql.tables import TableInfo, reflect, table_for
from crmbridge.connectors.sql.values import BadValue
from crmbridge.connectors.sql.write_generic import GenericWriter
from crmbridge.connectors.sql.write_mysql import MySqlWriter
from crmbridge.connectors.sql.write_postgres import PostgresWriter
from crmbridge.connectors.sql.writing import BulkWriter, apply_ops
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.schema import Field, FieldType, ObjectSchema, unknown_name_error
from crmbridge.errors import ConfigError, ConnectionFailedError, CrmBridgeError, ErrorContext

#: dialect names as the expression language's SQL pushdown knows them
_PUSHDOWN_DIALECTS = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "mssql",
}


class SqlConnector(Connector):
    """Reads and writes the tables of a SQLite, PostgreSQL, MariaDB/MySQL or SQL Server
    database. Views are listed and read, never written."""

    type_name: ClassVar[str] = "sql"
    settings_model: ClassVar[type[SqlSettings]] = SqlSettings
    settings: SqlSettings

    def __init__(self, name: str, settings: SqlSettings, *, base_dir: Path | None = None) -> None:
        super().__init__(name, settings, base_dir=base_dir)
        self._engine: sa.Engine | None = None
        self._markers: dict[str | None, Markers] = {}
        self._url: sa.URL | None = None
        self._tables: dict[str, TableInfo] = {}
        #: a SQLite file that does not exist yet (see open())
        self._missing_file: Path | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def open(self) -> None:
        """Create the engine and connect once, so a wrong URL or password fails here.

        A SQLite file that does not exist is not created by opening it (a check, preview or
        dry run writes nothing): the connection holds no tables until ``create_object``
        creates the file."""
        self.close()
        engine, url = create_engine(self.settings, self.base_dir, context=self._context())
        self._tables = {}
        self._markers = {}
        self._url = url
        self._missing_file = _missing_sqlite_file(url)
        if self._missing_file is not None:
            self._engine = engine  # not connected: connecting would create the file
            return
        self._connect(engine, url)

    def _connect(self, engine: sa.Engine, url: sa.URL) -> None:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError as err:
            engine.dispose()
            raise connect_error(err, url, self.system, context=self._context()) from None
        self._engine, self._url = engine, url

    def _still_missing(self) -> bool:
        """Is the SQLite file still missing (not created since by another program)?"""
        if self._missing_file is None:
            return False
        if not self._missing_file.exists():
            return True
        self._missing_file = None
        return False

    def _missing_error(self, object: str | None = None) -> ConfigError:
        return ConfigError(
            f"the SQLite database {self._missing_file} does not exist (a run whose target "
            "has `create: true` creates it)",
            context=self._context(object),
        )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            raise ConnectionFailedError("the connection is not open", context=self._context())
        return self._engine

    @property
    def system(self) -> str:
        return system_name(self._backend())

    def _backend(self) -> str:
        url = self._url or sa.make_url(self.settings.url)
        return url.get_backend_name()

    def _context(self, object: str | None = None) -> ErrorContext:
        return ErrorContext(connection=self.name, object=object)

    def _secrets(self) -> list[str]:
        return [self.settings.password.get_secret_value()] if self.settings.password else []

    def _fail(
        self, err: sa.exc.SQLAlchemyError, doing: str, object: str | None = None
    ) -> CrmBridgeError:
        return translate(err, doing, context=self._context(object), secrets=self._secrets())

    # -- discovery -----------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return Capabilities(
            read=True,
            write_modes=frozenset(WriteMode),
            incremental=True,
            match=True,
            create_identity=CreateIdentity.KEY,
            pushdown="WHERE clause: filters the expression language can render exactly in SQL",
            create_objects="on_request",
            # a server answers a lookup on one connection while another writes; SQLite's
            # one file may make a reader wait for (or fail beside) the writer
            concurrent_match=self._backend() != "sqlite",
        )

    def check(self) -> ConnectionInfo:
        if self._still_missing():
            details = {"database": str(self._missing_file), "exists": "not yet"}
            return ConnectionInfo(system=self.system, details=details)
        engine = self.engine
        try:
            with engine.connect() as conn:
                default_schema = conn.dialect.default_schema_name
        except sa.exc.SQLAlchemyError as err:
            raise self._fail(err, "checking the connection") from None
        dialect = engine.dialect
        version = dialect.server_version_info
        system = "MariaDB" if getattr(dialect, "is_mariadb", False) else self.system
        url = engine.url
        details = {
            k: str(v)
            for k, v in {
                "driver": url.drivername,
                "host": url.host,
                "database": url.database,
                "user": url.username,
                "schema": self.settings.db_schema or default_schema,
            }.items()
            if v
        }
        return ConnectionInfo(
            system=system,
            version=".".join(str(p) for p in version) if version else None,
            details=details,
        )

    def objects(self) -> list[str]:
        tables, views = self._names()
        return sorted((tables - {MARKER_TABLE}) | views)

    def _names(self) -> tuple[set[str], set[str]]:
        if self._still_missing():
            return set(), set()
        try:
            inspector = sa.inspect(self.engine)
            schema = self.settings.db_schema
            return set(inspector.get_table_names(schema)), set(inspector.get_view_names(schema))
        except sa.exc.SQLAlchemyError as err:
            raise self._fail(err, "listing tables") from None

    def table(self, object: str) -> TableInfo:
        """The reflected table or view ``object`` (cached for the connection's lifetime)."""
        if object in self._tables:
            return self._tables[object]
        if self._still_missing():
            raise self._missing_error(object)
        tables, views = self._names()
        if object not in tables | views:
            raise unknown_name_error("table", object, tables | views, context=self._context(object))
        try:
            with self.engine.connect() as conn:
                info = reflect(conn, object, self.settings.db_schema, is_view=object in views)
        except sa.exc.SQLAlchemyError as err:
            raise self._fail(err, "reading the table's columns", object) from None
        self._tables[object] = info
        return info

    def describe(self, object: str) -> ObjectSchema:
        return self.table(object).schema

    def create_object(self, schema: ObjectSchema, match_keys: Sequence[str]) -> ObjectSchema:
        """CREATE TABLE ``schema.name`` from the fields (the engine calls this when the profile
        says ``target.create: true`` and the table does not exist). The match keys (else the
        schema's id field) become the primary key. A table that exists already is kept."""
        name = schema.name
        if self._missing_file is not None:  # connecting now creates the file
            self._missing_file.parent.mkdir(parents=True, exist_ok=True)
            self._missing_file = None
        tables, views = self._names()
        if name not in tables | views:
            table = table_for(
                name, self.settings.db_schema, schema, match_keys, context=self._context(name)
            )
            try:
                with self.engine.begin() as conn:
                    table.create(conn)
            except sa.exc.SQLAlchemyError as err:
                raise self._fail(err, "creating the table", name) from None
        return self.describe(name)

    # -- read ----------------------------------------------------------------------------
    def can_push_down(self, object: str, predicate: exp.Expression) -> bool:
        return self._where(self.table(object), predicate) is not None

    def _where(self, info: TableInfo, predicate: exp.Expression) -> sa.ColumnElement[bool] | None:
        from crmbridge.core.expressions import to_sqlalchemy

        dialect = _PUSHDOWN_DIALECTS.get(self.engine.dialect.name)
        if dialect is None:
            return None
        return to_sqlalchemy(predicate, _pushdown_columns(info), dialect)

    def _conditions(self, info: TableInfo, request: ReadRequest) -> sa.ColumnElement[bool] | None:
        parts: list[sa.ColumnElement[bool]] = []
        if request.filter is not None:
            where = self._where(info, request.filter)
            if where is None:
                raise ConfigError(
                    f"the filter {request.filter.sql()!r} cannot be evaluated by the database",
                    context=self._context(info.name),
                )
            parts.append(where)
        if request.since is not None:
            column = info.column(info.schema.field(request.since.field).name)
            parts.append(column >= bind_value(request.since.value, column))
        order = self.read_order(request)
        if request.after is not None and order:
            columns = [info.column(n) for n in order]
            values = [bind_value(v, c) for v, c in zip(request.after, columns, strict=True)]
            parts.append(sa.tuple_(*columns) > sa.tuple_(*values))
        return sa.and_(*parts) if parts else None

    def read_order(self, request: ReadRequest) -> tuple[str, ...] | None:
        """An incremental read in cursor order, ``(cursor, key)``; any other in primary-key
        order; None for a table without a primary key (no stable order)."""
        info = self.table(request.object)
        since = request.since
        if since is not None and since.key is not None:
            return (since.field, since.key)
        return info.primary_key or None

    def read(self, request: ReadRequest) -> Iterator[pa.RecordBatch]:
        info = self.table(request.object)
        fields = info.schema.select(request.fields).fields
        stmt = select_rows(info, fields, self._conditions(info, request))
        order = self.read_order(request)
        if order:
            stmt = stmt.order_by(None).order_by(*(info.column(n) for n in order))
        return self._stream(info, stmt, fields, request)

    def _stream(
        self, info: TableInfo, stmt: sa.Select[Any], fields: Sequence[Field], request: ReadRequest
    ) -> Iterator[pa.RecordBatch]:
        context = self._context(info.name)
        names = [f.name for f in fields]

        def on_bad(value: BadValue, position: int, row: Sequence[Any]) -> None:
            raw = json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False, default=str)
            report_bad(request, BadRecord(position, raw, value.message), context, unit="row")

        try:
            with self.engine.connect() as conn:
                yield from stream_batches(conn, stmt, fields, request.batch_size, on_bad)
        except sa.exc.SQLAlchemyError as err:
            raise self._fail(err, "reading", info.name) from None
        except CrmBridgeError as err:
            raise err.with_context(connection=self.name, object=info.name) from None

    def count(self, request: ReadRequest) -> int | None:
        info = self.table(request.object)
        stmt = sa.select(sa.func.count()).select_from(info.table)
        where = self._conditions(info, request)
        if where is not None:
            stmt = stmt.where(where)
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(stmt).scalar_one())
        except sa.exc.SQLAlchemyError as err:
            raise self._fail(err, "counting rows", info.name) from None

    # -- write ---------------------------------------------------------------------------
    def match(self, request: MatchRequest) -> pa.RecordBatch:
        info = self.table(request.object)
        try:
            with self.engine.connect() as conn:
                return match_rows(conn, info, request)
        except sa.exc.SQLAlchemyError as err:
            raise self._fail(err, "looking records up", request.object) from None

    def apply(self, request: ApplyRequest) -> WriteResult:
        info = self.table(request.object)
        context = request.context.merge(connection=self.name, object=request.object)
        schema = info.table.schema
        if schema not in self._markers:
            self._markers[schema] = Markers(self.engine, schema)
        return apply_ops(
            self.engine,
            self._writer(),
            info,
            request,
            context=context,
            secrets=self._secrets(),
            markers=self._markers[schema],
        )

    def _writer(self) -> BulkWriter:
        dialect = self.engine.dialect
        if dialect.name == "postgresql" and dialect.driver == "psycopg" and self.settings.staging:
            return PostgresWriter()
        if dialect.name in ("mysql", "mariadb"):
            return MySqlWriter()
        return GenericWriter()


def _missing_sqlite_file(url: sa.URL) -> Path | None:
    """The file of a SQLite URL when it does not exist (None: it exists, or not a file)."""
    database = url.database
    if url.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        return None
    if database.startswith("file:") or url.query.get("uri"):
        return None  # a SQLite URI: its own mode decides
    path = Path(database)
    return None if path.exists() else path


def _pushdown_columns(info: TableInfo) -> dict[str, sa.ColumnElement[Any]]:
    """The table's columns, typed as crmbridge reads them (MySQL's TINYINT(1) is a boolean)."""
    columns: dict[str, sa.ColumnElement[Any]] = {}
    for field in info.schema.fields:
        column = info.column(field.name)
        if field.type is FieldType.BOOLEAN and not isinstance(column.type, sa.Boolean):
            columns[field.name] = sa.type_coerce(column, sa.Boolean())
        else:
            columns[field.name] = column
    return columns
