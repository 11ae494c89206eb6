"""Jupyter's IPC transport through a host folder bind-mounted into a local sandbox.

The host folder (``conn_dir``, mounted at ``/conn``) belongs to the engine and is read-only for
the sandbox user. Each kernel launch gets a fresh subfolder ``k<N>`` that the sandbox user may
write into only until the kernel has bound its sockets; then it is made read-only and every
endpoint is checked with ``lstat``, so the engine never connects through anything sandboxed
code planted. Only a backend whose kernel runs on this host can use this module.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from jupyter_client.connect import KernelConnectionInfo

from .. import errors
from .base import KernelLaunch

SOCKET_PREFIX = "s"
LAUNCH_NAME = re.compile(r"k[1-9][0-9]{0,8}")
EXIT_CHECK_EVERY = 20
"""Socket polls (5 ms each) between two asks whether the kernel process still runs."""


def endpoint_names() -> list[str]:
    """The socket files ipykernel binds for ``ip=<folder>/s`` and ports 1..5."""
    return [f"{SOCKET_PREFIX}-{port}" for port in range(1, 6)]


def _all_present(paths: list[str], uid: int) -> bool:
    """Whether each path is a socket of ``uid``; a symlink counts, so that it is refused at once.
    Under gVisor a socket's host entry can show as another kind of file, or with another owner,
    for a moment: wait for it (``check_endpoints`` still judges what is there once locked)."""
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(st.st_mode):
            continue
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid != uid:
            return False
    return True


def write_readonly(path: Path, text: str) -> None:
    """Create ``path`` read-only; an existing file or a planted symlink there is an error."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def check_endpoints(folder: str, names: Iterable[str], uid: int) -> None:
    """Every endpoint must be a real socket owned by ``uid``, and nothing else may be there.

    Called after the folder went read-only for the sandbox, so what passes stays as checked.
    """
    expected = set(names)
    for name in sorted(expected):
        try:
            st = os.lstat(os.path.join(folder, name))
        except FileNotFoundError:
            raise errors.KernelStartError(f"refusing to connect: {name} is missing") from None
        if not stat.S_ISSOCK(st.st_mode) or st.st_uid != uid:
            raise errors.KernelStartError(
                f"refusing to connect: {name} is not a kernel socket "
                f"(mode {stat.filemode(st.st_mode)}, uid {st.st_uid})"
            )
    unexpected = set(os.listdir(folder)) - expected
    if unexpected:
        raise errors.KernelStartError(
            f"unexpected entries in the kernel folder: {sorted(unexpected)}"
        )


def check_locked_folder(fd: int, what: str) -> None:
    """A folder the engine locked after the kernel bound: still a directory, still the
    engine's, still 0555. Anything else means it was never locked, or was changed since."""
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise errors.KernelStartError(f"refusing to connect: {what} is not the engine's folder")
    if stat.S_IMODE(st.st_mode) != 0o555:
        raise errors.KernelStartError(
            f"refusing to connect: {what} has mode {stat.S_IMODE(st.st_mode):o}, not 555"
        )


def open_folder(name: str, dir_fd: int | None = None) -> int:
    """A descriptor on a folder itself; a symlink in its place is refused, never followed."""
    try:
        return os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        raise errors.KernelStartError(
            f"refusing to connect: {os.path.basename(name)} is not a folder ({exc.strerror})"
        ) from None


def short_path(fd: int) -> str:
    """Unix socket addresses are capped at 107 bytes and data folders can be deep: reach a
    folder through ``/proc/self/fd/<n>``, a descriptor of our own on it."""
    return f"/proc/self/fd/{fd}"


def create_conn_dir(conn_dir: Path) -> None:
    """The sandbox may traverse the connection folder but never write in it."""
    conn_dir.mkdir(parents=True, mode=0o700)
    conn_dir.chmod(0o555)


def make_removable(root: Path) -> None:
    """Undo the read-only modes set on connection folders so that rmtree can work. Only for a
    sandbox whose processes are gone: the modes are set by path."""
    for dirpath, _, _ in os.walk(root):  # os.walk never descends into symlinks
        os.chmod(dirpath, 0o700)


class IpcKernelFolders:
    """The host side of ``/conn`` for one sandbox: a kernel folder per launch."""

    def __init__(self, conn_dir: Path, mount: str, uid: int) -> None:
        self.conn_dir = conn_dir
        self.mount = mount
        self.uid = uid
        self._launches = 0
        # Each launch's folder, pinned by a descriptor of our own: the host reaches it by that.
        self._open: dict[str, int] = {}

    def prepare(self, key: bytes, signature_scheme: str) -> KernelLaunch:
        """A fresh kernel folder the sandbox user may bind in, and the kernel's connection file."""
        # The engine owns conn_dir; it opens it for itself only while it adds the launch's entries.
        self.conn_dir.chmod(0o755)
        try:
            name = self._new_folder()
            folder = self.conn_dir / name
            fd = os.open(folder, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
            inside: KernelConnectionInfo = {
                **self._endpoints(f"{self.mount}/{name}"),
                "key": key.decode(),
                "signature_scheme": signature_scheme,
            }
            try:
                write_readonly(self.conn_dir / f"{name}.json", json.dumps(inside))
                folder.chmod(0o777)
            except BaseException:
                os.close(fd)
                raise
        finally:
            self.conn_dir.chmod(0o555)
        self._open[name] = fd
        return KernelLaunch(id=name, connection_file=f"{self.mount}/{name}.json")

    def _new_folder(self) -> str:
        while True:
            self._launches += 1
            name = f"k{self._launches}"
            try:
                (self.conn_dir / name).mkdir(mode=0o700)
                return name
            except FileExistsError:  # an earlier engine process's launch
                continue

    @staticmethod
    def _endpoints(ip_base: str) -> KernelConnectionInfo:
        return {
            "transport": "ipc",
            "ip": f"{ip_base}/{SOCKET_PREFIX}",
            "shell_port": 1,
            "iopub_port": 2,
            "stdin_port": 3,
            "control_port": 4,
            "hb_port": 5,
        }

    async def wait_bound(
        self, launch_id: str, exited: Callable[[], Awaitable[bool]], timeout: float
    ) -> KernelConnectionInfo:
        """Wait for the kernel's sockets, lock the folder, verify it; the host-side endpoints."""
        fd = self._open.get(launch_id)
        if fd is None:
            raise errors.KernelStartError(f"no prepared kernel launch {launch_id!r}")
        short = short_path(fd)
        names = endpoint_names()
        paths = [os.path.join(short, name) for name in names]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        polls = 0
        while not _all_present(paths, self.uid):
            polls += 1
            if polls % EXIT_CHECK_EVERY == 0 and await exited():
                raise errors.KernelStartError("the kernel process exited while starting")
            if loop.time() > deadline:
                raise errors.KernelStartError(
                    f"the kernel did not bind its sockets within {timeout:g} s"
                )
            await asyncio.sleep(0.005)
        os.chmod(short, 0o555)
        check_endpoints(short, names, self.uid)
        return self._endpoints(short)

    def adopt(self, launch_id: str) -> KernelConnectionInfo:
        """Re-verify a launch an earlier engine process made and locked, as strictly as
        ``wait_bound`` did: the sandbox had all the time the engine was down to plant things."""
        if not LAUNCH_NAME.fullmatch(launch_id):
            raise errors.KernelStartError(f"not a kernel launch: {launch_id!r}")
        conn = open_folder(str(self.conn_dir))
        try:
            check_locked_folder(conn, "the connection folder")
            fd = open_folder(launch_id, dir_fd=conn)
        finally:
            os.close(conn)
        try:
            check_locked_folder(fd, f"the kernel folder {launch_id}")
            short = short_path(fd)
            check_endpoints(short, endpoint_names(), self.uid)
        except BaseException:
            os.close(fd)
            raise
        self.release(launch_id)
        self._open[launch_id] = fd
        self._launches = max(self._launches, int(launch_id[1:]))
        return self._endpoints(short)

    def release(self, launch_id: str) -> None:
        """Close the launch's descriptor. The folder itself goes with the sandbox. Idempotent."""
        fd = self._open.pop(launch_id, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for launch_id in list(self._open):
            self.release(launch_id)
