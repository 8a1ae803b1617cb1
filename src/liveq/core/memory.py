"""How much memory the machine can give now, for refusing sizes that cannot fit up front."""

from __future__ import annotations

import os

GIB = 2**30


def available_bytes() -> int | None:
    """Memory the machine can give now (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
