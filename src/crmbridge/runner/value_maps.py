"""Value maps: a profile's lookup tables, used in expressions like functions.

    value_maps:
      lead_status: {New: open, Assigned: working, Converted: won, Dead: lost, "*": other}
    mapping:
      status: lead_status(status)

``lead_status(x)`` is rewritten, before the expression is checked, into
``CASE WHEN x = 'New' THEN 'open' ... ELSE 'other' END`` (``"*"`` is the value for anything
not listed; without it, null). So a value map behaves exactly like the CASE it stands for,
locally and when pushed down.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

Scalar = str | int | float | bool | None
ValueMaps = Mapping[str, Mapping[str, Scalar]]
OTHERWISE = "*"


def expand_value_maps(text: str, maps: ValueMaps) -> str:
    """``text`` with every call of a value map replaced by its CASE expression."""
    if not maps:
        return text
    by_name = {name.lower(): table for name, table in maps.items()}
    try:
        tree = sqlglot.parse_one(text, dialect="duckdb")
    except ParseError:
        return text  # the expression parser reports the syntax error properly

    def rewrite(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Anonymous) or node.name.lower() not in by_name:
            return node
        if len(node.expressions) != 1:
            return node  # reported as an unknown function with the wrong arguments
        return _case(node.expressions[0], by_name[node.name.lower()])

    return tree.transform(rewrite).sql(dialect="duckdb")


def is_free_function_name(name: str) -> bool:
    """Is ``name(x)`` not already a SQL function (so a value map may take the name)?"""
    try:
        tree = sqlglot.parse_one(f"{name}(x)", dialect="duckdb")
    except ParseError:
        return False
    return isinstance(tree, exp.Anonymous)


def _case(value: exp.Expression, table: Mapping[str, Scalar]) -> exp.Expression:
    if not isinstance(value, exp.Column | exp.Literal | exp.Paren):
        value = exp.Paren(this=value)
    ifs = [
        exp.If(
            this=exp.EQ(this=value.copy(), expression=exp.convert(key)), true=exp.convert(result)
        )
        for key, result in table.items()
        if key != OTHERWISE
    ]
    return exp.Case(ifs=ifs, default=exp.convert(table.get(OTHERWISE)))
