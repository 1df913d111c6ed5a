"""FastNetMon's notify hook (M28): a recorded attack notification opens the mitigation start as a
commit on a new branch of a fleet checkout; local git repositories only."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from vpsfleet.cli import main
from vpsfleet.loader import parse, read_yaml
from vpsfleet.mitigation_hook import HookError, parse_notification

from .test_mitigation import FLEET

# What FastNetMon wrote on the notify script's stdin for a ban (its attack description, then a
# sample of the attack's packets), and the four arguments it passed.
RECORDED = Path(__file__).with_name("test_mitigation_fastnetmon_ban.txt")
BAN = ["198.51.100.11", "incoming", "254112", "ban"]
NOW = "2026-12-01T10:00:00Z"
BRANCH = "mitigation/web2-20261201T100000Z"
FLEET_PATH = "inventories/prod/fleet.yml"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A fleet repository (`main` holds inventories/prod/fleet.yml) with a bare `origin`."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    repo = tmp_path / "fleet-repo"
    (repo / "inventories" / "prod").mkdir(parents=True)
    (repo / FLEET_PATH).write_text(FLEET)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "Fleet Ops")
    git(repo, "config", "user.email", "ops@mitigation.example.net")
    git(repo, "add", FLEET_PATH)
    git(repo, "commit", "-qm", "the fleet")
    git(repo, "remote", "add", "origin", str(origin))
    return repo


def hook(repo: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str = "",
         *extra: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["mitigation", "hook", "prod", "--repo", str(repo), "--now", NOW, *extra, *args])


def fleet_at(repo: Path, rev: str) -> dict[str, object]:
    data, problems = read_yaml(git(repo, "show", f"{rev}:{FLEET_PATH}"))
    assert problems == []
    fleet, problems = parse(data, repo / FLEET_PATH)
    assert problems == [] and fleet is not None
    guest = fleet.guest("web2")
    assert guest is not None
    return {} if guest.mitigation is None else guest.mitigation.model_dump()


def test_the_recorded_ban_opens_the_start_on_a_branch(
        checkout: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    main_before = git(checkout, "rev-parse", "main")
    assert hook(checkout, monkeypatch, BAN, RECORDED.read_text()) == 0
    assert f"committed on branch {BRANCH}" in capsys.readouterr().out
    # The checkout is back on main, clean, main untouched: the change waits for review.
    assert git(checkout, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(checkout, "status", "--porcelain") == ""
    assert git(checkout, "rev-parse", "main") == main_before
    # One commit on the branch, changing the fleet file only, by the web2 entry.
    assert git(checkout, "rev-list", "--count", f"main..{BRANCH}") == "1"
    assert git(checkout, "diff", "--name-only", "main", BRANCH) == FLEET_PATH
    assert fleet_at(checkout, "main") == {}
    reason = ("FastNetMon: incoming udp_flood (udp) on 198.51.100.11, 254112 pps "
              "(peak 261840 packets per second)")
    mitigation = fleet_at(checkout, BRANCH)
    assert (str(mitigation["since"]), mitigation["profile"], mitigation["reason"],
            mitigation["ends_at"]) == ("2026-12-01 10:00:00+00:00", "web", reason, None)
    message = git(checkout, "log", "-1", "--format=%B", BRANCH)
    assert message.startswith(f"mitigation start web2: {reason}\n")
    # web2's offer has no minimum of its own: the policy's 24 h.
    assert "at least 24 h: it may end from 2026-12-02T10:00:00Z on" in message
    assert "Customer notice: mitigation_start" in message
    assert "Attack type: udp_flood" in message
    assert "198.51.100.11:306 < 203.0.113.10:53 34298 bytes 11 packets" in message
    assert git(checkout, "log", "-1", "--format=%an <%ae>", BRANCH) == (
        "Fleet Ops <ops@mitigation.example.net>")


def test_push_sends_the_branch_to_the_remote(checkout: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert hook(checkout, monkeypatch, BAN, RECORDED.read_text(), "--push", "origin") == 0
    origin = checkout.parent / "origin.git"
    assert git(origin, "rev-parse", BRANCH) == git(checkout, "rev-parse", BRANCH)


def test_a_second_ban_while_the_change_is_open_changes_nothing(
        checkout: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert hook(checkout, monkeypatch, BAN, RECORDED.read_text()) == 0
    branches = git(checkout, "branch", "--list")
    capsys.readouterr()
    assert hook(checkout, monkeypatch, BAN, RECORDED.read_text()) == 1
    assert f"a mitigation change is already open ({BRANCH})" in capsys.readouterr().err
    assert git(checkout, "branch", "--list") == branches


def test_a_guest_already_under_mitigation_on_main_changes_nothing(
        checkout: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert hook(checkout, monkeypatch, BAN, RECORDED.read_text()) == 0
    git(checkout, "merge", "-q", "--ff-only", BRANCH)
    git(checkout, "branch", "-q", "-d", BRANCH)
    head = git(checkout, "rev-parse", "HEAD")
    assert hook(checkout, monkeypatch, BAN, RECORDED.read_text()) == 1
    assert "already under mitigation since 2026-12-01T10:00:00Z" in capsys.readouterr().err
    assert git(checkout, "rev-parse", "HEAD") == head
    assert git(checkout, "branch", "--list", "mitigation/*") == ""
    assert git(checkout, "status", "--porcelain") == ""


def test_unban_is_ignored(checkout: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    assert hook(checkout, monkeypatch, [*BAN[:3], "unban"]) == 0
    assert "unban of 198.51.100.11 ignored" in capsys.readouterr().out
    assert git(checkout, "branch", "--list") == "* main"


def test_an_unknown_address_is_refused_and_changes_nothing(
        checkout: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    text = RECORDED.read_text().replace("198.51.100.11", "198.51.100.99")
    assert hook(checkout, monkeypatch, ["198.51.100.99", *BAN[1:]], text) == 1
    err = capsys.readouterr().err
    assert "198.51.100.99 is no live guest's or dedicated server's address in the fleet" in err
    assert "nothing was changed" in err
    assert git(checkout, "branch", "--list") == "* main"
    assert git(checkout, "status", "--porcelain") == ""
    # A dedicated server's address is named, and left alone too when nothing can mitigate it.
    assert hook(checkout, monkeypatch, ["198.51.100.20", *BAN[1:]], text) == 1
    assert ("198.51.100.20 is dedicated server dedi1, whose datacenter dc-a has no edge router"
            in capsys.readouterr().err)
    assert git(checkout, "branch", "--list") == "* main"


def test_a_dedicated_server_behind_an_edge_router_gets_the_start(
        checkout: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """004 (M28): the datacenter's edge router mitigates a dedicated server; the hook opens its
    start like a guest's, on the server's entry, with the offer's minimum (ITSGOW: 26 h)."""
    fleet_file = checkout / FLEET_PATH
    fleet_file.write_text(fleet_file.read_text().replace(
        "    dns_resolvers: [198.51.100.2]\n",
        "    dns_resolvers: [198.51.100.2]\n    edge_router: {name: edge-a, address: 198.51.100.2}\n",
        1))
    git(checkout, "commit", "-qam", "an edge router in dc-a")
    text = RECORDED.read_text().replace("198.51.100.11", "198.51.100.20")
    assert hook(checkout, monkeypatch, ["198.51.100.20", *BAN[1:]], text) == 0
    branch = "mitigation/dedi1-20261201T100000Z"
    assert f"committed on branch {branch}" in capsys.readouterr().out
    assert git(checkout, "diff", "--name-only", "main", branch) == FLEET_PATH
    data, problems = read_yaml(git(checkout, "show", f"{branch}:{FLEET_PATH}"))
    assert problems == []
    fleet, problems = parse(data, checkout / FLEET_PATH)
    assert problems == [] and fleet is not None
    server = next(s for s in fleet.dedicated_servers if s.name == "dedi1")
    assert server.mitigation is not None and server.mitigation.profile == "web"
    assert fleet_at(checkout, branch) == {}  # web2 untouched
    message = git(checkout, "log", "-1", "--format=%B", branch)
    assert message.startswith("mitigation start dedi1: FastNetMon: incoming udp_flood (udp) on 198.51.100.20")
    assert "at least 26 h" in message


def test_the_pro_customers_profile_is_the_one_the_hook_starts(
        checkout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hook(checkout, monkeypatch, ["198.51.100.12", *BAN[1:]], RECORDED.read_text()) == 0
    shown = git(checkout, "show", f"mitigation/pro1-20261201T100000Z:{FLEET_PATH}")
    assert "      mitigation_profile: strict\n" in shown
    assert "    mitigation:\n      since: 2026-12-01T10:00:00Z\n      profile: strict\n" in shown


def test_a_dirty_checkout_is_refused(checkout: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (checkout / FLEET_PATH).write_text(FLEET + "# an edit in progress\n")
    assert hook(checkout, monkeypatch, BAN, RECORDED.read_text()) == 1
    assert "has uncommitted changes" in capsys.readouterr().err
    assert (checkout / FLEET_PATH).read_text().endswith("# an edit in progress\n")
    assert git(checkout, "branch", "--list") == "* main"


def test_bad_arguments_are_all_named() -> None:
    with pytest.raises(HookError) as err:
        parse_notification(["198.51.100.300", "sideways", "lots", "kick"], "")
    assert str(err.value) == (
        "address '198.51.100.300' is not an IPv4 address; direction 'sideways' is not one of "
        "incoming, outgoing, other; packets per second 'lots' is not a number; action 'kick' is "
        "not one of ban, unban, attack_details")
