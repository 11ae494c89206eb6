"""The Jupyter protocol: execute, interrupt and restart one kernel, giving ExecutionResults.

``kernel`` drives one kernel; ``output`` turns its messages into capped results; ``channels`` and
``wire`` carry them, capped at the socket, because the kernel is as untrusted as the code it runs.
"""

from .kernel import Kernel, validate_timeout
from .output import EventCallback, KernelLimits, strip_ansi

__all__ = ["EventCallback", "Kernel", "KernelLimits", "strip_ansi", "validate_timeout"]
