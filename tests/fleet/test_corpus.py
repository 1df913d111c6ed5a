"""Every invalid fleet file of the corpus is refused with exactly the problems it announces."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpsfleet.cli import main
from vpsfleet.loader import check_fleet

from .conftest import CORPUS, TODAY

INVALID = sorted(p for p in CORPUS.glob("*.yml") if p.name != "valid-minimal.yml")


def expected_problems(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect: ")
        for line in path.read_text().splitlines()
        if line.startswith("# expect: ")
    ]


def test_corpus_has_at_least_seventy_files_and_several_with_many_problems() -> None:
    assert len(INVALID) >= 70
    assert sum(1 for p in INVALID if len(expected_problems(p)) > 1) >= 3


def test_the_corpus_base_is_valid() -> None:
    fleet, problems = check_fleet(CORPUS / "valid-minimal.yml", today=TODAY)
    assert problems == []
    assert fleet is not None and [g.name for g in fleet.guests] == ["web1", "web2"]


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fleet_is_refused_with_every_problem_located(path: Path) -> None:
    expected = expected_problems(path)
    assert expected, f"{path.name} announces no problem"
    _fleet, problems = check_fleet(path, today=TODAY)
    rendered = [p.render("FILE").removeprefix("FILE: ") for p in problems]
    assert rendered == expected


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_the_command_line_prints_the_problems_and_exits_non_zero(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every invalid file: located problems on stderr and exit 1, never a traceback."""
    assert main(["validate", str(path), "--today", TODAY.isoformat()]) == 1
    *lines, last = capsys.readouterr().err.splitlines()
    assert [line.split(f"{path.name}: ", 1)[1] for line in lines] == expected_problems(path)
    assert last.endswith("problem(s): fix them first; nothing was applied.")
