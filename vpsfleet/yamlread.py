"""Fast YAML reading for validation: libyaml through PyYAML, with YAML 1.2 core-schema scalars.

Validation reads a fleet file on every review and pipeline run; ruamel's round-trip loader,
which editing needs (see ipam.py), is several times slower. PyYAML alone resolves scalars by
YAML 1.1, where `NO` (Norway) and `off` are booleans and `5:30` is the integer 330, so its
implicit resolvers are narrowed here to the YAML 1.2 core schema that ruamel uses.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"


class FleetLoader(_Base):  # type: ignore[misc]
    pass


FleetLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (BOOL, INT, FLOAT)]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}
FleetLoader.add_implicit_resolver(
    BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
FleetLoader.add_implicit_resolver(
    INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
FleetLoader.add_implicit_resolver(
    FLOAT,
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)


def _construct_int(loader: Any, node: Any) -> int:
    value = str(loader.construct_scalar(node))
    if value.startswith("0o"):
        return int(value[2:], 8)
    if value.startswith("0x"):
        return int(value[2:], 16)
    return int(value, 10)  # YAML 1.2: a leading 0 is decimal, not octal


FleetLoader.add_constructor(INT, _construct_int)


def load(text: str) -> Any:
    return yaml.load(text, Loader=FleetLoader)
