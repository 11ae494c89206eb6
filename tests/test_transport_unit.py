"""Fast tests, no Docker: the IPC endpoint checks, the provisioner's hooks, result folding."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.connect import KernelConnectionInfo

from engine import errors
from engine.kernel import KernelLimits, strip_ansi
from engine.kernel.output import Collector as _Collector
from engine.provisioner import new_kernel_manager
from engine.results import (
    CappedText,
    ErrorEvent,
    ExecutionStatus,
    OutputEvent,
    ResultEvent,
    StreamEvent,
)
from engine.sandbox.base import FileEntry, KernelLaunch, ProcessHandle, Sandbox
from engine.sandbox.ipc import (
    IpcKernelFolders,
    check_endpoints,
    endpoint_names,
    short_path,
    write_readonly,
)

UID = os.getuid()


@pytest.fixture
def bound() -> Iterator[list[socket.socket]]:
    """Sockets the test binds; closed at the end."""
    socks: list[socket.socket] = []
    yield socks
    for s in socks:
        s.close()


def bind(socks: list[socket.socket], path: str) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen()
    socks.append(s)


def kernel_folder(tmp_path: Path, socks: list[socket.socket], skip: str = "") -> Path:
    """A folder with the five endpoints as real sockets, except ``skip``."""
    folder = tmp_path / "k1"
    folder.mkdir()
    for name in endpoint_names():
        if name != skip:
            bind(socks, str(folder / name))
    return folder


# --- endpoint verification ---


def test_real_sockets_pass(tmp_path: Path, bound: list[socket.socket]) -> None:
    folder = kernel_folder(tmp_path, bound)
    check_endpoints(str(folder), endpoint_names(), UID)


def test_symlink_instead_of_a_socket_is_refused(tmp_path: Path, bound: list[socket.socket]) -> None:
    folder = kernel_folder(tmp_path, bound, skip="s-2")
    # Even a link to a real socket is refused: lstat looks at the link itself.
    bind(bound, str(tmp_path / "elsewhere"))
    (folder / "s-2").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(errors.KernelStartError, match="s-2 is not a kernel socket"):
        check_endpoints(str(folder), endpoint_names(), UID)


def test_regular_file_instead_of_a_socket_is_refused(
    tmp_path: Path, bound: list[socket.socket]
) -> None:
    folder = kernel_folder(tmp_path, bound, skip="s-5")
    (folder / "s-5").write_text("not a socket")
    with pytest.raises(errors.KernelStartError, match="s-5 is not a kernel socket"):
        check_endpoints(str(folder), endpoint_names(), UID)


def test_socket_of_another_uid_is_refused(tmp_path: Path, bound: list[socket.socket]) -> None:
    folder = kernel_folder(tmp_path, bound)
    with pytest.raises(errors.KernelStartError, match="not a kernel socket"):
        check_endpoints(str(folder), endpoint_names(), UID + 1)


def test_unexpected_entry_is_refused(tmp_path: Path, bound: list[socket.socket]) -> None:
    folder = kernel_folder(tmp_path, bound)
    (folder / "planted").symlink_to("/etc/passwd")
    with pytest.raises(errors.KernelStartError, match=r"unexpected entries.*planted"):
        check_endpoints(str(folder), endpoint_names(), UID)


def test_missing_endpoint_is_refused(tmp_path: Path, bound: list[socket.socket]) -> None:
    folder = kernel_folder(tmp_path, bound, skip="s-3")
    with pytest.raises(errors.KernelStartError, match="s-3 is missing"):
        check_endpoints(str(folder), endpoint_names(), UID)


# --- the kernel's connection file ---


def test_connection_file_is_written_read_only(tmp_path: Path) -> None:
    path = tmp_path / "k1.json"
    write_readonly(path, '{"a": 1}')
    assert json.loads(path.read_text()) == {"a": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_connection_file_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "k1.json"
    path.write_text("earlier")
    with pytest.raises(FileExistsError):
        write_readonly(path, "{}")
    assert path.read_text() == "earlier"


def test_connection_file_refuses_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "host-secret"
    target.write_text("untouched")
    (tmp_path / "k1.json").symlink_to(target)
    with pytest.raises(FileExistsError):
        write_readonly(tmp_path / "k1.json", "{}")
    # A dangling link is refused too: O_EXCL never creates the file it points to.
    (tmp_path / "k2.json").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        write_readonly(tmp_path / "k2.json", "{}")
    assert target.read_text() == "untouched"
    assert not (tmp_path / "nowhere").exists()


# --- the short path ---


def test_short_path_reaches_a_deep_folder(tmp_path: Path, bound: list[socket.socket]) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 6)
    deep.mkdir(parents=True)
    assert len(str(deep / "s-1")) > 107
    with pytest.raises(OSError):
        bind(bound, str(deep / "s-1"))
    fd = os.open(deep, os.O_PATH | os.O_DIRECTORY)
    try:
        short = short_path(fd)
        assert len(f"{short}/s-1") < 32
        bind(bound, f"{short}/s-1")
        assert stat.S_ISSOCK(os.lstat(deep / "s-1").st_mode)
        client = socket.socket(socket.AF_UNIX)
        client.connect(f"{short}/s-1")
        client.close()
    finally:
        os.close(fd)


# --- IpcKernelFolders: a launch from prepare to release, the kernel played by the test ---


def conn_dir(tmp_path: Path) -> Path:
    path = tmp_path / "deep" / ("x" * 90) / "conn"
    path.mkdir(parents=True, mode=0o555)
    return path


async def never_exits() -> bool:
    return False


def play_kernel(folder: Path, socks: list[socket.socket], names: list[str]) -> None:
    """Bind as the kernel does, by a short path: inside the sandbox that is /conn/k<N>."""
    fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
    try:
        for name in names:
            bind(socks, f"{short_path(fd)}/{name}")
    finally:
        os.close(fd)


async def test_ipc_launch_is_locked_verified_and_released(
    tmp_path: Path, bound: list[socket.socket]
) -> None:
    conn = conn_dir(tmp_path)
    folders = IpcKernelFolders(conn, "/conn", UID)
    launch = folders.prepare(b"secret-key", "hmac-sha256")
    assert launch == KernelLaunch(id="k1", connection_file="/conn/k1.json")
    inside = json.loads((conn / "k1.json").read_text())
    assert inside["ip"] == "/conn/k1/s" and inside["transport"] == "ipc"
    assert inside["key"] == "secret-key" and inside["signature_scheme"] == "hmac-sha256"
    assert [inside[f"{c}_port"] for c in ("shell", "iopub", "stdin", "control", "hb")] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert stat.S_IMODE((conn / "k1.json").stat().st_mode) == 0o444
    assert stat.S_IMODE(conn.stat().st_mode) == 0o555
    # Until the kernel has bound, the sandbox user may write into its folder; then never again.
    assert stat.S_IMODE((conn / "k1").stat().st_mode) == 0o777
    play_kernel(conn / "k1", bound, endpoint_names())
    info = await folders.wait_bound(launch.id, never_exits, timeout=5)
    assert stat.S_IMODE((conn / "k1").stat().st_mode) == 0o555
    assert info["transport"] == "ipc" and "key" not in info
    ip = str(info["ip"])
    assert ip.startswith("/proc/self/fd/") and len(ip) < 107 - 2
    fd = int(ip.split("/")[4])
    assert os.stat(f"/proc/self/fd/{fd}").st_ino == (conn / "k1").stat().st_ino
    assert folders.prepare(b"k", "hmac-sha256").id == "k2"
    folders.release(launch.id)
    folders.release(launch.id)  # idempotent
    with pytest.raises(OSError):
        os.fstat(fd)
    folders.close()


async def test_ipc_launch_refuses_a_planted_symlink(
    tmp_path: Path, bound: list[socket.socket]
) -> None:
    conn = conn_dir(tmp_path)
    folders = IpcKernelFolders(conn, "/conn", UID)
    launch = folders.prepare(b"k", "hmac-sha256")
    play_kernel(conn / "k1", bound, endpoint_names()[:-1])
    bind(bound, str(tmp_path / "other"))
    (conn / "k1" / endpoint_names()[-1]).symlink_to(tmp_path / "other")
    with pytest.raises(errors.KernelStartError, match="not a kernel socket"):
        await folders.wait_bound(launch.id, never_exits, timeout=5)
    folders.close()


async def test_ipc_launch_waits_for_its_sockets_owner(
    tmp_path: Path, bound: list[socket.socket]
) -> None:
    """Under gVisor a socket's host entry can show another owner for a moment: the launch waits
    for the sandbox uid, and refuses (late) a socket that never gets it."""
    import asyncio

    conn = conn_dir(tmp_path)
    folders = IpcKernelFolders(conn, "/conn", UID + 1)  # the sockets below are UID's
    launch = folders.prepare(b"k", "hmac-sha256")
    play_kernel(conn / "k1", bound, endpoint_names())
    waiting = asyncio.ensure_future(folders.wait_bound(launch.id, never_exits, timeout=5))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    assert stat.S_IMODE((conn / "k1").stat().st_mode) == 0o777  # not locked while it waits
    folders.uid = UID  # as when the owner settles
    info = await waiting
    assert info["transport"] == "ipc"
    other = IpcKernelFolders(conn_dir(tmp_path / "other"), "/conn", UID + 1)
    late = other.prepare(b"k", "hmac-sha256")
    play_kernel(other.conn_dir / "k1", bound, endpoint_names())
    with pytest.raises(errors.KernelStartError, match="did not bind its sockets within"):
        await other.wait_bound(late.id, never_exits, timeout=0.2)
    folders.close()
    other.close()


async def test_ipc_launch_gives_up_when_the_kernel_exits_or_is_late(tmp_path: Path) -> None:
    folders = IpcKernelFolders(conn_dir(tmp_path), "/conn", UID)

    async def exited() -> bool:
        return True

    with pytest.raises(errors.KernelStartError, match="exited while starting"):
        await folders.wait_bound(folders.prepare(b"k", "hmac-sha256").id, exited, timeout=5)
    started = time.monotonic()
    with pytest.raises(errors.KernelStartError, match="did not bind its sockets within"):
        await folders.wait_bound(folders.prepare(b"k", "hmac-sha256").id, never_exits, 0.05)
    assert time.monotonic() - started < 2
    folders.close()


def test_ipc_launch_skips_folders_an_earlier_process_left(tmp_path: Path) -> None:
    conn = conn_dir(tmp_path)
    conn.chmod(0o755)
    (conn / "k1").mkdir()
    conn.chmod(0o555)
    folders = IpcKernelFolders(conn, "/conn", UID)
    assert folders.prepare(b"k", "hmac-sha256").id == "k2"
    folders.close()


# --- the provisioner drives jupyter_client through the sandbox's hooks only ---


class TcpSandbox(Sandbox):
    """A sandbox whose kernel would be reached over TCP, like a pod behind a port-forward."""

    def __init__(self, fail: bool = False) -> None:
        self.id = "fake"
        self.labels = {}
        self.fail = fail
        self.calls: list[str] = []
        self.argv: list[str] = []
        self.env: dict[str, str] | None = None
        self.key = b""

    async def prepare_kernel(self, key: bytes, signature_scheme: str) -> KernelLaunch:
        self.calls.append("prepare")
        self.key = key
        return KernelLaunch(id=f"launch{self.calls.count('prepare')}", connection_file="/c.json")

    async def kernel_ready(
        self, launch: KernelLaunch, process: ProcessHandle, timeout: float
    ) -> KernelConnectionInfo:
        self.calls.append(f"ready {launch.id}")
        return self._endpoints()

    async def adopt_kernel(self, launch: KernelLaunch) -> KernelConnectionInfo:
        self.calls.append(f"adopt {launch.id}")
        return self._endpoints()

    def _endpoints(self) -> KernelConnectionInfo:
        if self.fail:
            raise errors.KernelStartError("refusing to connect")
        return {
            "transport": "tcp",
            "ip": "127.0.0.1",
            "shell_port": 40001,
            "iopub_port": 40002,
            "stdin_port": 40003,
            "control_port": 40004,
            "hb_port": 40005,
        }

    async def release_kernel(self, launch: KernelLaunch) -> None:
        self.calls.append(f"release {launch.id}")

    async def start_process(self, argv: list[str], env: dict[str, str]) -> ProcessHandle:
        self.calls.append("start")
        self.argv, self.env = argv, env
        return ProcessHandle("p")

    async def exit_code(self, process: ProcessHandle) -> int | None:
        return 0

    async def kill_all(self) -> None:
        self.calls.append("kill")

    async def oom_kills(self) -> int:
        return 0

    async def is_running(self) -> bool:
        return True

    async def destroy(self) -> None:
        pass

    async def set_deadline(self, when: float) -> None:
        pass

    async def list_files(self, limit: int) -> tuple[list[FileEntry], bool]:
        return [], False

    async def open_file(self, path: str) -> Any:
        raise FileNotFoundError(path)

    async def write_file(self, path: str, src: Any, max_bytes: int) -> FileEntry:
        raise NotImplementedError

    async def remove_file(self, path: str) -> None:
        pass


async def test_provisioner_connects_where_the_sandbox_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_SECRET", "must not travel")
    sandbox = TcpSandbox()
    km = new_kernel_manager(sandbox, start_timeout=5)
    await km.start_kernel()
    assert sandbox.calls == ["prepare", "start", "ready launch1"]
    assert sandbox.argv == ["python", "-m", "ipykernel_launcher", "-f", "/c.json"]
    assert sandbox.env == {}
    info: dict[str, Any] = dict(km.get_connection_info())
    assert info["transport"] == "tcp" and info["shell_port"] == 40001
    assert info["key"] == sandbox.key == km.session.key
    assert km.connection_file == ""  # nothing written on the host
    await km.restart_kernel(now=True)
    assert sandbox.calls[3:] == ["kill", "release launch1", "prepare", "start", "ready launch2"]
    await km.shutdown_kernel(now=True)
    assert sandbox.calls[-1] == "release launch2"


async def test_provisioner_releases_a_launch_that_failed() -> None:
    sandbox = TcpSandbox(fail=True)
    km = new_kernel_manager(sandbox, start_timeout=5)
    with pytest.raises(errors.KernelStartError):
        await km.start_kernel()
    assert sandbox.calls == ["prepare", "start", "ready launch1", "release launch1"]


# --- folding iopub messages into a result ---


def msg(kind: str, **content: Any) -> dict[str, Any]:
    return {"msg_type": kind, "content": content, "parent_header": {"msg_id": "m"}}


def collector(**limits: Any) -> tuple[_Collector, list[OutputEvent]]:
    events: list[OutputEvent] = []

    async def on_event(event: OutputEvent) -> None:
        events.append(event)

    return _Collector(KernelLimits(**limits), on_event), events


async def test_streams_keep_head_and_tail_within_the_cap() -> None:
    c, events = collector(output_limit_chars=10)
    await c.handle(msg("stream", name="stdout", text="a" * 5 + "b" * 20 + "c" * 5))
    await c.handle(msg("stream", name="stderr", text="oops\n"))
    result = c.finish(ExecutionStatus.OK, time.perf_counter())
    assert result.stdout == "aaaaa\n[... 20 characters dropped ...]\nccccc"
    assert result.stderr == "oops\n"
    assert result.dropped == {"stdout": 20}
    # Live events carry the first ``limit`` characters of each stream, then nothing: a flood
    # must not pile up for a slow client. The result keeps the head and the tail.
    await c.handle(msg("stream", name="stdout", text="more"))
    assert events == [
        StreamEvent(type="stdout", text="a" * 5 + "b" * 5),
        StreamEvent(type="stderr", text="oops\n"),
    ]


def test_capped_text_below_the_limit_is_unchanged() -> None:
    capped = CappedText(8)
    for part in ("ab", "cd", "ef"):
        capped.write(part)
    assert capped.getvalue() == "abcdef" and capped.dropped == 0
    capped.write("ghij")
    assert capped.dropped == 2
    assert capped.getvalue() == "abcd\n[... 2 characters dropped ...]\nghij"


async def test_display_outputs_beyond_the_count_or_budget_are_dropped() -> None:
    c, events = collector(max_display_outputs=2, max_display_bytes=100)
    await c.handle(msg("display_data", data={"text/plain": "x" * 60}))
    await c.handle(msg("display_data", data={"text/plain": "y" * 60}))  # over the budget
    await c.handle(msg("display_data", data="not a bundle"))  # counts as empty
    await c.handle(msg("display_data", data={"text/plain": "z"}))  # over the count
    result = c.finish(ExecutionStatus.OK, time.perf_counter())
    assert result.display == [{"text/plain": "x" * 60}, {}]
    assert result.dropped == {"display": 2}
    assert len(events) == 2


async def test_an_execute_result_too_large_becomes_capped_text() -> None:
    c, events = collector(output_limit_chars=10, max_display_bytes=50)
    data = {"text/plain": "v" * 40, "text/html": "<b>" + "h" * 40 + "</b>"}
    await c.handle(msg("execute_input", execution_count=3))
    await c.handle(msg("execute_result", data=data, execution_count=3))
    result = c.finish(ExecutionStatus.OK, time.perf_counter())
    assert result.result is not None and set(result.result) == {"text/plain"}
    text = result.result["text/plain"]
    assert text.startswith("vvvvv\n[... 30 characters dropped") and text.endswith("vvvvv")
    assert result.dropped == {"result": 40 + 47 - len(text)}
    assert result.execution_count == 3
    assert isinstance(events[0], ResultEvent) and events[0].execution_count == 3


async def test_error_info_is_capped_and_stripped() -> None:
    c, events = collector(output_limit_chars=40)
    await c.handle(
        msg(
            "error",
            ename="E" * 300,
            evalue="w" * 100,
            traceback=["\x1b[0;31mValueError\x1b[0m: bad", "\x1b[1mline\x1b[0m"],
        )
    )
    result = c.finish(ExecutionStatus.ERROR, time.perf_counter(), state_lost=True)
    assert result.error is not None
    assert result.error.name == "E" * 200
    assert result.error.value.startswith("w" * 10) and "60 characters dropped" in result.error.value
    assert result.error.traceback == ["ValueError: bad", "line"]
    assert result.dropped["error"] > 0
    assert result.status is ExecutionStatus.ERROR and result.state_lost
    assert isinstance(events[0], ErrorEvent) and events[0].error == result.error


async def test_a_sync_callback_and_unknown_messages() -> None:
    seen: list[OutputEvent] = []
    c = _Collector(KernelLimits(), seen.append)
    await c.handle(msg("clear_output", wait=False))
    await c.handle(msg("stream", text="no name means stdout"))
    result = c.finish(ExecutionStatus.OK, time.perf_counter())
    assert result.stdout == "no name means stdout" and result.dropped == {}
    assert seen == [StreamEvent(type="stdout", text="no name means stdout")]


def test_strip_ansi() -> None:
    assert strip_ansi("\x1b[0;31mred\x1b[0m \x1b[?25lplain\x1b[2K") == "red plain"
    assert strip_ansi("no codes [0m") == "no codes [0m"
