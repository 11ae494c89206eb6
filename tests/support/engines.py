"""A test's own engine: its settings, and a small disk for its data folder."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Settings


@contextlib.contextmanager
def small_tmpfs(mount: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` at ``mount``, as a data folder whose disk fills up (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test's own engine; no warm pool unless the test asks for one, and its
    sandboxes removed when it closes unless the test keeps them."""
    overrides = {"pool_size": 0, "pool_min": 0, "shutdown_sandboxes": "close", **overrides}
    return Settings(data_dir=tmp_path / "engine", **overrides)  # type: ignore[arg-type]
