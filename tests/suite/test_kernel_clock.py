"""vpsfleet.kernel_clock: sealing the kernel's time warp never moves the clock."""

from __future__ import annotations

import ctypes
import os
import time

import pytest

from vpsfleet.kernel_clock import _Timezone, seal_time_warp


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


@pytest.mark.skipif(os.geteuid() != 0, reason="settimeofday needs root")
def test_sealing_leaves_the_clock_where_it_is_and_the_kernel_zone_at_utc() -> None:
    wall, monotonic = time.time(), time.monotonic()
    seal_time_warp()
    seal_time_warp()  # sealed already: the same
    drift = (time.time() - wall) - (time.monotonic() - monotonic)
    assert abs(drift) < 1.0  # an unsealed kernel warped by a zone's offset would move it by hours
    now, zone = _Timeval(), _Timezone(99, 99)
    assert ctypes.CDLL(None).gettimeofday(ctypes.byref(now), ctypes.byref(zone)) == 0
    assert (zone.tz_minuteswest, zone.tz_dsttime) == (0, 0)
