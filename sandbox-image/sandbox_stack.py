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
"""

import ast
import contextlib
import importlib
import re

STACK = {
    "np": "numpy",
    "pd": "pandas",
    "matplotlib": "matplotlib",
    "plt": "matplotlib.pyplot",
}
"""The names a kernel has always offered without an import, and the module each one is."""
MENTION = re.compile(r"(?<![\w.])(" + "|".join(STACK) + r")\b")
RUNS_ITS_ARGUMENTS = {"exec", "eval", "run_line_magic", "run_cell_magic"}
"""Calls whose string arguments are code (a cell's magics become ``get_ipython()`` calls)."""


class StackImporter(ast.NodeVisitor):
    """An AST transformer that leaves the cell as it is and imports, into the shell's user
    namespace, the modules of ``STACK`` that the cell reads and the namespace lacks."""

    def __init__(self, shell):
        self.shell = shell

    def visit(self, node):
        namespace = self.shell.user_ns
        if STACK.keys() <= namespace.keys():
            return node
        wanted = set()
        for n in ast.walk(node):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in STACK:
                wanted.add(n.id)
            elif isinstance(n, ast.Call) and _called_name(n.func) in RUNS_ITS_ARGUMENTS:
                for arg in n.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        wanted.update(MENTION.findall(arg.value))
        for name in sorted(wanted - namespace.keys()):
            # IPython unregisters a transformer that raises: a failed import must leave the
            # cell to meet its own NameError instead.
            with contextlib.suppress(Exception):
                namespace[name] = importlib.import_module(STACK[name])
        return node


def _called_name(func):
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def load_ipython_extension(ip):
    ip.ast_transformers.append(StackImporter(ip))
