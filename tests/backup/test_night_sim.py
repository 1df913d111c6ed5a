"""The night's simulation (issue 15): uploads share the store's bandwidth equally, each at most
its own ceiling, after their set is built; driven at once or step by step, the same floats."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vpsfleet.backup_night import Jitter, Run, Store, in_use_at, jitter, simulate

GBIT = 1e9  # bits


def test_two_uploads_share_the_store_equally() -> None:
    night = simulate([Run("a", 0, 10 * GBIT, 0, 1000), Run("b", 0, 10 * GBIT, 0, 1000)], 1000)
    assert night.ends == {"a": 20.0, "b": 20.0}  # 500 Mbit/s each
    assert night.usage == ((0.0, 1000.0), (20.0, 0.0))


def test_a_capped_upload_leaves_its_surplus_to_the_others() -> None:
    # 1000 Mbit/s: "slow" may take 100, "fast" gets the other 900 until slow is through.
    night = simulate([Run("slow", 0, 1 * GBIT, 0, 100), Run("fast", 0, 9 * GBIT, 0, 1000)], 1000)
    assert night.ends["slow"] == pytest.approx(10.0)
    assert night.ends["fast"] == pytest.approx(10.0)
    assert night.usage[0] == (0.0, 1000.0)


def test_the_set_is_built_before_its_upload_which_alone_runs_at_its_ceiling() -> None:
    night = simulate([Run("a", 60, 5 * GBIT, 100, 500)], 10_000)
    assert night.uploads == {"a": 160.0}
    assert night.ends == {"a": 170.0}
    assert in_use_at(night.usage, 100) == 0 and in_use_at(night.usage, 165) == 500


def test_an_empty_set_ends_when_built() -> None:
    assert simulate([Run("a", 0, 0, 30, 100)], 100).ends == {"a": 30.0}


def test_a_run_cannot_start_in_the_past_nor_twice() -> None:
    store = Store(100)
    store.add(Run("a", 10, GBIT, 0, 100))
    with pytest.raises(ValueError, match="before"):
        store.add(Run("b", 5, GBIT, 0, 100))
    with pytest.raises(ValueError, match="twice"):
        store.add(Run("a", 10, GBIT, 0, 100))


runs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=50),  # start, minutes
        st.floats(min_value=0, max_value=1e12),  # bits
        st.floats(min_value=0, max_value=3000),  # production
        st.sampled_from([100.0, 250.0, 1000.0]),  # ceiling
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(runs=runs, bandwidth=st.sampled_from([100.0, 1000.0, 2500.0]))
def test_step_by_step_or_at_once_the_same_night(
    runs: list[tuple[int, float, float, float]], bandwidth: float
) -> None:
    """What the planner relies on: stopping at minutes where nothing starts, and predicting the
    rest of the night, change nothing."""
    night = [Run(f"r{i}", m * 60, b, p, c) for i, (m, b, p, c) in enumerate(runs)]
    at_once = simulate(night, bandwidth)
    store = Store(bandwidth)
    for minute in range(0, 52):
        store.advance_to(minute * 60)
        for run in sorted(night, key=lambda r: r.name):
            if run.start_s == minute * 60:
                store.add(run)
        store.rest_of_night()  # looking ahead changes nothing
    # Once nothing else starts, the prediction of the runs under way is their simulated end.
    assert {**store.ends, **store.rest_of_night().ends} == at_once.ends
    step_by_step = store.finish()
    assert step_by_step == at_once
    # Every bit goes through, never faster than the store nor than a run's ceiling.
    for run in night:
        end = at_once.ends[run.name]
        assert end >= run.start_s + run.produce_s + run.bits / (run.cap_mbps * 1e6) * (1 - 1e-9)
    assert all(0 <= used <= bandwidth * (1 + 1e-9) for _, used in at_once.usage)
    carried = sum(
        used * 1e6 * (later - at)
        for (at, used), (later, _) in zip(at_once.usage, at_once.usage[1:], strict=False)
    )
    assert carried == pytest.approx(sum(r.bits for r in night), rel=1e-6, abs=1)


def test_jitter_without_spread_is_the_plan_and_with_it_is_seeded() -> None:
    night = [Run(f"r{i}", i * 60, (i + 1) * GBIT, 20 * i, 200) for i in range(10)]
    still = jitter(night, 500, Jitter(0, 0, 0, samples=5), deadline_s=0)
    assert still.lateness_s == still.worst_delay_s == [0.0] * 5 and still.lateness_p95_s == 0
    assert still.past_deadline == 5
    spread = Jitter(0.2, 0.2, 0.1, samples=50, seed=3)
    first, second = jitter(night, 500, spread), jitter(night, 500, spread)
    assert first == second
    assert first.lateness_s == sorted(first.lateness_s)
    assert first.lateness_s[0] < 0 < first.lateness_p95_s  # some nights earlier, most later
    assert first.worst_delay_p95_s >= first.lateness_p95_s
    assert first.percentile([1.0, 2.0, 3.0, 4.0], 0.95) == 4.0
