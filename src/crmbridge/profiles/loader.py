"""Reads a profile file and reports every problem at once, with its line and field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from crmbridge.errors import ProfileError, ProfileProblem
from crmbridge.profiles.model import InlineConnection, Profile
from crmbridge.profiles.params import substitute_params


class LoadedProfile:
    """A validated profile, where it came from, and the line of each of its settings."""

    def __init__(
        self, profile: Profile, path: Path, tree: Any, params: Mapping[str, str] | None = None
    ) -> None:
        self.profile = profile
        self.path = path
        self._tree = tree
        #: the values given for the profile's parameters (``--param``), as text
        self.params = dict(params or {})

    @property
    def name(self) -> str:
        return self.profile.name or self.path.stem

    @property
    def key(self) -> str:
        """The profile's stable identity, under which its state is kept (docs/state.md).

        Its ``id`` when it has one; otherwise its name qualified by its source and target:
        a saved connection by its name, a connection written in the profile by its settings
        and the profile's folder (its relative paths point there). So two profiles that read
        or write different things never share state; a profile moved to another folder keeps
        its state when it uses saved connections (or an ``id``)."""
        profile = self.profile
        if profile.id:
            return f"id:{profile.id}"
        ends = [
            _connection_text(side.connection, self.base_dir) + "/" + side.object
            for side in (profile.source, profile.target)
        ]
        digest = hashlib.sha256("\x1f".join(ends).encode()).hexdigest()[:16]
        return f"{self.name}@{digest}"

    @property
    def base_dir(self) -> Path:
        """Relative paths in the profile (inline connections) are relative to its folder."""
        return self.path.parent

    def line_of(self, location: Sequence[str | int]) -> int | None:
        return _line_of(self._tree, location)

    def problem(self, location: Sequence[str | int], message: str) -> ProfileProblem:
        """A problem found after loading (unknown field, bad expression) at ``location``."""
        return ProfileProblem(_dotted(location), message, self.line_of(location))

    def error(self, problems: Iterable[ProfileProblem]) -> ProfileError:
        return ProfileError(str(self.path), problems)


def _connection_text(ref: str | InlineConnection, folder: Path) -> str:
    if isinstance(ref, str):
        return f"connection:{ref}"
    settings = json.dumps(ref.settings(), sort_keys=True, default=str)
    return f"{ref.type}:{settings}@{folder.resolve()}"


def load_profile(path: str | Path, params: Mapping[str, str] | None = None) -> LoadedProfile:
    """Parse and validate a profile file; raises ProfileError listing every problem.

    ``params`` override the defaults of the profile's ``params`` (values from the command
    line, as text)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        problem = ProfileProblem("file", f"cannot read: {err.strerror}")
        raise ProfileError(str(path), [problem]) from None
    return parse_profile(text, path, params)


def parse_profile(text: str, path: Path, params: Mapping[str, str] | None = None) -> LoadedProfile:
    yaml = YAML(typ="rt")
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ProfileError(
            str(path), [ProfileProblem("file", f"not valid YAML: {err.problem}", line)]
        ) from None
    if not isinstance(tree, CommentedMap):
        raise ProfileError(str(path), [ProfileProblem("file", "a profile is a YAML mapping", 1)])
    problems = substitute_params(tree, params or {})
    if problems:
        raise ProfileError(str(path), problems)
    try:
        profile = Profile.model_validate(_plain(tree))
    except ValidationError as err:
        raise ProfileError(str(path), _problems(err, tree)) from None
    return LoadedProfile(profile, path, tree, params)


def _plain(node: Any) -> Any:
    """ruamel's round-trip nodes as plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _problems(err: ValidationError, tree: Any) -> list[ProfileProblem]:
    # one problem per location; a union's alternatives are joined with "or"
    messages: dict[tuple[str | int, ...], list[str]] = {}
    for item in err.errors(include_url=False):
        location = tuple(_real_location(tree, item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting"
        messages.setdefault(location, []).append(message)
    return [
        ProfileProblem(_dotted(loc), " or ".join(msgs), _line_of(tree, loc))
        for loc, msgs in messages.items()
    ]


# pydantic puts the union member it tried into error locations: ("source", "connection", "str")
_UNION_TAGS = frozenset({"str", "int", "float", "bool", "none", "InlineConnection"})


def _real_location(tree: Any, loc: Sequence[Any]) -> list[str | int]:
    """The error location without union tags: a part present in the YAML is always kept."""
    out: list[str | int] = []
    node = tree
    for part in loc:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        )
        if present:
            node = node[part]
        elif isinstance(part, str) and (part in _UNION_TAGS or part.startswith("function-")):
            continue
        else:
            node = None
        out.append(part)
    return out


def _dotted(location: Sequence[str | int]) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "profile"


def _line_of(tree: Any, location: Sequence[str | int]) -> int | None:
    """1-based line of the deepest part of ``location`` found in the YAML tree."""
    line = None
    node = tree
    for part in location:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line
