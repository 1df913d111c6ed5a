"""A program's JSON configuration file, read whole: every problem with its location, never a
traceback (the traffic job on hosts, the audit on monitors)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """The configuration is unusable: `problems` lists each one with its location."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def load_config(path: Path, parse: Callable[[Any, Path], T]) -> T:
    """The file's JSON handed to `parse(data, path)`, which raises ConfigError for its own
    problems; an unreadable file or invalid JSON is one ConfigError too."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(path, [f"cannot read: {error.strerror or error}"]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            path, [f"line {error.lineno} column {error.colno}: not JSON: {error.msg}"]
        ) from None
    return parse(data, path)


def bad_configuration(error: ConfigError) -> int:
    """A program's answer to a bad configuration: every problem as one JSON line, exit 2."""
    print(json.dumps({"error": "bad configuration", "file": str(error.path), "problems": error.problems}))
    sys.stdout.flush()
    return 2
