"""An IPython extension loaded into every sandbox kernel (see ipython_kernel_config.py): the
data-science stack is imported on first use instead of at kernel start.

numpy, pandas and matplotlib.pyplot hold about 70 MB of a kernel that nobody has used yet. Code
written for an interpreter that pre-imports them uses ``np``, ``pd`` and ``plt`` without an
import, so before each cell runs, every one of those names that the cell reads anywhere (at top
level or in the body of a function, class or lambda it defines) and that the user namespace
lacks is imported into it, as the real module. A function defined in one cell and called in a
later one therefore finds its modules. Names that appear only in strings handed to ``exec`` or
``eval`` are not seen.
"""

import ast
import contextlib
import importlib

STACK = {
    "np": "numpy",
    "pd": "pandas",
    "matplotlib": "matplotlib",
    "plt": "matplotlib.pyplot",
}
"""The names a kernel has always offered without an import, and the module each one is."""


class StackImporter(ast.NodeVisitor):
    """An AST transformer that leaves the cell as it is and imports, into the shell's user
    namespace, the modules of ``STACK`` that the cell reads and the namespace lacks."""

    def __init__(self, shell):
        self.shell = shell

    def visit(self, node):
        wanted = {
            n.id
            for n in ast.walk(node)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in STACK
        }
        namespace = self.shell.user_ns
        for name in sorted(wanted - namespace.keys()):
            # IPython unregisters a transformer that raises: a failed import must leave the
            # cell to meet its own NameError instead.
            with contextlib.suppress(Exception):
                namespace[name] = importlib.import_module(STACK[name])
        return node


def load_ipython_extension(ip):
    ip.ast_transformers.append(StackImporter(ip))
