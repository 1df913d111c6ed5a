"""The SLA maths on hand-made samples (no Prometheus): figures worked out by hand."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from vpsfleet.sla import Exclusion, Rules, State, assess, month_bounds, timeline

PARIS = ZoneInfo("Europe/Paris")  # the policy's default time zone
RULES = Rules(threshold_minutes=3, credit_percent_per_minute=0.5, credit_cap_percent=25)
S = 1000  # ms
MIN = 60 * S


def probes(end: int, down: tuple[int, int] | None = None, step: int = 15 * S
           ) -> list[tuple[int, bool]]:
    """Probes every 15 s over [0, end), failed from down[0] to down[1] (first success)."""
    out = [(t, True) for t in range(0, end, step) if not (down and down[0] <= t <= down[1])]
    if down:
        out += [(t, False) for t in range(down[0], down[1], step)] + [(down[1], True)]
    return sorted(out)


def test_months_are_paris_months_with_daylight_saving() -> None:
    start, end = month_bounds(2025, 3, PARIS)
    assert (end - start) // MIN == 31 * 1440 - 60
    start, end = month_bounds(2025, 10, PARIS)
    assert (end - start) // MIN == 31 * 1440 + 60
    start, end = month_bounds(2024, 2, PARIS)
    assert (end - start) // MIN == 29 * 1440
    start, end = month_bounds(2025, 12, PARIS)
    assert end - start == 31 * 1440 * MIN  # December rolls over into January


def test_an_incident_runs_from_the_first_failed_probe_to_the_first_success() -> None:
    hour = 60 * MIN
    raw = timeline(probes(hour, (10 * MIN, 10 * MIN + 200 * S)), 0, hour, RULES)
    assert [(s.start, s.end, s.state) for s in raw] == [
        (0, 10 * MIN, State.UP), (10 * MIN, 10 * MIN + 200 * S, State.DOWN),
        (10 * MIN + 200 * S, hour, State.UP),
    ]
    outcome = assess(raw, 0, hour, RULES)
    assert outcome.unavailable_ms == 200 * S
    assert outcome.credit_percent == 0  # 20 s beyond 3 min: no full minute
    assert outcome.availability_percent == 100 * (3600 - 200) / 3600


def test_the_threshold_is_strict_and_credits_count_full_minutes() -> None:
    hour = 60 * MIN
    for seconds, counted, credit in ((180, False, 0.0), (181, True, 0.0), (239, True, 0.0),
                                     (240, True, 0.5), (60 * 61, True, 25.0)):
        raw = timeline(probes(2 * hour, (10 * MIN, 10 * MIN + seconds * S)), 0, 2 * hour, RULES)
        outcome = assess(raw, 0, 2 * hour, RULES)
        assert [i.counted for i in outcome.incidents] == [counted], seconds
        assert outcome.credit_percent == credit, seconds


def test_one_lost_probe_is_not_a_gap_but_two_are() -> None:
    samples = [s for s in probes(10 * MIN) if s[0] != 5 * MIN]
    assert assess(timeline(samples, 0, 10 * MIN, RULES), 0, 10 * MIN, RULES).unknown_ms == 0
    samples = [s for s in probes(10 * MIN) if s[0] not in (5 * MIN, 5 * MIN + 15 * S)]
    outcome = assess(timeline(samples, 0, 10 * MIN, RULES), 0, 10 * MIN, RULES)
    # Probes at 4:45 and 5:30 (45 s apart): 4:45 holds 15 s, 5:00-5:30 is unknown.
    assert outcome.unknown_ms == 30 * S


def test_no_data_before_the_first_probe_is_unknown_and_out_of_availability() -> None:
    samples = [s for s in probes(60 * MIN) if s[0] >= 30 * MIN]
    outcome = assess(timeline(samples, 0, 60 * MIN, RULES), 0, 60 * MIN, RULES)
    assert outcome.unknown_ms == 30 * MIN
    assert outcome.availability_percent == 100
    empty = assess(timeline([], 0, 60 * MIN, RULES), 0, 60 * MIN, RULES)
    assert empty.availability_percent is None and empty.credit_percent == 0


def test_exclusions_cut_incidents_and_overlapping_reasons_are_joined() -> None:
    hour = 60 * MIN
    raw = timeline(probes(hour, (10 * MIN, 30 * MIN)), 0, hour, RULES)
    outcome = assess(raw, 0, hour, RULES, [
        Exclusion(5 * MIN, 20 * MIN, "planned maintenance: x"),
        Exclusion(15 * MIN, 25 * MIN, "suspended (M7)"),
    ])
    assert [(i.start // MIN, i.end // MIN, i.counted, i.excluded_reason)
            for i in outcome.incidents] == [
        (10, 15, False, "planned maintenance: x"),
        (15, 20, False, "planned maintenance: x; suspended (M7)"),
        (20, 25, False, "suspended (M7)"),
        (25, 30, True, None),  # counts from the end of the exclusion: 5 min, 2 full minutes
    ]
    assert outcome.excluded_ms == 20 * MIN
    assert outcome.unavailable_ms == 5 * MIN
    assert outcome.credit_percent == 1.0
    assert outcome.availability_percent == 100 * (40 - 5) / 40


def test_an_offer_without_sla_has_no_credit_and_rules_come_from_the_policy() -> None:
    hour = 60 * MIN
    raw = timeline(probes(hour, (10 * MIN, 20 * MIN)), 0, hour, RULES)
    assert assess(raw, 0, hour, RULES, has_sla=False).credit_percent is None
    generous = Rules(threshold_minutes=1, credit_percent_per_minute=2, credit_cap_percent=10)
    assert assess(raw, 0, hour, generous).credit_percent == 10  # 9 x 2 = 18, capped at 10


def test_the_months_are_the_policys_time_zone() -> None:
    """January 2025 starts at 23:00 UTC the day before in Paris, at midnight in UTC: the report's
    month follows `policy.sla.time_zone`, not a zone fixed in code."""
    import dataclasses
    import datetime as dt

    from vpsfleet.environments import fleet_path
    from vpsfleet.loader import load_fleet
    from vpsfleet.sla_report import zone_of

    fleet = load_fleet(fleet_path("lab"))
    assert fleet.policy.sla.time_zone == "Europe/Paris"
    paris_start, _ = month_bounds(2025, 1, zone_of(fleet))
    utc_start, _ = month_bounds(2025, 1, dt.UTC)
    assert utc_start - paris_start == 60 * MIN
    sla = fleet.policy.sla.model_copy(update={"time_zone": "UTC"})
    in_utc = dataclasses.replace(fleet, policy=fleet.policy.model_copy(update={"sla": sla}))
    assert month_bounds(2025, 1, zone_of(in_utc))[0] == utc_start
