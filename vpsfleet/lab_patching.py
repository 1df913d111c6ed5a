"""What the lab's nightly security upgrade did (M14), for `make lab`.

    python -m vpsfleet.lab_patching summary artifacts/upgrade-now

The folder is what ansible/playbooks/lab.yml leaves there: one GUEST.json per managed guest
(role patching, entry point upgrade_now: the packages its nightly upgrades installed and its last
notice) and sink.json (where the lab's mail sink keeps each guest's notice). One line per guest:
what was patched, the notice (language, recipient, announced reboot) and its file in the sink's
Maildir. Exit 1 when a notice that was sent is not in the sink.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SINK = "sink.json"


@dataclass(frozen=True)
class GuestPatch:
    guest: str
    upgraded: tuple[str, ...]  # "package version": what the nightly upgrades installed, as now
    updated: tuple[str, ...]  # "package old -> new", from the notice (every recent upgrade)
    notice: Mapping[str, Any]  # the guest's notice.json ({} when none was ever sent)
    mail_files: tuple[str, ...]  # where the sink keeps the notice

    def patched(self) -> list[str]:
        """What the nightly upgrades installed, "package old -> new" when the notice says it (the
        notice also lists what an operator's apt run updated)."""
        names = [u.split()[0] for u in self.upgraded]
        said = {u.split()[0]: u for u in self.updated}
        return [said.get(name, upgraded) for name, upgraded in zip(names, self.upgraded, strict=True)]

    @property
    def notice_sent(self) -> bool:
        return bool(self.notice.get("message_id"))


def load(folder: Path) -> tuple[str, list[GuestPatch]]:
    """The sink's name and each guest's record, by guest name."""
    sink_path = folder / SINK
    sink: dict[str, Any] = json.loads(sink_path.read_text(encoding="utf-8")) if sink_path.exists() else {}
    where: Mapping[str, list[str]] = sink.get("notices") or {}
    guests = []
    for path in sorted(folder.glob("*.json")):
        if path.name == SINK:
            continue
        record = json.loads(path.read_text(encoding="utf-8"))
        notice: dict[str, Any] = record.get("notice") or {}
        upgraded: Mapping[str, str] = record.get("upgraded") or {}
        guests.append(
            GuestPatch(
                guest=record["guest"],
                upgraded=tuple(f"{name} {version}" for name, version in sorted(upgraded.items())),
                updated=tuple(notice.get("updated") or ()),
                notice=notice,
                mail_files=tuple(where.get(record["guest"], ())),
            )
        )
    return str(sink.get("sink") or "the mail sink"), guests


def lines(sink: str, guests: Sequence[GuestPatch]) -> list[str]:
    """One line per guest: what was patched, and where its notice is."""
    out = []
    for g in guests:
        patched = ", ".join(g.patched()) or "nothing (no security update)"
        if not g.notice_sent:
            told = "no notice (nothing asks for a reboot or a restart)"
        else:
            what = (
                "reboot"
                if g.notice.get("reboot")
                else "restart of " + ", ".join(g.notice.get("services", []))
            )
            told = (
                f"notice ({g.notice.get('language', '?')}) to {g.notice.get('to', '?')}, sent "
                f"{g.notice.get('sent_at', '?')}, {what} announced for {g.notice.get('reboot_at', '?')}: "
                + (", ".join(f"{sink}:{f}" for f in g.mail_files) if g.mail_files else f"NOT in {sink}")
            )
        out.append(f"  {g.guest}: patched {patched}; {told}")
    return out


def missing(guests: Sequence[GuestPatch]) -> list[str]:
    """The guests whose notice was sent but is not in the sink."""
    return [g.guest for g in guests if g.notice_sent and not g.mail_files]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vpsfleet.lab_patching", description="what the lab's nightly security upgrade did"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "summary", help="one line per managed guest: what was patched, where its notice is"
    )
    p.add_argument("folder", type=Path, help="the records' folder (artifacts/upgrade-now)")
    args = parser.parse_args(argv)
    sink, guests = load(args.folder)
    if not guests:
        print(f"no guest records in {args.folder} (run ansible/playbooks/lab.yml)", file=sys.stderr)
        return 1
    for line in lines(sink, guests):
        print(line)
    lost = missing(guests)
    if lost:
        print(f"notices sent but not in {sink}: {', '.join(lost)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
