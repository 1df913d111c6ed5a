"""The dead-man check: every watched guest has the set of the night that started today."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vpsfleet_agents import mail
from vpsfleet_agents.backup.sets import future_sets
from vpsfleet_agents.store import customer_notice
from vpsfleet_agents.store.alerts import GUEST_LABELS, send_mail, store_name, write_metrics
from vpsfleet_agents.store.journal import log, problem
from vpsfleet_agents.store.listing import Listing
from vpsfleet_agents.store.tree import guest_folder, tree_size
from vpsfleet_agents.textfile import Gauges

METRICS = "vpsfleet_backup_store.prom"


def _guest(
    config: dict[str, Any], guest: dict[str, Any], today: dt.date, notes: list[dict[str, Any]]
) -> tuple[bool, str | None]:
    """Whether the guest has tonight's set, and its newest set (a future-dated one never
    counts); what its folder holds besides goes to `notes`."""
    listing = Listing(guest_folder(config, guest))
    future = set(future_sets(listing.sets, today))
    sets = [n for n in listing.sets if n not in future]
    if future:
        text = f"sets dated after tomorrow, not counted: {', '.join(sorted(future))}"
        notes.append(problem("future", guest, text))
    if listing.garbage:
        notes.append(problem("garbage", guest, "unexpected entries: " + ", ".join(listing.garbage)))
    return today.isoformat() in sets, (sets[-1] if sets else None)


def _usage(config: dict[str, Any], gauges: Gauges) -> None:
    used = gauges.family(
        "vpsfleet_backup_store_customer_bytes", "Bytes a customer's sets take on the store", ["customer"]
    )
    quota = gauges.family(
        "vpsfleet_backup_store_customer_quota_bytes", "The customer's quota (0: none)", ["customer"]
    )
    for customer in config["customers"]:
        size, _files = tree_size(Path(config["root"]) / customer["id"])
        used.add_metric([customer["id"]], size)
        quota.add_metric([customer["id"]], customer.get("quota_bytes") or 0)


def dead_man(config: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """Every guest in a watched state (default: active) must have the set of the night that
    started today; a set dated after tomorrow never counts (not as that night's, not as the
    newest). Each guest on its own: one tenant's garbage never stops the check of the others.
    Writes metrics; mails and returns the guests that miss their set."""
    states = set(config.get("dead_man_states", ["active"]))
    night = today.isoformat()
    gauges = Gauges()
    present_gauge = gauges.family(
        "vpsfleet_backup_store_set_present", "1 if the guest has the set of the last night", GUEST_LABELS
    )
    age_gauge = gauges.family(
        "vpsfleet_backup_store_newest_set_age_days", "Days since the newest set's night", GUEST_LABELS
    )
    missing: list[dict[str, Any]] = []
    checked = []
    notes: list[dict[str, Any]] = []
    for guest in config["guests"]:
        if guest.get("state") not in states:
            continue
        labels = [guest["customer"], guest["guest"]]
        newest = None
        try:
            present, newest = _guest(config, guest, today, notes)
        except Exception as err:  # one tenant's garbage never stops the others
            present = False
            notes.append(problem("error", guest, f"dead-man: {type(err).__name__}: {err}"))
        present_gauge.add_metric(labels, int(present))
        if newest is not None:
            age = (today - dt.date.fromisoformat(newest)).days
            age_gauge.add_metric(labels, age)
        checked.append(guest["guest"])
        if not present:
            # Unknown means managed: a customer is only told what a customer can act on.
            managed = guest.get("managed", True) is not False
            missing.append(
                {"guest": guest["guest"], "customer": guest["customer"], "newest": newest, "managed": managed}
            )
    _usage(config, gauges)
    gauges.single(
        "vpsfleet_backup_store_dead_man_timestamp_seconds", "When the check last ran", round(time.time())
    )
    write_metrics(config, METRICS, gauges)
    for entry in missing:
        who = f"{entry['guest']} ({entry['customer']})"
        log(f"dead-man: {who} has no set for {night}; newest: {entry['newest']}")
    told = tell_customers(config, night, missing)
    alerts = [n for n in notes if n["kind"] != "garbage"]
    mailed = bool(missing or alerts) and send_alert(config, night, missing, notes, told)
    return {
        "night": night,
        "checked": checked,
        "missing": missing,
        "problems": notes,
        "mailed": mailed,
        "customers_told": told,
    }


def tell_customers(
    config: dict[str, Any], night: str, missing: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """M24 after hand-over: the provider cannot redo an unmanaged guest's night, so its customer
    (root on it) is mailed what happened and what to do, in the customer's language. Managed
    guests are the provider's to fix: operations only. One mail per guest; what was sent, or
    why not, for the operations mail and the report."""
    customers = {c["id"]: c for c in config["customers"]}
    store = store_name(config)
    told: list[dict[str, Any]] = []
    for entry in missing:
        if entry["managed"]:
            continue
        customer = customers.get(entry["customer"], {})
        result: dict[str, Any] = {"guest": entry["guest"], "to": customer.get("email"), "sent": False}
        if not customer.get("email"):
            result["error"] = "no customer address in the store's configuration"
            log(f"dead-man: {entry['guest']}: {result['error']}: customer not told")
        else:
            message = customer_notice.compose(config, customer, entry, night, store)
            result["language"] = message["Content-Language"]
            handed = mail.send(message, config.get("sendmail", mail.SENDMAIL))
            result["sent"] = handed.ok
            if not handed.ok:
                result["error"] = f"sendmail exited {handed.returncode}: {handed.stderr.strip()}"
            log(
                f"dead-man: {entry['guest']}: mail to customer {customer['id']} ({customer['email']}):"
                f" {'handed to the MTA' if handed.ok else result['error']}"
            )
        told.append(result)
    return told


def send_alert(
    config: dict[str, Any],
    night: str,
    missing: Sequence[dict[str, Any]],
    notes: Sequence[dict[str, Any]] = (),
    told: Sequence[dict[str, Any]] = (),
) -> bool:
    store = store_name(config)
    by_guest = {t["guest"]: t for t in told}

    def who_acts(entry: dict[str, Any]) -> str:
        if entry.get("managed", True):
            return "managed: ours to fix"
        sent = by_guest.get(entry["guest"], {})
        if sent.get("sent"):
            return f"unmanaged: customer told at {sent['to']} ({sent.get('language')})"
        return f"unmanaged: customer NOT told ({sent.get('error', 'no mail')})"

    rows = "\n".join(
        f"  {m['guest']:<24} customer {m['customer']:<16} newest set: {m['newest'] or 'none'}; {who_acts(m)}"
        for m in missing
    )
    extra = "\n".join(f"  {n['guest'] or n['customer']}: {n['problem']}" for n in notes)
    if missing:
        subject = f"[vpsfleet] backup store {store}: {len(missing)} guest(s) without the set of {night}"
        body = (
            f"The dead-man check of backup store {store} found no set for the night of {night}\n"
            f"(window {config.get('window', '00:00-03:00')}) for:\n\n{rows}\n\n"
        )
    else:
        subject = f"[vpsfleet] backup store {store}: problems with the sets of {night}"
        body = f"The dead-man check of backup store {store} found every set of {night}, and problems.\n\n"
    if extra:
        body += f"Also found (per guest):\n\n{extra}\n\n"
    body += (
        "What to do (docs/backup-store.md, 'When the dead-man alert fires'): on each guest, read\n"
        "/var/lib/vpsfleet-backup/status.json and `journalctl -u vpsfleet-backup`, fix the cause,\n"
        "then run playbooks/backup-now.yml for it (M24: redo as soon as possible). An unmanaged\n"
        "guest is out of our reach after hand-over: its customer was mailed what to do; its agent\n"
        "already retried the store's failures inside the window.\n"
    )
    return send_mail(config, subject, body, "backup-dead-man")
