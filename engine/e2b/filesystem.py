"""Files anywhere the sandbox user may reach (E2B's ``files``, envd's ``filesystem`` and
``/files``): every operation is a short Python program run inside the sandbox as the sandbox
user, so a link the sandbox planted leads nowhere the sandbox could not go already, and no
byte of it is parsed on the host beyond the program's JSON answer."""

from __future__ import annotations

import base64
import builtins
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..sandbox.base import Sandbox
from .commands import _exit_code
from .paths import sandbox_path

WRITE_STEP = 1024 * 1024
"""Bytes per write step (one ``docker exec``): 1.4 MB of base64, under Linux's 2 MiB for all
the arguments of a program."""
ARGUMENT = 120 * 1024
"""Base64 characters per argument: Linux takes at most 128 KiB in one."""
ANSWER_CAP = 8 * 1024 * 1024
"""Bytes of JSON a listing may answer."""

PROGRAM = r"""
import base64, datetime, grp, json, os, pwd, shutil, stat, sys

TYPES = {stat.S_IFREG: "FILE_TYPE_FILE", stat.S_IFDIR: "FILE_TYPE_DIRECTORY",
         stat.S_IFLNK: "FILE_TYPE_SYMLINK"}

def name_of(get, ident):
    try:
        return get(ident)[0]
    except KeyError:
        return str(ident)

def entry(path):
    st = os.lstat(path)
    kind = TYPES.get(stat.S_IFMT(st.st_mode), "FILE_TYPE_UNSPECIFIED")
    info = {"name": os.path.basename(path) or "/", "type": kind, "path": path,
            "size": st.st_size, "mode": stat.S_IMODE(st.st_mode),
            "permissions": stat.filemode(st.st_mode),
            "owner": name_of(pwd.getpwuid, st.st_uid), "group": name_of(grp.getgrgid, st.st_gid),
            "modifiedTime": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc)
                .strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    if kind == "FILE_TYPE_SYMLINK":
        info["symlinkTarget"] = os.path.realpath(path)
    return info

def walk(path, depth):
    out = []
    with os.scandir(path) as it:
        for e in sorted(it, key=lambda e: e.name):
            out.append(entry(e.path))
            if depth > 1 and e.is_dir(follow_symlinks=False):
                out.extend(walk(e.path, depth - 1))
    return out

def run(op, a):
    if op == "stat":
        return {"entry": entry(a["path"])}
    if op == "list":
        if not os.path.isdir(a["path"]):
            raise NotADirectoryError(20, "not a directory", a["path"])
        return {"entries": walk(a["path"], max(1, a["depth"]))}
    if op == "mkdir":
        if os.path.lexists(a["path"]):
            raise FileExistsError(17, "already exists", a["path"])
        os.makedirs(a["path"])
        return {"entry": entry(a["path"])}
    if op == "move":
        parent = os.path.dirname(a["destination"])
        if parent:
            os.makedirs(parent, exist_ok=True)
        os.rename(a["source"], a["destination"])
        return {"entry": entry(a["destination"])}
    if op == "remove":
        if os.path.isdir(a["path"]) and not os.path.islink(a["path"]):
            shutil.rmtree(a["path"])
        else:
            os.unlink(a["path"])
        return {}
    if op == "write":
        parent = os.path.dirname(a["path"])
        if parent:
            os.makedirs(parent, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if a["append"] else os.O_TRUNC)
        fd = os.open(a["path"], flags, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode("".join(sys.argv[3:])))
        return {"entry": entry(a["path"])}
    if op == "read":
        if os.path.isdir(a["path"]):
            raise IsADirectoryError(21, "is a directory", a["path"])
        with open(a["path"], "rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer)
        return None
    raise ValueError(op)

CODES = {FileNotFoundError: "not_found", FileExistsError: "already_exists",
         PermissionError: "permission_denied", NotADirectoryError: "invalid_argument",
         IsADirectoryError: "invalid_argument"}
try:
    answer = run(sys.argv[1], json.loads(sys.argv[2]))
    if answer is not None:
        sys.stdout.write(json.dumps(answer))
except OSError as exc:
    code = next((c for t, c in CODES.items() if isinstance(exc, t)), "internal")
    sys.stderr.write(json.dumps({"code": code, "message": f"{exc.strerror}: {exc.filename}"}))
    sys.exit(3)
"""


@dataclass(frozen=True)
class EntryInfo:
    """envd's EntryInfo, in its JSON form."""

    data: dict[str, Any]

    @property
    def path(self) -> str:
        return str(self.data["path"])

    @property
    def is_dir(self) -> bool:
        return bool(self.data["type"] == "FILE_TYPE_DIRECTORY")


class Filesystem:
    """File operations in one sandbox, as its user."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    async def stat(self, path: str) -> EntryInfo:
        return EntryInfo((await self._run("stat", path=sandbox_path(path)))["entry"])

    async def list(self, path: str, depth: int = 1) -> builtins.list[EntryInfo]:
        answer = await self._run("list", path=sandbox_path(path), depth=int(depth or 1))
        return [EntryInfo(e) for e in answer["entries"]]

    async def make_dir(self, path: str) -> EntryInfo:
        return EntryInfo((await self._run("mkdir", path=sandbox_path(path)))["entry"])

    async def move(self, source: str, destination: str) -> EntryInfo:
        answer = await self._run(
            "move", source=sandbox_path(source), destination=sandbox_path(destination)
        )
        return EntryInfo(answer["entry"])

    async def remove(self, path: str) -> None:
        await self._run("remove", path=sandbox_path(path))

    async def write(self, path: str, data: bytes) -> EntryInfo:
        target = sandbox_path(path)
        answer: dict[str, Any] = {}
        for start in range(0, max(len(data), 1), WRITE_STEP):
            encoded = base64.b64encode(data[start : start + WRITE_STEP]).decode()
            parts = [encoded[i : i + ARGUMENT] for i in range(0, len(encoded), ARGUMENT)]
            answer = await self._run("write", parts, path=target, append=start > 0)
        return EntryInfo(answer["entry"])

    async def read(self, path: str, max_bytes: int) -> bytes:
        stdout, _ = await self._call("read", [], max_bytes + 1, path=sandbox_path(path))
        if len(stdout) > max_bytes:
            raise errors.LimitExceeded(f"{path} is larger than {max_bytes} bytes")
        return stdout

    async def _run(self, op: str, data: Sequence[str] = (), **args: Any) -> dict[str, Any]:
        stdout, _ = await self._call(op, data, ANSWER_CAP, **args)
        answer: dict[str, Any] = json.loads(stdout)
        return answer

    async def _call(self, op: str, data: Sequence[str], cap: int, **args: Any) -> tuple[bytes, int]:
        argv = ["python3", "-c", PROGRAM, op, json.dumps(args), *data]
        run = await self._sandbox.run_command(argv, {}, "/", cap)
        out, err = bytearray(), bytearray()
        async for chunk in run.output:
            (out if chunk.stream == "stdout" else err).extend(chunk.data)
        code = await _exit_code(self._sandbox, run.process)
        if code == 3:
            problem = json.loads(bytes(err))
            raise errors.SandboxFileError(str(problem["code"]), str(problem["message"]))
        if code != 0:
            raise errors.SandboxError(f"the file operation {op} failed: {bytes(err)[-500:]!r}")
        return bytes(out), code
