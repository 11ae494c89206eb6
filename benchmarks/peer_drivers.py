"""Drives one peer sandbox, one command at a time, so that ``peers.py`` can interleave its calls
with the engine's and compare the two within one run.

Runs inside the peers' own virtualenv, so it imports only the standard library and the peer
under test, never the engine. Reads commands on stdin (``start``, ``trivial``, ``task``,
``close``), answers each with one JSON line on stdout: ``{"seconds": ...}`` or ``{"steps": ...}``
or ``{"error": ...}``.
``python peer_drivers.py PEER --image IMAGE --csv PATH --code-file PATH --rows N``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

TRIVIAL = "x = 1\nprint(x)"
LABEL = ("org.sandbox-engine.bench", "peer")


def _workdir() -> Path:
    """A host folder any uid in the container can read and write (the image runs as 10001)."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-bench-peer-"))
    path.chmod(0o777)
    return path


def _put_csv(src: str, folder: Path) -> None:
    shutil.copy(src, folder / "sales.csv")
    (folder / "sales.csv").chmod(0o666)


class Peer:
    """One way of running code in a container: ``start`` opens a session (if the peer has
    sessions), ``trivial`` runs TRIVIAL in the first one and returns its stdout, ``task``
    runs the realistic task and returns stdout, the PNG, and the time of each step."""

    sessions_open = True
    """False for a peer with nothing to open: each of its calls is a new container."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tasks = 0

    def version(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def trivial(self) -> str:
        raise NotImplementedError

    def task(self) -> tuple[str, bytes, list[float]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class DockerRun(Peer):
    """The naive way: ``docker run --rm --network none IMAGE python -c CODE`` for every call."""

    base = ("docker", "run", "--rm", "--network", "none", "--label", "=".join(LABEL))
    sessions_open = False

    def version(self) -> str:
        out = subprocess.run(["docker", "--version"], capture_output=True, text=True)
        return out.stdout.strip()

    def trivial(self) -> str:
        argv = [*self.base, self.args.image, "python", "-c", TRIVIAL]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout

    def task(self) -> tuple[str, bytes, list[float]]:
        work = _workdir()
        try:
            marks = [time.perf_counter()]
            _put_csv(self.args.csv, work)
            marks.append(time.perf_counter())
            code = self.args.code.format(data="/mnt/data")
            out = subprocess.run(
                [*self.base, "-v", f"{work}:/mnt/data", self.args.image, "python", "-c", code],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
            marks.append(time.perf_counter())
            png = (work / "chart.png").read_bytes()
            marks.append(time.perf_counter())
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return out.stdout, png, marks


class LLMSandbox(Peer):
    """llm-sandbox's Docker backend: a container per session, every run a ``docker exec`` of a
    new interpreter on a file copied in."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.sessions: list[Any] = []

    def version(self) -> str:
        return metadata.version("llm-sandbox")

    def make(self) -> Any:
        from llm_sandbox import SandboxSession

        # A local image is used as it is and never removed (keep_template); it already has
        # Python and the stack, so the per-session venv and pip set-up are skipped.
        return SandboxSession(
            lang="python",
            image=self.args.image,
            keep_template=True,
            skip_environment_setup=True,
            runtime_configs={"labels": dict([LABEL])},
        )

    def start(self) -> None:
        session = self.make()
        session.open()
        self.sessions.append(session)

    def trivial(self) -> str:
        return str(self.sessions[0].run(TRIVIAL).stdout)

    def task(self) -> tuple[str, bytes, list[float]]:
        session = self.sessions[self.tasks % len(self.sessions)]
        self.tasks += 1
        work = _workdir()
        try:
            marks = [time.perf_counter()]
            session.copy_to_runtime(self.args.csv, "/mnt/data/sales.csv")
            marks.append(time.perf_counter())
            out = session.run(self.args.code.format(data="/mnt/data"), timeout=300)
            marks.append(time.perf_counter())
            session.copy_from_runtime("/mnt/data/chart.png", str(work / "chart.png"))
            marks.append(time.perf_counter())
            png = (work / "chart.png").read_bytes()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return str(out.stdout), png, marks

    def close(self) -> None:
        for session in self.sessions:
            session.close()


class LLMSandboxInteractive(LLMSandbox):
    """llm-sandbox's persistent IPython runtime (``InteractiveSandboxSession``)."""

    def make(self) -> Any:
        from llm_sandbox.interactive import InteractiveSandboxSession

        class Offline(InteractiveSandboxSession):  # type: ignore[misc]
            """Its runtime pip-installs IPython; this image has it, and no index is reachable."""

            def _ensure_runtime_dependencies(self) -> None:
                self.execute_commands(
                    [(f"mkdir -p {self._commands_dir} {self._results_dir}", None)]
                )

        session = Offline(
            image=self.args.image,
            keep_template=True,
            skip_environment_setup=True,
            runtime_configs={"labels": dict([LABEL])},
        )
        session._python_exec_path = "python"
        return session


class AutoGen(Peer):
    """AutoGen's ``DockerCommandLineCodeExecutor``: one container, a bind-mounted work folder,
    every code block a ``docker exec`` of a new interpreter."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.loop = asyncio.new_event_loop()
        self.executors: list[tuple[Any, Path]] = []

    def version(self) -> str:
        return metadata.version("autogen-ext")

    def start(self) -> None:
        from autogen_ext.code_executors.docker import DockerCommandLineCodeExecutor

        work = _workdir()
        executor = DockerCommandLineCodeExecutor(image=self.args.image, work_dir=work, timeout=300)
        self.executors.append((executor, work))
        self.loop.run_until_complete(executor.start())

    def _run(self, executor: Any, code: str) -> str:
        from autogen_core import CancellationToken
        from autogen_core.code_executor import CodeBlock

        result = self.loop.run_until_complete(
            executor.execute_code_blocks([CodeBlock(code, "python")], CancellationToken())
        )
        return str(result.output)

    def trivial(self) -> str:
        return self._run(self.executors[0][0], TRIVIAL)

    def task(self) -> tuple[str, bytes, list[float]]:
        executor, work = self.executors[self.tasks % len(self.executors)]
        self.tasks += 1
        marks = [time.perf_counter()]
        _put_csv(self.args.csv, work)
        marks.append(time.perf_counter())
        out = self._run(executor, self.args.code.format(data="/workspace"))
        marks.append(time.perf_counter())
        png = (work / "chart.png").read_bytes()
        marks.append(time.perf_counter())
        (work / "chart.png").unlink()
        return out, png, marks

    def close(self) -> None:
        for executor, work in self.executors:
            self.loop.run_until_complete(executor.stop())
            shutil.rmtree(work, ignore_errors=True)
        self.loop.close()


PEERS: dict[str, type[Peer]] = {
    "docker-run": DockerRun,
    "llm-sandbox": LLMSandbox,
    "llm-sandbox-interactive": LLMSandboxInteractive,
    "autogen": AutoGen,
}


def _check(stdout: str, expected: str) -> None:
    if not stdout.strip().startswith(expected):
        raise RuntimeError(f"unexpected output {stdout[-400:]!r}")


def _answer(peer: Peer, command: str, rows: int) -> dict[str, Any]:
    if command == "version":
        return {"version": peer.version()}
    if command == "start":
        if not peer.sessions_open:
            return {"seconds": None}
        started = time.perf_counter()
        peer.start()
        return {"seconds": time.perf_counter() - started}
    if command == "trivial":
        started = time.perf_counter()
        out = peer.trivial()
        took = time.perf_counter() - started
        _check(out, "1")
        return {"seconds": took}
    if command == "task":
        out, png, marks = peer.task()
        _check(out, str(rows))
        if not png.startswith(b"\x89PNG"):
            raise RuntimeError("the chart is not a PNG")
        steps = dict(
            zip(
                ("upload", "execute", "download"),
                (b - a for a, b in itertools.pairwise(marks)),
                strict=True,
            )
        )
        return {"steps": {**steps, "total": marks[-1] - marks[0]}}
    raise ValueError(f"unknown command {command!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=PEERS)
    parser.add_argument("--image", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--code-file", required=True, help="the task's code, with {data}")
    parser.add_argument("--rows", type=int, required=True)
    args = parser.parse_args()
    args.code = Path(args.code_file).read_text()
    peer = PEERS[args.peer](args)
    try:
        for line in sys.stdin:
            command = line.strip()
            try:
                answer = _answer(peer, command, args.rows) if command != "close" else {}
            except Exception as exc:
                answer = {
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc()[-3000:],
                }
            if command == "close":
                break
            print(json.dumps(answer), flush=True)
    finally:
        peer.close()
        print(json.dumps({"closed": True}), flush=True)


if __name__ == "__main__":
    main()
