"""Processes under a deadline: every child in its own process group, stopped at the deadline or
when the run is killed; signals as an exception; the run's lock."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vpsfleet_agents.backup.reasons import BackupError
from vpsfleet_agents.environment import child_env


class Killed(BaseException):
    """SIGTERM/SIGINT: unwind (children are stopped, metrics written) and exit non-zero."""


def deadline_after(now: dt.datetime, hhmm: str) -> dt.datetime:
    """The first HH:MM after `now` (local time): the hard stop of the night that started."""
    hour, minute = (int(x) for x in hhmm.split(":"))
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= now:
        candidate += dt.timedelta(days=1)
    return candidate


class Supervisor:
    """Starts every child in its own process group and stops them all at the deadline or when
    the run is killed, so nothing outlives the window."""

    def __init__(self, deadline: dt.datetime | None) -> None:
        self.deadline = deadline
        self.expired = threading.Event()
        self._children: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if deadline is not None:
            delay = max(0.0, (deadline - dt.datetime.now(deadline.tzinfo)).total_seconds())
            self._timer = threading.Timer(delay, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        self.expired.set()
        self.stop_all()

    def check(self) -> None:
        if self.expired.is_set():
            raise BackupError("deadline", f"deadline {self.deadline} reached: run stopped")

    def spawn(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Starts a child in the C locale (`env` holds what to add to the environment)."""
        self.check()
        kwargs["env"] = child_env(kwargs.get("env"))
        proc = subprocess.Popen(list(argv), start_new_session=True, **kwargs)
        with self._lock:
            self._children.append(proc)
        if self.expired.is_set():
            self.stop(proc)
        return proc

    def wait(self, proc: subprocess.Popen[bytes]) -> int:
        code = proc.wait()
        with self._lock:
            if proc in self._children:
                self._children.remove(proc)
        self.check()
        return code

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        with self._lock:
            children = list(self._children)
        for proc in children:
            self.stop(proc)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.stop_all()


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(line for line in text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def exclusive_lock(path: str) -> Iterator[bool]:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    def handler(signum: int, _frame: object) -> None:
        raise Killed(signal.Signals(signum).name)

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for sig in previous:
            signal.signal(sig, handler)
    try:
        yield
    finally:
        if in_main:
            for sig, old in previous.items():
                signal.signal(sig, old)
