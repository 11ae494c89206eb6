"""File work on a host folder that sandboxed code can change under our feet.

Every path is opened one component at a time, relative to the folder's file descriptor, with
``O_NOFOLLOW``: a symlink anywhere is refused, never followed. Content is read from the
descriptor that was checked, so swapping a file for a link after the check changes nothing.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from .. import errors
from ..names import check_relative_path
from ..streams import copy_at_most
from .base import UPLOAD_PREFIX, FileEntry

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 32


class HostDataDir:
    """The host's view of a sandbox's /mnt/data (a tmpfs owned by the sandbox user)."""

    def __init__(self, root: Path, uid: int, must_be_mount: bool = True) -> None:
        self.root = root
        self.uid = uid
        self.must_be_mount = must_be_mount

    @contextmanager
    def _root_fd(self) -> Iterator[int]:
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            # An unmounted volume folder lives on the host disk: never write there.
            if self.must_be_mount and os.fstat(fd).st_dev == os.stat(self.root.parent).st_dev:
                raise errors.SandboxError("the sandbox's /mnt/data is not mounted")
            yield fd
        finally:
            os.close(fd)

    @contextmanager
    def _dir_fd(self, parts: list[str], create: bool = False) -> Iterator[int]:
        with self._root_fd() as root:
            fd = os.dup(root)
            try:
                for part in parts:
                    if create:
                        try:
                            os.mkdir(part, 0o755, dir_fd=fd)
                            os.chown(part, self.uid, self.uid, dir_fd=fd, follow_symlinks=False)
                        except FileExistsError:
                            pass
                    child = _open(part, _DIR_FLAGS, fd, "/".join(parts))
                    os.close(fd)
                    fd = child
                yield fd
            finally:
                os.close(fd)

    def list(self, limit: int = 10_000) -> tuple[list[FileEntry], bool]:
        """Regular files only, symlinks and special files skipped; True if cut at ``limit``."""
        found: list[FileEntry] = []
        seen = 0
        with self._root_fd() as root:
            stack: list[tuple[int, str, int]] = [(os.dup(root), "", 0)]
            try:
                while stack:
                    fd, prefix, depth = stack.pop()
                    try:
                        with os.scandir(fd) as entries:
                            for entry in entries:
                                seen += 1
                                if seen > limit:
                                    return found, True
                                st = entry.stat(follow_symlinks=False)
                                rel = f"{prefix}{entry.name}"
                                if stat.S_ISREG(st.st_mode):
                                    found.append(
                                        FileEntry(rel, st.st_size, st.st_mtime_ns, st.st_ino)
                                    )
                                elif stat.S_ISDIR(st.st_mode) and depth < MAX_DEPTH:
                                    try:
                                        child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                                    except OSError:
                                        continue
                                    stack.append((child, f"{rel}/", depth + 1))
                    except FileNotFoundError:
                        pass
                    finally:
                        os.close(fd)
            finally:
                for fd, _, _ in stack:
                    os.close(fd)
        found.sort(key=lambda e: e.path)
        return found, False

    def open_read(self, path: str) -> BinaryIO:
        """Open a regular file for reading; anything else is refused."""
        parts = check_relative_path(path)
        with self._dir_fd(parts[:-1]) as parent:
            fd = _open(parts[-1], _READ_FLAGS, parent, path)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise errors.InvalidRequest(
                f"{path!r} is not a regular file (directories, pipes, sockets and devices "
                "are refused)"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def stat(self, path: str) -> FileEntry:
        with self.open_read(path) as f:
            st = os.fstat(f.fileno())
        return FileEntry("/".join(check_relative_path(path)), st.st_size, st.st_mtime_ns, st.st_ino)

    def write(self, path: str, src: BinaryIO, max_bytes: int) -> FileEntry:
        """Write atomically: a temp file, then a rename that replaces whatever was there."""
        parts = check_relative_path(path)
        tmp = f"{UPLOAD_PREFIX}{secrets.token_hex(8)}"
        with self._dir_fd(parts[:-1], create=True) as parent:
            fd = os.open(tmp, _WRITE_FLAGS, 0o644, dir_fd=parent)
            try:
                with os.fdopen(fd, "wb", closefd=False) as out:
                    copy_at_most(src, out, max_bytes, lambda: _too_big(path, max_bytes))
                if os.geteuid() == 0:
                    os.fchown(fd, self.uid, self.uid)
                st = os.fstat(fd)
                os.rename(tmp, parts[-1], src_dir_fd=parent, dst_dir_fd=parent)
            except OSError as exc:
                _unlink_quietly(tmp, parent)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                    raise errors.PayloadTooLarge("the session's /mnt/data is full") from exc
                if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                    raise errors.InvalidRequest(f"{path!r} is a directory") from exc
                raise
            except BaseException:
                _unlink_quietly(tmp, parent)
                raise
            finally:
                os.close(fd)
        return FileEntry("/".join(parts), st.st_size, st.st_mtime_ns, st.st_ino)

    def remove(self, path: str) -> None:
        parts = check_relative_path(path)
        with self._dir_fd(parts[:-1]) as parent:
            try:
                os.unlink(parts[-1], dir_fd=parent)
            except FileNotFoundError:
                raise errors.NotFound(f"no file {path!r} in /mnt/data") from None
            except IsADirectoryError:
                raise errors.InvalidRequest(f"{path!r} is a directory") from None


def _open(name: str, flags: int, dir_fd: int, shown: str) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise errors.NotFound(f"no file {shown!r} in /mnt/data") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise errors.InvalidRequest(f"{shown!r} is or passes through a symbolic link") from None
        if exc.errno == errno.ENOTDIR:
            raise errors.InvalidRequest(f"{shown!r}: a parent is not a directory") from None
        if exc.errno in (errno.ENXIO, errno.EACCES, errno.EPERM):
            raise errors.InvalidRequest(f"{shown!r} cannot be opened as a regular file") from None
        raise


def _unlink_quietly(name: str, dir_fd: int) -> None:
    with suppress(OSError):
        os.unlink(name, dir_fd=dir_fd)


def _too_big(path: str, max_bytes: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(f"{path!r} is larger than the {max_bytes} byte limit")
