"""One run of the job over every guest of the host: count, throttle or restore, notify.

Each guest is handled on its own: a guest whose domain is gone or that libvirt refuses is
reported, and the others go on. The state is saved after each guest, so a mail is never sent
twice and a counter never counted twice, whatever stops the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Any

from vpsfleet_agents.traffic import domains
from vpsfleet_agents.traffic.config import Config, GuestQuota
from vpsfleet_agents.traffic.counting import Ledger, over_quota, record
from vpsfleet_agents.traffic.metrics import GuestMetrics
from vpsfleet_agents.traffic.notice import NoticeUnavailable, throttle_notice

Send = Callable[[EmailMessage], str | None]  # returns an error, or None once the MTA took it


@dataclass
class Outcome:
    guest: str
    counted_bytes: int
    quota_bytes: int
    throttled: bool
    rate_ok: bool = True
    guest_ok: bool = True
    lifted: bool = False
    throttled_since: str | None = None  # ISO 8601, while throttled
    changes: list[str] = field(default_factory=list)  # what this run did, for the log
    errors: list[str] = field(default_factory=list)

    def metrics(self) -> GuestMetrics:
        since = dt.datetime.fromisoformat(self.throttled_since) if self.throttled_since else None
        return GuestMetrics(
            self.guest,
            self.counted_bytes,
            self.quota_bytes,
            self.throttled,
            self.rate_ok,
            self.guest_ok,
            self.lifted,
            since if self.throttled else None,
        )


def needs_change(current: int | None, throttle: int, throttled: bool) -> bool:
    """Whether a definition's outbound average (None: no such definition) must change: to the
    throttle while the quota is spent; back to the plan only where it is the throttle (the plan's
    rate is Pulumi's to set, the job only undoes its own throttle)."""
    if current is None:
        return False
    return current != throttle if throttled else current == throttle


def enforce(domain: Any, nic: domains.Nic, guest: GuestQuota, throttled: bool, outcome: Outcome) -> None:
    throttle = domains.kilobytes_per_second(guest.throttle_kbit_s)
    live, persistent = domains.outbound_rates(domain, nic.device)
    change_live = needs_change(live, throttle, throttled)
    change_persistent = needs_change(persistent, throttle, throttled)
    if not (change_live or change_persistent):
        return
    wanted = throttle if throttled else domains.kilobytes_per_second(guest.plan_kbit_s)
    errors = domains.set_outbound(domain, nic.device, wanted, change_live, change_persistent)
    outcome.errors += errors
    outcome.rate_ok = not errors
    where = "+".join(name for name, on in (("live", change_live), ("persistent", change_persistent)) if on)
    verb = "throttled" if throttled else "restored"
    outcome.changes.append(f"{verb} outbound to {wanted} kB/s ({where})" + (" FAILED" if errors else ""))


def handle(
    conn: Any,
    config: Config,
    guest: GuestQuota,
    ledger: Ledger,
    boot_id: str,
    now: dt.datetime,
    cycle_end: dt.datetime,
    send: Send,
) -> tuple[Ledger, Outcome]:
    outcome = Outcome(
        guest.domain, ledger.counted_bytes, guest.quota_bytes, over_quota(ledger, guest.quota_bytes)
    )
    outcome.lifted = ledger.lifted_at is not None
    outcome.throttled_since = ledger.throttled_at
    try:
        domain = domains.lookup(conn, guest.domain)
        nic = domains.resolve(domain, guest.interface)
        counter = domains.read_counter(domain, nic, boot_id)
        if counter is not None:
            ledger = record(ledger, counter)
        throttled = over_quota(ledger, guest.quota_bytes)
        if throttled and ledger.throttled_at is None:
            ledger = replace(ledger, throttled_at=now.isoformat(timespec="seconds"))
        outcome.counted_bytes, outcome.throttled = ledger.counted_bytes, throttled
        outcome.throttled_since = ledger.throttled_at
        enforce(domain, nic, guest, throttled, outcome)
    except (domains.GuestError, domains.libvirt_error()) as error:
        outcome.guest_ok = False
        text = str(error)
        outcome.errors.append(
            text if isinstance(error, domains.GuestError) else f"domain {guest.domain}: {text}"
        )
        return ledger, outcome
    if throttled and not ledger.notified:
        since = dt.datetime.fromisoformat(ledger.throttled_at) if ledger.throttled_at else now
        try:
            message = throttle_notice(config, guest, ledger.counted_bytes, since, cycle_end, now)
        except NoticeUnavailable as error:
            failure: str | None = str(error)
        else:
            failure = send(message)
        if failure is None:
            ledger = replace(ledger, notified=True)
            outcome.changes.append("customer and operations notified")
        else:
            outcome.errors.append(f"domain {guest.domain}: notice not sent: {failure}")
    return ledger, outcome


def run_guests(
    conn: Any,
    config: Config,
    ledgers: dict[str, Ledger],
    boot_id: str,
    now: dt.datetime,
    cycle_end: dt.datetime,
    send: Send,
    save: Callable[[dict[str, Ledger]], None],
) -> list[Outcome]:
    """Every guest in turn; `ledgers` is updated and saved after each one."""
    outcomes = []
    for guest in config.guests:
        ledger, outcome = handle(
            conn, config, guest, ledgers.get(guest.domain, Ledger()), boot_id, now, cycle_end, send
        )
        ledgers[guest.domain] = ledger
        save(ledgers)
        outcomes.append(outcome)
    return outcomes
