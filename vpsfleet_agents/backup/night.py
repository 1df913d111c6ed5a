"""A night's backup: attempts until one publishes, inside the window (M18, M24).

After hand-over the provider cannot log in to an unmanaged guest, so it cannot redo a night that
failed because of the store (M24): the agent redoes it itself. A failure whose reason is in
`retry.reasons` (the store or the way to it) is attempted again after a back-off that doubles up
to `retry.backoff_max_seconds`, at most `retry.attempts` times a night, and never at or after the
night's hard stop; the attempt itself is stopped at the hard stop as any run is. A failure of the
guest's own making is not retried. Each attempt is one `run` (the lock, the publish protocol
that leaves the last good set untouched, the status file and metrics); the night's attempts go
into the status file and the metrics, and one line each into the journal (stderr).

Only the night's run retries: one started by the timer inside the window (between
`window_start` and the deadline), or one given its deadline by the caller. A run on request
outside the window, or without a deadline, makes one attempt and says why at once.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from typing import Any

from vpsfleet_agents.backup.config import Config
from vpsfleet_agents.backup.run import Outcome, run
from vpsfleet_agents.backup.status import read_status, record
from vpsfleet_agents.backup.supervise import Killed, deadline_after, signals_raise


def inside_window(started: dt.datetime, window_start: str, deadline: dt.datetime) -> bool:
    """Whether `started` lies between the window's start and the deadline that follows it."""
    hour, minute = (int(x) for x in window_start.split(":"))
    opened = deadline.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if opened >= deadline:
        opened -= dt.timedelta(days=1)
    return opened <= started < deadline


def backoff(config: Config, attempt: int) -> int:
    """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
    retry = config.retry
    return int(min(retry.backoff_seconds * 2 ** (attempt - 1), retry.backoff_max_seconds))


def journal(line: str) -> None:
    print(f"vpsfleet-backup: {line}", file=sys.stderr, flush=True)


def run_night(
    config: Config,
    now: dt.datetime | None = None,
    deadline: dt.datetime | None = None,
    use_deadline: bool = True,
    wait: Callable[[float], None] = time.sleep,
) -> Outcome:
    """The night's attempts; the outcome of the last one (its exit code is the night's).
    `now` names the night (tests); the back-off and the deadline run on the real clock."""
    real_start = dt.datetime.now().astimezone()
    started = now or real_start
    night = started.date()
    retries = deadline is not None and use_deadline  # the caller vouches for the night
    if deadline is None and use_deadline and config.deadline:
        deadline = deadline_after(started, config.deadline)
        retries = inside_window(started, config.window_start, deadline)
    if not use_deadline:
        deadline = None
    attempts = config.retry.attempts if retries else 1
    history: list[dict[str, Any]] = []
    began_ts = time.time()
    attempt = 1
    while True:
        moment = started + (dt.datetime.now().astimezone() - real_start)
        extra = {
            "attempt": attempt,
            "attempts_allowed": attempts,
            "night_attempts": history,
            "next_attempt": None,
        }
        outcome = run(
            config, now=moment, deadline=deadline, use_deadline=use_deadline, night=night, extra=extra
        )
        history.append(
            {
                "attempt": attempt,
                "started": moment.isoformat(timespec="seconds"),
                "finished": (started + (dt.datetime.now().astimezone() - real_start)).isoformat(
                    timespec="seconds"
                ),
                "reason": outcome.reason,
                "message": outcome.message,
            }
        )
        if outcome.reason == "locked":
            return outcome  # another run is on it; its status is not ours to touch
        why_not = _why_no_retry(config, outcome, attempt, attempts)
        delay = backoff(config, attempt)
        next_at = dt.datetime.now().astimezone() + dt.timedelta(seconds=delay)
        if why_not is None and deadline is not None and next_at >= deadline:
            why_not = (
                f"the next attempt would start after the hard stop {deadline.isoformat(timespec='minutes')}"
            )
        if why_not is not None:
            _close(config, history, None, why_not)
            if not outcome.published:
                journal(f"attempt {attempt}/{attempts} failed: {outcome.reason}; no retry: {why_not}")
            return outcome
        _close(config, history, next_at)
        journal(
            f"attempt {attempt}/{attempts} failed: {outcome.reason}: {outcome.message}; "
            f"next attempt at {next_at.isoformat(timespec='seconds')} (in {delay} s)"
        )
        try:
            with signals_raise():
                wait(delay)
        except Killed as err:
            _close(config, history, None, f"stopped by {err} while waiting")
            journal(f"stopped by {err} while waiting: no more attempts tonight")
            return outcome
        if deadline is not None and dt.datetime.now().astimezone() >= deadline:
            _close(config, history, None, "the hard stop came during the back-off")
            journal(f"hard stop {deadline.isoformat(timespec='minutes')} reached: no more attempts")
            return outcome
        # The customer (or backup-now) may have published tonight's set meanwhile.
        done = read_status(config.status_file).get("last_success") or {}
        if done.get("set") == night.isoformat() and float(done.get("finished_ts", 0)) >= began_ts:
            _close(config, history, None, "another run published the set")
            journal(f"another run published {night.isoformat()} meanwhile: no more attempts")
            return Outcome("ok", f"published {night.isoformat()} by another run", night.isoformat(), 0, True)
        attempt += 1


def _why_no_retry(config: Config, outcome: Outcome, attempt: int, attempts: int) -> str | None:
    if outcome.published:
        return "published"
    if outcome.reason == "deadline":
        return "the hard stop was reached during the attempt"
    if outcome.reason not in config.retry.reasons:
        return f"{outcome.reason} is not a failure another attempt would fix"
    if attempt >= attempts:
        return (
            f"{attempts} attempt(s) made"
            if attempts > 1
            else "a run outside the night's window makes one attempt"
        )
    return None


def _close(
    config: Config, history: list[dict[str, Any]], next_at: dt.datetime | None, stopped: str | None = None
) -> None:
    """Writes the night's attempts and the next one (or why there is none) into the status and
    metrics."""
    status = read_status(config.status_file)
    status["retry_stopped"] = stopped
    status["night_attempts"] = history
    status["next_attempt"] = next_at.isoformat(timespec="seconds") if next_at else None
    status["next_attempt_ts"] = round(next_at.timestamp(), 3) if next_at else 0
    record(config, status)
