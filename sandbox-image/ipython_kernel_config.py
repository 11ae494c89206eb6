# Kernel configuration of the sandbox, loaded from /etc/ipython (see the Dockerfile).
c = get_config()  # noqa: F821

c.InteractiveShellApp.exec_lines = [
    "import numpy as np",
    "import pandas as pd",
    "import matplotlib",
    "import matplotlib.pyplot as plt",
]
c.HistoryManager.enabled = False
c.InlineBackend.figure_formats = {"png"}
