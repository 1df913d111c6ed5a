"""Helpers for the common role's checks: throwaway keys copied into the guests, SSH logins made
from inside a guest to itself (the only network the checks use is the container's own)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

KEYS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "keys"
GUESTS = ("common-managed", "common-unmanaged")


@pytest.fixture(scope="session", autouse=True)
def keys_in_guests() -> None:
    """The operator's and customers' private keys, in /root/.molecule-keys of each guest."""
    for guest in GUESTS:
        subprocess.run(["podman", "exec", guest, "mkdir", "-p", "/root/.molecule-keys"], check=True)
        for name in ("ops", "alpha", "bravo"):
            subprocess.run(
                ["podman", "cp", str(KEYS / name), f"{guest}:/root/.molecule-keys/{name}"],
                check=True,
            )


@pytest.fixture
def ssh(host) -> Callable[..., object]:  # type: ignore[no-untyped-def]
    """`ssh("ops", "alpha", "sudo -n true")`: log in to this guest as USER with KEY, run CMD."""

    def run(user: str, key: str, command: str = "true", *options: str) -> object:
        extra = "".join(f" -o {option}" for option in options)
        return host.run(
            "ssh -i /root/.molecule-keys/%s -o BatchMode=yes -o StrictHostKeyChecking=no "
            f"-o UserKnownHostsFile=/dev/null -o ConnectTimeout=10{extra} %s@127.0.0.1 %s",
            key,
            user,
            command,
        )

    return run
