"""The hostile-code security benchmark: ``python -m benchmarks.security`` or
``sandbox-engine bench security``.

Cases live in ``cases/`` (one module per category); ``runner`` runs them against one real engine
behind a real HTTP server, checking a canary session and the host after every case.
"""

from .cases import CASES
from .model import Case, Verdict
from .runner import bench, main, run_suite

__all__ = ["CASES", "Case", "Verdict", "bench", "main", "run_suite"]
