"""The lifetime watcher and the deadline file, on the host (no Docker): the same Perl the
container runs, fed the file the engine writes."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import pytest

from engine.sandbox.lifetime import (
    CHECK_EVERY,
    DEADLINE_FILE,
    WATCHER,
    read_deadline,
    watcher_command,
    write_deadline,
)


def conn_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "conn"
    folder.mkdir(mode=0o555)
    return folder


def watch(folder: Path) -> subprocess.Popen[bytes]:
    argv = watcher_command(str(folder / DEADLINE_FILE))
    assert argv[:2] == ["perl", "-e"] and argv[2] == WATCHER
    return subprocess.Popen(argv)


def test_the_deadline_file_is_replaced_whole_and_the_folder_stays_read_only(
    tmp_path: Path,
) -> None:
    folder = conn_dir(tmp_path)
    write_deadline(folder, 1_900_000_000.7)
    write_deadline(folder, 1_900_000_100.2)
    assert read_deadline(folder) == 1_900_000_100
    assert stat.S_IMODE(folder.stat().st_mode) == 0o555
    assert stat.S_IMODE((folder / DEADLINE_FILE).stat().st_mode) == 0o444
    assert sorted(p.name for p in folder.iterdir()) == [DEADLINE_FILE]


def test_the_watcher_exits_once_its_deadline_passed_and_not_before(tmp_path: Path) -> None:
    folder = conn_dir(tmp_path)
    write_deadline(folder, time.time() + 1)
    proc = watch(folder)
    try:
        write_deadline(folder, time.time() + 3)  # moved before its first check ends
        assert proc.wait(timeout=CHECK_EVERY * 2 + 5) == 0
        assert time.time() >= read_deadline(folder)  # type: ignore[operator]
    finally:
        proc.kill()


def test_the_watcher_fails_closed_without_a_deadline(tmp_path: Path) -> None:
    folder = conn_dir(tmp_path)
    assert watch(folder).wait(timeout=10) == 1  # no file at all
    folder.chmod(0o755)
    (folder / DEADLINE_FILE).write_text("soon\n")
    folder.chmod(0o555)
    assert watch(folder).wait(timeout=10) == 1  # never a readable deadline


def test_a_garbled_file_keeps_the_last_deadline_read(tmp_path: Path) -> None:
    folder = conn_dir(tmp_path)
    write_deadline(folder, time.time() + 600)
    proc = watch(folder)
    try:
        time.sleep(0.5)
        folder.chmod(0o755)
        (folder / DEADLINE_FILE).unlink()
        (folder / DEADLINE_FILE).write_text("0x1\n")
        folder.chmod(0o555)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=CHECK_EVERY + 2)
    finally:
        proc.kill()
        proc.wait()
