"""The notice sent once per guest and cycle when its throttle starts: the customer notices'
kind `traffic_throttle` (vpsfleet_agents/notices: the same templates, plain text and HTML, in
the customer's language, a copy to operations), sent from the host through its MTA."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

from vpsfleet_agents.traffic.config import Config, GuestQuota

UNITS = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3))


class NoticeUnavailable(Exception):
    """The notice cannot be written on this machine (Jinja2 missing): the throttle goes on, the
    notice waits for the next run."""


def amount(count: int) -> str:
    """Bytes in decimal units, as the contracts count them (10 TB = 10^13 bytes), for the log."""
    for unit, size in UNITS:
        if count >= size:
            return f"{count / size:.1f} {unit}".replace(".0 ", " ")
    return f"{count} B"


def rate(kbit_s: int) -> str:
    return f"{kbit_s // 1000} Mbit/s" if kbit_s % 1000 == 0 else f"{kbit_s} kbit/s"


def throttle_notice(
    config: Config,
    guest: GuestQuota,
    counted: int,
    since: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
) -> EmailMessage:
    """The customer's notice, operations in copy. Jinja2 is imported here, not with the job:
    a host without python3-jinja2 still counts and throttles, and reports the notice unsent."""
    try:
        from vpsfleet_agents.notices import traffic
        from vpsfleet_agents.notices.message import Parties, compose
        from vpsfleet_agents.notices.render import render
    except ImportError as error:
        raise NoticeUnavailable(f"cannot write the notice ({error}): install python3-jinja2") from None
    throttle = traffic.Throttle(
        machine=guest.domain,
        counted_bytes=counted,
        quota_bytes=guest.quota_bytes,
        throttle_kbit_s=guest.throttle_kbit_s,
        plan_kbit_s=guest.plan_kbit_s,
        since=since,
        cycle_end=end,
        time_zone=config.time_zone,
        support_email=config.support_email or config.operations_email,
        customer_name=guest.customer_name,
        provider_name=config.provider_name,
    )
    rendered = render(traffic.KIND, guest.language, traffic.facts(throttle))
    parties = Parties(
        sender=config.mail_from,
        operations=config.operations_email,
        sender_name=config.provider_name,
        reply_to=config.support_email,
    )
    message = compose(
        parties,
        guest.customer_name,
        guest.customer_email,
        traffic.KIND,
        guest.language,
        rendered,
        now.replace(microsecond=0),
    )
    message["Auto-Submitted"] = "auto-generated"
    return message
