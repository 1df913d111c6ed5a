from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
TODAY = dt.date(2026, 11, 23)


@pytest.fixture
def lab_copy(tmp_path: Path) -> Path:
    """A scratch copy of the lab fleet that a test may edit."""
    target = tmp_path / "fleet.yml"
    shutil.copy(REPO / "inventories" / "lab" / "fleet.yml", target)
    return target


@pytest.fixture
def minimal_copy(tmp_path: Path) -> Path:
    target = tmp_path / "fleet.yml"
    shutil.copy(CORPUS / "valid-minimal.yml", target)
    return target
