"""The record of the notices sent: a JSON file in the state directory, replaced whole.

One entry per event key: when it was sent, what (kind, machine, recipient, copy, subject,
message-id, language). Never the message's body: an access-codes notice holds a password.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FILE = "notices.json"


class RecordUnreadable(Exception):
    pass


@dataclass(frozen=True)
class Sent:
    event: str
    kind: str
    machine: str
    customer: str
    recipient: str
    copy: str
    language: str
    subject: str
    message_id: str
    sent_at: str
    promise: str


def write_atomic(path: Path, text: str) -> None:
    """A temporary file beside `path`, renamed over it: a reader sees the old or the new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Record:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE
        self._sent: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._sent = dict(data["sent"])
            except (ValueError, KeyError, TypeError) as err:
                raise RecordUnreadable(
                    f"{self.path}: not a notice record ({err}); fix or move it aside, nothing "
                    "was sent") from None

    def already(self, key: str, value: str) -> dict[str, Any] | None:
        """The entry when this event was announced already."""
        entry = self._sent.get(key)
        return entry if entry is not None and entry.get("event") == value else None

    def add(self, key: str, sent: Sent) -> None:
        self._sent[key] = asdict(sent)
        write_atomic(self.path, json.dumps({"sent": self._sent}, indent=2, sort_keys=True) + "\n")

    def entries(self) -> dict[str, dict[str, Any]]:
        return dict(self._sent)
