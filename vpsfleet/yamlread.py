"""Fast, strict YAML reading for validation: libyaml through PyYAML, YAML 1.2 core-schema scalars.

Validation reads a fleet file on every review and pipeline run; ruamel's round-trip loader,
which editing needs (see ipam.py), is several times slower. PyYAML alone resolves scalars by
YAML 1.1, where `NO` (Norway) and `off` are booleans and `5:30` is the integer 330, so its
implicit resolvers are narrowed here to the YAML 1.2 core schema that ruamel uses.

What a reviewer reads must be what the tools read, so before anything is built from the text:

- anchors and aliases are refused (a 1 KB file of nested aliases expands to gigabytes wherever
  the input is walked or rendered), found on the parser's events, before any node exists;
- duplicate keys are refused (YAML keeps the last silently), merge keys (`<<`) too;
- a scalar that cannot be built (2026-02-30, an integer of 5,000 digits) stays the text it is,
  for the schema to refuse where it is used, instead of stopping the whole read.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from vpsfleet.problems import Problem, render_path

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
MERGE = "tag:yaml.org,2002:merge"
TIMESTAMP = "tag:yaml.org,2002:timestamp"
MAX_INT_DIGITS = 30  # beyond, an integer is a typo; the schema refuses the text it stays


class FleetLoader(_Base):  # type: ignore[misc]
    pass


FleetLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (BOOL, INT, FLOAT, MERGE)]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
FleetLoader.add_implicit_resolver(
    BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)\Z"), list("tTfF")
)
FleetLoader.add_implicit_resolver(
    INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z"), list("-+0123456789")
)
FleetLoader.add_implicit_resolver(
    FLOAT,
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"),
    list("-+0123456789."),
)


def _construct_int(loader: Any, node: Any) -> int | str:
    value = str(loader.construct_scalar(node))
    if len(value) > MAX_INT_DIGITS:
        return value
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)  # YAML 1.2: a leading 0 is decimal, not octal


def _construct_timestamp(loader: Any, node: Any) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError):
        return str(node.value)  # not a day of the calendar: the schema says so, where it is


FleetLoader.add_constructor(INT, _construct_int)
FleetLoader.add_constructor(TIMESTAMP, _construct_timestamp)


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _anchors_and_aliases(text: str) -> list[Problem]:
    """Every anchor (&a) and alias (*a), with its path, from the parser's events alone."""
    problems: list[Problem] = []
    # One frame per open collection: [path, next index or key, "expecting a key"].
    frames: list[list[Any]] = []
    path: tuple[str | int, ...] = ()
    for event in yaml.parse(text, Loader=FleetLoader):
        if isinstance(event, (yaml.StreamStartEvent, yaml.StreamEndEvent,
                              yaml.DocumentStartEvent, yaml.DocumentEndEvent)):
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            frames.pop()
            _value_done(frames)
            continue
        # A node: where is it?
        if frames and frames[-1][0] == "map" and frames[-1][2]:
            key = event.value if isinstance(event, yaml.ScalarEvent) else "?"
            path, is_key = (*frames[-1][3], key), True
        elif frames and frames[-1][0] == "map":
            path, is_key = (*frames[-1][3], frames[-1][1]), False
        elif frames:
            frames[-1][1] += 1
            path, is_key = (*frames[-1][3], frames[-1][1]), False
        else:
            path, is_key = (), False
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            kind = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            problems.append(Problem(render_path(path), f"YAML {kind}{anchor} at "
                                    f"{_where(event.start_mark)}: anchors and aliases are not "
                                    "allowed in a fleet file; write the value out"))
        if isinstance(event, yaml.MappingStartEvent):
            frames.append(["map", None, True, path])
        elif isinstance(event, yaml.SequenceStartEvent):
            frames.append(["seq", -1, False, path])
        elif is_key:
            frames[-1][1], frames[-1][2] = path[-1], False
        else:
            _value_done(frames)
    return problems


def _value_done(frames: list[list[Any]]) -> None:
    """A mapping's value is complete: the mapping now expects a key."""
    if frames and frames[-1][0] == "map":
        frames[-1][2] = True


def _duplicate_keys(root: Node) -> list[Problem]:
    found: list[tuple[int, int, Problem]] = []
    stack: list[tuple[Node, tuple[str | int, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, MappingNode):
            seen: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, ScalarNode) else "?"
                mark = key_node.start_mark
                if key_node.tag == MERGE:
                    found.append((mark.line, mark.column, Problem(
                        render_path((*path, key)),
                        f"merge key (<<) at {_where(mark)}: not allowed in a fleet file",
                    )))
                elif key in seen:
                    found.append((mark.line, mark.column, Problem(
                        render_path((*path, key)),
                        f"duplicate key {key!r} at {_where(mark)}: it is already at "
                        f"{_where(seen[key])} (YAML would keep the last one silently)",
                    )))
                else:
                    seen[key] = mark
                if not isinstance(value_node, ScalarNode):
                    stack.append((value_node, (*path, key)))
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                if not isinstance(item, ScalarNode):
                    stack.append((item, (*path, index)))
    return [problem for _line, _column, problem in sorted(found, key=lambda f: f[:2])]


def read(text: str) -> tuple[Any, list[Problem]]:
    """The data of a YAML document and the problems that stop it being read as written.
    Syntax errors raise `yaml.YAMLError` (with its mark) as PyYAML does."""
    if ("&" in text or "*" in text) and (problems := _anchors_and_aliases(text)):
        return None, problems
    loader = FleetLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, []
        problems = _duplicate_keys(root)
        if problems:
            return None, problems
        return loader.construct_document(root), []
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """A trusted YAML file of the package (its policy defaults): any problem is a bug."""
    data, problems = read(text)
    if problems:
        raise ValueError("; ".join(p.message for p in problems))
    return data
