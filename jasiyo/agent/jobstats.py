"""How the agent's scheduled jobs ran: duration, failures, last success, per job name.

:func:`jasiyo.agent.scheduler.build_scheduler` records every run here (in the agent's
process); :mod:`jasiyo.agent.opsmetrics` exposes it on ``/metrics`` (the billing tick's
duration, router reconciles, the session reaper). Plain numbers under a lock: a job runs
at most a few times a second, a scrape reads them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from jasiyo.radius.metrics import Buckets

#: seconds: a billing tick takes 0.02 ms with nothing due and ~1 s for 2,500 expiries
JOB_BOUNDS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
              300.0)  # fmt: skip


class _JobBuckets(Buckets):
    """:class:`~jasiyo.radius.metrics.Buckets` with the job bounds."""

    __slots__ = ()

    def __init__(self) -> None:
        self.counts = [0] * (len(JOB_BOUNDS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        from bisect import bisect_left

        self.counts[bisect_left(JOB_BOUNDS, seconds)] += 1
        self.total += seconds


@dataclass
class JobStat:
    duration: _JobBuckets = field(default_factory=_JobBuckets)
    failures: int = 0
    last_success: float | None = None
    last_duration: float | None = None


class JobStats:
    """Every job's :class:`JobStat`, keyed by job name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobStat] = {}

    def record(self, name: str, seconds: float, ok: bool) -> None:
        with self._lock:
            stat = self._jobs.setdefault(name, JobStat())
            stat.duration.observe(seconds)
            stat.last_duration = seconds
            if ok:
                stat.last_success = time.time()
            else:
                stat.failures += 1

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                name: {
                    "duration": s.duration.snapshot(),
                    "failures": s.failures,
                    "last_success": s.last_success,
                    "last_duration": s.last_duration,
                }
                for name, s in self._jobs.items()
            }


#: The agent process's job statistics (one scheduler per process).
JOBS = JobStats()

__all__ = ["JOBS", "JOB_BOUNDS", "JobStats"]
