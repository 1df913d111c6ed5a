"""Keeps a privileged lab container from moving this machine's clock.

Linux warps the system clock by the time zone's offset on the first `settimeofday()` that gives
a time zone after boot (`timekeeping_warp_clock`, meant for a hardware clock kept in local time).
systemd makes that first call at boot with no offset, to seal it (`clock_reset_timewarp`); a
machine booted without systemd as its init has not. Then the first privileged container whose
systemd-timedated sets a time zone (role guest_base sets Europe/Paris on the lab's hypervisor)
makes it, and this machine's clock jumps back an hour: every certificate made meanwhile is "not
yet valid" (seen on 2026-12-05). podman's `--cap-drop SYS_TIME` is ignored with `--privileged`.
"""

from __future__ import annotations

import ctypes
import os


class _Timezone(ctypes.Structure):
    _fields_ = [("tz_minuteswest", ctypes.c_int), ("tz_dsttime", ctypes.c_int)]


def seal_time_warp() -> None:
    """Make the kernel's first time-zone call with no offset, as systemd does at boot: the clock
    does not move, and no later call can warp it. Harmless when sealed already (then it only sets
    the kernel's time zone to UTC, which nothing here reads). Needs root (CAP_SYS_TIME)."""
    libc = ctypes.CDLL(None, use_errno=True)
    zone = _Timezone(0, 0)
    if libc.settimeofday(None, ctypes.byref(zone)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"settimeofday(NULL, UTC): {os.strerror(error)}")
