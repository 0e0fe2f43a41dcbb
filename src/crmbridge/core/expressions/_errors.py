"""ExpressionError, and the one message shape every expression problem uses::

unknown column 'emial' in filter "emial IS NULL"; did you mean 'email'?
"""

from __future__ import annotations

from sqlglot import exp

from crmbridge.errors import ConfigError

#: key in ``Expression.meta`` holding the text the user wrote (set by ``parse``)
TEXT_KEY = "crmbridge_text"


class ExpressionError(ConfigError):
    """A filter or mapping expression is invalid. The message quotes the expression."""


def text_of(tree: exp.Expr) -> str:
    """The text the user wrote for ``tree``, or DuckDB SQL for a tree built in code."""
    text = tree.meta.get(TEXT_KEY)
    return text if isinstance(text, str) else tree.sql(dialect="duckdb")


def expression_error(
    problem: str, source: exp.Expr | str, what: str, hint: str = ""
) -> ExpressionError:
    """``{problem} in {what} "{text}"{hint}`` as an ExpressionError."""
    text = source if isinstance(source, str) else text_of(source)
    return ExpressionError(f'{problem} in {what} "{text}"{hint}')
