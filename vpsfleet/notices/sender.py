"""The notice step of a deploy: each notice of the plan, sent once per event.

For each notice: its event's key; skipped when the record holds it; otherwise rendered in the
customer's language, sent through the relay, then recorded. A failure stops the step there
(the ones before it are recorded, a re-run sends the rest). A crash between the relay taking a
message and the record being written would send it again at the next run: at least once,
never silently lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from vpsfleet.deploy_changes import Change
from vpsfleet.deploy_plan import NOTICE, DeployPlan, Notice
from vpsfleet.fleet import Fleet
from vpsfleet.notices.events import event_of
from vpsfleet.notices.facts import MissingFact, context, subject_of
from vpsfleet.notices.message import compose
from vpsfleet.notices.record import Record, Sent
from vpsfleet.notices.relay import Relay, RelayFailed
from vpsfleet.notices.render import render
from vpsfleet.notices.seed import SeedMissing

# What operations' copy of an access-codes notice shows instead of the password.
WITHHELD = {"fr": "(retiré de cette copie)", "en": "(withheld from this copy)"}


class NoticeFailed(Exception):
    pass


@dataclass(frozen=True)
class Outcome:
    sent: int
    already: int


def change_for(plan: DeployPlan, notice: Notice) -> Change:
    for change in plan.changes:
        if change.machine == notice.machine and NOTICE.get(change.kind) == notice.kind:
            return change
    raise NoticeFailed(f"notice {notice.kind} for {notice.machine}: no such change in the plan")


def send_notices(plan: DeployPlan, fleet: Fleet, record: Record, relay: Relay,
                 password: Callable[[], str], say: Callable[[str], None]) -> Outcome:
    sent = already = 0
    for notice in plan.notices:
        change = change_for(plan, notice)
        event = event_of(notice.kind, fleet, change)
        done = record.already(event.key, event.value)
        what = f"notice {notice.kind} for {notice.machine}"
        if done is not None:
            say(f"{what}: sent already on {done['sent_at']} ({done['message_id']})")
            already += 1
            continue
        try:
            customer = subject_of(fleet, change).customer
            lang = customer.language
            facts = context(notice.kind, fleet, change, password)
            rendered = render(notice.kind, lang, facts)
            when = dt.datetime.now(dt.UTC).replace(microsecond=0)
            secret = facts.get("password") is not None
            message = compose(fleet, customer, notice.kind, lang, rendered, when,
                              copy="none" if secret else "cc")
            relay.send(message)
            if secret:  # operations' copy, without the password
                withheld = render(notice.kind, lang, {**facts, "password": WITHHELD[lang]})
                relay.send(compose(fleet, customer, notice.kind, lang, withheld, when,
                                   copy="only"))
        except (MissingFact, SeedMissing, RelayFailed) as err:
            raise NoticeFailed(f"{what}: {err}") from None
        entry = Sent(event=event.value, kind=notice.kind, machine=notice.machine,
                     customer=customer.id, recipient=customer.email,
                     copy=fleet.provider.operations_email, language=customer.language,
                     subject=rendered.subject, message_id=str(message["Message-ID"]),
                     sent_at=when.isoformat().replace("+00:00", "Z"), promise=notice.promise)
        record.add(event.key, entry)
        copied = f"separate copy to {entry.copy}, password withheld" if secret \
            else f"copy {entry.copy}"
        say(f"{what}: sent to {customer.email} ({copied}), in {customer.language}, "
            f"{rendered.subject!r}, {entry.message_id}")
        sent += 1
    return Outcome(sent, already)
