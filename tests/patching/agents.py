"""The programs of the patching and mail_sink roles, built from package `vpsfleet_agents` into
the roles' files folders (vpsfleet.agent_build), so that the tests run the very files the roles
install."""

from __future__ import annotations

from pathlib import Path

from vpsfleet import agent_build

NAMES = ("vpsfleet-patch-notice", "vpsfleet-security-pending", "vpsfleet-mail-sink")


def build_agents() -> dict[str, Path]:
    """Build what is stale; returns this part's artifacts' paths by name."""
    paths = {name: path for name, path in agent_build.built().items() if name in NAMES}
    assert sorted(paths) == sorted(NAMES), "missing rows in agent_build.ARTIFACTS"
    return paths
