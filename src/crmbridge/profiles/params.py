"""Profile parameters: ``${name}`` placeholders filled from ``params`` or the command line.

    params:
      threshold: 50
      module: Leads
    source:
      filter: lead_score >= ${threshold}
    target:
      object: ${module}

``crmbridge run profile.yaml --param module=Contacts`` overrides a default. A value that is
the whole of a setting keeps its type (``batch_size: ${size}`` stays a number); inside text it
is inserted as text, as written (in a SQL expression, quote text values yourself:
``lead_source = '${source}'``). ``$${`` stands for a literal ``${``. A placeholder whose name
is not declared under ``params`` is an error naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from crmbridge.core.schema import suggest
from crmbridge.errors import ProfileProblem

_PLACEHOLDER = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute_params(tree: CommentedMap, given: Mapping[str, str]) -> list[ProfileProblem]:
    """Fill every placeholder of ``tree`` in place; the problems found (none: all is well)."""
    declared = tree.get("params") or {}
    problems: list[ProfileProblem] = []
    if not isinstance(declared, dict):
        return []  # the model reports the wrong type
    values: dict[str, Any] = dict(declared)
    for name, text in given.items():
        if name not in declared:
            close = suggest(name, declared)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            problems.append(ProfileProblem("params", f"unknown parameter {name!r}{hint}", None))
            continue
        values[name] = _typed(text, declared[name])
    for key in tree:
        if key != "params":
            _walk(tree, key, values, problems, (str(key),))
    return problems


def _typed(text: str, default: Any) -> Any:
    """A command-line value with the type of the parameter's default."""
    if isinstance(default, bool):
        return text.strip().lower() in ("1", "true", "yes", "on")
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(text)
            except ValueError:
                return text
    return text


def _walk(
    parent: Any,
    key: Any,
    values: Mapping[str, Any],
    problems: list[ProfileProblem],
    where: tuple[str, ...],
) -> None:
    node = parent[key]
    if isinstance(node, CommentedMap):
        for child in node:
            _walk(node, child, values, problems, (*where, str(child)))
    elif isinstance(node, CommentedSeq):
        for i in range(len(node)):
            _walk(node, i, values, problems, (*where, str(i)))
    elif isinstance(node, str) and "${" in node:
        parent[key] = _fill(node, values, problems, parent, key, where)


def _fill(
    text: str,
    values: Mapping[str, Any],
    problems: list[ProfileProblem],
    parent: Any,
    key: Any,
    where: tuple[str, ...],
) -> Any:
    whole = _PLACEHOLDER.fullmatch(text)
    if whole and not whole.group(1) and whole.group(2) in values:
        return values[whole.group(2)]  # the whole setting: keep the value's type

    def replace(match: re.Match[str]) -> str:
        if match.group(1):  # $${name}: a literal ${name}
            return "${" + match.group(2) + "}"
        name = match.group(2)
        if name not in values:
            close = suggest(name, values)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            line = _line(parent, key)
            problems.append(
                ProfileProblem(".".join(where), f"unknown parameter {name!r}{hint}", line)
            )
            return match.group(0)
        return str(values[name])

    return _PLACEHOLDER.sub(replace, text)


def _line(parent: Any, key: Any) -> int | None:
    try:
        if isinstance(parent, CommentedMap):
            return int(parent.lc.key(key)[0]) + 1
        return int(parent.lc.item(key)[0]) + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return None
