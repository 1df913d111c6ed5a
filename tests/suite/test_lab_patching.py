"""vpsfleet.lab_patching: the summary `make lab` prints of the nightly security upgrade (M14),
from the records ansible/playbooks/lab.yml leaves (no lab needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpsfleet import lab_patching

NOTICE = {
    "status": "sent",
    "sent_at": "2026-12-03T17:02:11+01:00",
    "reboot_at": "2026-12-05T05:00+01:00",
    "reboot": True,
    "services": [],
    # The notice lists every recent upgrade; the summary says what the nightly upgrade installed.
    "updated": ["liblzma5 5.4.1-1+deb12u1 -> 5.4.1-1+deb12u2", "pigz 2.6-1 -> 2.6-1+lab1"],
    "to": "admin@alpha.example.com",
    "language": "fr",
    "message_id": "<1.2.3@alpha-web>",
}


def write(folder: Path, name: str, data: object) -> None:
    (folder / name).write_text(json.dumps(data), encoding="utf-8")


def test_each_guest_says_what_was_patched_and_where_its_notice_is(tmp_path: Path) -> None:
    write(
        tmp_path,
        "alpha-web.json",
        {"guest": "alpha-web", "upgraded": {"pigz": "2.6-1+lab1"}, "notice": NOTICE},
    )
    write(tmp_path, "alpha-app.json", {"guest": "alpha-app", "upgraded": {}, "notice": {}})
    write(tmp_path, "sink.json", {"sink": "mailsink", "notices": {"alpha-web": ["/var/mail/sink/new/17.M1"]}})
    sink, guests = lab_patching.load(tmp_path)
    out = lab_patching.lines(sink, guests)
    assert out == [
        "  alpha-app: patched nothing (no security update); "
        "no notice (nothing asks for a reboot or a restart)",
        "  alpha-web: patched pigz 2.6-1 -> 2.6-1+lab1; notice (fr) to admin@alpha.example.com, sent "
        "2026-12-03T17:02:11+01:00, reboot announced for 2026-12-05T05:00+01:00: "
        "mailsink:/var/mail/sink/new/17.M1",
    ]
    assert lab_patching.missing(guests) == []


def test_a_sent_notice_missing_from_the_sink_fails_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        "alpha-web.json",
        {"guest": "alpha-web", "upgraded": {"pigz": "2.6-1+lab1"}, "notice": NOTICE},
    )
    write(tmp_path, "sink.json", {"sink": "mailsink", "notices": {}})
    assert lab_patching.main(["summary", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "NOT in mailsink" in captured.out
    assert "alpha-web" in captured.err


def test_no_records_is_an_error_not_an_empty_summary(tmp_path: Path) -> None:
    assert lab_patching.main(["summary", str(tmp_path)]) == 1
