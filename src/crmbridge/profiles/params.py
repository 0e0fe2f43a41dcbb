"""Profile parameters: ``${name}`` placeholders filled from ``params`` or the command line.

    params:
      threshold: 50                      # a default; its type (integer) is the parameter's
      since: {type: date, default: 2024-01-01}
      source: {type: string}             # no default: --param source=... is required
    source:
      filter: lead_score >= ${threshold} AND created >= ${since} AND lead_source = ${source}
    target:
      object: ${module}

``crmbridge run profile.yaml --param source="Web Site"`` gives or overrides a value; it must
be of the parameter's type (``string``, ``integer``, ``float``, ``decimal``, ``boolean``,
``date``, ``datetime``), else the profile does not load.

In an **expression** (``source.filter``, ``mapping``, the ``match`` and ``values`` of
``references``, the ``match`` of ``links``, ``deduplicate.key``) a placeholder becomes a SQL
literal of the parameter's type: text is quoted and escaped (``'it''s'``), a date is
``DATE '2024-01-01'``. A value is always a value: quotes, ``--`` or ``OR 1=1`` inside it can
never change what the expression means. So write ``lead_source = ${source}``, not
``'${source}'`` (a placeholder inside quotes is an error saying so).

In any other setting, a placeholder that is the whole setting keeps the value's type
(``batch_size: ${size}`` stays a number); inside text the value is inserted as text.
``$${`` stands for a literal ``${``. A placeholder whose name is not declared is an error.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from crmbridge.core.schema import suggest
from crmbridge.errors import ProfileProblem

_PLACEHOLDER = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


class ParamType(enum.StrEnum):
    """The type of a profile parameter."""

    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"


#: the settings that are SQL expressions: a placeholder there becomes a SQL literal
_EXPRESSIONS: tuple[tuple[str, ...], ...] = (
    ("source", "filter"),
    ("mapping", "*"),
    ("references", "*", "match", "*"),
    ("references", "*", "values", "*"),
    ("links", "*", "match", "*"),
    ("deduplicate", "key"),
)


def is_expression(where: tuple[str, ...]) -> bool:
    """Is the setting at ``where`` (e.g. ``("mapping", "email")``) a SQL expression?"""
    return any(
        len(pattern) == len(where)
        and all(p in ("*", w) for p, w in zip(pattern, where, strict=True))
        for pattern in _EXPRESSIONS
    )


class _BadValueError(ValueError):
    pass


@dataclass(frozen=True)
class _Param:
    type: ParamType
    value: Any  # typed; _MISSING when neither a default nor a value was given


_MISSING = object()


def substitute_params(tree: CommentedMap, given: Mapping[str, str]) -> list[ProfileProblem]:
    """Fill every placeholder of ``tree`` in place; the problems found (none: all is well)."""
    declared = tree.get("params") or {}
    problems: list[ProfileProblem] = []
    if not isinstance(declared, dict):
        return []  # the model reports the wrong type
    params: dict[str, _Param] = {}
    for name, declaration in declared.items():
        found = _declared(str(name), declaration, problems, _line(declared, name))
        if found is not None:
            params[str(name)] = found
    for name, text in given.items():
        if name not in declared:
            close = suggest(name, declared)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            problems.append(ProfileProblem("params", f"unknown parameter {name!r}{hint}", None))
            continue
        if name not in params:
            continue  # its declaration is wrong: reported above
        try:
            params[name] = _Param(params[name].type, _from_text(text, params[name].type))
        except _BadValueError as err:
            problems.append(
                ProfileProblem(f"params.{name}", f"--param {name}={text!r}: {err}", None)
            )
    for key in tree:
        if key != "params":
            _walk(tree, key, params, problems, (str(key),))
    return problems


def _declared(
    name: str, declaration: Any, problems: list[ProfileProblem], line: int | None
) -> _Param | None:
    """A declaration ``name: default`` or ``name: {type: ..., default: ...}``."""
    where = f"params.{name}"
    if not isinstance(declaration, dict):
        return _Param(_type_of(declaration), declaration)
    kind = declaration.get("type", ParamType.STRING.value)
    try:
        ptype = ParamType(kind)
    except ValueError:
        known = ", ".join(t.value for t in ParamType)
        problems.append(ProfileProblem(f"{where}.type", f"{kind!r} is not a type ({known})", line))
        return None
    if "default" not in declaration:
        return _Param(ptype, _MISSING)
    default = declaration["default"]
    try:
        return _Param(ptype, None if default is None else _typed(default, ptype))
    except _BadValueError as err:
        problems.append(ProfileProblem(f"{where}.default", str(err), line))
        return None


def _type_of(default: Any) -> ParamType:
    if isinstance(default, bool):
        return ParamType.BOOLEAN
    if isinstance(default, int):
        return ParamType.INTEGER
    if isinstance(default, float):
        return ParamType.FLOAT
    if isinstance(default, dt.datetime):
        return ParamType.DATETIME
    if isinstance(default, dt.date):
        return ParamType.DATE
    return ParamType.STRING


def _typed(value: Any, ptype: ParamType) -> Any:
    """A YAML default as ``ptype`` (text is read as the command line's would be)."""
    if isinstance(value, str):
        return _from_text(value, ptype)
    if ptype is ParamType.STRING:
        return str(value)
    if ptype is ParamType.BOOLEAN and isinstance(value, bool):
        return value
    if ptype is ParamType.INTEGER and isinstance(value, int) and not isinstance(value, bool):
        return value
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if ptype in (ParamType.FLOAT, ParamType.DECIMAL) and number:
        return float(value) if ptype is ParamType.FLOAT else Decimal(str(value))
    if ptype is ParamType.DATETIME and isinstance(value, dt.datetime):
        return _utc(value)
    if (
        ptype is ParamType.DATE
        and isinstance(value, dt.date)
        and not isinstance(value, dt.datetime)
    ):
        return value
    return _from_text(str(value), ptype)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _from_text(text: str, ptype: ParamType) -> Any:
    """A command-line value as ``ptype``; _BadValueError saying what is expected otherwise."""
    if ptype is ParamType.STRING:
        return text
    clean = text.strip()
    if ptype is ParamType.BOOLEAN:
        if clean.lower() in _TRUE | _FALSE:
            return clean.lower() in _TRUE
        raise _BadValueError("not a boolean (true or false)")
    if ptype is ParamType.INTEGER:
        if _INTEGER.fullmatch(clean):
            return int(clean)
        raise _BadValueError("not an integer")
    if ptype in (ParamType.FLOAT, ParamType.DECIMAL):
        if not _NUMBER.fullmatch(clean):
            raise _BadValueError("not a number")
        try:
            return float(clean) if ptype is ParamType.FLOAT else Decimal(clean)
        except (ValueError, InvalidOperation):
            raise _BadValueError("not a number") from None
    if ptype is ParamType.DATE:
        try:
            if not _DATE.fullmatch(clean):
                raise ValueError
            return dt.date.fromisoformat(clean)
        except ValueError:
            raise _BadValueError("not a date (YYYY-MM-DD)") from None
    try:
        if not _DATE.match(clean):
            raise ValueError
        return _utc(dt.datetime.fromisoformat(clean.replace("Z", "+00:00")))
    except ValueError:
        raise _BadValueError(
            "not a date-time (YYYY-MM-DD HH:MM:SS, UTC unless an offset follows)"
        ) from None


def sql_literal(value: Any, ptype: ParamType) -> str:
    """``value`` as a SQL literal (DuckDB syntax) that parses back to exactly that value."""
    if value is None:
        return "NULL"
    if ptype is ParamType.BOOLEAN:
        return "TRUE" if value else "FALSE"
    if ptype is ParamType.INTEGER:
        return str(int(value))
    if ptype is ParamType.FLOAT:
        return f"CAST({float(value)!r} AS DOUBLE)"
    if ptype is ParamType.DECIMAL:
        return f"{Decimal(value):f}"
    if ptype is ParamType.DATE:
        return f"DATE '{value.isoformat()}'"
    if ptype is ParamType.DATETIME:
        utc = _utc(value).replace(tzinfo=None)
        return f"TIMESTAMP '{utc.isoformat(sep=' ')}'"
    text = str(value)
    return "'" + text.replace("'", "''") + "'"


def _walk(
    parent: Any,
    key: Any,
    params: Mapping[str, _Param],
    problems: list[ProfileProblem],
    where: tuple[str, ...],
) -> None:
    node = parent[key]
    if isinstance(node, CommentedMap):
        for child in node:
            _walk(node, child, params, problems, (*where, str(child)))
    elif isinstance(node, CommentedSeq):
        for i in range(len(node)):
            _walk(node, i, params, problems, (*where, str(i)))
    elif isinstance(node, str) and "${" in node:
        fill = _fill_expression if is_expression(where) else _fill_setting
        report = _reporter(problems, ".".join(where), _line(parent, key))
        parent[key] = fill(node, params, report)


Report = Callable[[str], None]


def _reporter(problems: list[ProfileProblem], where: str, line: int | None) -> Report:
    return lambda message: problems.append(ProfileProblem(where, message, line))


def _known(name: str, params: Mapping[str, _Param], report: Report) -> _Param | None:
    if name not in params:
        close = suggest(name, params)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        report(f"unknown parameter {name!r}{hint}")
        return None
    param = params[name]
    if param.value is _MISSING:
        report(f"parameter {name!r} has no default: give it with --param {name}=VALUE")
        return None
    return param


def _fill_setting(text: str, params: Mapping[str, _Param], report: Report) -> Any:
    whole = _PLACEHOLDER.fullmatch(text)
    if whole and not whole.group(1):
        param = _known(whole.group(2), params, report)
        return text if param is None else param.value  # the whole setting: keep the type

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # $${name}: a literal ${name}
            return "${" + match.group(2) + "}"
        param = _known(match.group(2), params, report)
        if param is None:
            return match.group(0)
        value = param.value
        return value.isoformat() if isinstance(value, dt.date) else str(value)

    return _PLACEHOLDER.sub(replace, text)


def _fill_expression(text: str, params: Mapping[str, _Param], report: Report) -> str:
    quoted = _quoted_spans(text)

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        name = match.group(2)
        if any(start <= match.start() < end for start, end in quoted):
            report(
                f"${{{name}}} is inside quotes: in an expression a parameter is a SQL value "
                f"(text is quoted for you), so write ${{{name}}} without quotes "
                f"(a pattern: '%' || ${{{name}}} || '%')"
            )
            return match.group(0)
        param = _known(name, params, report)
        return match.group(0) if param is None else sql_literal(param.value, param.type)

    return _PLACEHOLDER.sub(replace, text)


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every '...' string literal in SQL ``text`` ('' is a quote inside)."""
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == '"':  # a quoted identifier: skip it
            end = text.find('"', i + 1)
            i = n if end < 0 else end + 1
        elif char == "'":
            j = i + 1
            while j < n:
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            spans.append((i, j + 1))
            i = j + 1
        else:
            i += 1
    return spans


def _line(parent: Any, key: Any) -> int | None:
    try:
        if isinstance(parent, CommentedMap):
            return int(parent.lc.key(key)[0]) + 1
        return int(parent.lc.item(key)[0]) + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
