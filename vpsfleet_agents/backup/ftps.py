"""The store, through lftp: explicit TLS required, verified certificates, bounded retries; the
reason of a failure classified from lftp's messages and the server's replies."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from vpsfleet_agents.backup.config import StoreConfig
from vpsfleet_agents.backup.reasons import BackupError, StoreBusy
from vpsfleet_agents.backup.supervise import Supervisor


def lftp_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# A store at its session limit refuses a login for now, not for good: ProFTPD's MaxClients and
# MaxClientsPerUser answer the password with 530 and the role's message ("Too many sessions, try
# again later", "Too many sessions for this account"), other servers close at once with 421. lftp
# retries such a 530 within its session when the text matches `ftp:retry-530` (this list: lftp's
# default plus "busy"; set explicitly so that a distribution's default cannot change it), then
# ends with "max-retries exceeded"; a text it does not match ends as "Login failed". Either way
# the store is busy, not the credentials wrong: a store-side reason, which the night retries
# after its back-off (night.py) and which is never taken for auth_failed.
BUSY_530 = (
    "too many|overloaded|try (again |back )?later|is restricted to|maximum number|number of connect"
    "|only.*session.*allowed|more connection|already connected|simultaneous login|busy"
)
# A reply at the start of a line (the server's replies), or quoted by lftp: "(530 ...", ": 530 ...".
_BUSY_REPLY = re.compile(rf"(^|\(|: )(421[ -]|530[ -].*({BUSY_530}))", re.IGNORECASE | re.MULTILINE)


def store_busy(text: str) -> bool:
    """Whether the session was refused because the store is at its session limit (or closed the
    control connection with 421: shutting down, a timeout), as lftp or the server said it."""
    return _BUSY_REPLY.search(text) is not None


def classify_lftp_error(stderr: str, replies: str = "") -> str:
    """The reason of a failed lftp session, from its error output and the server's error
    replies (4xx/5xx lines of its debug log: lftp's own message is often "max-retries
    exceeded" for a transfer the server refused for a precise reason)."""
    err = stderr.lower()
    both = err + "\n" + replies.lower()
    # Before the login check: lftp reports a busy refusal it does not retry as "Login failed".
    if store_busy(both):
        return "store_unreachable"
    # lftp reports a store that does not offer TLS as a failed login: it is a TLS failure.
    if "ssl-force is set" in err:
        return "tls_failed"
    if "login failed" in err or "login incorrect" in both or "authentication failed" in both:
        return "auth_failed"
    # Before the TLS check: a store that refuses an upload over quota aborts the TLS data
    # connection under lftp, whose own message is then a GnuTLS error; the server's reply says why.
    if any(w in both for w in ("quota", "no space", "disk full", "552", "exceeded storage")):
        return "quota"
    if any(w in err for w in ("certificate", "gnutls", "ssl", "tls", "handshake")):
        return "tls_failed"
    unreachable = (
        "connection refused",
        "name or service not known",
        "no route to host",
        "not connected",
        "timed out",
        "timeout",
        "connection reset",
        "connection closed",
        "max-retries exceeded",
    )
    if any(w in err for w in unreachable):
        return "store_unreachable"
    return "upload_failed"


class Store:
    """One lftp session per call; credentials live only in a script in a private folder."""

    def __init__(self, store: StoreConfig, lftp: str, sup: Supervisor, private: Path) -> None:
        self.store = store
        self.lftp = lftp
        self.sup = sup
        self.private = private
        try:
            password = Path(store.password_file).read_text(encoding="utf-8").strip("\r\n")
        except OSError as err:
            raise BackupError("config", f"cannot read the store password: {err}") from err
        self._login = f"user {lftp_quote(store.user)} {lftp_quote(password)}\n"
        self._calls = 0

    def _settings(self) -> str:
        s = self.store
        lines = [
            "set cmd:interactive no",
            "set cache:enable no",
            "set ftp:ssl-force yes",
            "set ftp:ssl-allow yes",
            "set ftp:ssl-protect-data yes",
            "set ftp:ssl-protect-list yes",
            "set ftp:ssl-auth TLS",
            "set ssl:verify-certificate yes",
            "set ssl:check-hostname yes",
            f"set ssl:ca-file {lftp_quote(s.ca_file)}",
            "set ftp:passive-mode yes",
            # lftp's defaults retry for ever with long timeouts: bound both.
            f"set net:timeout {s.timeout_seconds}",
            f"set net:max-retries {s.retries + 1}",  # lftp counts tries, not retries
            "set net:persist-retries 0",
            f"set net:reconnect-interval-base {s.reconnect_seconds}",
            f"set net:reconnect-interval-max {max(s.reconnect_seconds, 4 * s.reconnect_seconds)}",
            "set net:reconnect-interval-multiplier 2",
            "set xfer:clobber yes",
            f"set ftp:retry-530 {lftp_quote(BUSY_530)}",
        ]
        if s.tls_priority:
            lines.append(f"set ssl:priority {lftp_quote(s.tls_priority)}")
        return "\n".join(lines) + "\n"

    def run(self, commands: Sequence[str], fail_exit: bool = True) -> str:
        """Runs the commands in one session from the store's folder; raises BackupError with
        the classified reason if any fails (with fail_exit)."""
        self._calls += 1
        script = self.private / f"session{self._calls}.lftp"
        opener = (
            f"open -p {self.store.port} {lftp_quote(self.store.host)}\n"
            + self._login
            + f"cd {lftp_quote(self.store.directory)}\n"
        )
        body = "\n".join(commands) + "\n"
        fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self._settings())
            handle.write("set cmd:fail-exit yes\n")
            # Level 4 logs the server's replies, not the commands (5 would show the password).
            handle.write(f"debug -o {lftp_quote(str(self.private / 'lftp.debug'))} 4\n")
            handle.write(opener)
            if not fail_exit:
                handle.write("set cmd:fail-exit no\n")
            handle.write(body)
        # The C locale (Supervisor.spawn): the failure is classified on lftp's English text.
        env = {"HOME": str(self.private), "LFTP_HOME": str(self.private)}
        out_path, err_path = self.private / "lftp.out", self.private / "lftp.err"
        (self.private / "lftp.debug").unlink(missing_ok=True)
        try:
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                proc = self.sup.spawn([self.lftp, "-f", str(script)], stdout=out, stderr=err, env=env)
                code = self.sup.wait(proc)
        finally:
            script.unlink(missing_ok=True)
        stdout = out_path.read_text(encoding="utf-8", errors="replace")
        if code != 0:
            text = err_path.read_text(encoding="utf-8", errors="replace").strip()
            replies = self.error_replies()
            reason = classify_lftp_error(text, "\n".join(replies))
            detail = " | ".join([*text.splitlines()[-3:], *replies[-2:]])
            if store_busy(text.lower() + "\n" + "\n".join(replies).lower()):
                raise StoreBusy(f"lftp exited {code}: {detail}")
            raise BackupError(reason, f"lftp exited {code}: {detail}")
        return stdout

    def error_replies(self) -> list[str]:
        """The server's 4xx/5xx replies of the last session, minus the harmless pre-login
        refusal of OPTS UTF8 ON."""
        try:
            log = (self.private / "lftp.debug").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        replies = [
            line[5:] for line in log.splitlines() if re.fullmatch(r"<--- [45][0-9][0-9]([ -].*)?", line)
        ]
        return [r for r in replies if "log in with user and pass first" not in r.lower()]

    @staticmethod
    def parse_listing(text: str) -> dict[str, int | None]:
        """`cls -1 --size --block-size=1` lines -> {path: size}, None for folders."""
        entries: dict[str, int | None] = {}
        for line in text.splitlines():
            # Folders come without a size from some servers (ProFTPD), with one from others.
            match = re.fullmatch(r"[ \t]*(?:([0-9]+)[ \t]+)?([^ \t].*?)", line)
            if not match:
                continue
            path = match[2]
            if path.startswith("./"):
                path = path[2:]
            if path.endswith("/"):
                entries[path.rstrip("/")] = None
            elif match[1] is not None:
                entries[path] = int(match[1])
        return entries

    def listing(self, folders: Sequence[str] = (".",)) -> dict[str, int | None]:
        args = " ".join(lftp_quote(f.rstrip("/") + "/") for f in folders)
        return self.parse_listing(self.run([f"cls -1 --size --block-size=1 {args}"]))

    @staticmethod
    def hash_commands(paths: Sequence[str]) -> list[str]:
        """Ask for the SHA-256 of each path where the server offers it (ProFTPD mod_digest:
        HASH, XSHA256; others: SITE HASH); unknown commands just fail (run without fail-exit)."""
        commands = ["set cmd:fail-exit no", "quote OPTS HASH SHA-256"]
        for index, path in enumerate(paths):
            commands += [
                f"echo @@hash{index}",
                f"quote XSHA256 {lftp_quote(path)}",
                f"quote HASH {lftp_quote(path)}",
                f"quote SITE HASH {lftp_quote(path)}",
            ]
        return [*commands, "echo @@end"]

    @staticmethod
    def parse_hashes(text: str, paths: Sequence[str]) -> dict[str, str]:
        hashes: dict[str, str] = {}
        current: int | None = None
        for line in text.splitlines():
            marker = re.fullmatch(r"@@([A-Za-z0-9_]+)", line.strip())
            if marker:
                found_index = re.fullmatch(r"hash([0-9]+)", marker[1])
                current = int(found_index[1]) if found_index else None
                continue
            if current is None or not re.fullmatch(r"2[0-9][0-9][ -].*", line):
                continue
            found = re.search(r"(?<![0-9A-Za-z])([0-9a-fA-F]{64})(?![0-9A-Za-z])", line)
            if found and paths[current] not in hashes:
                hashes[paths[current]] = found[1].lower()
        return hashes


def section(text: str, name: str) -> str:
    """The output between `echo @@name` and the next marker."""
    lines: list[str] = []
    inside = False
    for line in text.splitlines():
        if re.fullmatch(r"@@[A-Za-z0-9_]+", line.strip()):
            inside = line.strip() == f"@@{name}"
            continue
        if inside:
            lines.append(line)
    return "\n".join(lines)
