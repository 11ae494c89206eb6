"""numpy, pandas and matplotlib are imported on a cell's first use of np, pd or plt, not at kernel
start (sandbox-image/sandbox_stack.py), and code that relies on them without importing works."""

from __future__ import annotations

import base64
import json

import pytest

from engine import ExecutionResult, ExecutionStatus, Session

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STACK_MODULES = ("numpy", "pandas", "matplotlib", "matplotlib.pyplot")


def _pngs(result: ExecutionResult) -> list[bytes]:
    return [base64.b64decode(d["image/png"]) for d in result.display if "image/png" in d]


async def _loaded(session: Session) -> dict[str, bool]:
    r = await session.execute(
        f"import json, sys; print(json.dumps({{m: m in sys.modules for m in {STACK_MODULES!r}}}))"
    )
    assert r.status is ExecutionStatus.OK, r
    loaded: dict[str, bool] = json.loads(r.stdout)
    return loaded


async def test_a_fresh_kernel_has_not_imported_the_stack(session: Session) -> None:
    r = await session.execute("1")
    assert r.status is ExecutionStatus.OK, r
    assert await _loaded(session) == dict.fromkeys(STACK_MODULES, False)
    r = await session.execute("sorted(n for n in ('np', 'pd', 'plt') if n in dir())")
    assert r.text == "[]"


async def test_np_and_pd_without_import_are_the_real_modules(session: Session) -> None:
    r = await session.execute(
        "import types\n"
        "df = pd.DataFrame({'a': np.arange(4)})\n"
        "print(int(df.a.sum()), type(np) is types.ModuleType, pd.__name__, np.__name__)"
    )
    assert r.status is ExecutionStatus.OK, r
    assert r.stdout == "6 True pandas numpy\n"
    loaded = await _loaded(session)
    assert loaded["numpy"] and loaded["pandas"]
    assert not loaded["matplotlib.pyplot"]


async def test_a_function_defined_in_one_cell_finds_np_when_called_in_another(
    session: Session,
) -> None:
    r = await session.execute(
        "def total(n):\n"
        "    return int(np.ones(n).sum())\n"
        "class Table:\n"
        "    def frame(self):\n"
        "        return pd.DataFrame({'x': [1, 2, 3]})\n"
    )
    assert r.status is ExecutionStatus.OK, r
    r = await session.execute("print(total(5), len(Table().frame()))")
    assert r.status is ExecutionStatus.OK, r
    assert r.stdout == "5 3\n"


@pytest.mark.parametrize(
    "cell",
    ["plt.plot([1, 3, 2])\nplt.title('lazy')", "df = pd.DataFrame({'y': [3, 1, 2]})\ndf.plot()"],
    ids=["plt", "df.plot"],
)
async def test_a_figure_made_without_import_is_an_inline_png(session: Session, cell: str) -> None:
    r = await session.execute(cell)
    assert r.status is ExecutionStatus.OK, r
    pngs = _pngs(r)
    assert len(pngs) == 1
    assert pngs[0].startswith(PNG_MAGIC)
    r = await session.execute("print(matplotlib.get_backend())")
    assert r.stdout.strip() == "module://matplotlib_inline.backend_inline"


async def test_explicit_imports_still_work_and_win(session: Session) -> None:
    r = await session.execute(
        "import numpy as np\nimport matplotlib.pyplot as plt\nprint(np.__name__, plt.__name__)"
    )
    assert r.status is ExecutionStatus.OK, r
    assert r.stdout == "numpy matplotlib.pyplot\n"
    r = await session.execute("np = 'mine'\nprint(np)")
    assert r.stdout == "mine\n"
    r = await session.execute("print(np)")
    assert r.stdout == "mine\n"


async def test_a_cell_that_never_names_the_stack_does_not_import_it(session: Session) -> None:
    r = await session.execute("words = 'np pd plt'.split()\nprint(len(words))")
    assert r.stdout == "3\n"
    assert await _loaded(session) == dict.fromkeys(STACK_MODULES, False)


async def test_code_given_as_a_string_to_exec_or_a_magic_finds_the_stack(session: Session) -> None:
    r = await session.execute('exec("print(int(np.arange(4).sum()))")')
    assert r.status is ExecutionStatus.OK, r
    assert r.stdout == "6\n"
    r = await session.execute("%prun -q total = int(pd.Series([1, 2]).sum())")
    assert r.status is ExecutionStatus.OK, r
    r = await session.execute("total")
    assert r.text == "3"


INTERRUPT_INSIDE = """
import importlib.abc, os, signal, sys

class InterruptInside(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == {module!r}:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, InterruptInside())
"""


@pytest.mark.parametrize(
    ("inside", "cell", "imported"),
    [
        ("pandas._libs.hashtable", "ran = True\npd.Series([1])", "pandas"),
        ("pandas._libs.hashtable", "ran = True\nimport pandas", "pandas"),
        (
            "matplotlib._pylab_helpers",
            "ran = True\nfrom matplotlib import pyplot",
            "matplotlib.pyplot",
        ),
    ],
    ids=["pd", "import pandas", "from matplotlib import pyplot"],
)
async def test_an_interrupt_during_the_import_waits_for_it_to_finish(
    session: Session, inside: str, cell: str, imported: str
) -> None:
    """An interrupt inside a C extension's import would leave pandas unimportable in this
    kernel; it is held back until the import is done, and then interrupts the cell before its
    own code runs."""
    r = await session.execute(INTERRUPT_INSIDE.format(module=inside))
    assert r.status is ExecutionStatus.OK, r
    r = await session.execute(cell)
    assert r.error is not None and r.error.name == "KeyboardInterrupt", r
    r = await session.execute(
        f"import importlib, sys\nfinished = {imported!r} in sys.modules\n"
        f"print('ran' in dir(), finished, importlib.import_module({imported!r}).__name__)"
    )
    assert r.status is ExecutionStatus.OK, r
    assert r.stdout == f"False True {imported}\n"
