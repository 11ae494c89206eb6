"""The ``sandbox-engine`` command line.

Each command is one ``_command_*`` function that adds its parser and sets ``handler`` to a
function taking the parsed arguments and returning the exit code; list it in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from rich.console import Console
from rich.text import Text

from .config import Settings
from .errors import EngineError

if TYPE_CHECKING:
    from .cluster.demo import LocalCluster

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

console = Console(stderr=True)


def _command_image(subparsers: Subparsers) -> None:
    image = subparsers.add_parser("image", help="build the sandbox image")
    actions = image.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="build the sandbox image if its inputs changed")
    build.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    build.add_argument(
        "--base",
        help="base image: debootstrap:<suite> or an image name (default: SANDBOX_IMAGE_BASE)",
    )
    build.add_argument(
        "--egress-proxy",
        action="store_true",
        help="build the egress proxy's image (for sessions with a network policy) instead",
    )
    build.set_defaults(handler=_image_build)


def _image_build(args: argparse.Namespace) -> int:
    from .image import build_image, build_proxy_image

    settings = Settings()
    if args.base:
        settings = settings.model_copy(update={"image_base": args.base})
    builder = build_proxy_image if args.egress_proxy else build_image
    print(builder(settings, force=args.force, console=console))
    return 0


def _command_serve(subparsers: Subparsers) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP service (FastAPI under uvicorn)")
    serve.add_argument("--host", help="address to bind (default: SANDBOX_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: SANDBOX_PORT, 8000)")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="least severe log records written (JSON lines on stderr; default: info)",
    )
    serve.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="serve as an API replica of the Ray cluster at ADDRESS (docs/cluster.md)",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import logging

    from .api import create_app
    from .api.connections import EdgeServer, raise_open_files_limit, server_config
    from .lease import Lease
    from .logs import configure_logging

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = Settings().model_copy(update=overrides)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if args.cluster:
        from .api import create_cluster_app
        from .cluster.host import ClusterHost
        from .cluster.security import token_for

        token_for(settings.data_dir)  # refused before uvicorn starts: never without a token
        app = create_cluster_app(settings, ClusterHost(args.cluster, settings))
    else:
        # One server per data folder: say so before uvicorn starts (the engine takes it).
        Lease.take(settings.data_dir, exclusive=True).release()
        app = create_app(settings, exclusive=True)
    configure_logging(args.log_level)
    log = logging.getLogger("engine.serve")
    host = settings.host
    if not settings.load_api_keys():
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning(
                "no API key configured (SANDBOX_API_KEYS): binding 127.0.0.1 instead of %s", host
            )
        host = "127.0.0.1"
        log.warning(
            "no API key configured: anyone on this machine can use the service; "
            "set SANDBOX_API_KEYS to serve other hosts"
        )
    open_files = raise_open_files_limit()
    config = server_config(
        app,
        settings,
        host=host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=int(settings.drain_timeout) + 10,
    )
    log.info(
        "connections: at most %d open, request heads within %g s (open-files limit %d)",
        config.max_connections,
        config.header_timeout,
        open_files,
    )
    server = EdgeServer(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 3  # uvicorn's exit status for a failed start


def _command_mcp(subparsers: Subparsers) -> None:
    mcp = subparsers.add_parser("mcp", help="serve MCP over stdio (docs/mcp.md)")
    mcp.set_defaults(handler=_mcp)


def _mcp(args: argparse.Namespace) -> int:
    from .logs import configure_logging
    from .mcp.stdio import run_stdio

    configure_logging("warning")  # stderr: stdout carries the protocol
    return run_stdio(Settings())


def _command_run(subparsers: Subparsers) -> None:
    run = subparsers.add_parser("run", help="run code in a fresh sandbox and print the result")
    run.add_argument("code", help="Python code, or - to read it from standard input")
    run.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds the code may run (default: SANDBOX_DEFAULT_TIMEOUT, 60)",
    )
    run.add_argument("--json", action="store_true", help="print the ExecutionResult as JSON")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from .results import ExecutionStatus
    from .sync import SyncEngine

    code = sys.stdin.read() if args.code == "-" else args.code
    # A guest: its throwaway sandbox is its own, and a server on the same folder is untouched.
    with SyncEngine(guest=True) as engine:
        session = engine.session()
        if args.json:
            result = session.execute(code, args.timeout)
            print(result.model_dump_json(indent=2))
        else:
            for event in session.stream(code, args.timeout):
                if event.type == "stdout":
                    sys.stdout.write(event.text)
                elif event.type == "stderr":
                    sys.stderr.write(event.text)
                elif event.type == "result":
                    print(event.data.get("text/plain", ""))
                elif event.type == "done":
                    result = event.result
                    if result.error is not None:
                        console.print(
                            Text.assemble(
                                ("error: ", "bold red"),
                                f"{result.error.name}: {result.error.value}",
                            )
                        )
    return 0 if result.status is ExecutionStatus.OK else 1


def _command_doctor(subparsers: Subparsers) -> None:
    doctor = subparsers.add_parser("doctor", help="check Docker, the image and a sandbox")
    doctor.add_argument(
        "--cluster", metavar="ADDRESS", help="check the Ray cluster at ADDRESS instead"
    )
    doctor.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    import time

    if args.cluster:
        return _cluster_status(args.cluster, as_json=False, strict=True)

    from .retrieval import embedder_status
    from .sync import SyncEngine

    settings = Settings()
    search = embedder_status(settings)
    if search["semantic"]:
        console.print(f"file_search embedder: {search['embedder']}")
    else:
        console.print(
            f"[yellow]file_search is keyword-only (no semantic search)[/]: {search['reason']}"
        )
    started = time.perf_counter()
    with SyncEngine(settings, guest=True) as engine:
        console.print(f"Docker reachable, image {engine.engine.image} present")
        result = engine.session().execute(
            "import os, sys; print(sys.version.split()[0], "
            "os.getuid(), sorted(os.listdir('/sys/class/net')))"
        )
        console.print(
            f"sandbox answered: {result.stdout.strip()} ({time.perf_counter() - started:.2f} s)"
        )
    return 0 if result.ok else 1


BENCHMARKS: dict[str, str] = {
    "acquire": "benchmarks.acquire:main",
    "roundtrip": "benchmarks.roundtrip:main",
    "task": "benchmarks.task:main",
    "throughput": "benchmarks.throughput:main",
    "peers": "benchmarks.peers:main",
    "density": "benchmarks.density:main",
    "capacity": "benchmarks.capacity:main",
    "kernel": "benchmarks.kernel_roundtrip:bench",
    "security": "benchmarks.security:bench",
    "timeouts": "benchmarks.security.timeouts:bench",
    "responses": "benchmarks.responses_overhead:main",
    "restart": "benchmarks.restart_readopt:main",
    "flood": "benchmarks.kernel_flood:main",
    "file-search-quality": "benchmarks.file_search:quality",
    "file-search-scale": "benchmarks.file_search:scale",
    "e2b": "benchmarks.e2b:main",
    "cluster": "benchmarks.cluster:main",
    "egress": "benchmarks.egress:main",
}
"""``sandbox-engine bench NAME``: each name maps to ``"module:function"``; the function takes the
parsed arguments and returns an exit code. Other modules add their own names to this dict."""
DEFAULT_BENCHMARKS = ["acquire", "roundtrip", "task", "throughput", "peers"]
DEFAULT_BENCH_OUT = "bench-results"
"""Relative to the working directory. The figures the docs quote are in benchmarks/results/; a run
writes elsewhere unless ``--out`` says so, so that it never overwrites them by accident."""
_CHARTS = {"acquire", "roundtrip", "task", "throughput", "peers", "density", "capacity"}


def _command_bench(subparsers: Subparsers) -> None:
    bench = subparsers.add_parser(
        "bench", help=f"run benchmarks: tables, JSON and PNG charts in ./{DEFAULT_BENCH_OUT}/"
    )
    bench.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: {' '.join(DEFAULT_BENCHMARKS)}; --list shows all)",
    )
    bench.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    bench.add_argument("--quick", action="store_true", help="fewer samples, for a smoke test")
    bench.add_argument(
        "--max", type=int, default=None, metavar="N", help="density: most sessions to start"
    )
    bench.add_argument(
        "--out",
        "--results",
        dest="results",
        metavar="DIR",
        default=DEFAULT_BENCH_OUT,
        help=f"folder for the JSON files and charts (default: ./{DEFAULT_BENCH_OUT})",
    )
    bench.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    import importlib
    import importlib.util
    from pathlib import Path

    if args.list:
        for name, target in BENCHMARKS.items():
            console.print(f"{name:12} {target}{'' if name in DEFAULT_BENCHMARKS else '  (opt-in)'}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        console.print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    names = args.names or DEFAULT_BENCHMARKS
    # A checkout runs its own benchmarks/ (next to engine/); a wheel installs them beside engine.
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    if importlib.util.find_spec("benchmarks") is None:
        console.print(
            "error: the benchmarks package is not installed next to the engine; run the bench "
            "from a checkout of the repository, or install a wheel built from it"
        )
        return 2
    if _CHARTS.intersection(names) and importlib.util.find_spec("matplotlib") is None:
        console.print(
            "error: the benchmarks draw their charts with matplotlib, which is not installed: "
            "pip install 'sandbox-engine[bench]'"
        )
        return 2
    worst = 0
    for name in names:
        module, _, function = BENCHMARKS[name].partition(":")
        run: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(module), function
        )
        worst = max(worst, run(args))
    return worst


def _command_node(subparsers: Subparsers) -> None:
    node = subparsers.add_parser("node", help="run this host as a sandbox node of a Ray cluster")
    node.add_argument("--join", metavar="ADDRESS", required=True, help="the Ray head's host:port")
    node.add_argument("--node-id", help="this node's name in the cluster (default: host name)")
    node.add_argument("--node-ip", help="the address other hosts reach this one at")
    node.add_argument("--temp-dir", type=Path, help="Ray's session folder (default: Ray's)")
    node.set_defaults(handler=_node)


def _node(args: argparse.Namespace) -> int:
    import socket

    from .cluster.commands import run_node

    node_id = args.node_id or socket.gethostname()
    return run_node(Settings(), args.join, node_id, node_ip=args.node_ip, temp_dir=args.temp_dir)


def _command_cluster(subparsers: Subparsers) -> None:
    cluster = subparsers.add_parser("cluster", help="a Ray cluster's head and status")
    actions = cluster.add_subparsers(dest="action", required=True)
    head = actions.add_parser("head", help="run a Ray head (token auth, no dashboard or Jobs API)")
    head.add_argument("--port", type=int, default=6379, help="the GCS port (default: 6379)")
    head.add_argument("--node-ip", help="the address other hosts reach this one at")
    head.add_argument("--temp-dir", type=Path, help="Ray's session folder (default: Ray's)")
    head.set_defaults(handler=_cluster_head)
    demo = actions.add_parser(
        "demo", help="a head, nodes and API replicas on this machine, until Ctrl-C or --stop"
    )
    demo.add_argument("--nodes", type=int, default=3, help="sandbox nodes (default: 3)")
    demo.add_argument("--replicas", type=int, default=2, help="API replicas (default: 2)")
    demo.add_argument(
        "--shared-docker",
        action="store_true",
        help="all nodes on this machine's Docker (default: a dockerd per node)",
    )
    demo.add_argument("--folder", type=Path, help="where it lives (default: DATA_DIR/demo)")
    demo.add_argument("--json", action="store_true", help="print what it started as JSON")
    demo.add_argument("--stop", action="store_true", help="stop the running demo and remove it")
    demo.set_defaults(handler=_cluster_demo)
    drain = actions.add_parser("drain", help="send a node no new sessions (--undo: send again)")
    drain.add_argument("node", help="the node's id")
    drain.add_argument("--address", required=True, help="the Ray head's host:port")
    drain.add_argument("--undo", action="store_true", help="let it take new sessions again")
    drain.set_defaults(handler=_cluster_drain)
    status = actions.add_parser("status", help="nodes, health, capacity, sessions, draining")
    status.add_argument("--address", required=True, help="the Ray head's host:port")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(
        handler=lambda args: _cluster_status(args.address, as_json=args.json, strict=False)
    )


def _cluster_head(args: argparse.Namespace) -> int:
    from .cluster.commands import run_head

    return run_head(Settings(), args.port, node_ip=args.node_ip, temp_dir=args.temp_dir)


def _cluster_drain(args: argparse.Namespace) -> int:
    from .cluster.commands import drain

    drain(args.address, Settings(), args.node, draining=not args.undo)
    console.print(f"node {args.node} {'takes new sessions' if args.undo else 'is draining'}")
    return 0


def _cluster_demo(args: argparse.Namespace) -> int:
    from .cluster.commands import stopped_by_sigterm
    from .cluster.demo import LocalCluster, stop_folder

    folder = args.folder or Settings().data_dir / "demo"
    if args.stop:
        if not stop_folder(folder):
            console.print(f"no demo runs in {folder}")
        return 0
    cluster = LocalCluster(
        folder, nodes=args.nodes, replicas=args.replicas, own_docker=not args.shared_docker
    )
    with stopped_by_sigterm():
        return _hold_demo(cluster, folder, args.json)


def _hold_demo(cluster: LocalCluster, folder: Path, as_json: bool) -> int:
    """Up, then held until Ctrl-C, SIGTERM or ``--stop``; then all of it removed."""
    import time

    from .cluster.demo import print_state, stop

    state = cluster.start()
    try:
        print_state(state, as_json)
        while (folder / "demo.json").exists():  # --stop removes it
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop(state)
    return 0


_JSON_ONLY = {"session_ids", "agent_pid"}


def _cluster_status(address: str, *, as_json: bool, strict: bool) -> int:
    """The nodes' reports; ``strict`` (doctor): fail unless every node is healthy."""
    import json

    from rich.table import Table

    from .cluster.commands import node_states, status_rows

    # Ray's driver prints cluster events (a node marked dead) to stdout: keep them off the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        rows = status_rows(node_states(address, Settings()))
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        columns = [c for c in (rows[0] if rows else ["node"]) if c not in _JSON_ONLY]
        table = Table(*columns)
        for row in rows:
            table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
        Console().print(table)
    if strict and (not rows or not all(r["healthy"] for r in rows)):
        console.print("[red]the cluster has no node[/]" if not rows else "[red]a node is unwell[/]")
        return 1
    return 0


COMMANDS: list[Callable[[Subparsers], None]] = [
    _command_image,
    _command_serve,
    _command_mcp,
    _command_run,
    _command_doctor,
    _command_bench,
    _command_node,
    _command_cluster,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox-engine", description="Run model-written code in locked-down Jupyter kernels."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except EngineError as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
