"""How times and numbers read on screen."""

from __future__ import annotations

import time


def ago(ts: float, now: float) -> str:
    """'12s ago', '5m ago', '2h ago', '3d ago'."""
    seconds = max(0.0, now - ts)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def short_time(ts: float, now: float) -> str:
    """A time soon as 'HH:MM' (today) or 'Fri 01:30' (this week), later as 'Dec 24 01:30'."""
    local, today = time.localtime(ts), time.localtime(now)
    if local[:3] == today[:3]:
        return time.strftime("%H:%M", local)
    if 0 <= ts - now < 6 * 86400:
        return time.strftime("%a %H:%M", local)
    return time.strftime("%b %d %H:%M", local)


def clock(ts: float) -> str:
    """'HH:MM:SS' local time."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def stamp(ts: float) -> str:
    """'YYYY-MM-DD HH:MM' local time."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def duration(seconds: float) -> str:
    """'0.4 s', '12 s', '3 m 05 s', '1 h 02 m'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"
