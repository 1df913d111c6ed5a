"""The failure mail (vpsfleet-backup-failure-mail) says what happened; for sets dated in the
future it says the set was published and what to check (issue 10, #9)."""

from __future__ import annotations

from vpsfleet_agents.backup.failure_mail import compose


def test_an_ordinary_failure_names_the_untouched_set() -> None:
    status = {"reason": "quota", "message": "552", "last_success": {"set": "2026-11-22"}}
    message = compose("ops@example.net", "web-1", status, "journal")
    assert message["Subject"] == "[vpsfleet backup] web-1: backup failed (quota)"
    assert "its last good set (2026-11-22) is untouched" in message.get_content()


def test_future_sets_say_published_and_what_to_check() -> None:
    status = {
        "reason": "future_sets",
        "message": "published 2026-11-23, but ...",
        "future_sets": ["2027-06-01"],
        "last_success": {"set": "2026-11-23"},
    }
    message = compose("ops@example.net", "web-1", status, "journal")
    assert message["X-Vpsfleet-Backup-Reason"] == "future_sets"
    text = message.get_content()
    assert "published its set (2026-11-23)" in text and "2027-06-01" in text
    assert "clock" in text and "untouched" not in text
