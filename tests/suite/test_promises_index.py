"""docs/promises.md, the index of the service terms' promises: every id is there, every id is held
by a test that cites it or is marked pending with its issue, and every path it names exists."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERMS = ROOT.parent / "shared" / "SERVICE-TERMS.md"  # CI has ../shared beside the checkout
INDEX = ROOT / "docs" / "promises.md"
# Where tests live: pytest's tree, the Molecule scenarios spanning roles, each role's scenario.
TEST_TREES = ("tests", "molecule", "ansible/roles/*/molecule")
TEXT_SUFFIXES = {".py", ".yml", ".yaml", ".md", ".txt", ".j2", ".sh", ".json", ".cfg", ".ini"}
ROW = re.compile(r"^\| (M\d+) \|(.*)\|\s*$")
PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.*-]+)+/?")
# "M14", or a range such as "M18-M24" (also with an en dash or "..") that cites each id inside.
CITATION = re.compile(r"\bM(\d+)(?:\s?(?:-|\u2013|\.\.)\s?M(\d+))?\b")


def term_ids() -> list[str]:
    if not TERMS.is_file():
        pytest.skip(f"{TERMS} is absent: the service terms live in shared/, beside the checkout")
    return [m.group(1) for line in TERMS.read_text(encoding="utf-8").splitlines() if (m := ROW.match(line))]


def index_rows() -> dict[str, list[str]]:
    """Each id of docs/promises.md with its cells (promise, kept in, held by, status)."""
    rows: dict[str, list[str]] = {}
    for line in INDEX.read_text(encoding="utf-8").splitlines():
        if m := ROW.match(line):
            assert m.group(1) not in rows, f"{m.group(1)} has two rows in docs/promises.md"
            rows[m.group(1)] = [cell.strip() for cell in m.group(2).split(" | ")]
    return rows


@cache
def cited_in_tests() -> frozenset[str]:
    """The ids that some test file cites (a docstring, a comment, a marker, a scenario's file)."""
    ids: set[str] = set()
    this = Path(__file__).resolve()
    for pattern in TEST_TREES:
        for tree in ROOT.glob(pattern):
            for path in tree.rglob("*"):
                if path.suffix not in TEXT_SUFFIXES or "__pycache__" in path.parts or path.resolve() == this:
                    continue
                for m in CITATION.finditer(path.read_text(encoding="utf-8", errors="replace")):
                    first = int(m.group(1))
                    last = int(m.group(2)) if m.group(2) else first
                    ids.update(f"M{n}" for n in range(first, last + 1))
    return frozenset(ids)


def test_the_terms_have_their_29_ids() -> None:
    assert term_ids() == [f"M{n}" for n in range(1, 30)]


def test_every_id_of_the_terms_is_in_the_index() -> None:
    ids = term_ids()
    rows = index_rows()
    assert sorted(set(ids) - set(rows)) == [], "ids of SERVICE-TERMS.md missing from docs/promises.md"
    assert sorted(set(rows) - set(ids)) == [], "ids of docs/promises.md that the terms do not have"
    for ident, cells in rows.items():
        assert len(cells) == 4 and all(cells[:2]), f"{ident}: promise, kept in, held by, status"


def test_every_status_is_kept_partly_kept_or_pending_with_its_issue() -> None:
    for ident, cells in index_rows().items():
        status = cells[-1]
        assert re.match(r"(kept|partly kept|pending)\b", status), f"{ident}: status {status!r}"
        if "pending" in status:
            assert re.search(r"\bissue \d+", status), f"{ident}: pending without its issue: {status!r}"


def test_every_id_is_cited_by_a_test_or_marked_pending() -> None:
    cited = cited_in_tests()
    uncovered = [
        ident for ident, cells in index_rows().items() if ident not in cited and "pending" not in cells[-1]
    ]
    assert uncovered == [], f"neither cited by a test nor marked pending in docs/promises.md: {uncovered}"


def test_every_path_the_index_names_exists() -> None:
    spans = re.findall(r"`([^`]+)`", INDEX.read_text(encoding="utf-8"))
    paths = [s for s in spans if PATH.fullmatch(s)]
    assert len(paths) > 50, "the index names the code and tests that keep each promise"
    missing = [p for p in paths if not (any(ROOT.glob(p)) if "*" in p else (ROOT / p).exists())]
    assert missing == [], f"paths named in docs/promises.md that do not exist: {missing}"


def test_the_citation_pattern_reads_single_ids_and_ranges() -> None:
    found = [m.groups() for m in CITATION.finditer("M14, M18-M24, M25\u2013M27, M3..M5, not XM9 nor M10x")]
    assert found == [("14", None), ("18", "24"), ("25", "27"), ("3", "5")]
