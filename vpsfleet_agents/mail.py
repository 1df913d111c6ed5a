"""Mail handed to the machine's MTA (`sendmail -t -oi`), as every Debian MTA provides it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from email.message import EmailMessage

SENDMAIL = "/usr/sbin/sendmail"


@dataclass(frozen=True)
class Handed:
    """What the MTA said: `ok` when it took the message (exit 0)."""

    ok: bool
    returncode: int
    stderr: str


def send(message: EmailMessage, sendmail: str = SENDMAIL) -> Handed:
    """Hand `message` to the MTA; recipients come from its headers (-t), a lone dot in the body
    does not end it (-oi)."""
    run = subprocess.run([sendmail, "-t", "-oi"], input=message.as_bytes(), capture_output=True, check=False)
    return Handed(run.returncode == 0, run.returncode, run.stderr.decode(errors="replace"))
