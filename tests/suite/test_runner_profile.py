"""benchmarks/runner_profile.py: a task's time runs from its start to the next task's start (the
last one to the recap), summed per role, from ansible-runner's job events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.runner_profile import main, profile, read_events


def event(counter: int, kind: str, at: str, **data: Any) -> dict[str, Any]:
    return {"counter": counter, "event": kind, "created": f"2026-12-04T18:00:{at}+00:00", "event_data": data}


EVENTS = [
    event(4, "playbook_on_task_start", "03.000000", task="Install", role="common", play="Guests"),
    event(1, "playbook_on_start", "00.000000"),
    event(2, "playbook_on_task_start", "00.500000", task="Gathering Facts", play="Guests"),
    event(3, "runner_on_ok", "02.000000", task="Gathering Facts", host="a"),
    event(5, "playbook_on_handler_task_start", "07.000000", task="Restart", role="common", play="Guests"),
    event(6, "playbook_on_task_start", "08.000000", task="Find notices", play="Sink"),
    event(7, "playbook_on_stats", "10.000000", changed={"a": 2, "b": 0}),
]


def test_each_task_lasts_until_the_next_one_starts_and_the_last_until_the_recap() -> None:
    p = profile(EVENTS)
    assert p.total == 10.0
    assert [(t.task, t.seconds) for t in p.tasks] == [
        ("Gathering Facts", 2.5),
        ("Install", 4.0),
        ("Restart", 1.0),
        ("Find notices", 2.0),
    ]
    assert p.by_role() == {"common": 5.0, "facts": 2.5, "(play tasks)": 2.0}
    assert p.changed == {"a": 2, "b": 0}


def test_reads_an_artifact_folder_and_prints_the_longest_tasks(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "job_events").mkdir()
    for e in EVENTS:
        (tmp_path / "job_events" / f"{e['counter']}-x.json").write_text(json.dumps(e))
    assert len(read_events(tmp_path)) == len(EVENTS)
    assert main([str(tmp_path), "--top", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "playbook 10.0 s, 4 task starts, changed 2"
    assert out[1] == "by role (s): common 5.0, facts 2.5, (play tasks) 2.0"
    assert out[2].split() == ["4.00", "common", ":", "Install", "[Guests]"]
    assert len(out) == 3
