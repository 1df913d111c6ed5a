"""The programs of the patching and mail_sink roles, built from package `vpsfleet_agents` into
the roles' files folders (as `python -m vpsfleet.agent_build` does), so that the tests run the
very files the roles install."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from vpsfleet import agent_build

NAMES = ("vpsfleet-patch-notice", "vpsfleet-security-pending", "vpsfleet-mail-sink")


def build_agents() -> dict[str, Path]:
    """Build (when stale) this part's artifacts only, one builder at a time (test workers run in
    parallel); returns their paths by name."""
    artifacts = [a for a in agent_build.ARTIFACTS if a.name in NAMES]
    assert sorted(a.name for a in artifacts) == sorted(NAMES), "missing rows in agent_build.ARTIFACTS"
    paths = {a.name: agent_build.target(a) for a in artifacts}
    with (agent_build.ROOT / "vpsfleet" / "agent_build.py").open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for artifact in artifacts:
            data = agent_build.build_bytes(artifact)
            path = paths[artifact.name]
            if path.exists() and path.read_bytes() == data:
                continue
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            tmp.chmod(0o755)
            tmp.replace(path)
    return paths
