"""What the ICMP probes say about each machine over a month, read from Prometheus.

The series are `probe_success{job="sla_icmp", guest="<name>"}` (dedicated servers:
`server="<name>"`). Reading every raw sample of a month (178,560 a machine) would be slow, so the
month is cut into chunks (a day by default) and read in two passes:

1. per chunk, two instant queries over the whole fleet: `count_over_time` and `min_over_time` of
   the chunk. A machine whose chunk holds one series, no failed probe (min 1) and every probe but
   at most one (a lost probe is not a hole in the data, see `sla.py`) was up the whole chunk;
2. for every other (machine, chunk), its raw samples: a range-vector selector over the chunk
   widened by the gap tolerance on each side (so that an incident that crosses the chunk's edge
   ends exactly where it does), for up to `batch` machines a query.

The raw timelines of the chunks are then joined; `sla.timeline` is exact within each chunk.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vpsfleet.prometheus import Labels, Prometheus
from vpsfleet.sla import Rules, Segment, State, _merge, timeline

JOB = "sla_icmp"
METRIC = "probe_success"
DAY_MS = 86_400_000


@dataclass(frozen=True, order=True)
class Machine:
    label: str  # "guest" or "server"
    name: str


def _machine(labels: Labels) -> Machine | None:
    for label in ("guest", "server"):
        if label in labels:
            return Machine(label, labels[label])
    return None


def _selector(extra: str = "") -> str:
    return f'{METRIC}{{job="{JOB}"{extra}}}'


def chunks(start: int, until: int, size: int) -> list[tuple[int, int]]:
    return [(a, min(a + size, until)) for a in range(start, until, size)]


def read_timelines(
    prometheus: Prometheus,
    machines: Iterable[Machine],
    start: int,
    until: int,
    rules: Rules,
    *,
    chunk_ms: int = DAY_MS,
    batch: int = 50,
) -> dict[Machine, list[Segment]]:
    """Each machine's raw timeline (UP, DOWN, UNKNOWN) over [start, until)."""
    wanted = set(machines)
    pieces: dict[Machine, list[Segment]] = {m: [] for m in wanted}
    for a, b in chunks(start, until, chunk_ms):
        at = b - 1  # a range selector (at - R, at] is then exactly [a, b)
        selector = f"{_selector()}[{b - a}ms]"
        counts: dict[Machine, list[float]] = {}
        for labels, value in prometheus.vector(f"count_over_time({selector})", at):
            machine = _machine(labels)
            if machine in wanted and machine is not None:
                counts.setdefault(machine, []).append(value)
        lowest: dict[Machine, float] = {}
        for labels, value in prometheus.vector(f"min_over_time({selector})", at):
            machine = _machine(labels)
            if machine in wanted and machine is not None:
                lowest[machine] = min(value, lowest.get(machine, value))
        expected = (b - a) // rules.probe_interval_ms
        suspect: list[Machine] = []
        for machine in sorted(wanted):
            series = counts.get(machine, [])
            if len(series) == 1 and series[0] >= expected - 1 and lowest.get(machine) == 1:
                pieces[machine].append(Segment(a, b, State.UP))
            else:
                suspect.append(machine)
        for machine, segs in _raw(prometheus, suspect, a, b, rules, batch).items():
            pieces[machine].extend(segs)
    return {m: _merge(segs) for m, segs in pieces.items()}


def _raw(
    prometheus: Prometheus, suspect: list[Machine], a: int, b: int, rules: Rules, batch: int
) -> dict[Machine, list[Segment]]:
    samples: dict[Machine, list[tuple[int, bool]]] = {m: [] for m in suspect}
    lo, hi = a - rules.gap_ms, b + rules.gap_ms
    for label in ("guest", "server"):
        names = [m.name for m in suspect if m.label == label]
        for i in range(0, len(names), batch):
            # Names are hostname labels ([a-z0-9-]): nothing to escape in the regular expression.
            regex = "|".join(names[i : i + batch])
            expr = f'{_selector(f",{label}=~{chr(34)}{regex}{chr(34)}")}[{hi - lo}ms]'
            for labels, values in prometheus.matrix(expr, hi - 1):
                machine = _machine(labels)
                if machine not in samples or machine is None:
                    continue
                samples[machine].extend((t, v >= 1) for t, v in values if v == v)  # NaN: no data
    out = {}
    for machine, found in samples.items():
        found.sort(key=lambda s: s[0])
        out[machine] = timeline(found, a, b, rules)
    return out
