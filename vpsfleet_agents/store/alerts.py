"""What the store's jobs tell operations: metrics for the node exporter's textfile collector and
mails through the machine's MTA (the shared `vpsfleet_agents.textfile` and `.mail`)."""

from __future__ import annotations

import os
import socket
from email.message import EmailMessage
from typing import Any

from vpsfleet_agents import mail, textfile
from vpsfleet_agents.store.journal import log


def store_name(config: dict[str, Any]) -> str:
    return str(config.get("store", socket.gethostname()))


# The labels of a guest's metrics, in this order.
GUEST_LABELS = ("customer", "guest")


def write_metrics(config: dict[str, Any], name: str, gauges: textfile.Gauges) -> None:
    """`<textfile_dir>/<name>`, replaced whole; nothing when no folder is configured."""
    folder = config.get("textfile_dir")
    if folder:
        textfile.write(os.path.join(folder, name), gauges)


def send_mail(config: dict[str, Any], subject: str, body: str, alert: str) -> bool:
    """One mail to the operations address (header X-Vpsfleet-Alert: `alert`); False, logged,
    when there is no address or the MTA refused it."""
    recipient = config.get("operations_email")
    if not recipient:
        log(f"{alert}: no operations address configured, no mail sent")
        return False
    message = EmailMessage()
    message["From"] = config.get("mail_from") or f"root@{socket.getfqdn()}"
    message["To"] = recipient
    message["Subject"] = subject
    message["X-Vpsfleet-Alert"] = alert
    message.set_content(body)
    sendmail = config.get("sendmail", mail.SENDMAIL)
    handed = mail.send(message, sendmail)
    if not handed.ok:
        log(f"{alert}: {sendmail} failed ({handed.returncode}): {handed.stderr}")
        return False
    return True
