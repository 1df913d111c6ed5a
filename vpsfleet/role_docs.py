"""Each role's interface has one source: its `meta/argument_specs.yml`.

The variables section of every role's README is generated from it, between two markers, and
`defaults/main.yml` must give the same defaults as the specs say:

    python -m vpsfleet.role_docs write   # rewrite the block of every ansible/roles/*/README.md
    python -m vpsfleet.role_docs check   # exit 1: each stale block, each defaults/specs disagreement

Every entry point is rendered (`main`, and `tasks_from` ones such as `decommission`), with each
option's type, whether it is required, its default, its choices and its description; the options
of a dict or a list of dicts are flattened as `parent.child` rows below their parent.

An entry point other than `main` may keep its own defaults in `defaults/<entry>.yml` or in the
`vars:` of the top-level block of `tasks/<entry>.yml` (which override `defaults/main.yml`, as in
Ansible); those are what its specs are compared with. The comparison reads the files as Ansible
does (PyYAML, YAML 1.1) and compares the parsed values, types included (`"5:30"` is not `5:30`,
which YAML 1.1 reads as the integer 330); a default that holds Jinja (`{{ ... }}`) compares as
the string it is. Ansible never applies a `default:` of the specs (the role's defaults are what
it uses): it is documentation, which is why the two must not drift.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- BEGIN argument_specs (generated: python -m vpsfleet.role_docs write) -->"
END = "<!-- END argument_specs -->"
_MISSING = object()


class SpecError(Exception):
    """A role's argument_specs.yml or defaults/main.yml cannot be read as such."""


@dataclass(frozen=True)
class Row:
    name: str  # `parent.child` for a nested option
    type: str
    required: bool
    default: object  # _MISSING when the spec gives none
    choices: tuple[object, ...]
    description: str


@dataclass(frozen=True)
class EntryPoint:
    name: str
    short_description: str
    rows: tuple[Row, ...]


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not YAML: {error}") from error


def load_specs(role: Path) -> dict[str, dict[str, Any]]:
    """The entry points of `role/meta/argument_specs.yml`, in file order."""
    path = role / "meta" / "argument_specs.yml"
    data = _load_yaml(path)
    specs = data.get("argument_specs") if isinstance(data, dict) else None
    if not isinstance(specs, dict):
        raise SpecError(f"{path}: no argument_specs mapping")
    out: dict[str, dict[str, Any]] = {}
    for name, entry in specs.items():
        if not isinstance(entry, dict):
            raise SpecError(f"{path}: entry point {name} is not a mapping")
        out[str(name)] = entry
    return out


def load_defaults(role: Path) -> dict[str, Any]:
    """`role/defaults/main.yml` ({} when the role has none)."""
    path = role / "defaults" / "main.yml"
    if not path.is_file():
        return {}
    data = _load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError(f"{path}: not a mapping")
    return {str(k): v for k, v in data.items()}


def _text(value: object) -> str:
    """A description (a string or a list of paragraphs) on one line."""
    if value is None:
        return ""
    parts = value if isinstance(value, list) else [value]
    return " ".join(" ".join(str(p).split()) for p in parts)


def _type(spec: Mapping[str, Any]) -> str:
    kind = str(spec.get("type", "str"))
    if kind == "list" and "elements" in spec:
        return f"list of {spec['elements']}"
    return kind


def _rows(options: Mapping[str, Any], prefix: str = "") -> Iterator[Row]:
    for name, spec in options.items():
        spec = spec if isinstance(spec, dict) else {}
        choices = spec.get("choices") or []
        yield Row(
            name=f"{prefix}{name}",
            type=_type(spec),
            required=bool(spec.get("required", False)),
            default=spec.get("default", _MISSING),
            choices=tuple(choices) if isinstance(choices, list) else (choices,),
            description=_text(spec.get("description")),
        )
        nested = spec.get("options")
        if isinstance(nested, dict):
            yield from _rows(nested, f"{prefix}{name}.")


def entry_points(specs: Mapping[str, Mapping[str, Any]]) -> list[EntryPoint]:
    return [
        EntryPoint(
            name=name,
            short_description=_text(entry.get("short_description")),
            rows=tuple(_rows(entry.get("options") or {})),
        )
        for name, entry in specs.items()
    ]


def _escape(text: str) -> str:
    """Text in a Markdown table cell: `|` would end the cell, `<` would start HTML."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<")


def _code(text: str) -> str:
    """A code span in a table cell (its `|` escaped, as GitHub's tables want)."""
    text = text.replace("|", "\\|")
    if "`" in text:
        return f"`` {text} ``"
    return f"`{text}`"


def _value(value: object) -> str:
    """A YAML value as it would be written in defaults/main.yml."""
    if isinstance(value, str):
        # Jinja as it is; plain when YAML reads it back as the same string, else quoted
        # ("04:00", "", "yes").
        if _jinja(value):
            return " ".join(value.split())
        try:
            plain = (
                value != ""
                and "\n" not in value
                and not re.fullmatch(r"[0-9:.+-]+", value)  # "04:00", "50000-50100": quoted
                and yaml.safe_load(value) == value
            )
        except yaml.YAMLError:
            plain = False
        if plain:
            return value
        return json.dumps(value, ensure_ascii=False)
    dumped = yaml.safe_dump(
        value, default_flow_style=True, width=1_000_000, allow_unicode=True, sort_keys=False
    )
    return dumped.removesuffix("\n").removesuffix("\n...").strip()


def render_entry(entry: EntryPoint) -> str:
    lines = [f"### Entry point `{entry.name}`", ""]
    if entry.short_description:
        lines += [_escape(entry.short_description), ""]
    if not entry.rows:
        return "\n".join([*lines, "No variables."])
    lines += [
        "| variable | type | required | default | choices | description |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in entry.rows:
        default = "" if row.default is _MISSING else _code(_value(row.default))
        choices = ", ".join(_code(_value(c)) for c in row.choices)
        cells = [
            _code(row.name),
            _escape(row.type),
            "yes" if row.required else "no",
            default,
            choices,
            _escape(row.description),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(specs: Mapping[str, Mapping[str, Any]]) -> str:
    """The block between the markers, markers included."""
    body = "\n\n".join(render_entry(e) for e in entry_points(specs))
    return f"{BEGIN}\n\n{body}\n\n{END}"


def replace_block(readme: str, block: str) -> str:
    """README text with the block between the markers replaced; SpecError without markers."""
    start = readme.find(BEGIN)
    end = readme.find(END)
    if start < 0 or end < 0 or end < start or readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise SpecError(f"no single pair of markers ({BEGIN} ... {END})")
    return readme[:start] + block + readme[end + len(END) :]


def _jinja(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def same_value(a: object, b: object) -> bool:
    """Equal parsed YAML values, types included (True is not 1, 330 is not "5:30")."""
    if _jinja(a) or _jinja(b):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _entry_task_vars(role: Path, entry: str) -> dict[str, Any]:
    """The `vars:` of the top-level tasks of `tasks/<entry>.yml`: where an entry point other than
    `main` may keep its own defaults (a block's vars, which `-e` and include_role vars override)."""
    path = role / "tasks" / f"{entry}.yml"
    if not path.is_file():
        return {}
    tasks = _load_yaml(path)
    found: dict[str, Any] = {}
    for task in tasks if isinstance(tasks, list) else []:
        if isinstance(task, dict) and isinstance(task.get("vars"), dict):
            found.update({str(k): v for k, v in task["vars"].items()})
    return found


def entry_defaults(role: Path, entry: str) -> dict[str, tuple[str, Any]]:
    """Each variable's default as the entry point gets it, with where it comes from:
    `defaults/main.yml`; for another entry point, overlaid by `defaults/<entry>.yml`
    (`defaults_from`) and by the vars of the top-level tasks of `tasks/<entry>.yml`."""
    out = {name: ("defaults/main.yml", value) for name, value in load_defaults(role).items()}
    if entry != "main":
        extra = role / "defaults" / f"{entry}.yml"
        if extra.is_file():
            data = _load_yaml(extra)
            if isinstance(data, dict):
                out.update({str(k): (f"defaults/{entry}.yml", v) for k, v in data.items()})
        out.update({k: (f"tasks/{entry}.yml", v) for k, v in _entry_task_vars(role, entry).items()})
    return out


def defaults_problems(role: Path) -> list[str]:
    """Each disagreement between the defaults a role applies (`defaults/main.yml`; for an entry
    point other than `main`, also its own, see `entry_defaults`) and the specs' `default:`."""
    specs = load_specs(role)
    problems: list[str] = []
    declared: set[str] = set()
    where = f"{role.name}"
    for entry_name, entry in specs.items():
        defaults = entry_defaults(role, entry_name)
        for name, spec in (entry.get("options") or {}).items():
            spec = spec if isinstance(spec, dict) else {}
            declared.add(name)
            at = f"{where}: {name} (entry point {entry_name})"
            spec_default = spec.get("default", _MISSING)
            source, value = defaults.get(name, ("defaults/main.yml", _MISSING))
            if spec.get("required", False):
                if value is not _MISSING:
                    problems.append(f"{at}: required in the specs, yet {source} gives a default")
                continue
            if spec_default is _MISSING and value is not _MISSING:
                problems.append(f"{at}: {source} gives {_value(value)!s}, the specs give no default")
            elif spec_default is not _MISSING and value is _MISSING:
                sources = (
                    "defaults/main.yml"
                    if entry_name == "main"
                    else (f"defaults/main.yml, defaults/{entry_name}.yml and tasks/{entry_name}.yml")
                )
                problems.append(f"{at}: the specs give default {_value(spec_default)!s}, {sources} have none")
            elif spec_default is not _MISSING and not same_value(spec_default, value):
                shown = (_value(spec_default), _value(value))
                if shown[0] == shown[1]:  # Jinja that differs in its spacing only
                    shown = (json.dumps(spec_default), json.dumps(value))
                problems.append(f"{at}: the specs give default {shown[0]}, {source} gives {shown[1]}")
    for name in load_defaults(role):
        if name not in declared:
            problems.append(f"{where}: {name}: in defaults/main.yml but in no entry point of the specs")
    return problems


def roles(roles_dir: Path) -> list[Path]:
    return sorted(p.parent.parent for p in roles_dir.glob("*/meta/argument_specs.yml"))


def check(roles_dir: Path) -> list[str]:
    """Every stale README block and every defaults/specs disagreement, one line each."""
    problems: list[str] = []
    for role in roles(roles_dir):
        readme = role / "README.md"
        name = f"{role.name}/README.md"
        try:
            block = render(load_specs(role))
            if not readme.is_file():
                problems.append(f"{name}: missing")
            else:
                text = readme.read_text(encoding="utf-8")
                if replace_block(text, block) != text:
                    problems.append(
                        f"{name}: stale argument_specs block (python -m vpsfleet.role_docs write)"
                    )
        except SpecError as error:
            problems.append(f"{name}: {error}")
        try:
            problems += defaults_problems(role)
        except SpecError as error:
            problems.append(f"{role.name}: {error}")
    return problems


def write(roles_dir: Path) -> list[Path]:
    """Rewrite the block of every README that has the markers; the READMEs changed."""
    changed: list[Path] = []
    for role in roles(roles_dir):
        readme = role / "README.md"
        text = readme.read_text(encoding="utf-8")
        try:
            new = replace_block(text, render(load_specs(role)))
        except SpecError as error:
            raise SpecError(f"{readme}: {error}") from error
        if new != text:
            readme.write_text(new, encoding="utf-8")
            changed.append(readme)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpsfleet.role_docs", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["write", "check"])
    parser.add_argument("--roles", type=Path, default=ROOT / "ansible" / "roles", help="the roles folder")
    args = parser.parse_args(argv)
    roles_dir: Path = args.roles
    if args.command == "write":
        try:
            changed = write(roles_dir)
        except SpecError as error:
            print(f"role_docs: {error}", file=sys.stderr)
            return 1
        for path in changed:
            print(f"wrote {path}")
        return 0
    problems = check(roles_dir)
    for problem in problems:
        print(problem)
    if problems:
        print(f"role_docs: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"role_docs: {len(roles(roles_dir))} roles agree with their argument_specs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
