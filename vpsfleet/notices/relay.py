"""Sending through the provider's relay (`provider.relay`): SMTP with STARTTLS required, as the
machines' postfix does (role guest_base), the relay's certificate verified.

`address` pins the relay's name to an address (the lab has no DNS, as postfix's /etc/hosts pin
there); the certificate is still checked against the relay's name. `cafile` adds the CA that
signed it (the lab's mail sink is self-signed).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType


class RelayFailed(Exception):
    pass


@dataclass(frozen=True)
class RelaySettings:
    host: str
    port: int
    address: str | None = None
    cafile: Path | None = None
    timeout: float = 30.0


class _PinnedSMTP(smtplib.SMTP):
    """Connects to `address` while speaking to (and verifying) `host`."""

    def __init__(self, address: str | None, host: str, port: int, timeout: float) -> None:
        self._pinned = address
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._pinned or host, port), timeout)


class Relay:
    """One SMTP session, opened at the first message, for a whole run."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context(cafile=str(s.cafile) if s.cafile else None)
        where = f"the relay {s.host}:{s.port}" + (f" (at {s.address})" if s.address else "")
        try:
            smtp = _PinnedSMTP(s.address, s.host, s.port, s.timeout)
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                smtp.close()
                raise RelayFailed(f"{where} offers no STARTTLS; nothing is sent in clear")
            smtp.starttls(context=context)
            smtp.ehlo()
        except (OSError, smtplib.SMTPException) as err:
            raise RelayFailed(f"cannot reach {where}: {err}") from None
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._open()
        try:
            refused = self._smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as err:
            raise RelayFailed(f"the relay {self.settings.host} refused the message: {err}") from None
        if refused:
            raise RelayFailed(f"the relay {self.settings.host} refused recipients: {refused}")

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
