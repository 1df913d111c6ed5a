"""The night on one backup store, simulated (issue 15): the model the planner plans with, and the
one its plan is checked against.

A guest's run has two phases, as the agent runs them (`produce`, then `publish`): it first builds
its set locally (tar + compression at the guest's production rate), which takes no store
bandwidth; then it uploads the set. The runs that are uploading share the store's bandwidth
equally (max-min fair: a run whose own ceiling, its plan's bandwidth, is below the equal share
takes its ceiling, the others share the rest); a run ends when its last bit is through.

An upload holds one of the store's connections (the agent connects once its set is built, and
holds no session while it builds it). With `connections` set, a set built while every
connection is taken waits for one to free, first built first served, or with `retry_s` is
refused and tried again after a back-off that doubles (the agent's retry of a night refused by
a busy store); the plan never lets that happen, a jittered night may.

Between two events (a start, the end of a production, the end of an upload) every rate is
constant, so the simulation jumps from event to event: it is exact for the model, and fed the
same starts it gives the same floats whichever way it is driven (all at once with `simulate`,
or step by step as the planner does with `Store.advance_to` and `Store.add`), because only
events change its state.

`jitter` runs the same simulation many times with sizes, production rates and the store's
bandwidth drawn around the expected ones, the starts kept (the guests' timers fire at their
planned minute whatever happened before): how late the night's last guest is, at the 95th
percentile, and how many runs overlap when some run late.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MB = 1_000_000


@dataclass(frozen=True)
class Run:
    name: str
    start_s: float
    bits: float  # to upload: the set's bytes x 8
    produce_s: float  # building the set locally before the upload; no store bandwidth
    cap_mbps: float  # the run's own upload ceiling (its plan's bandwidth)


@dataclass(frozen=True)
class Outcome:
    ends: dict[str, float]  # when each run's last bit is through
    uploads: dict[str, float]  # when each run began to upload
    usage: tuple[tuple[float, float], ...]  # (from this time, Mbit/s of the store in use)
    peak_running: int  # most runs at once (producing or uploading)
    peak_uploading: int = 0  # most uploads at once: the store's sessions in use
    sessions: tuple[tuple[float, int], ...] = ()  # (from this time, uploads under way)
    demand: tuple[tuple[float, float], ...] = ()  # (from this time, their ceilings' sum, Mbit/s)
    failed: tuple[str, ...] = ()  # refused by the store at each of the night's attempts

    @property
    def makespan_s(self) -> float:
        return max(self.ends.values(), default=0.0)


class _Upload:
    __slots__ = ("cap", "end", "order", "rate", "remaining", "run")

    def __init__(self, run: Run, remaining: float, rate: float = 0.0, end: float = math.inf) -> None:
        self.run = run
        self.remaining = remaining  # bits
        self.rate = rate  # bit/s, constant until the next event
        self.end = end  # when its last bit is through at that rate
        self.cap = run.cap_mbps * MB  # bit/s
        self.order = (run.cap_mbps, run.name)  # the lowest ceilings are served first


@dataclass
class Store:
    """The fluid simulation of one store, driven forwards in time. `advance_to(t)` processes the
    events up to t and changes nothing else; `add(run)` starts a run at its start time (not
    before the store's clock)."""

    bandwidth_mbps: float
    connections: int | None = None  # None: every built set uploads at once
    retry_s: float | None = None  # a refused set: None waits for a connection; else retries then
    retry_max_s: float = math.inf  # the retry's back-off doubles up to this
    attempts: int | None = None  # a night's attempts at most, the first included (None: no limit)
    record: bool = True
    now: float = 0.0
    producing: dict[str, tuple[Run, float]] = field(default_factory=dict)  # name: run, ready at
    built: list[tuple[float, str]] = field(default_factory=list)  # heap: (ready at, name)
    uploading: dict[str, _Upload] = field(default_factory=dict)
    queued: list[Run] = field(default_factory=list)  # built, waiting for a connection
    retrying: list[tuple[float, str, Run]] = field(default_factory=list)  # heap: again at, name
    attempt: dict[str, int] = field(default_factory=dict)  # a run's attempt, past its first
    failed: list[str] = field(default_factory=list)  # refused at every attempt
    ends: dict[str, float] = field(default_factory=dict)
    uploads: dict[str, float] = field(default_factory=dict)
    usage: list[tuple[float, float]] = field(default_factory=list)
    sessions: list[tuple[float, int]] = field(default_factory=list)
    demand: list[tuple[float, float]] = field(default_factory=list)
    peak_running: int = 0
    peak_uploading: int = 0
    _next_end: float = math.inf  # the first of the uploads' ends

    @property
    def running(self) -> int:
        return len(self.producing) + len(self.uploading) + len(self.queued) + len(self.retrying)

    def in_use_mbps(self) -> float:
        return sum(u.rate for u in self.uploading.values()) / MB

    def next_event(self) -> float | None:
        built = self.built[0][0] if self.built else None
        if self.retrying and (built is None or self.retrying[0][0] < built):
            built = self.retrying[0][0]
        if not self.uploading:
            return built
        end = self._next_end
        return end if built is None or end < built else built

    def advance_to(self, t: float) -> None:
        while (event := self.next_event()) is not None and event <= t:
            self._step(event)

    def finish(self) -> Outcome:
        while (event := self.next_event()) is not None and event < math.inf:
            self._step(event)
        if self.running:
            raise ValueError("a run can never end: zero bandwidth")
        return Outcome(
            dict(self.ends),
            dict(self.uploads),
            tuple(self.usage),
            self.peak_running,
            self.peak_uploading,
            tuple(self.sessions),
            tuple(self.demand),
            tuple(sorted(self.failed)),
        )

    def add(self, run: Run) -> None:
        if run.start_s < self.now:
            raise ValueError(f"{run.name} starts at {run.start_s}, before the store's {self.now}")
        if (
            run.name in self.ends
            or run.name in self.producing
            or run.name in self.uploading
            or any(q.name == run.name for q in self.queued)
            or any(r[1] == run.name for r in self.retrying)
        ):
            raise ValueError(f"{run.name} runs twice")
        self._commit(run.start_s)
        if run.produce_s > 0:
            self.producing[run.name] = (run, run.start_s + run.produce_s)
            heapq.heappush(self.built, (run.start_s + run.produce_s, run.name))
        else:
            self._begin_upload(run)
        self.peak_running = max(self.peak_running, self.running)
        self._share()

    def _commit(self, t: float) -> None:
        """Bring the uploads' remaining bits to time t (no event in between)."""
        elapsed = t - self.now
        if elapsed > 0:
            for upload in self.uploading.values():
                upload.remaining = max(0.0, upload.remaining - upload.rate * elapsed)
        self.now = t

    def _begin_upload(self, run: Run) -> None:
        if self.connections is not None and len(self.uploading) >= self.connections:
            if self.retry_s is None:
                self.queued.append(run)
                return
            # Refused: the agent's next attempt (the whole run again: its set built anew)
            # after its back-off, if the night allows one more.
            attempt = self.attempt.get(run.name, 1)
            if self.attempts is not None and attempt >= self.attempts:
                self.failed.append(run.name)
                return
            self.attempt[run.name] = attempt + 1
            wait = min(self.retry_s * 2 ** (attempt - 1), self.retry_max_s)
            heapq.heappush(self.retrying, (self.now + wait, run.name, run))
            return
        if self.record:
            self.uploads[run.name] = self.now
        if run.bits > 0:
            self.uploading[run.name] = _Upload(run, run.bits)
        else:
            self.ends[run.name] = self.now

    def _step(self, t: float) -> None:
        done = sorted(name for name, u in self.uploading.items() if u.end <= t)
        ready = []
        while self.built and self.built[0][0] <= t:
            ready.append(heapq.heappop(self.built)[1])
        ready.sort()
        self._commit(t)
        for name in done:
            del self.uploading[name]
            self.ends[name] = t
        while self.queued and (self.connections is None or len(self.uploading) < self.connections):
            self._begin_upload(self.queued.pop(0))
        again = []
        while self.retrying and self.retrying[0][0] <= t:
            again.append(heapq.heappop(self.retrying)[2])
        for retried in sorted(again, key=lambda r: r.name):
            if retried.produce_s > 0:
                self.producing[retried.name] = (retried, t + retried.produce_s)
                heapq.heappush(self.built, (t + retried.produce_s, retried.name))
            else:
                self._begin_upload(retried)
        for name in ready:
            run, _ = self.producing.pop(name)
            self._begin_upload(run)
        self._share()

    def _share(self) -> None:
        """Max-min fair shares: the lowest ceilings first, each taking at most an equal part of
        what is left."""
        left = self.bandwidth_mbps * MB
        count = len(self.uploading)
        now, next_end, used, wanted = self.now, math.inf, 0.0, 0.0
        for upload in sorted(self.uploading.values(), key=_order):
            fair = left / count
            rate = upload.cap if upload.cap < fair else fair
            upload.rate = rate
            left -= rate
            count -= 1
            used += rate
            wanted += upload.run.cap_mbps
            end = now + upload.remaining / rate if rate > 0 else math.inf
            upload.end = end
            if end < next_end:
                next_end = end
        self._next_end = next_end
        self.peak_uploading = max(self.peak_uploading, len(self.uploading))
        if self.record:
            session = (self.now, len(self.uploading))
            if self.sessions and self.sessions[-1][0] == self.now:
                self.sessions[-1] = session
            elif not self.sessions or self.sessions[-1][1] != session[1]:
                self.sessions.append(session)
            asked = (self.now, wanted)
            if self.demand and self.demand[-1][0] == self.now:
                self.demand[-1] = asked
            elif not self.demand or self.demand[-1][1] != asked[1]:
                self.demand.append(asked)
            point = (self.now, used / MB)
            if self.usage and self.usage[-1][0] == self.now:
                self.usage[-1] = point
            elif not self.usage or self.usage[-1][1] != point[1]:
                self.usage.append(point)

    def predict(
        self,
        extra: Run | None = None,
        most_uploads: int | None = None,
        deadline_s: float = math.inf,
    ) -> Outcome | None:
        """The rest of the night of the runs under way (and of `extra`, started at its time)
        if nothing else starts; the store itself is left as it is. None, as soon as it is
        known, if that night has more than `most_uploads` at once or a run past `deadline_s`."""
        twin = self._twin()
        if extra is not None:
            twin.advance_to(extra.start_s)
            twin.add(extra)
        if most_uploads is None and deadline_s == math.inf:
            return twin.finish()
        while (event := twin.next_event()) is not None:
            if twin.peak_uploading > (most_uploads or math.inf) or event > deadline_s:
                return None
            twin._step(event)
        return twin.finish() if twin.peak_uploading <= (most_uploads or math.inf) else None

    def rest_of_night(self) -> Outcome:
        """`predict` without an extra run nor limits: never None."""
        return self._twin().finish()

    def _twin(self) -> Store:
        twin = Store(
            self.bandwidth_mbps,
            self.connections,
            self.retry_s,
            self.retry_max_s,
            self.attempts,
            now=self.now,
        )
        twin.producing = dict(self.producing)
        twin.built = list(self.built)
        twin.uploading = {
            n: _Upload(u.run, u.remaining, u.rate, u.end) for n, u in self.uploading.items()
        }
        twin._next_end = self._next_end
        twin.queued = list(self.queued)
        twin.retrying = list(self.retrying)
        twin.attempt = dict(self.attempt)
        twin.failed = list(self.failed)
        twin.usage = [(self.now, self.in_use_mbps())]
        twin.sessions = [(self.now, len(self.uploading))]
        twin.demand = [(self.now, sum(u.run.cap_mbps for u in self.uploading.values()))]
        twin.peak_uploading = len(self.uploading)
        return twin


def _order(upload: _Upload) -> tuple[float, str]:
    return upload.order


def in_use_at(usage: Sequence[tuple[float, float]], t: float) -> float:
    """The store's bandwidth in use at time t (Mbit/s), from a simulation's steps."""
    at = bisect.bisect_right(usage, t, key=lambda point: point[0]) - 1
    return usage[at][1] if at >= 0 else 0.0


def sessions_at(sessions: Sequence[tuple[float, int]], t: float) -> int:
    """The uploads under way at time t, from a simulation's steps."""
    at = bisect.bisect_right(sessions, t, key=lambda point: point[0]) - 1
    return sessions[at][1] if at >= 0 else 0


def most_sessions(sessions: Sequence[tuple[float, int]], begin: float, end: float) -> int:
    """The most uploads under way at any time of [begin, end)."""
    first = max(0, bisect.bisect_right(sessions, begin, key=lambda point: point[0]) - 1)
    last = bisect.bisect_left(sessions, end, key=lambda point: point[0])
    return max((n for _, n in sessions[first:last]), default=0)


def most_demand(demand: Sequence[tuple[float, float]], begin: float, end: float) -> float:
    """The largest sum of the uploads' ceilings at any time of [begin, end) (Mbit/s)."""
    first = max(0, bisect.bisect_right(demand, begin, key=lambda point: point[0]) - 1)
    last = bisect.bisect_left(demand, end, key=lambda point: point[0])
    return max((n for _, n in demand[first:last]), default=0.0)


def simulate(
    runs: Iterable[Run],
    bandwidth_mbps: float,
    connections: int | None = None,
    retry_s: float | None = None,
    retry_max_s: float = math.inf,
    attempts: int | None = None,
) -> Outcome:
    """The night of these runs on a store of this bandwidth (and connections, if given: a set
    built while all are taken waits for one, or with `retry_s` tries again after a back-off, at
    most `attempts` times in all)."""
    store = Store(bandwidth_mbps, connections, retry_s, retry_max_s, attempts)
    for run in sorted(runs, key=lambda r: (r.start_s, r.name)):
        if run.start_s > store.now:  # the runs starting together are added together
            store.advance_to(run.start_s)
        store.add(run)
    return store.finish()


@dataclass(frozen=True)
class Jitter:
    """Spreads around the expected figures, as log-normal sigmas (0.1: about a tenth)."""

    size_sigma: float = 0.1  # tonight's bytes against the expected (last run x growth)
    rate_sigma: float = 0.2  # a guest's production rate (its vCPUs are shared)
    store_sigma: float = 0.1  # the store's bandwidth on the night (other traffic)
    samples: int = 200
    seed: int = 15
    # A set built while the store's sessions are all taken (its connections and the extra
    # sessions the backup_store role allows, `backup_store_extra_sessions`) is refused. The
    # agent keeps its built set and offers it again every minute (`retry.busy_waits`, 30 times,
    # run.py): modelled as waiting for a session, first built first served (retry_s None).
    # With retry_s set, the agent's older way: the attempt fails and the night runs again after
    # its back-off (300 s, doubled, at most 1800 s; 4 attempts), its set built anew.
    extra_sessions: int = 8
    retry_s: float | None = None  # None: a refused set waits for a session, built
    retry_max_s: float = 1800.0
    attempts: int = 4


@dataclass(frozen=True)
class JitterResult:
    samples: int
    planned_end_s: float
    lateness_s: list[float]  # per sample: last end minus the planned last end, sorted
    worst_delay_s: list[float]  # per sample: the most any run ends after its planned end, sorted
    peak_running: list[int]  # per sample: most runs at once, sorted
    past_deadline: int  # samples where some run ends after the deadline given
    last_end_s: list[float] = field(default_factory=list)  # per sample: the last end, sorted
    failed: list[int] = field(default_factory=list)  # per sample: guests refused at every attempt
    waited_s: list[float] = field(default_factory=list)  # per sample: longest wait for a session

    def percentile(self, values: Sequence[float], q: float) -> float:
        """Nearest rank: the smallest value with at least q of the samples at or below it."""
        return values[max(0, math.ceil(q * len(values)) - 1)] if values else 0.0

    @property
    def lateness_p95_s(self) -> float:
        return self.percentile(self.lateness_s, 0.95)

    @property
    def worst_delay_p95_s(self) -> float:
        return self.percentile(self.worst_delay_s, 0.95)

    @property
    def peak_running_p95(self) -> int:
        return int(self.percentile(self.peak_running, 0.95))

    @property
    def last_end_p95_s(self) -> float:
        return self.percentile(self.last_end_s, 0.95)

    @property
    def waited_p95_s(self) -> float:
        return self.percentile(self.waited_s, 0.95)

    @property
    def nights_with_failures(self) -> int:
        """Nights where some guest was refused by the store at each of its attempts."""
        return sum(1 for n in self.failed if n > 0)


def _spread(rng: random.Random, sigma: float) -> float:
    """A log-normal factor of mean 1."""
    return math.exp(rng.gauss(0.0, sigma) - sigma * sigma / 2) if sigma > 0 else 1.0


def jitter(
    runs: Sequence[Run],
    bandwidth_mbps: float,
    spread: Jitter,
    deadline_s: float = math.inf,
    connections: int | None = None,
) -> JitterResult:
    """The night of these runs, `spread.samples` times with sizes, production rates and the
    store's bandwidth drawn (seeded) around the expected ones, the starts kept; with
    `connections`, a set built while the store's sessions (those and `spread.extra_sessions`)
    are all taken is refused and retried after the agent's back-off."""
    rng = random.Random(spread.seed)
    plan = simulate(runs, bandwidth_mbps, connections)
    lateness: list[float] = []
    last_ends: list[float] = []
    failures: list[int] = []
    waits: list[float] = []
    delays: list[float] = []
    peaks: list[int] = []
    past = 0
    ordered = sorted(runs, key=lambda r: r.name)
    for _ in range(spread.samples):
        drawn = []
        for run in ordered:
            size = _spread(rng, spread.size_sigma)
            rate = _spread(rng, spread.rate_sigma)
            drawn.append(
                Run(run.name, run.start_s, run.bits * size, run.produce_s * size / rate,
                    run.cap_mbps)
            )  # fmt: skip
        night = simulate(
            drawn,
            bandwidth_mbps * _spread(rng, spread.store_sigma),
            None if connections is None else connections + spread.extra_sessions,
            spread.retry_s,
            spread.retry_max_s,
            spread.attempts,
        )
        failures.append(len(night.failed))
        lateness.append(night.makespan_s - plan.makespan_s)
        last_ends.append(night.makespan_s)
        waits.append(
            max(
                (night.uploads[r.name] - r.start_s - r.produce_s for r in drawn if r.name in night.uploads),
                default=0.0,
            )
        )
        delays.append(max((end - plan.ends[n] for n, end in night.ends.items()), default=0.0))
        peaks.append(night.peak_running)
        past += night.makespan_s > deadline_s
    return JitterResult(
        spread.samples,
        plan.makespan_s,
        sorted(lateness),
        sorted(delays),
        sorted(peaks),
        past,
        sorted(last_ends),
        sorted(failures),
        sorted(waits),
    )
