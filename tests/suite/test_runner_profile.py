"""benchmarks/runner_profile.py: a task's time runs from its start to the next task's start (the
last one to the recap), summed per role, from ansible-runner's job events; each host's own run of
a task (start to result) and the module runs, which hold under strategy free too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.runner_profile import host_work, main, profile, read_events


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
    assert out[2] == "hosts' own work: 0.0 host-seconds, 0 module runs"
    assert out[5].split() == ["4.00", "common", ":", "Install", "[Guests]"]
    assert len(out) == 6


def test_each_hosts_own_work_counts_interleaved_tasks_items_and_not_what_was_skipped() -> None:
    """Strategy free: host a's and host b's tasks overlap; each host's run is its own start to its
    own result. A loop's items are module runs each; a skipped task is time but no run."""
    install, copy = {"task": "Install", "role": "common"}, {"task": "Copy", "role": "web"}
    events = [
        event(1, "runner_on_start", "00.000000", host="a", task_uuid="t1", **install),
        event(2, "runner_on_start", "00.500000", host="b", task_uuid="t2", **copy),
        event(3, "runner_item_on_ok", "01.000000", host="b", task_uuid="t2", **copy),
        event(4, "runner_on_ok", "02.000000", host="a", task_uuid="t1", **install),
        event(5, "runner_item_on_ok", "02.500000", host="b", task_uuid="t2", **copy),
        event(6, "runner_item_on_failed", "03.000000", host="b", task_uuid="t2", **copy),
        event(7, "runner_on_failed", "03.500000", host="b", task_uuid="t2", **copy),
        event(8, "runner_on_start", "04.000000", host="a", task_uuid="t3", task="Facts"),
        event(9, "runner_on_skipped", "04.250000", host="a", task_uuid="t3", task="Facts"),
        event(10, "runner_on_ok", "05.000000", host="c", task_uuid="t4", **install),  # no start
    ]
    w = host_work(list(reversed(events)))  # read in any order
    assert w.seconds == {"web": 3.0, "common": 2.0, "(play tasks)": 0.25}
    assert w.module_runs == {"common": 1, "web": 3}
    assert w.per_host == {"b": 3.0, "a": 2.25}
