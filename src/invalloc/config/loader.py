"""Load a scenario YAML, validate it and report every problem with its YAML path.

Validation runs in two passes. The first is pydantic's type validation (unknown keys, wrong
types, out-of-range numbers, missing keys); the second, only when the first passes, is the
cross-field checks of :mod:`invalloc.config.checks`. Each pass reports *all* its problems at
once, one ``yaml.path: message`` line each, e.g. ``products[0].unit_cost: must be greater than
or equal to 0 (got -1)``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from invalloc.config.schema import Scenario
from invalloc.config.shipped import not_found, resolve, shipped_folder, shipped_names

#: Folder of the scenarios shipped with invalloc (package data: ``src/invalloc/scenarios``).
SCENARIO_DIR = shipped_folder("scenarios")

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


class ConfigFileError(ValueError):
    """A YAML file that cannot be used; ``problems`` holds one ``path: message`` line each."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def lines(self) -> list[str]:
        return [f"{self.source}: {problem}" for problem in self.problems]


class ScenarioError(ConfigFileError):
    """A scenario that cannot be used; ``problems`` holds one ``path: message`` line each."""


@dataclass(frozen=True)
class LoadedScenario:
    """A validated scenario with the folder its relative paths are resolved against."""

    scenario: Scenario
    base_dir: Path
    source: str

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of the validated scenario (stable across key order)."""
        payload = json.dumps(self.scenario.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


def yaml_path(location: tuple[Any, ...] | list[Any]) -> str:
    """Render a location as a YAML path such as ``products[2].unit_cost``.

    Integers are list indices (``[2]``); strings are mapping keys (``.unit_cost``). A key that
    is not a plain word (spaces, dots, slashes) is quoted: ``price["a b"]``.
    """
    text = ""
    for part in location:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(str(part)):
            text += f".{part}" if text else str(part)
        else:
            text += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return text or "(top level)"


# ---------------------------------------------------------------------------------------------
# pydantic errors → YAML paths
# ---------------------------------------------------------------------------------------------

#: Error types that only say "this union member does not take this kind of value".
_TYPE_NOUNS = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "none_required": "null",
}


def _noun(item: dict[str, Any]) -> str | None:
    """What a union member expected, if its error only rejected the kind of value."""
    if item["type"] == "literal_error":
        return item["msg"].removeprefix("Input should be ")
    return _TYPE_NOUNS.get(item["type"])


def _describe_input(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, str) else repr(value)
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class _Located:
    """One pydantic error with its location split into what the user wrote and union tags."""

    path: list[Any]  # the YAML path the user wrote (list indices and mapping keys)
    union_at: tuple[Any, ...] | None  # raw location up to the first union-member tag
    branch: str | None  # that tag (which member of the union produced the error)
    depth_after_union: int  # path parts below the union point
    key_error: bool  # the error is about a mapping key, not its value
    item: dict[str, Any]


def _locate(item: dict[str, Any], data: Any) -> _Located:
    """Follow the error location through the data; parts the data does not have are union tags.

    pydantic adds the member's name (``constrained-float``, ``dict[constrained-str,...]``,
    ``tagged-union[...]``, a discriminator value such as ``uniform``) to the location of
    errors inside a union. The user never wrote those, so the location is walked alongside
    the data: a part that indexes the data is kept, anything else is a tag. The last part of
    a ``missing`` error is the missing key itself and is kept.
    """
    loc = item["loc"]
    node = data
    path: list[Any] = []
    union_at = branch = None
    depth_after = 0
    key_error = False
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if part == "[key]":
            key_error = True
            continue
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
            path.append(str(part))
        elif last and item["type"] == "missing":
            path.append(part)
            node = None
        else:
            if union_at is None:
                union_at, branch = tuple(loc[:index]), str(part)
            continue
        if union_at is not None:
            depth_after += 1
    return _Located(path, union_at, branch, depth_after, key_error, item)


def _message(located: _Located, root: type[BaseModel] = Scenario) -> tuple[list[Any], str]:
    """The path (possibly extended) and a one-line message for one error."""
    item = located.item
    kind = item["type"]
    path = list(located.path)
    value = item.get("input")
    ctx = item.get("ctx") or {}
    if kind == "extra_forbidden":
        return path, _unknown_key_message(path, root)
    if kind == "missing":
        return path, "required key is missing"
    if kind == "union_tag_invalid":
        discriminator = str(ctx.get("discriminator", "kind")).strip("'")
        return path + [discriminator], (
            f"must be one of {ctx.get('expected_tags', '?')} (got {_describe_input(ctx.get('tag'))})"
        )
    if kind == "union_tag_not_found":
        discriminator = str(ctx.get("discriminator", "kind")).strip("'")
        return path, f"a mapping here needs a '{discriminator}' key saying which variant it is"
    if kind == "string_pattern_mismatch":
        what = "key" if located.key_error else "id"
        return path, (f"{_describe_input(value)} is not a valid {what}: use only letters, digits, '_', '.' and '-'")
    if kind in {"too_short", "too_long"}:
        message = item["msg"].replace("List should", "must").replace("Dictionary should", "must")
        return path, message.split(" after validation")[0]
    if kind in _TYPE_NOUNS:
        message = f"must be {_TYPE_NOUNS[kind]}"
    else:
        message = (
            item["msg"]
            .replace("Input should be", "must be")
            .replace("String should", "must")
            .removeprefix("Value error, ")
        )
    if located.key_error:
        return path, f"key {_describe_input(value)} {message}"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        return path, f'{message} (got {_describe_input(value)}); quote it: "{value}"'
    return path, f"{message} (got {_describe_input(value)})"


def _unknown_key_message(path: list[Any], root: type[BaseModel] = Scenario) -> str:
    allowed = _allowed_keys(path[:-1], root)
    key = str(path[-1]) if path else ""
    if not allowed:
        return "unknown key"
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean '{close[0]}'?"
    return "unknown key (allowed here: " + ", ".join(sorted(allowed)) + ")"


def _expand(annotation: Any) -> list[Any]:
    """The alternatives of a possibly Annotated / Optional / union type."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _expand(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [alt for arg in typing.get_args(annotation) for alt in _expand(arg)]
    return [annotation]


def _allowed_keys(parent: list[Any], root: type[BaseModel] = Scenario) -> set[str]:
    """Keys the schema allows in the mapping at ``parent`` (empty if it cannot tell)."""
    current: list[Any] = [root]
    for part in parent:
        following: list[Any] = []
        for annotation in current:
            for alternative in _expand(annotation):
                origin = typing.get_origin(alternative)
                if isinstance(alternative, type) and issubclass(alternative, BaseModel):
                    for name, field in alternative.model_fields.items():
                        if part in (name, field.alias):
                            following.append(field.annotation)
                elif origin is list and isinstance(part, int):
                    following.append(typing.get_args(alternative)[0])
                elif origin is dict and not isinstance(part, int):
                    following.append(typing.get_args(alternative)[1])
        current = following
    keys: set[str] = set()
    for annotation in current:
        for alternative in _expand(annotation):
            if isinstance(alternative, type) and issubclass(alternative, BaseModel):
                keys |= {field.alias or name for name, field in alternative.model_fields.items()}
    return keys


def _pydantic_problems(error: ValidationError, data: Any, root: type[BaseModel] = Scenario) -> list[str]:
    """One ``yaml.path: message`` line per problem, without union-member noise.

    A value that fails a union (``price: -1`` against ``number | mapping``) makes pydantic
    report one error per member. When some member got far enough to find a real problem
    (a constraint, a nested key), the members that merely rejected the value's type are
    dropped; when every member rejected the type, one line says what was expected.
    """
    located = [_locate(item, data) for item in error.errors()]
    groups: dict[tuple[Any, ...], list[_Located]] = {}
    for entry in located:
        if entry.union_at is not None:
            groups.setdefault(entry.union_at, []).append(entry)

    def type_only(entries: list[_Located]) -> bool:
        return all(e.depth_after_union == 0 and _noun(e.item) is not None for e in entries)

    skip: set[int] = set()
    merged: dict[int, str] = {}
    for entries in groups.values():
        branches: dict[str | None, list[_Located]] = {}
        for entry in entries:
            branches.setdefault(entry.branch, []).append(entry)
        rejected = [b for b, members in branches.items() if type_only(members)]
        if len(branches) > 1 and len(rejected) == len(branches):
            nouns = list(dict.fromkeys(str(_noun(e.item)) for e in entries))
            first = entries[0]
            expected = ", ".join(nouns[:-1]) + f" or {nouns[-1]}" if len(nouns) > 1 else nouns[0]
            got = _describe_input(first.item.get("input"))
            merged[id(first)] = f"{yaml_path(first.path)}: must be {expected} (got {got})"
            skip |= {id(e) for e in entries[1:]}
        elif rejected and len(rejected) < len(branches):
            skip |= {id(e) for b in rejected for e in branches[b]}

    problems = []
    for entry in located:
        if id(entry) in skip:
            continue
        if id(entry) in merged:
            problems.append(merged[id(entry)])
            continue
        path, message = _message(entry, root)
        problems.append(f"{yaml_path(path)}: {message}")
    return list(dict.fromkeys(problems))


# ---------------------------------------------------------------------------------------------
# YAML reading
# ---------------------------------------------------------------------------------------------


try:  # libyaml's parser: ten times faster than PyYAML's pure-Python one on large scenarios
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader

#: Largest configuration file read (a scenario of 10,000 SKUs is about 4.5 MB).
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Deepest nesting of lists and mappings accepted in a configuration file (a scenario needs 6).
MAX_DEPTH = 64
#: Values an alias may add beyond those written out (``<<: *defaults`` merges stay far below).
MAX_ALIAS_EXPANSION = 100_000
#: Most values (lists, mappings, scalars) a document may hold once aliases are expanded.
MAX_VALUES = 6_000_000


class YamlLimitError(yaml.MarkedYAMLError):
    """YAML that parses but that invalloc refuses to build: too deep, recursive or an alias bomb."""


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader (libyaml where available) that records duplicate mapping keys (PyYAML
    silently keeps the last one) and refuses recursive, too deep or alias-bomb documents."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicate_keys: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            # The key as written (tag and text): cheaper than constructing it twice.
            key = (key_node.tag, key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicate_keys.append(
                    f"line {line}: duplicate key '{key_node.value}' (first given on line {seen[key]}); "
                    "YAML would silently keep only the last value"
                )
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_node_graph(root: yaml.Node) -> None:
    """Walk the composed document once, level by level, before anything is built from it.

    :raises YamlLimitError: nesting deeper than :data:`MAX_DEPTH` (an alias that contains
        itself nests without end), or aliases that multiply the document ("billion laughs").
    """
    level = [] if isinstance(root, yaml.ScalarNode) else [root]
    distinct: set[int] = {id(root)}
    expanded = 1
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            recursive = len({id(node) for node in level}) < len(level) or len(distinct) < expanded
            problem = (
                "an alias refers to itself (a recursive document)"
                if recursive
                else (f"nested more than {MAX_DEPTH} levels deep")
            )
            raise YamlLimitError(problem=problem, problem_mark=level[0].start_mark)
        # Counted before the level is built, so that an alias bomb is refused before it takes memory.
        size = sum(len(node.value) if isinstance(node, yaml.SequenceNode) else 2 * len(node.value) for node in level)
        if expanded + size > MAX_VALUES:
            raise _bomb(level[0])
        children: list[yaml.Node] = []
        for node in level:
            if isinstance(node, yaml.SequenceNode):
                children += node.value
            else:
                for pair in node.value:
                    children += pair
        expanded += len(children)
        distinct.update(map(id, children))
        if expanded > len(distinct) + MAX_ALIAS_EXPANSION:
            raise _bomb(level[0])
        level = [child for child in children if not isinstance(child, yaml.ScalarNode)]


def _bomb(node: yaml.Node) -> YamlLimitError:
    return YamlLimitError(
        problem=f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} repeated values (an alias bomb?)",
        problem_mark=node.start_mark,
    )


def read_yaml(text: str) -> tuple[Any, list[str]]:
    """Parse YAML text; returns the data and a list of duplicate-key problems.

    :raises yaml.YAMLError: the text is not YAML, or is refused (:class:`YamlLimitError`).
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        _check_node_graph(node)
        data = loader.construct_document(node)
        return data, sorted(loader.duplicate_keys, key=lambda line: int(line.split()[1].rstrip(":")))
    finally:
        loader.dispose()


def read_config_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a configuration file, after checking it is a file of sane size.

    :raises ConfigFileError: one ``(file): …`` problem (missing, a folder, too large, not UTF-8).
    """
    source = str(path)
    try:
        if path.is_dir():
            raise ConfigFileError(source, ["(file): is a folder, not a file"])
        size = path.stat().st_size
        if size > max_bytes:
            raise ConfigFileError(
                source, [f"(file): {size / 2**20:.1f} MB is larger than the {max_bytes / 2**20:.0f} MB limit"]
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(source, ["(file): no such file"]) from None
    except UnicodeDecodeError as error:
        raise ConfigFileError(source, [f"(file): not UTF-8 text ({error.reason})"]) from None
    except OSError as error:
        raise ConfigFileError(source, [f"(file): cannot be read ({error.strerror or error})"]) from None


def _deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def shipped_scenarios() -> list[str]:
    """Names of the scenarios shipped in :data:`SCENARIO_DIR`."""
    return shipped_names("scenarios")


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """The YAML file of a scenario name (``retail``) or path; it may not exist.

    A path is used as given; a name is looked up in ``./configs/scenarios/`` and then among the
    shipped scenarios (:mod:`invalloc.config.shipped`).
    """
    return resolve(name_or_path, "scenarios")


def _non_finite_problems(data: Any, path: tuple[Any, ...] = ()) -> list[str]:
    """Lines for ``.inf`` / ``.nan`` values, which pydantic floats accept but nothing can use.

    ``finance.treasury_buffer: -.inf`` (no buffer, the default) is the one exception.
    """
    if isinstance(data, Mapping):
        return [line for key, value in data.items() for line in _non_finite_problems(value, path + (str(key),))]
    if isinstance(data, list):
        return [line for i, value in enumerate(data) for line in _non_finite_problems(value, path + (i,))]
    if isinstance(data, float) and not math.isfinite(data):
        if path == ("finance", "treasury_buffer") and data == float("-inf"):
            return []
        return [f"{yaml_path(path)}: must be a finite number (got {data}); leave the key out for the default"]
    if isinstance(data, bool) and path and path[-1] not in _BOOLEAN_KEYS and not isinstance(path[-1], int):
        # YAML reads yes/no/on/off/true/false as booleans, which pydantic would take as 1 and 0.
        return [
            f"{yaml_path(path)}: must not be true or false here (got {str(data).lower()}); quote it or give a number"
        ]
    return []


#: The scenario keys whose values are true/false.
_BOOLEAN_KEYS = frozenset(
    {"integer_units", "lower_of_cost_and_nrv", "serve_contract_minimums_first", "cash_rule", "backorder_replenishment"}
)


def parse_scenario(data: Any, source: str, base_dir: Path) -> LoadedScenario:
    """Validate already-parsed YAML data; raises :class:`ScenarioError` listing every problem."""
    from invalloc.config.checks import cross_checks

    if data is None:
        raise ScenarioError(source, ["(top level): the scenario is empty; expected a mapping of sections"])
    if not isinstance(data, Mapping):
        raise ScenarioError(
            source,
            [
                "(top level): expected a mapping of scenario sections (name, products, suppliers, ...), "
                f"got {_describe_input(data) if not isinstance(data, list) else 'a list'}"
            ],
        )
    non_finite = _non_finite_problems(data)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        # A non-finite value gets one clear line instead of pydantic's range complaint.
        flagged = {line.split(": ", 1)[0] for line in non_finite}
        problems = [line for line in _pydantic_problems(error, data) if line.split(": ", 1)[0] not in flagged]
        raise ScenarioError(source, problems + non_finite) from None
    if non_finite:
        raise ScenarioError(source, non_finite)
    problems = cross_checks(scenario, base_dir)
    if problems:
        raise ScenarioError(source, problems)
    return LoadedScenario(scenario=scenario, base_dir=base_dir, source=source)


def load_scenario(name_or_path: str | Path, overrides: Mapping[str, Any] | None = None) -> LoadedScenario:
    """Load and validate a scenario.

    :param name_or_path: a scenario name (``"retail"``: ``./configs/scenarios/retail.yaml`` if
        present, else the shipped one) or a YAML path.
    :param overrides: nested mapping merged over the YAML before validation,
        e.g. ``{"episode": {"horizon": 10}}``.
    :raises ScenarioError: the file is missing, is not YAML, or fails validation.
    """
    if not isinstance(name_or_path, str | Path) or not str(name_or_path):
        raise ScenarioError(
            repr(name_or_path),
            ["(file): a scenario is a shipped name or a YAML path, got " + _describe_input(name_or_path)],
        )
    path = resolve_scenario_path(name_or_path)
    source = str(path)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ScenarioError(
            source, [f"(overrides): must be a mapping of scenario sections, got {_describe_input(overrides)}"]
        )
    if not path.exists():
        given, problem = not_found(name_or_path, "scenarios")
        raise ScenarioError(given, [problem])
    try:
        text = read_config_text(path)
    except ConfigFileError as error:
        raise ScenarioError(source, error.problems) from None
    try:
        data, yaml_problems = read_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ScenarioError(source, [f"{where}: not valid YAML ({problem})"]) from None
    if overrides and isinstance(data, dict):
        data = _deep_merge(data, overrides)
    try:
        loaded = parse_scenario(data, source, path.parent)
    except ScenarioError as error:
        raise ScenarioError(source, yaml_problems + error.problems) from None
    if yaml_problems:
        raise ScenarioError(source, yaml_problems)
    return loaded


def validation_problems(error: ValidationError, data: Any, root: type[BaseModel] = Scenario) -> list[str]:
    """One ``yaml.path: message`` line per problem of a pydantic error on YAML ``data`` validated
    as ``root`` (whose fields the unknown-key hints list)."""
    return _pydantic_problems(error, data, root)
