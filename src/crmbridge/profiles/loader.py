"""Reads a profile file and reports every problem at once, with its line and field."""

from __future__ import annotations

import copy
import hashlib
import json
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from crmbridge.core.schema import suggest
from crmbridge.errors import ProfileError, ProfileProblem
from crmbridge.profiles.model import InlineConnection, Profile
from crmbridge.profiles.params import substitute_params
from crmbridge.profiles.sync_model import SyncProfile

M = TypeVar("M", Profile, SyncProfile)


class _Loaded(Generic[M]):
    """A validated profile, where it came from, and the line of each of its settings.

    ``problems``: what is wrong with it but did not stop loading (unknown setting names,
    with ``load_profile(..., defer_unknown_settings=True)``); ``prepare`` reports them with
    everything it finds, so a user sees every problem at once."""

    def __init__(
        self,
        profile: M,
        path: Path,
        tree: Any,
        params: Mapping[str, str] | None = None,
        problems: Sequence[ProfileProblem] = (),
    ) -> None:
        self.profile: M = profile
        self.path = path
        self._tree = tree
        #: the values given for the profile's parameters (``--param``), as text
        self.params = dict(params or {})
        self.problems = list(problems)

    @property
    def name(self) -> str:
        return self.profile.name or self.path.stem

    def with_profile(self, profile: M) -> Self:
        """The same file with another model: a variant made in code (a partition of a run)."""
        return type(self)(profile, self.path, self._tree, self.params, self.problems)

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
            _connection_text(connection, self.base_dir) + "/" + object_name
            for connection, object_name in profile.ends()
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


class LoadedProfile(_Loaded[Profile]):
    """A validated transfer profile (see :class:`_Loaded`)."""


class LoadedSync(_Loaded[SyncProfile]):
    """A validated sync profile (see :class:`_Loaded`)."""


def _connection_text(ref: str | InlineConnection, folder: Path) -> str:
    if isinstance(ref, str):
        return f"connection:{ref}"
    settings = json.dumps(ref.settings(), sort_keys=True, default=str)
    return f"{ref.type}:{settings}@{folder.resolve()}"


def profile_kind(path: str | Path) -> str:
    """``sync`` for a sync profile file (it has sides ``a`` and ``b``), else ``transfer``."""
    try:
        tree = YAML(typ="safe").load(Path(path).read_text(encoding="utf-8"))
    except (OSError, YAMLError):
        return "transfer"  # loading it reports the problem
    return "sync" if isinstance(tree, dict) and "a" in tree and "b" in tree else "transfer"


def load_profile(
    path: str | Path,
    params: Mapping[str, str] | None = None,
    *,
    defer_unknown_settings: bool = False,
) -> LoadedProfile:
    """Parse and validate a profile file; raises ProfileError listing every problem.

    ``params`` give or override the values of the profile's ``params`` (values from the
    command line, as text). ``defer_unknown_settings``: when the only problems are setting
    names the format does not know, load the profile without them and keep the problems in
    ``LoadedProfile.problems`` for ``prepare`` to report with the ones it finds (fields,
    expressions, objects); the profile must not be used otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        problem = ProfileProblem("file", f"cannot read: {err.strerror}")
        raise ProfileError(str(path), [problem]) from None
    return parse_profile(text, path, params, defer_unknown_settings=defer_unknown_settings)


def load_sync(path: str | Path, params: Mapping[str, str] | None = None) -> LoadedSync:
    """Parse and validate a sync profile file; raises ProfileError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        problem = ProfileProblem("file", f"cannot read: {err.strerror}")
        raise ProfileError(str(path), [problem]) from None
    tree, data, problems = _read_tree(text, path, params)
    try:
        profile = SyncProfile.model_validate(data)
    except ValidationError as err:
        found, _ = _problems(err, tree)
        raise ProfileError(str(path), [*problems, *found]) from None
    if problems:
        raise ProfileError(str(path), problems)
    return LoadedSync(profile, path, tree, params)


def _read_tree(
    text: str, path: Path, params: Mapping[str, str] | None
) -> tuple[CommentedMap, Any, list[ProfileProblem]]:
    """The YAML tree, its plain data with parameters substituted, and the problems so far."""
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
    problems = list(substitute_params(tree, params or {}))
    return tree, _plain(tree), problems


def parse_profile(
    text: str,
    path: Path,
    params: Mapping[str, str] | None = None,
    *,
    defer_unknown_settings: bool = False,
) -> LoadedProfile:
    tree, data, problems = _read_tree(text, path, params)
    try:
        profile = Profile.model_validate(data)
    except ValidationError as err:
        found, unknown = _problems(err, tree)
        problems += found
        only_names = len(unknown) == len(found) and len(found) == len(problems)
        if not (defer_unknown_settings and only_names):
            raise ProfileError(str(path), problems) from None
        try:
            profile = Profile.model_validate(_without(data, unknown))
        except ValidationError:
            raise ProfileError(str(path), problems) from None
        return LoadedProfile(profile, path, tree, params, problems)
    if problems:
        raise ProfileError(str(path), problems)
    return LoadedProfile(profile, path, tree, params)


def _without(data: Any, locations: Sequence[Sequence[str | int]]) -> Any:
    """A copy of ``data`` without the settings at ``locations``."""
    data = copy.deepcopy(data)
    for location in locations:
        node = data
        for part in location[:-1]:
            node = node[part]
        del node[location[-1]]
    return data


def _plain(node: Any) -> Any:
    """ruamel's round-trip nodes as plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _problems(
    err: ValidationError, tree: Any
) -> tuple[list[ProfileProblem], list[tuple[str | int, ...]]]:
    """One problem per location (a union's alternatives joined with "or"), and the locations
    of the unknown setting names among them."""
    messages: dict[tuple[str | int, ...], list[str]] = {}
    unknown: list[tuple[str | int, ...]] = []
    for item in err.errors(include_url=False):
        location = tuple(_real_location(tree, item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = _unknown_setting(location)
            unknown.append(location)
        messages.setdefault(location, []).append(message)
    problems = [
        ProfileProblem(_dotted(loc), " or ".join(msgs), _line_of(tree, loc))
        for loc, msgs in messages.items()
    ]
    return problems, unknown


def _unknown_setting(location: Sequence[str | int]) -> str:
    """'unknown setting; did you mean 'filter'?' with the names valid at ``location``."""
    model = _model_at(location[:-1])
    known = list(model.model_fields) if model is not None else []
    close = suggest(str(location[-1]), known) if location else []
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown setting{hint}"


def _model_at(location: Sequence[str | int]) -> type[BaseModel] | None:
    """The model of the settings at ``location`` (e.g. ``("source",)`` -> Source)."""
    annotation: Any = Profile
    for part in location:
        model = _model_in(annotation)
        if model is not None and isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            continue
        item = _item_in(annotation)
        if item is None:
            return None
        annotation = item
    return _model_in(annotation)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _item_in(annotation: Any) -> Any:
    """The annotation of a dict's values or a list's items (also inside ``X | None``)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2:
        return args[1]
    if origin is list and args:
        return args[0]
    for arg in args:
        found = _item_in(arg)
        if found is not None:
            return found
    return None


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
