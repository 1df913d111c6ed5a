"""Rendered samples of every notice, in every language, for people to read (docs/notices/).

    python -m vpsfleet.notices.samples docs/notices           # write them
    python -m vpsfleet.notices.samples docs/notices --check   # exit 1 when they drifted

The fleet is docs/notices/sample-fleet.yml, the state after one merge; the state before it is
derived here, one edit per kind, and the notices are those the deploy plan of that merge names,
through the same code as a deploy (changes, plan, facts, templates). The access codes show a
placeholder where the mail carries the initial password. The notices a host sends by itself
(`traffic_throttle`, the hypervisor's traffic job) have no change in a merge: their facts are
those the job would give for a guest of the sample fleet that spent its plan's quota.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from vpsfleet.deploy_changes import changes_between
from vpsfleet.deploy_plan import build_plan
from vpsfleet.environments import repo_root
from vpsfleet.fleet import Fleet
from vpsfleet.loader import FleetInvalid, load_fleet
from vpsfleet.notices.facts import context
from vpsfleet.notices.render import KINDS, LANGUAGES, render
from vpsfleet.notices.sender import change_for
from vpsfleet.schema import GuestState
from vpsfleet_agents.notices import traffic
from vpsfleet_agents.traffic.cycle import cycle_end, cycle_of

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
SAMPLE_SEED = "sample-seed-published-in-docs-opens-nothing"
SAMPLE_PASSWORD = "(the initial password, 20 characters)"
FLEET = Path("docs/notices/sample-fleet.yml")

# What the merge changed, undone: guest name -> the fields it had before.
_BEFORE: dict[str, dict[str, Any]] = {
    "forum": {"state": GuestState.ACTIVE, "suspended_on": None},
    "wiki": {"state": GuestState.SUSPENDED, "suspended_on": dt.date(2026, 11, 20)},
    "shop": {"mitigation": None},
    "archive": {"state": GuestState.ACTIVE, "terminated_on": None},
    "api": {"plan": "vps-s"},
}
_NEW_GUEST = "boutique"
_NEW_BLOCK = "blog"
_DELIVERED = "calcul"
# The guest whose plan's quota is spent in the traffic_throttle sample, and when it was reached.
_THROTTLED = "blog"
_QUOTA_REACHED = dt.datetime(2026, 11, 23, 10, 5, tzinfo=dt.UTC)
_OVER_QUOTA_BYTES = 123_456_789  # what the guest sent past the quota before the job's run


def before_of(after: Fleet) -> Fleet:
    guests = []
    for guest in after.guests:
        if guest.name == _NEW_GUEST:
            continue
        update = dict(_BEFORE.get(guest.name, {}))
        if guest.name == _NEW_BLOCK:
            update["smtp_blocks"] = guest.smtp_blocks[:-1]
        guests.append(guest.model_copy(update=update))
    servers = [s.model_copy(update={"delivered_on": None}) if s.name == _DELIVERED else s
               for s in after.dedicated_servers]
    return dataclasses.replace(after, guests=guests, dedicated_servers=servers)


def samples(fleet_path: Path) -> dict[str, str]:
    """File name -> content: KIND.LANG.txt (subject, then the text part) and KIND.LANG.html."""
    after = load_fleet(fleet_path, today=NOW.date())
    before = before_of(after)
    changes = changes_between(before, after, now=NOW)
    plan = build_plan(before, after, changes, source=str(fleet_path), from_rev="before",
                      to_rev="after")
    files: dict[str, str] = {}
    for notice in plan.notices:
        facts = context(notice.kind, after, change_for(plan, notice), lambda: SAMPLE_SEED)
        if facts.get("password"):
            # A password-like string in the repository reads as a leaked secret: the samples
            # show where it goes, the notice sent carries the derived one (tests/fleet).
            facts["password"] = SAMPLE_PASSWORD
        for lang in LANGUAGES:
            rendered = render(notice.kind, lang, facts)
            files[f"{notice.kind}.{lang}.txt"] = f"Subject: {rendered.subject}\n\n{rendered.text}"
            files[f"{notice.kind}.{lang}.html"] = rendered.html
    throttle = throttle_sample(after)
    for lang in LANGUAGES:
        rendered = render(traffic.KIND, lang, traffic.facts(throttle))
        files[f"{traffic.KIND}.{lang}.txt"] = f"Subject: {rendered.subject}\n\n{rendered.text}"
        files[f"{traffic.KIND}.{lang}.html"] = rendered.html
    missing = [k for k in KINDS if f"{k}.fr.txt" not in files]
    if missing:
        raise ValueError(f"the sample fleet gives no notice of kind {', '.join(missing)}")
    return files


def throttle_sample(fleet: Fleet) -> traffic.Throttle:
    """The facts the traffic job gives when `_THROTTLED` spends its plan's quota (M8): the job's
    configuration carries the plan's figures as the hypervisor role writes them."""
    guest = fleet.guest(_THROTTLED)
    plan = fleet.plan(guest.plan) if guest else None
    customer = fleet.customer(guest.customer) if guest else None
    if guest is None or plan is None or customer is None:
        raise ValueError(f"the sample fleet has no guest {_THROTTLED} with its plan and customer")
    quota = int(Decimal(str(plan.monthly_quota_tb)) * 10**12)
    zone = fleet.policy.sla.time_zone
    end = cycle_end(cycle_of(_QUOTA_REACHED, zone), zone)
    return traffic.Throttle(
        machine=guest.name, counted_bytes=quota + _OVER_QUOTA_BYTES, quota_bytes=quota,
        throttle_kbit_s=plan.throttle_mbps * 1000, plan_kbit_s=plan.bandwidth_mbps * 1000,
        since=_QUOTA_REACHED, cycle_end=end, time_zone=zone,
        support_email=fleet.provider.support_email, customer_name=customer.name,
        provider_name=fleet.provider.name)


def drift(out: Path, files: dict[str, str]) -> list[str]:
    """The sample files of `out` that differ from `files`, are missing or are left over."""
    found = {p.name for p in out.glob("*.txt")} | {p.name for p in out.glob("*.html")}
    problems = [f"{name}: left over (no such notice)" for name in sorted(found - set(files))]
    for name, text in sorted(files.items()):
        path = out / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{name}: differs")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpsfleet.notices.samples",
                                     description="Render every notice in every language.")
    parser.add_argument("out", type=Path, help="the folder to write (docs/notices)")
    parser.add_argument("--fleet", type=Path, default=None,
                        help=f"the sample fleet (default: {FLEET} of the repository)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and list what differs")
    args = parser.parse_args(argv)
    try:
        files = samples(args.fleet or repo_root() / FLEET)
    except FleetInvalid as err:
        print(err.render(), file=sys.stderr)
        return 1
    if args.check:
        problems = drift(args.out, files)
        for problem in problems:
            print(f"{args.out}/{problem}", file=sys.stderr)
        if problems:
            print("the rendered notices drifted: python -m vpsfleet.notices.samples "
                  f"{args.out}", file=sys.stderr)
        return 1 if problems else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in drift(args.out, files):
        if stale.endswith("left over (no such notice)"):
            (args.out / stale.split(":")[0]).unlink()
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"{len(files)} files written in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
