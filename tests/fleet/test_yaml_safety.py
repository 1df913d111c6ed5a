"""What a reviewer reads is what the tools read: duplicate keys, anchors and aliases are refused,
with their place, by validation and by every command that edits the file; nothing expands."""

from __future__ import annotations

import datetime as dt
import io
import time
import tracemalloc
from pathlib import Path

import pytest

from vpsfleet.cli import main
from vpsfleet.fleet_edit import load_document, round_trip
from vpsfleet.loader import FleetInvalid, check_fleet

from .conftest import TODAY


def billion_laughs() -> str:
    """Nine levels of nine aliases: 9**9 (387 million) strings once expanded, in about 1 KB,
    given where a problem quotes the value it refuses."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 10):
        aliases = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    return "\n".join(lines) + "\nenvironment: *a9\n"


def test_a_billion_laughs_is_refused_quickly_with_little_memory(tmp_path: Path) -> None:
    text = billion_laughs()
    assert len(text) < 1200
    path = tmp_path / "fleet.yml"
    path.write_text(text)
    tracemalloc.start()
    started = time.perf_counter()
    fleet, problems = check_fleet(path, today=TODAY)
    elapsed = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert fleet is None
    assert elapsed < 1.0
    assert peak < 5_000_000
    # Every anchor and alias, each with its place, and nothing else (nothing was built).
    assert len(problems) == 10 + 81 + 1
    assert problems[0].location == "a0"
    assert problems[0].message.startswith("YAML anchor &a0 at line 1, column 5: ")
    assert problems[-2].location == "a9[8]"
    assert problems[-2].message.startswith("YAML alias *a8 at line 10, column ")
    assert problems[-1].location == "environment"
    assert problems[-1].message.startswith("YAML alias *a9 at line 11, column 14: ")


def test_anchors_in_comments_and_strings_are_text(minimal_copy: Path) -> None:
    text = minimal_copy.read_text().replace("name: Customer One,", "name: 'R&D * Co',")
    minimal_copy.write_text(text + "# &anchor *alias in a comment\n")
    assert check_fleet(minimal_copy, today=TODAY)[1] == []


DUPLICATE = ("ipv4: 198.51.100.11}", "ipv4: 198.51.100.11, ipv4: 198.51.100.12}")
ALIAS = ("host: hv1, image: debian-12, ipv4: 198.51.100.10}",
         "host: &h hv1, image: debian-12, ipv4: 198.51.100.10}")

EDITS = [
    ["ipam", "allocate", "{f}", "web2"],
    ["ipam", "release", "{f}", "web2"],
    ["ipam", "free", "{f}", "dc-a"],
    ["smtp", "block", "{f}", "web2", "--reason", "spam", "--now", "2026-11-23T10:00:00Z"],
    ["smtp", "unblock", "{f}", "web2", "--reason", "fixed", "--now", "2026-11-23T10:00:00Z"],
    ["suspend", "{f}", "web2", "--now", "2026-11-23T10:00:00Z"],
    ["resume", "{f}", "web2", "--now", "2026-11-23T10:00:00Z"],
    ["resize", "{f}", "web2", "s", "--now", "2026-11-23T10:00:00Z"],
    ["terminate", "{f}", "web2", "--now", "2026-11-23T10:00:00Z"],
    ["show", "{f}", "--today", "2026-11-23"],
    ["backup-plan", "{f}"],
]


@pytest.mark.parametrize("defect", [DUPLICATE, ALIAS], ids=["duplicate-key", "alias"])
@pytest.mark.parametrize("command", EDITS, ids=lambda c: "-".join(c[:2]).replace("-{f}", ""))
def test_every_command_refuses_the_file_with_located_problems(
    minimal_copy: Path, capsys: pytest.CaptureFixture[str], command: list[str],
    defect: tuple[str, str],
) -> None:
    minimal_copy.write_text(minimal_copy.read_text().replace(*defect))
    before = minimal_copy.read_bytes()
    assert main([arg.format(f=minimal_copy) for arg in command]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith(f"{minimal_copy}: ")
    assert ("guests[1].ipv4: duplicate key 'ipv4' at line 40, column 130" in first
            or "guests[0].host: YAML anchor &h at line 39, column 84" in first)
    assert minimal_copy.read_bytes() == before


def test_an_edit_of_a_file_that_changed_underneath_is_a_problem(minimal_copy: Path) -> None:
    minimal_copy.write_text(minimal_copy.read_text().replace(*DUPLICATE))
    with pytest.raises(FleetInvalid) as caught:
        load_document(minimal_copy)
    [problem] = caught.value.problems
    assert problem.message.startswith("cannot edit at line 40, column 130: ")


def test_an_edit_never_writes_anchors() -> None:
    day = dt.date(2026, 11, 23)
    doc = round_trip().load("a: 1\n")
    doc["b"], doc["c"] = day, day
    buffer = io.StringIO()
    round_trip().dump(doc, buffer)
    assert buffer.getvalue() == "a: 1\nb: 2026-11-23\nc: 2026-11-23\n"


def test_a_bad_now_is_a_usage_error(minimal_copy: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["suspend", str(minimal_copy), "web2", "--now", "2026-02-30T10:00:00Z"])
    assert caught.value.code == 2
    assert "is not an ISO-8601 instant" in capsys.readouterr().err


def test_a_suspension_reason_is_one_line(minimal_copy: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = minimal_copy.read_bytes()
    assert main(["suspend", str(minimal_copy), "web2", "--reason", "unpaid\nstate: active",
                 "--now", "2026-11-23T10:00:00Z"]) == 1
    assert "holds a control character" in capsys.readouterr().err
    assert minimal_copy.read_bytes() == before
