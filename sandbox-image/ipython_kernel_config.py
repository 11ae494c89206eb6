# Kernel configuration of the sandbox, loaded from /etc/ipython (see the Dockerfile).
c = get_config()  # noqa: F821

# sandbox_guard puts back what a cell broke of the kernel's own machinery (closed or replaced
# output streams, hooks, display publisher, print) before the next cell; sandbox_stack imports
# numpy, pandas and matplotlib as np, pd and plt when a cell first uses them.
c.InteractiveShellApp.extensions = ["sandbox_guard", "sandbox_stack"]
c.HistoryManager.enabled = False
c.InlineBackend.figure_formats = {"png"}
# ipykernel sleeps 0.5 ms after every execution so that stdout reaches clients that read the
# execute_reply before iopub; the engine reads iopub until the kernel is idle, so it needs none.
c.IPythonKernel._execute_sleep = 0.0
# traitlets gives the kernel's logger level DEBUG and filters in the handler, so every debug call
# builds a record (about ten per execution); records below WARNING are not built at all.
c.IPKernelApp.logging_config = {"loggers": {"IPKernelApp": {"level": "WARNING"}}}
