"""The CI rule that a skipped test fails (tests/support/strict_skips.py), on a pytest run of its
own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_one.py").write_text(
        "import pytest\n\ndef test_needs_root():\n    pytest.skip('needs root')\n\n"
        "def test_runs():\n    assert True\n"
    )
    environ = {k: v for k, v in os.environ.items() if k != "SANDBOX_TEST_NO_SKIPS"}
    plugins = ["-p", "tests.support.strict_skips", "-p", "no:cacheprovider"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugins, str(tmp_path / "test_one.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**environ, "PYTHONPATH": str(ROOT), **env},
        timeout=120,
    )


def test_a_skip_is_a_skip_on_a_developers_machine(tmp_path: Path) -> None:
    done = run(tmp_path)
    assert done.returncode == 0 and "1 passed, 1 skipped" in done.stdout, done.stdout


def test_a_skip_fails_where_ci_asks_for_every_test(tmp_path: Path) -> None:
    done = run(tmp_path, SANDBOX_TEST_NO_SKIPS="1")
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed" in done.stdout
    assert "skipped, but SANDBOX_TEST_NO_SKIPS=1 (CI runs every test): Skipped: needs root" in (
        done.stdout
    )
