"""A sandbox ends at its deadline by itself, whether or not an engine is running.

The engine writes the deadline (whole seconds since the epoch) into a file of the connection
folder, which the engine owns and the sandbox may only read. The container's main process is
``WATCHER``: it re-reads that file every ``CHECK_EVERY`` seconds and exits once the deadline has
passed, and with it the container and everything in it. It runs as the holder uid, which the
sandbox user can neither signal nor trace, and forks nothing, so filling the sandbox's process
limit cannot stall it. A file it cannot read keeps the last deadline it read; if it never read
one, it exits: it fails closed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DEADLINE_FILE = "deadline"
CHECK_EVERY = 5
"""Seconds between two reads of the deadline: how late past it a sandbox may stop."""
DEFAULT_LIFETIME = 3600.0
"""A sandbox created without a deadline stops this many seconds later unless it is moved."""

# Perl (Debian's perl-base, essential in every Debian image): its sleep and clock fork nothing
# and work under gVisor, where bash's `read -t` does not; about 5 MB resident.
WATCHER = f"""
my ($path, $last) = @ARGV;
while (1) {{
    if (open(my $f, "<", $path)) {{
        my $line = <$f>;
        close $f;
        $last = $1 if defined $line && $line =~ /^([0-9]{{1,12}})$/;
    }}
    exit 1 unless defined $last;
    exit 0 if time >= $last;
    sleep {CHECK_EVERY};
}}
"""


def watcher_command(deadline_path: str) -> list[str]:
    """The container's command: the watcher, reading the deadline at ``deadline_path``."""
    return ["perl", "-e", WATCHER, deadline_path]


def write_deadline(conn_dir: Path, when: float) -> None:
    """Atomically replace the deadline in ``conn_dir``, a folder only the engine may write in
    (so nothing there can be a link the sandbox planted). It leaves the folder 0555."""
    write_conn_file(conn_dir, DEADLINE_FILE, f"{int(when)}\n".encode())


def write_conn_file(conn_dir: Path, name: str, data: bytes) -> None:
    """Atomically replace ``name`` in ``conn_dir`` with a file the sandbox may read, never
    write; the folder is left 0555."""
    tmp = conn_dir / f".{name}.new"
    conn_dir.chmod(0o755)
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, conn_dir / name)
    finally:
        conn_dir.chmod(0o555)


def read_deadline(conn_dir: Path) -> int | None:
    """The deadline last written, or None."""
    try:
        return int((conn_dir / DEADLINE_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
