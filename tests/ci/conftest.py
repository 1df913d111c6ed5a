from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .notes_api import NotesApi, serve_notes_api
from .pipeline import FleetRepo, install_tools


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    return install_tools()


@pytest.fixture
def fleet_repo(tmp_path: Path, gitlab_ci_local: Path) -> FleetRepo:
    return FleetRepo(tmp_path / "fleet", gitlab_ci_local)


@pytest.fixture
def notes_api() -> Iterator[NotesApi]:
    with serve_notes_api() as api:
        yield api
