from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.pulumi.libvirtd import Libvirtd, available, private_libvirtd


@pytest.fixture(scope="session")
def libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Libvirtd]:
    """One private libvirtd (own network namespace, own state) for the libvirt tests."""
    reason = available()
    if reason:
        pytest.skip(reason)
    libvirt: Any = pytest.importorskip("libvirt")
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # errors raise; no stderr noise
    with private_libvirtd(tmp_path_factory.mktemp("libvirtd"), "pulumi") as daemon:
        yield daemon
