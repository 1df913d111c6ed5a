"""The timing table at the end of `make test`: parts longest first, the total last, the budget."""

from __future__ import annotations

import json

from tests.conftest import part_of
from tests.timing_table import render


def _line(part: str, seconds: float) -> str:
    return json.dumps({"part": part, "seconds": seconds})


def test_parts_longest_first_and_total_last() -> None:
    table = render([_line("lint ruff", 6), _line("pytest fleet", 120), "",
                    _line("make test (wall clock)", 600), _line("lint mypy", 60),
                    _line("pytest (wall clock)", 500)]).splitlines()
    rows = [line.split()[0:2] for line in table if line.startswith(("lint", "pytest", "make"))]
    assert rows == [["pytest", "fleet"], ["lint", "mypy"], ["lint", "ruff"], ["pytest", "(wall"],
                    ["make", "test"]]
    assert not any("over the" in line for line in table)


def test_over_budget_is_said() -> None:
    assert "over the 40-minute budget" in render([_line("make test (wall clock)", 41 * 60)])


def test_parts_are_folders_and_molecule_scenarios() -> None:
    assert part_of("tests/fleet/test_ipam.py::test_allocate[a]") == "fleet"
    assert part_of("tests/molecule/test_scenarios.py::test_molecule_scenario[.:site]") == "molecule .:site"
    assert part_of("tests/molecule/test_scenarios.py::test_every_role_has_a_scenario") == "molecule"
