"""An IPython extension loaded into every sandbox kernel (see ipython_kernel_config.py): the
data-science stack is imported on first use instead of at kernel start.

numpy, pandas and matplotlib.pyplot hold about 70 MB of a kernel that nobody has used yet. Code
written for an interpreter that pre-imports them uses ``np``, ``pd`` and ``plt`` without an
import, so before each cell runs, every one of those names that the cell reads anywhere (at top
level or in the body of a function, class or lambda it defines) and that the user namespace
lacks is imported into it, as the real module. A function defined in one cell and called in a
later one therefore finds its modules. So does code given as a string to ``exec``, ``eval`` or a
magic (``%prun np.sort(a)``), where any mention of those names counts. Code built at run time, or
read from a file by ``%run``, is not seen.

An interrupt that lands inside the import of a C extension leaves its package unimportable
until the kernel restarts, and the import is now part of a cell's time: so these imports, and
those of the stack's modules that a cell's own import statements name, run first with SIGINT
held back, and an interrupt that came meanwhile is raised as soon as they are done.
"""

import ast
import contextlib
import importlib
import re
import signal
import sys
import threading

STACK = {
    "np": "numpy",
    "pd": "pandas",
    "matplotlib": "matplotlib",
    "plt": "matplotlib.pyplot",
}
"""The names a kernel has always offered without an import, and the module each one is."""
PACKAGES = {module.partition(".")[0] for module in STACK.values()}
MENTION = re.compile(r"(?<![\w.])(" + "|".join(STACK) + r")\b")
MAY_USE = re.compile("|".join(sorted({*STACK, *PACKAGES})))
"""Text in which none of these occur cannot reach the stack (a cheap test before the walk)."""
RUNS_ITS_ARGUMENTS = {"exec", "eval", "run_line_magic", "run_cell_magic"}
"""Calls whose string arguments are code (a cell's magics become ``get_ipython()`` calls)."""


class StackImporter(ast.NodeVisitor):
    """An AST transformer that leaves the cell as it is and imports, into the shell's user
    namespace, the modules of ``STACK`` that the cell reads and the namespace lacks."""

    def __init__(self, shell):
        self.shell = shell
        self.cell_may_use = None
        """Whether the running cell's text names the stack at all; None when unknown (an
        execution of the engine's own has no ``pre_run_cell``)."""

    def before_cell(self, info):
        raw = getattr(info, "raw_cell", None)
        self.cell_may_use = bool(MAY_USE.search(raw)) if isinstance(raw, str) else None

    def after_cell(self, *_):
        self.cell_may_use = None

    def visit(self, node):
        namespace = self.shell.user_ns
        if self.cell_may_use is False or STACK.keys() <= namespace.keys():
            return node
        names, modules = set(), set()
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in STACK:
                names.add(n.id)
            elif isinstance(n, ast.Import):
                modules.update(alias.name for alias in n.names)
            elif isinstance(n, ast.ImportFrom) and n.module and not n.level:
                # ``from matplotlib import pyplot`` imports a module; ``from numpy import
                # array`` finds none, which costs a failed lookup and nothing else.
                modules.add(n.module)
                modules.update(f"{n.module}.{alias.name}" for alias in n.names)
            elif isinstance(n, ast.Call) and _called_name(n.func) in RUNS_ITS_ARGUMENTS:
                for arg in n.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        names.update(MENTION.findall(arg.value))
        missing = sorted(names - namespace.keys())
        modules = sorted(
            m for m in modules if m.partition(".")[0] in PACKAGES and m not in sys.modules
        )
        if missing or modules:
            with _interrupts_held_back():
                for module in modules:
                    _import(module)
                for name in missing:
                    module = _import(STACK[name])
                    if module is not None:
                        namespace[name] = module
        return node


def _import(name):
    # IPython unregisters a transformer that raises: a failed import must leave the cell to
    # meet its own error instead.
    try:
        return importlib.import_module(name)
    except Exception:
        return None


@contextlib.contextmanager
def _interrupts_held_back():
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler) or threading.current_thread() is not threading.main_thread():
        yield
        return
    frames = []
    signal.signal(signal.SIGINT, lambda signum, frame: frames.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
    if frames:
        handler(signal.SIGINT, frames[0])


def _called_name(func):
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def load_ipython_extension(ip):
    importer = StackImporter(ip)
    ip.events.register("pre_run_cell", importer.before_cell)
    ip.events.register("post_execute", importer.after_cell)
    ip.ast_transformers.append(importer)
