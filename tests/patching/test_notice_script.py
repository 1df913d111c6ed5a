"""The guest-side notice (M14), run on this machine against a fake /run, /proc, dpkg log and
sendmail: who is told, in which language, when the reboot is, and that nothing is sent twice."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "ansible" / "roles" / "patching"
SCRIPT = ROLE / "files" / "vpsfleet-patch-notice"  # built from vpsfleet_agents.patching.notice
PARIS = dt.timezone(dt.timedelta(hours=1))  # Europe/Paris in winter


def render_text(name: str) -> str:
    """The role's mail template as the role would install it (provider name filled in)."""
    text = (ROLE / "templates" / f"{name}.j2").read_text(encoding="utf-8")
    return text.replace("{{ patching_provider_name }}", "vpsfleet test")


@dataclass
class Guest:
    root: Path

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def state(self) -> Path:
        return self.root / "state" / "notice.json"

    def config(self, **changes: Any) -> None:
        cfg = {
            "hostname": "alpha-web",
            "customer_email": "alpha@customer.example.org",
            "customer_name": "Alpha SARL",
            "operations_email": "ops@test.example.net",
            "provider_name": "vpsfleet test",
            "mail_from": "ops@test.example.net",
            "language": "fr",
            "window": "05:30",
            "notice_hours": 24,
            "restart_check": True,
            "templates": str(self.root / "etc"),
            "state_file": str(self.state),
            "sendmail": str(self.root / "sendmail"),
        }
        cfg.update(changes)
        (self.root / "etc" / "notice.json").write_text(json.dumps(cfg), encoding="utf-8")

    def need_reboot(self, *packages: str) -> None:
        (self.run / "reboot-required").touch()
        with (self.run / "reboot-required.pkgs").open("a", encoding="utf-8") as pkgs:
            pkgs.writelines(f"{p}\n" for p in packages)

    def process(self, pid: int, maps: list[str], cgroup: str) -> None:
        proc = self.root / "proc" / str(pid)
        proc.mkdir(parents=True)
        (proc / "maps").write_text("".join(f"{line}\n" for line in maps), encoding="utf-8")
        (proc / "cgroup").write_text(cgroup, encoding="utf-8")

    def notice(self, *args: str, now: str | None = None) -> tuple[int, dict[str, Any]]:
        env = {
            **os.environ,
            "TZ": "Europe/Paris",
            "VPSFLEET_PATCHING_CONFIG": str(self.root / "etc" / "notice.json"),
            "VPSFLEET_PATCHING_RUN": str(self.run),
            "VPSFLEET_PATCHING_PROC": str(self.root / "proc"),
            "VPSFLEET_PATCHING_DPKG_LOG": str(self.root / "dpkg.log"),
        }
        argv = [sys.executable, str(SCRIPT), *args]
        if now:
            argv += ["--now", now]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        return done.returncode, json.loads(done.stdout)

    def mails(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(self.outbox.iterdir())
        ]


@pytest.fixture
def guest(tmp_path: Path, agents: dict[str, Path]) -> Guest:
    assert agents["vpsfleet-patch-notice"] == SCRIPT
    g = Guest(tmp_path)
    for folder in ("run", "outbox", "etc", "proc"):
        (tmp_path / folder).mkdir()
    for lang in ("fr", "en"):
        (tmp_path / "etc" / f"notice-{lang}.txt").write_text(
            render_text(f"notice-{lang}.txt"), encoding="utf-8"
        )
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(
        f'#!/bin/sh\n[ -e "{tmp_path}/relay-down" ] && exit 75\ncat > "{tmp_path}/outbox/$(date +%s%N)"\n',
        encoding="utf-8",
    )
    sendmail.chmod(0o755)
    (tmp_path / "dpkg.log").write_text(
        "2026-11-23 04:16:01 upgrade vpsfleet-sec-demo:all 1.0 1.1\n"
        "2026-11-23 04:16:02 upgrade linux-image-amd64:amd64 6.1.1 6.1.2\n"
        "2026-11-23 04:16:02 install linux-image-6.1.0-99-amd64:amd64 <none> 6.1.2\n"
        "2026-11-23 04:16:03 install some-provisioning:amd64 <none> 2.0\n"
        "2026-11-01 04:16:02 upgrade old-news:amd64 1 2\n",
        encoding="utf-8",
    )
    g.config()
    return g


def test_nothing_pending_sends_nothing(guest: Guest) -> None:
    rc, out = guest.notice(now="2026-11-23T04:20:00+01:00")
    assert rc == 0
    assert out["state"] == "none"
    assert guest.mails() == []
    assert not guest.state.exists()


def test_reboot_needed_mails_the_customer_in_french_with_a_copy_to_operations(
    guest: Guest,
) -> None:
    guest.need_reboot("linux-image-6.1.0-99-amd64")
    rc, out = guest.notice(now="2026-11-23T04:20:00+01:00")
    assert (rc, out["state"], out["sent"]) == (0, "sent", True)
    [mail] = guest.mails()
    assert mail["To"] == "alpha@customer.example.org"
    assert mail["Cc"] == "ops@test.example.net"
    assert mail["Content-Language"] == "fr"
    assert mail["Subject"] == (
        "[vpsfleet test] alpha-web : redémarrage planifié le mardi 24 novembre 2026 à 05:30 (Europe/Paris)"
    )
    body = mail.get_body().get_content()  # type: ignore[union-attr]
    assert "Bonjour Alpha SARL," in body
    assert "  - vpsfleet-sec-demo 1.0 -> 1.1" in body
    assert "  - linux-image-amd64 6.1.1 -> 6.1.2" in body
    assert "  - linux-image-6.1.0-99-amd64 6.1.2\n" in body  # a new package
    assert "old-news" not in body  # older than the look-back
    assert "some-provisioning" not in body  # installed, not updated
    assert "(demandé par : linux-image-6.1.0-99-amd64)" in " ".join(body.split())
    assert max(len(line) for line in body.splitlines()) <= 100
    assert "le mardi 24 novembre 2026 à 05:30 (Europe/Paris) (2026-11-24T05:30+01:00)" in " ".join(
        body.split()
    )
    state = json.loads(guest.state.read_text(encoding="utf-8"))
    assert state["status"] == "sent"
    assert state["reboot_at"] == "2026-11-24T05:30+01:00"
    log = (guest.state.parent / "notices.log").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["reboot_at"] for line in log] == ["2026-11-24T05:30+01:00"]


def test_english_variant(guest: Guest) -> None:
    guest.config(language="en")
    guest.need_reboot("linux-image-6.1.0-99-amd64")
    guest.notice(now="2026-11-23T04:20:00+01:00")
    [mail] = guest.mails()
    assert mail["Content-Language"] == "en"
    assert mail["Subject"] == (
        "[vpsfleet test] alpha-web: reboot scheduled on Tuesday 24 November 2026 at 05:30 (Europe/Paris)"
    )
    body = mail.get_body().get_content()  # type: ignore[union-attr]
    assert "These updates take effect only after the server restarts" in " ".join(body.split())


def test_second_run_does_not_send_again(guest: Guest) -> None:
    guest.need_reboot("linux-image-6.1.0-99-amd64")
    guest.notice(now="2026-11-23T04:20:00+01:00")
    rc, out = guest.notice(now="2026-11-23T16:00:00+01:00")
    assert (rc, out["state"], out["sent"]) == (0, "unchanged", False)
    assert out["reboot_at"] == "2026-11-24T05:30+01:00"
    assert len(guest.mails()) == 1


@pytest.mark.parametrize(
    ("now", "reboot_at"),
    [
        ("2026-11-23T04:20:00+01:00", "2026-11-24T05:30+01:00"),  # window 25 h away
        ("2026-11-23T06:00:00+01:00", "2026-11-25T05:30+01:00"),  # 23.5 h is too soon
        ("2026-11-23T05:30:00+01:00", "2026-11-24T05:30+01:00"),  # exactly 24 h
        # Summer time starts on 29 March: the window stays at 05:30 local time.
        ("2026-03-28T03:00:00+01:00", "2026-03-29T05:30+02:00"),
        ("2026-03-28T06:00:00+01:00", "2026-03-30T05:30+02:00"),
    ],
)
def test_reboot_is_in_the_window_at_least_the_notice_period_after_the_mail(
    guest: Guest, now: str, reboot_at: str
) -> None:
    guest.need_reboot("linux-image-6.1.0-99-amd64")
    _, out = guest.notice(now=now)
    assert out["reboot_at"] == reboot_at
    sent = dt.datetime.fromisoformat(now)
    assert dt.datetime.fromisoformat(reboot_at) - sent >= dt.timedelta(hours=24)


def test_services_running_deleted_libraries_get_a_restart_notice(guest: Guest) -> None:
    lib = "7f0000000000-7f0000001000 r-xp 00000000 08:01 1234"
    guest.process(
        101,
        [f"{lib} /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)"],
        "1:name=systemd:/system.slice/nginx.service\n0::/\n",
    )
    guest.process(102, [f"{lib} /usr/lib/x86_64-linux-gnu/libssl.so.3"], "0::/system.slice/ssh.service\n")
    guest.process(
        103,
        [f"{lib} /usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)"],
        "0::/user.slice/user-1000.slice/session-3.scope\n",
    )
    guest.process(104, [f"{lib} /memfd:jit (deleted)"], "0::/system.slice/php-fpm.service\n")
    rc, out = guest.notice(now="2026-11-23T04:20:00+01:00")
    assert (rc, out["reboot"], out["services"]) == (0, False, ["nginx.service"])
    [mail] = guest.mails()
    assert mail["X-Vpsfleet-Notice"] == "restart"
    assert "redémarrage de services planifié" in mail["Subject"]
    body = " ".join(mail.get_body().get_content().split())  # type: ignore[union-attr]
    assert "qui seront redémarrés : nginx.service." in body


def test_a_relay_failure_records_nothing_and_the_next_run_retries(guest: Guest) -> None:
    guest.need_reboot("linux-image-6.1.0-99-amd64")
    (guest.root / "relay-down").touch()
    rc, out = guest.notice(now="2026-11-23T04:20:00+01:00")
    assert (rc, out["state"]) == (1, "send-failed")
    assert not guest.state.exists()
    (guest.root / "relay-down").unlink()
    rc, out = guest.notice(now="2026-11-23T04:25:00+01:00")
    assert (rc, out["state"]) == (0, "sent")
    assert len(guest.mails()) == 1


def test_reboot_gate_needs_the_notice_and_its_time(guest: Guest) -> None:
    guest.need_reboot("linux-image-6.1.0-99-amd64")
    rc, out = guest.notice("--reboot-allowed", now="2026-11-25T06:00:00+01:00")
    assert (rc, out["allowed"]) == (3, False)
    assert "no notice was sent" in out["reason"]
    guest.notice(now="2026-11-23T04:20:00+01:00")
    rc, out = guest.notice("--reboot-allowed", now="2026-11-24T05:29:00+01:00")
    assert (rc, out["allowed"]) == (3, False)
    rc, out = guest.notice("--reboot-allowed", now="2026-11-24T05:30:00+01:00")
    assert (rc, out["allowed"]) == (0, True)


def test_after_the_reboot_the_notice_is_closed(guest: Guest) -> None:
    guest.need_reboot("linux-image-6.1.0-99-amd64")
    guest.notice(now="2026-11-23T04:20:00+01:00")
    (guest.run / "reboot-required").unlink()  # /run is empty after a reboot
    rc, out = guest.notice(now="2026-11-24T05:40:00+01:00")
    assert (rc, out["state"]) == (0, "done")
    state = json.loads(guest.state.read_text(encoding="utf-8"))
    assert state["done_at"] == "2026-11-24T05:40:00+01:00"
    assert state["reboot_at"] == "2026-11-24T05:30+01:00"  # "why did my VPS reboot?"


def test_a_later_update_joins_the_pending_notice_and_keeps_its_time(guest: Guest) -> None:
    guest.need_reboot("linux-image-6.1.0-99-amd64")
    guest.notice(now="2026-11-23T04:20:00+01:00")
    guest.need_reboot("libc6")
    rc, out = guest.notice(now="2026-11-23T04:30:00+01:00")
    assert (rc, out["state"], out["reboot_at"]) == (0, "sent", "2026-11-24T05:30+01:00")
    second = guest.mails()[1]
    body = " ".join(second.get_body().get_content().split())  # type: ignore[union-attr]
    assert "libc6, linux-image-6.1.0-99-amd64" in body


def test_bad_configuration_is_refused(guest: Guest) -> None:
    (guest.root / "etc" / "notice.json").write_text('{"hostname": "x"}', encoding="utf-8")
    rc, out = guest.notice()
    assert rc == 2
    assert "customer_email" in out["error"]


def test_what_is_left_of_a_notice_already_sent_is_not_sent_again(guest: Guest) -> None:
    """A handler restarted one of the services announced: the rest is still announced (the lab's
    second deploy apply sent a second 'restart' notice for a fresh guest before this)."""
    lib = "7f0000000000-7f0000001000 r-xp 00000000 08:01 1234"
    for pid, unit in ((101, "nginx"), (102, "rsyslog")):
        guest.process(pid, [f"{lib} /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)"],
                      f"0::/system.slice/{unit}.service\n")  # fmt: skip
    _, out = guest.notice(now="2026-11-23T04:20:00+01:00")
    assert out["services"] == ["nginx.service", "rsyslog.service"] and out["sent"]
    for name in ("maps", "cgroup"):
        (guest.root / "proc" / "102" / name).unlink()
    (guest.root / "proc" / "102").rmdir()  # rsyslog restarted: nginx is left
    rc, out = guest.notice(now="2026-11-23T05:00:00+01:00")
    assert (rc, out["state"], out["sent"]) == (0, "covered", False)
    assert out["reboot_at"] == "2026-11-24T05:30+01:00" and len(guest.mails()) == 1
    # Something it did not announce is a new notice.
    guest.need_reboot("linux-image-6.1.0-99-amd64")
    _, out = guest.notice(now="2026-11-23T05:10:00+01:00")
    assert out["state"] == "sent" and len(guest.mails()) == 2
