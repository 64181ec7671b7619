"""What a run did: stage timings and memory, decisions, warnings. Written into the JSON report.

One :class:`RunRecord` is created per run by the application and handed to every operator; each stage records
itself with ``with record.stage("inference"):``. It never holds patient-identifying values.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass
class RunRecord:
    """Attributes:
    stages: ``{name: {"seconds": float, "peak_rss_mb": float}}`` in execution order.
    decisions: free-form facts for the report (series chosen and why, grids, model identity, output UIDs).
    warnings: messages a reviewer should see.
    """

    started: float = field(default_factory=time.time)
    stages: dict[str, dict] = field(default_factory=dict)
    decisions: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: Exception | None = None

    def fail(self, error: Exception) -> None:
        """Record the run's one fatal error (the first wins); the app reports it and exits non-zero."""
        if self.error is None:
            self.error = error

    @contextmanager
    def stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            seconds = time.perf_counter() - t0
            self.stages[name] = {"seconds": round(seconds, 4), "peak_rss_mb": round(peak_rss_mb(), 1)}
            logger.info("stage %s: %.2f s", name, seconds)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        logger.warning(message)
