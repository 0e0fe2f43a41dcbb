"""crmbridge's one expression language: SQL (DuckDB syntax) for filters and mappings.

* :func:`parse` an expression once when a profile loads, :func:`check_columns` against the
  source's fields;
* :class:`BatchTransform` evaluates a filter and mappings over Arrow batches with DuckDB;
* :func:`convert_sql` converts values by the documented rules (also for ``source.types``);
* :func:`to_sqlalchemy` pushes a filter down into a SQL source when that database gives
  exactly the same answer, and returns None when it cannot promise that.

Semantics and the supported functions are documented in docs/expressions.md.
"""

from crmbridge.core.expressions._casts import KIND_WORDS, convert_sql, kind_of
from crmbridge.core.expressions._check import check_columns
from crmbridge.core.expressions._errors import ExpressionError
from crmbridge.core.expressions._evaluate import evaluate_constant
from crmbridge.core.expressions._pushdown import to_sqlalchemy
from crmbridge.core.expressions._syntax import (
    FUNCTIONS,
    Function,
    column_path,
    columns_of,
    conjoin,
    conjuncts,
    has_paths,
    parse,
)
from crmbridge.core.expressions._transform import BatchTransform, RowError, TransformResult

__all__ = [
    "FUNCTIONS",
    "KIND_WORDS",
    "BatchTransform",
    "ExpressionError",
    "Function",
    "RowError",
    "TransformResult",
    "check_columns",
    "column_path",
    "columns_of",
    "conjoin",
    "conjuncts",
    "convert_sql",
    "evaluate_constant",
    "has_paths",
    "kind_of",
    "parse",
    "to_sqlalchemy",
]
