"""An IPython extension loaded into every sandbox kernel (see ipython_kernel_config.py).

After each cell it puts back the parts of the kernel's own machinery that the cell may have
closed or replaced (its output streams, hooks, display publisher, print, fds 1 and 2), so that
the next cell runs as in a fresh kernel. It is a courtesy for code that breaks these by mistake;
hostile code can unload it, and then the engine's own checks restart the kernel.
"""

import builtins
import os
import sys

_TRAPPED = {"exit", "quit", "get_ipython", "display"}
"""Builtins IPython itself swaps in and out around each cell."""


def load_ipython_extension(ip):
    kernel = getattr(ip, "kernel", None)
    streams = {"stdout": sys.stdout, "stderr": sys.stderr}
    hooks = {"displayhook": sys.displayhook, "excepthook": sys.excepthook}
    shell = {"display_pub": ip.display_pub, "displayhook": ip.displayhook}
    names = {k: v for k, v in vars(builtins).items() if k not in _TRAPPED}

    def restore(*_):
        for name, original in streams.items():
            current = getattr(sys, name)
            if current is not original or getattr(original, "closed", False):
                setattr(sys, name, _working(original, name, kernel))
                streams[name] = getattr(sys, name)
        for name, original in hooks.items():
            if getattr(sys, name) is not original:
                setattr(sys, name, original)
        for name, original in shell.items():
            if getattr(ip, name) is not original:
                setattr(ip, name, original)
        current = vars(builtins)
        for name, original in names.items():
            if current.get(name) is not original:
                setattr(builtins, name, original)
        for fd in (1, 2):
            _reopen(fd)

    ip.events.register("post_run_cell", restore)


def _working(stream, name, kernel):
    """``stream`` if it still works, or a new one like it (a closed OutStream stays closed)."""
    if not getattr(stream, "closed", False):
        return stream
    from ipykernel.iostream import OutStream

    return OutStream(kernel.session, kernel.iopub_thread, name, watchfd=False)


def _reopen(fd):
    try:
        os.fstat(fd)
    except OSError:
        null = os.open(os.devnull, os.O_WRONLY)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
