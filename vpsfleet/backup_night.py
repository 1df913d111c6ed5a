"""The night on one backup store, simulated (issue 15): the model the planner plans with, and the
one its plan is checked against.

A guest's run has two phases, as the agent runs them (`produce`, then `publish`): it first builds
its set locally (tar + compression at the guest's production rate), which takes no store
bandwidth; then it uploads the set. The runs that are uploading share the store's bandwidth
equally (max-min fair: a run whose own ceiling, its plan's bandwidth, is below the equal share
takes its ceiling, the others share the rest); a run ends when its last bit is through.

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

    @property
    def makespan_s(self) -> float:
        return max(self.ends.values(), default=0.0)


@dataclass
class _Upload:
    run: Run
    remaining: float  # bits
    rate: float = 0.0  # bit/s, constant until the next event


@dataclass
class Store:
    """The fluid simulation of one store, driven forwards in time. `advance_to(t)` processes the
    events up to t and changes nothing else; `add(run)` starts a run at its start time (not
    before the store's clock)."""

    bandwidth_mbps: float
    record: bool = True
    now: float = 0.0
    producing: dict[str, tuple[Run, float]] = field(default_factory=dict)  # name: run, ready at
    uploading: dict[str, _Upload] = field(default_factory=dict)
    ends: dict[str, float] = field(default_factory=dict)
    uploads: dict[str, float] = field(default_factory=dict)
    usage: list[tuple[float, float]] = field(default_factory=list)
    peak_running: int = 0

    @property
    def running(self) -> int:
        return len(self.producing) + len(self.uploading)

    def in_use_mbps(self) -> float:
        return sum(u.rate for u in self.uploading.values()) / MB

    def next_event(self) -> float | None:
        times = [ready for _, ready in self.producing.values()]
        times += [self._end_of(u) for u in self.uploading.values()]
        return min(times, default=None)

    def _end_of(self, upload: _Upload) -> float:
        return self.now + upload.remaining / upload.rate if upload.rate > 0 else math.inf

    def advance_to(self, t: float) -> None:
        while (event := self.next_event()) is not None and event <= t:
            self._step(event)

    def finish(self) -> Outcome:
        while (event := self.next_event()) is not None and event < math.inf:
            self._step(event)
        if self.running:
            raise ValueError("a run can never end: zero bandwidth")
        return Outcome(dict(self.ends), dict(self.uploads), tuple(self.usage), self.peak_running)

    def add(self, run: Run) -> None:
        if run.start_s < self.now:
            raise ValueError(f"{run.name} starts at {run.start_s}, before the store's {self.now}")
        if run.name in self.ends or run.name in self.producing or run.name in self.uploading:
            raise ValueError(f"{run.name} runs twice")
        self._commit(run.start_s)
        if run.produce_s > 0:
            self.producing[run.name] = (run, run.start_s + run.produce_s)
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
        if self.record:
            self.uploads[run.name] = self.now
        if run.bits > 0:
            self.uploading[run.name] = _Upload(run, run.bits)
        else:
            self.ends[run.name] = self.now

    def _step(self, t: float) -> None:
        done = sorted(name for name, u in self.uploading.items() if self._end_of(u) <= t)
        ready = sorted(name for name, (_, at) in self.producing.items() if at <= t)
        self._commit(t)
        for name in done:
            del self.uploading[name]
            self.ends[name] = t
        for name in ready:
            run, _ = self.producing.pop(name)
            self._begin_upload(run)
        self._share()

    def _share(self) -> None:
        """Max-min fair shares: the lowest ceilings first, each taking at most an equal part of
        what is left."""
        left = self.bandwidth_mbps * MB
        order = sorted(self.uploading.values(), key=lambda u: (u.run.cap_mbps, u.run.name))
        for count, upload in zip(range(len(order), 0, -1), order, strict=True):
            upload.rate = min(upload.run.cap_mbps * MB, left / count)
            left -= upload.rate
        if self.record:
            point = (self.now, self.in_use_mbps())
            if self.usage and self.usage[-1][0] == self.now:
                self.usage[-1] = point
            elif not self.usage or self.usage[-1][1] != point[1]:
                self.usage.append(point)

    def predict(self, extra: Run | None = None) -> Outcome:
        """The rest of the night of the runs under way (and of `extra`, started at its time)
        if nothing else starts; the store itself is left as it is."""
        twin = Store(self.bandwidth_mbps, now=self.now)
        twin.producing = dict(self.producing)
        twin.uploading = {n: _Upload(u.run, u.remaining, u.rate) for n, u in self.uploading.items()}
        twin.usage = [(self.now, self.in_use_mbps())]
        if extra is not None:
            twin.advance_to(extra.start_s)
            twin.add(extra)
        return twin.finish()


def in_use_at(usage: Sequence[tuple[float, float]], t: float) -> float:
    """The store's bandwidth in use at time t (Mbit/s), from a simulation's steps."""
    at = bisect.bisect_right(usage, t, key=lambda point: point[0]) - 1
    return usage[at][1] if at >= 0 else 0.0


def simulate(runs: Iterable[Run], bandwidth_mbps: float) -> Outcome:
    """The night of these runs on a store of this bandwidth."""
    store = Store(bandwidth_mbps)
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


@dataclass(frozen=True)
class JitterResult:
    samples: int
    planned_end_s: float
    lateness_s: list[float]  # per sample: last end minus the planned last end, sorted
    worst_delay_s: list[float]  # per sample: the most any run ends after its planned end, sorted
    peak_running: list[int]  # per sample: most runs at once, sorted
    past_deadline: int  # samples where some run ends after the deadline given

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


def _spread(rng: random.Random, sigma: float) -> float:
    """A log-normal factor of mean 1."""
    return math.exp(rng.gauss(0.0, sigma) - sigma * sigma / 2) if sigma > 0 else 1.0


def jitter(
    runs: Sequence[Run], bandwidth_mbps: float, spread: Jitter, deadline_s: float = math.inf
) -> JitterResult:
    rng = random.Random(spread.seed)
    plan = simulate(runs, bandwidth_mbps)
    lateness: list[float] = []
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
        night = simulate(drawn, bandwidth_mbps * _spread(rng, spread.store_sigma))
        lateness.append(night.makespan_s - plan.makespan_s)
        delays.append(max((end - plan.ends[n] for n, end in night.ends.items()), default=0.0))
        peaks.append(night.peak_running)
        past += night.makespan_s > deadline_s
    return JitterResult(
        spread.samples, plan.makespan_s, sorted(lateness), sorted(delays), sorted(peaks), past
    )
