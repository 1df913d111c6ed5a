"""Properties of the change computation, on generated histories of the lab fleet (hypothesis):
any two fleets made of the lab plus some edits are compared both ways."""

from __future__ import annotations

import tempfile
from collections import Counter
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vpsfleet.deploy_changes import INVERSE, Change, changes_between
from vpsfleet.fleet import Fleet
from vpsfleet.loader import load_fleet

from .conftest import TODAY
from .test_deploy import (
    BLOCK_VPS,
    DELIVER_DEDI,
    MITIGATE_APP,
    NEW_DEDICATED,
    NEW_GUEST,
    NEW_MANAGED,
    NOW,
    RESIZE_APP,
    SUSPEND_DEV,
    TERMINATE_DEV,
    WINDOW_WEB,
    edited,
)

# Edits that combine; SUSPEND_DEV and TERMINATE_DEV write at the same place: one or the other.
EDITS = (BLOCK_VPS, DELIVER_DEDI, MITIGATE_APP, NEW_DEDICATED, NEW_GUEST, NEW_MANAGED,
         RESIZE_APP, WINDOW_WEB)
subsets = st.tuples(
    st.frozensets(st.sampled_from(range(len(EDITS)))),
    st.sampled_from((None, SUSPEND_DEV, TERMINATE_DEV)),
)


@cache
def fleet(chosen: frozenset[int], state_edit: tuple[str, str] | None) -> Fleet:
    edits = [EDITS[i] for i in sorted(chosen)] + ([state_edit] if state_edit else [])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fleet.yml"
        path.write_text(edited(*edits))
        return load_fleet(path, today=TODAY)


def inverted(changes: tuple[Change, ...]) -> Counter[tuple[str, str, tuple[tuple[str, str, str],
                                                                           ...]]]:
    return Counter(
        (c.machine, INVERSE[c.kind].value, tuple((f.name, f.new, f.old) for f in c.fields))
        for c in changes
    )


def plain(changes: tuple[Change, ...]) -> Counter[tuple[str, str, tuple[tuple[str, str, str],
                                                                        ...]]]:
    return Counter(
        (c.machine, c.kind.value, tuple((f.name, f.old, f.new) for f in c.fields))
        for c in changes
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subsets, subsets)
def test_a_revert_gives_the_inverse_changes(a: tuple[frozenset[int], tuple[str, str] | None],
                                            b: tuple[frozenset[int], tuple[str, str] | None]
                                            ) -> None:
    forth = changes_between(fleet(*a), fleet(*b), now=NOW)
    back = changes_between(fleet(*b), fleet(*a), now=NOW)
    assert plain(back) == inverted(forth)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subsets, subsets)
def test_changes_are_deterministic_sorted_and_none_without_an_edit(
    a: tuple[frozenset[int], tuple[str, str] | None],
    b: tuple[frozenset[int], tuple[str, str] | None],
) -> None:
    assert changes_between(fleet(*a), fleet(*a), now=NOW) == ()
    found = changes_between(fleet(*a), fleet(*b), now=NOW)
    assert found == changes_between(fleet(*a), fleet(*b), now=NOW)
    assert list(found) == sorted(found, key=Change.sort_key)
    assert (found == ()) == (a == b)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subsets)
def test_every_edit_from_the_lab_is_seen(a: tuple[frozenset[int], tuple[str, str] | None]) -> None:
    """Each edit shows as at least one change of the machine it edits."""
    found = {c.machine for c in changes_between(fleet(frozenset(), None), fleet(*a), now=NOW)}
    edits = [EDITS[i] for i in a[0]] + ([a[1]] if a[1] else [])
    machines = {BLOCK_VPS: "bravo-vps", DELIVER_DEDI: "bravo-dedi", MITIGATE_APP: "alpha-app",
                NEW_DEDICATED: "alpha-dedi9", NEW_GUEST: "bravo-new", NEW_MANAGED: "alpha-new",
                RESIZE_APP: "alpha-app", WINDOW_WEB: "alpha-web", SUSPEND_DEV: "bravo-dev",
                TERMINATE_DEV: "bravo-dev"}
    assert {machines[e] for e in edits} <= found
