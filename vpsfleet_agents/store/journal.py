"""Lines for the journal, and the problems a step reports for one tenant."""

from __future__ import annotations

import os
import sys
import syslog
from collections.abc import Sequence
from typing import Any

PROGRAM = "vpsfleet-backup-store"


def log(message: str) -> None:
    """One line for the journal, through syslog whoever runs the program (a timer, Ansible,
    an operator), and on stderr when not under systemd (stdout stays the JSON report)."""
    syslog.openlog(PROGRAM, 0, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_NOTICE, message)
    if "INVOCATION_ID" not in os.environ:  # under systemd, stderr would be a second copy
        print(f"{PROGRAM}: {message}", file=sys.stderr, flush=True)


def shown(name: str) -> str:
    """A name from the tree, printable on one line whatever bytes it holds (surrogates, line
    breaks, control characters)."""
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return raw.encode("unicode_escape").decode("ascii")[:120]


def problem(
    kind: str,
    guest: dict[str, Any] | None,
    text: str,
    customer: str | None = None,
    entries: Sequence[str] = (),
) -> dict[str, Any]:
    """One problem for the report, logged: kind `garbage` (reported), `error`, `future`,
    `clock`, `refused` (alerted for); `entries`: the names it is about."""
    entry = {
        "kind": kind,
        "guest": guest["guest"] if guest else None,
        "customer": guest["customer"] if guest else customer,
        "problem": text,
        "entries": list(entries),
    }
    who = f"{entry['guest']} ({entry['customer']})" if guest else (customer or "store")
    log(f"{kind}: {who}: {text}")
    return entry
