"""Which engine process owns a data folder's sandboxes: a lease held with ``flock``.

The engine that holds ``engine.lock`` is the folder's *primary*: its sandboxes carry the owner
label ``primary``, outlive it when it stops (``SANDBOX_SHUTDOWN_SANDBOXES=keep``) or dies, and
are re-adopted by the next primary. Any other engine on the folder at the same time (``run``,
``doctor``, a library ``Engine()`` beside a server) is a *guest*: its sandboxes carry an owner
label of its own, backed by a lock file of its own under ``leases/``, and it touches no other
engine's sandboxes. A lock dies with its process, even on ``kill -9``, so an owner is alive
exactly while its lock is held; the pid and boot id written in the file are for people.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
import uuid
from pathlib import Path

from . import errors

OWNER_LABEL = "org.sandbox-engine.owner"
PRIMARY = "primary"
"""The owner label of the primary's sandboxes; the same across its restarts."""
LOCK_NAME = "engine.lock"
GUESTS = "leases"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _open(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _try_lock(fd: int, attempts: int = 1) -> bool:
    for attempt in range(attempts):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            if attempt + 1 < attempts:
                time.sleep(0.05)
        else:
            return True
    return False


def _lock_path(data_dir: Path, owner: str) -> Path:
    if owner == PRIMARY:
        return data_dir / LOCK_NAME
    if not owner.startswith("guest-") or "/" in owner or owner in ("guest-", ""):
        raise ValueError(f"not an owner name: {owner!r}")
    return data_dir / GUESTS / f"{owner}.lock"


class Lease:
    """One engine's hold on its data folder, as primary or as a guest. Release it at close."""

    def __init__(self, data_dir: Path, owner: str, fd: int) -> None:
        self.data_dir = data_dir
        self.owner = owner
        self._fd: int | None = fd

    @property
    def primary(self) -> bool:
        return self.owner == PRIMARY

    @classmethod
    def take(cls, data_dir: Path, *, guest: bool = False, exclusive: bool = False) -> Lease:
        """The primary lease if it is free (and ``guest`` is false), else a guest lease.

        With ``exclusive``, a primary lease held by another process is an error instead.
        """
        if not guest:
            fd = _open(data_dir / LOCK_NAME)
            # A few tries: owner_alive() holds the lock for an instant while it tests it.
            if _try_lock(fd, attempts=5):
                lease = cls(data_dir, PRIMARY, fd)
                lease._describe()
                return lease
            os.close(fd)
            if exclusive:
                raise errors.DataFolderInUse(
                    f"another engine serves the data folder {data_dir} ({describe_holder(data_dir)}"
                    "); stop it first, or give this one its own SANDBOX_DATA_DIR"
                )
        guests = data_dir / GUESTS
        guests.mkdir(mode=0o700, exist_ok=True)
        owner = f"guest-{uuid.uuid4().hex[:12]}"
        fd = _open(_lock_path(data_dir, owner))
        if not _try_lock(fd):  # a fresh random name: nobody else can hold it
            os.close(fd)
            raise errors.EngineError(f"could not lock {owner}")
        lease = cls(data_dir, owner, fd)
        lease._describe()
        return lease

    def _describe(self) -> None:
        assert self._fd is not None
        info = {
            "owner": self.owner,
            "pid": os.getpid(),
            "boot_id": _boot_id(),
            "since": time.time(),
        }
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(info).encode() + b"\n", 0)

    def release(self) -> None:
        """Let go; a guest's lock file goes with it. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if not self.primary:
            with contextlib.suppress(OSError):
                _lock_path(self.data_dir, self.owner).unlink()
        os.close(fd)  # closing the last descriptor drops the flock


def owner_alive(data_dir: Path, owner: str) -> bool:
    """Whether the engine that labelled a sandbox ``owner`` still holds its lease."""
    try:
        path = _lock_path(data_dir, owner)
    except ValueError:
        return False  # a label we never wrote: nobody holds it
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)  # a lock taken just to test is dropped with the descriptor


def describe_holder(data_dir: Path) -> str:
    """Who holds the primary lease, as far as its file says."""
    try:
        info = json.loads((data_dir / LOCK_NAME).read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    same_boot = info.get("boot_id") == _boot_id()
    return f"pid {info.get('pid')}{'' if same_boot else ' on an earlier boot'}"


def dead_guests(data_dir: Path) -> list[str]:
    """Guest owners whose lock files are left but no longer held (their process died)."""
    folder = data_dir / GUESTS
    if not folder.is_dir():
        return []
    owners = [p.name.removesuffix(".lock") for p in folder.glob("guest-*.lock")]
    return [o for o in owners if not owner_alive(data_dir, o)]


def forget_guest(data_dir: Path, owner: str) -> None:
    """Remove a dead guest's lock file once its sandboxes are gone."""
    if owner_alive(data_dir, owner):
        return
    with contextlib.suppress(OSError, ValueError):
        _lock_path(data_dir, owner).unlink()


FOLDER_ID = "engine.id"


def folder_id(data_dir: Path) -> str:
    """A random id of the data folder, made on first use and kept in it: what tells this
    engine's rows from another's in a database they share, whatever their folders' paths."""
    path = data_dir / FOLDER_ID
    if not path.exists():
        made = data_dir / f".{FOLDER_ID}.{uuid.uuid4().hex}"
        made.write_text(uuid.uuid4().hex)
        with contextlib.suppress(FileExistsError):  # another engine made it first: theirs
            os.link(made, path)
        made.unlink()
    return path.read_text().strip()
