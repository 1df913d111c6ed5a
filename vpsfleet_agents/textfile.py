"""Metrics for the node exporter's textfile collector (Prometheus text format 0.0.4)."""

from __future__ import annotations

import os

from vpsfleet_agents.atomic import write_atomic


def label_value(value: str) -> str:
    """A label value escaped as the text format wants: backslash, double quote, line feed."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels(**pairs: str) -> str:
    """`{name="value",...}` in the order given; empty pairs give an empty string."""
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{label_value(v)}"' for k, v in pairs.items()) + "}"


def write(path: str | os.PathLike[str], lines: list[str]) -> None:
    """Replace the collector's file whole (it may read at any moment), world-readable."""
    write_atomic(path, "\n".join(lines) + "\n", 0o644)
