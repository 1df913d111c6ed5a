"""Where an environment's fleet file is: `inventories/<env>/fleet.yml` in the repository."""

from __future__ import annotations

import os
from pathlib import Path


class UnknownEnvironment(Exception):
    pass


def repo_root() -> Path:
    """VPSFLEET_ROOT, else the nearest parent of the working directory holding `inventories/`,
    else the checkout this package was installed from."""
    if os.environ.get("VPSFLEET_ROOT"):
        return Path(os.environ["VPSFLEET_ROOT"])
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "inventories").is_dir():
            return folder
    return Path(__file__).resolve().parent.parent


def fleet_path(env: str) -> Path:
    """ENV is an environment name, a folder holding fleet.yml, or a fleet file."""
    candidate = Path(env)
    if candidate.is_file():
        return candidate
    if candidate.is_dir() and (candidate / "fleet.yml").is_file():
        return candidate / "fleet.yml"
    inventories = repo_root() / "inventories"
    path = inventories / env / "fleet.yml"
    if path.is_file():
        return path
    known = sorted(p.parent.name for p in inventories.glob("*/fleet.yml"))
    raise UnknownEnvironment(
        f"no environment {env!r}: expected {path} (known: {', '.join(known) or 'none'})"
    )


def display_path(path: Path) -> str:
    """The path as an operator reads it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(repo_root().resolve()))
    except ValueError:
        return str(path)
