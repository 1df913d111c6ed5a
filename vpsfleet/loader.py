"""Reading a fleet file: YAML to schema-checked items, then the cross-checks of `validate.py`.

Every problem is collected, never the first only: list sections are checked item by item, and
the cross-checks run on every item that parsed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from vpsfleet import yamlread
from vpsfleet.fleet import Fleet
from vpsfleet.problems import Problem, render_path
from vpsfleet.schema import (
    LIST_SECTIONS,
    MAPPING_SECTIONS,
    REQUIRED_SECTIONS,
    Policy,
    Provider,
)
from vpsfleet.values import HOSTNAME_LABEL, shown

KNOWN_SECTIONS = ("environment", *MAPPING_SECTIONS, *LIST_SECTIONS)


class FleetInvalid(Exception):
    """The fleet file has problems; nothing may be declared or applied from it."""

    def __init__(self, source: Path | str, problems: list[Problem]) -> None:
        self.source = str(source)
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render(self.source) for p in self.problems)


def read_yaml(text: str) -> tuple[Any, list[Problem]]:
    """Parses YAML with the fast safe loader (validation reads, it never writes): syntax errors,
    anchors, aliases and duplicate keys are problems, each with its place."""
    try:
        return yamlread.read(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        return None, [Problem("", f"not valid YAML at {where}: {err.problem}")]
    except yaml.YAMLError as err:
        return None, [Problem("", f"not valid YAML: {err}")]


def policy_defaults() -> dict[str, Any]:
    text = (Path(__file__).parent / "policy-defaults.yml").read_text()
    data: dict[str, Any] = yamlread.load(text)
    return data


def merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else in `override` replaces `base`."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base.get(key), value) if key in base else value
        return merged
    return override


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (is it misspelt?)"
    if kind == "missing":
        return "required key is missing"
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if kind == "value_error":
        return msg
    given = error["input"]
    digits = given.lstrip("+-") if isinstance(given, str) else ""
    if kind == "int_type" and len(digits) > yamlread.MAX_INT_DIGITS and digits.isdigit():
        return f"an integer of {len(digits)} digits is out of range"
    return f"{msg} (got {shown(given)})"


def _schema_problems(prefix: str, err: ValidationError) -> list[Problem]:
    problems = []
    for error in err.errors():
        loc = tuple(error["loc"])
        problems.append(Problem(render_path(loc, prefix), _message(error)))
    return problems


@functools.cache
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


REFERENCE_KEY = {"datacenters": "code", "customers": "id"}  # others are referred to by name


def _raw_name(section: str, item: Any) -> str | None:
    """The name of an item that failed the schema, so that references to it are not also
    reported as unknown (one problem, reported once)."""
    key = REFERENCE_KEY.get(section, "name")
    if isinstance(item, dict) and isinstance(item.get(key), str):
        return str(item[key])
    return None


def _sort_key(order: dict[str, int]) -> Any:
    """Problems in file order: by section as written, then by item index."""

    def key(problem: Problem) -> tuple[int, list[tuple[int, int | str]]]:
        parts = re.findall(r"[^.\[\]]+", problem.location)
        if not parts:
            return (-1, [])
        rest = [(0, int(p)) if p.isdigit() else (1, p) for p in parts[1:]]
        return (order.get(parts[0], len(order)), rest)

    return key


def parse(data: Any, source: Path) -> tuple[Fleet | None, list[Problem]]:
    """Schema checks: the file's shape, each item on its own. Returns the items that parsed."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        return None, [Problem("", f"a fleet file must be a YAML mapping at the top, not {kind}")]
    problems: list[Problem] = []
    for key in data:
        if key not in KNOWN_SECTIONS:
            problems.append(Problem(str(key), "unknown top-level section (is it misspelt?)"))
    for key in REQUIRED_SECTIONS:
        if key not in data:
            problems.append(Problem(key, "required section is missing"))

    environment = data.get("environment")
    if "environment" in data and (
        not isinstance(environment, str) or not HOSTNAME_LABEL.fullmatch(environment)
    ):
        problems.append(Problem("environment", f"{shown(environment)} is not a valid name"))

    policy: Policy | None = None
    try:
        policy = Policy.model_validate(merge(policy_defaults(), data.get("policy") or {}))
    except ValidationError as err:
        problems += _schema_problems("policy", err)
    provider: Provider | None = None
    if "provider" in data:
        try:
            provider = Provider.model_validate(data["provider"])
        except ValidationError as err:
            problems += _schema_problems("provider", err)

    sections: dict[str, list[BaseModel]] = {}
    positions: dict[str, list[int]] = {}
    declared_invalid: dict[str, set[str]] = {}
    for section, model in LIST_SECTIONS.items():
        raw = data.get(section)
        sections[section], positions[section] = [], []
        if raw is None:
            continue
        if not isinstance(raw, list):
            problems.append(Problem(section, f"must be a list, not {type(raw).__name__}"))
            continue
        try:
            # The whole list in one call is several times faster than item by item; item by
            # item is only needed to find which items parsed when some did not.
            sections[section] = list(_list_adapter(model).validate_python(raw))
            positions[section] = list(range(len(raw)))
            continue
        except ValidationError:
            pass
        for index, item in enumerate(raw):
            try:
                sections[section].append(model.model_validate(item))
                positions[section].append(index)
            except ValidationError as err:
                problems += _schema_problems(f"{section}[{index}]", err)
                name = _raw_name(section, item)
                if name is not None:
                    declared_invalid.setdefault(section, set()).add(name)

    if policy is None or provider is None or not isinstance(environment, str):
        return None, problems
    fleet = Fleet(
        source=source,
        environment=environment,
        policy=policy,
        provider=provider,
        positions=positions,
        declared_invalid=declared_invalid,
        **sections,  # type: ignore[arg-type]
    )
    return fleet, problems


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Reading a large fleet allocates millions of objects and no cycles; the cyclic garbage
    collector would rescan them over and over (3x the time at 10,000 guests)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_fleet(
    path: Path | str,
    *,
    today: dt.date | None = None,
    unallocated_ok: frozenset[str] = frozenset(),
    text: str | None = None,
) -> tuple[Fleet | None, list[Problem]]:
    """Every problem of the fleet file at `path`, and the fleet if it could be read at all.

    `unallocated_ok` names guests that may lack an IPv4 (the allocator uses it for the guest it
    is about to number).
    """
    from vpsfleet.validate import cross_check  # validate imports this module's types

    source = Path(path)
    if text is None:
        try:
            text = source.read_text()
        except OSError as err:
            return None, [Problem("", f"cannot read the fleet file: {err.strerror}")]
    with paused_gc():
        data, problems = read_yaml(text)
        if problems:
            return None, problems
        fleet, problems = parse(data, source)
        if fleet is not None:
            problems += cross_check(
                fleet, today=today or dt.date.today(), unallocated_ok=unallocated_ok
            )
    order = {key: rank for rank, key in enumerate(data)} if isinstance(data, dict) else {}
    problems.sort(key=_sort_key(order))
    return fleet, problems


def load_fleet(path: Path | str, *, today: dt.date | None = None) -> Fleet:
    """The fleet at `path`, or `FleetInvalid` with every problem: never a partial fleet."""
    fleet, problems = check_fleet(path, today=today)
    if problems or fleet is None:
        raise FleetInvalid(path, problems)
    return fleet
