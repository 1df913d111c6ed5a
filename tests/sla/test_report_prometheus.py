"""`vpsfleet sla report` against a real Prometheus holding known histories (conftest.py).

Every expected figure is worked out here by hand from the histories and the contract (M25-M27:
more than 3 minutes counts, 0.5 % per full minute beyond the first 3, capped at 25 %).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from vpsfleet.cli import main

JAN_MINUTES = 31 * 24 * 60  # 44,640
FEB_MINUTES = 28 * 24 * 60  # 40,320
MAR_MINUTES = 31 * 24 * 60 - 60  # 44,580: the night of 30 March has 23 hours in Paris


def report(fleet: Path, url: str, month: str, capsys: pytest.CaptureFixture[str],
           *extra: str) -> dict[str, dict[str, Any]]:
    code = main(["sla", "report", str(fleet), "--month", month, "--prometheus", url,
                 "--format", "json", *extra])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return {item["guest"]: item for item in json.loads(captured.out)}


@pytest.fixture(scope="module")
def january(sla_fleet: Path, prometheus_url: str) -> dict[str, dict[str, Any]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["sla", "report", str(sla_fleet), "--month", "2025-01",
                     "--prometheus", prometheus_url, "--format", "json"])
    assert code == 0
    return {item["guest"]: item for item in json.loads(out.getvalue())}


def availability(unavailable_minutes: float, known_minutes: float) -> float:
    return round(100 * (known_minutes - unavailable_minutes) / known_minutes, 6)


def test_the_json_form_has_exactly_the_contract_keys(january: dict[str, dict[str, Any]]) -> None:
    assert set(january) == {"g-259", "g-301", "g-4m", "g-61m", "g-short", "g-cap", "g-maint",
                            "g-gap", "g-nosla", "g-nodata", "g-feb", "g-dst", "ds1"}
    for item in january.values():
        assert list(item) == ["guest", "customer", "availability_percent",
                              "unavailable_minutes", "unknown_minutes", "credit_percent",
                              "incidents"]
        for incident in item["incidents"]:
            assert list(incident) == ["start", "end", "minutes", "counted", "excluded_reason"]


def test_an_outage_of_2_min_59_s_does_not_count(january: dict[str, dict[str, Any]]) -> None:
    g = january["g-259"]
    assert g["incidents"] == [{"start": "2025-01-10T10:00:00Z", "end": "2025-01-10T10:02:59Z",
                               "minutes": 2.983, "counted": False, "excluded_reason": None}]
    assert g["unavailable_minutes"] == 0
    assert g["availability_percent"] == 100
    assert g["credit_percent"] == 0
    assert g["unknown_minutes"] == 0


def test_an_outage_of_3_min_1_s_counts_but_earns_no_full_minute(
    january: dict[str, dict[str, Any]],
) -> None:
    g = january["g-301"]
    assert [(i["minutes"], i["counted"]) for i in g["incidents"]] == [(3.017, True)]
    assert g["unavailable_minutes"] == 3.017  # 181 s
    assert g["availability_percent"] == availability(181 / 60, JAN_MINUTES)  # 99.993243
    assert g["credit_percent"] == 0  # 1 s beyond 3 min: no full minute


def test_an_outage_of_4_min_earns_one_full_minute(january: dict[str, dict[str, Any]]) -> None:
    g = january["g-4m"]
    assert g["incidents"][0]["end"] == "2025-01-10T10:04:00Z"
    assert g["unavailable_minutes"] == 4
    assert g["availability_percent"] == availability(4, JAN_MINUTES)
    assert g["credit_percent"] == 0.5


def test_an_outage_of_61_min_reaches_the_cap(january: dict[str, dict[str, Any]]) -> None:
    g = january["g-61m"]
    assert g["unavailable_minutes"] == 61
    assert g["availability_percent"] == availability(61, JAN_MINUTES)  # 99.863351: missed
    assert g["credit_percent"] == 25  # 58 full minutes x 0.5 = 29, capped at 25


def test_several_short_outages_count_one_by_one(january: dict[str, dict[str, Any]]) -> None:
    g = january["g-short"]
    assert [(i["minutes"], i["counted"]) for i in g["incidents"]] == [
        (1, False), (1, False), (3, False), (5, True), (5, True)
    ]
    assert g["unavailable_minutes"] == 10
    assert g["credit_percent"] == 2.0  # 2 full minutes beyond 3, twice, x 0.5
    assert g["availability_percent"] == availability(10, JAN_MINUTES)


def test_a_month_of_many_incidents_is_capped_at_25_percent(
    january: dict[str, dict[str, Any]],
) -> None:
    g = january["g-cap"]
    assert len(g["incidents"]) == 10 and all(i["counted"] for i in g["incidents"])
    assert g["unavailable_minutes"] == 100
    assert g["credit_percent"] == 25  # 10 x 7 full minutes x 0.5 = 35, capped


def test_an_outage_inside_planned_maintenance_is_excluded(
    january: dict[str, dict[str, Any]],
) -> None:
    g = january["g-maint"]
    inside, outside = g["incidents"]
    assert inside == {"start": "2025-01-20T01:30:00Z", "end": "2025-01-20T02:31:00Z",
                      "minutes": 61, "counted": False,
                      "excluded_reason": "planned maintenance: host kernel upgrade"}
    assert (outside["minutes"], outside["counted"], outside["excluded_reason"]) == (6, True, None)
    assert g["unavailable_minutes"] == 6
    assert g["credit_percent"] == 1.5  # 3 full minutes beyond 3
    # The two hours of maintenance are out of the month's known minutes.
    assert g["availability_percent"] == availability(6, JAN_MINUTES - 120)


def test_time_without_probe_data_is_unknown_never_counted(
    january: dict[str, dict[str, Any]],
) -> None:
    g = january["g-gap"]
    assert g["unknown_minutes"] == 120
    assert g["incidents"] == []
    assert g["availability_percent"] == 100
    nodata = january["g-nodata"]
    assert nodata["unknown_minutes"] == JAN_MINUTES
    assert nodata["availability_percent"] is None
    assert nodata["credit_percent"] == 0


def test_an_offer_without_sla_has_no_credit(january: dict[str, dict[str, Any]]) -> None:
    g = january["g-nosla"]
    assert g["credit_percent"] is None
    assert g["unavailable_minutes"] == 10


def test_dedicated_servers_are_read_from_their_server_label(
    january: dict[str, dict[str, Any]],
) -> None:
    ds = january["ds1"]
    assert ds["unavailable_minutes"] == 10 and ds["credit_percent"] == 3.5


def test_a_month_of_28_days(sla_fleet: Path, prometheus_url: str,
                            capsys: pytest.CaptureFixture[str]) -> None:
    g = report(sla_fleet, prometheus_url, "2025-02", capsys, "--guest", "g-feb")["g-feb"]
    assert g["unavailable_minutes"] == 10
    assert g["availability_percent"] == availability(10, FEB_MINUTES)  # 99.975198
    assert g["credit_percent"] == 3.5
    assert g["unknown_minutes"] == 0


def test_a_month_with_the_change_to_summer_time(
    sla_fleet: Path, prometheus_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """March 2025 in Paris lasts 44,580 minutes; the outage from 01:58 to 03:03 local time
    lasts 5 minutes, not 65."""
    g = report(sla_fleet, prometheus_url, "2025-03", capsys, "--guest", "g-dst")["g-dst"]
    assert g["incidents"][0]["start"] == "2025-03-30T00:58:00Z"
    assert g["incidents"][0]["minutes"] == 5
    assert g["unknown_minutes"] == 0  # the month's data covers exactly 44,580 minutes
    assert g["availability_percent"] == availability(5, MAR_MINUTES)
    assert g["credit_percent"] == 1.0


def test_a_31_day_month_table_csv_and_svg(
    sla_fleet: Path, prometheus_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    svg = tmp_path / "month.svg"
    assert main(["sla", "report", str(sla_fleet), "--month", "2025-01", "--prometheus",
                 prometheus_url, "--format", "csv", "--svg", str(svg)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("guest,customer,sla_percent,month_minutes,")
    row = next(line for line in lines if line.startswith("g-61m,"))
    assert row.split(",")[3] == f"{JAN_MINUTES}.0"
    assert row.split(",")[8] == "False"  # 99.86 % < 99.99 %
    drawing = svg.read_text()
    assert drawing.startswith("<svg") and drawing.rstrip().endswith("</svg>")
    for state in ("up", "down_counted", "down_not_counted", "excluded", "unknown"):
        assert f'data-legend="{state}"' in drawing
        assert f'data-state="{state}"' in drawing
    assert main(["sla", "report", str(sla_fleet), "--month", "2025-01", "--prometheus",
                 prometheus_url, "--guest", "g-61m"]) == 0
    table = capsys.readouterr().out
    assert "MISSED" in table and "25.0" in table
