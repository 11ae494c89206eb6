"""Every example in README.md and docs/*.md runs as written, against one live server with the
scripted model (tests/support/model_server.py) behind it, and so do the scripts in examples/.

The conventions the docs follow, and that this test holds them to:

- A fenced block whose info string is ``python``, ``bash`` or ``sh`` is code and runs. Any other
  info string (``json``, ``console``, ``text``, ...) says the block is data or a transcript; a
  block with no info string is refused, so nothing is left unchecked by accident.
- ``<!-- not-run: reason -->`` on the line before a code block skips it; the reason is required
  (a command that installs or starts a server, a placeholder that needs your own values, ...).
- ``<!-- continues -->`` on the line before a code block runs it after the blocks before it in
  the same file and language, as one script (a shell session, or one Python program): the first
  block of such a chain is a plain block. Otherwise every block is a script of its own.
- The service is at ``http://127.0.0.1:8000`` (or ``localhost:8000``) with the key
  ``sk-local-example`` (``your-api-key`` also works, and docs/e2b.md's ``e2b_0123...4567``);
  the test puts its live server's address in place of that address. Library examples get
  ``SANDBOX_DATA_DIR`` of their own, and ``SANDBOX_LLM_BASE_URL`` pointing at the scripted
  model. Files that the examples open (``sales.csv``, ``data.csv``, ``handbook.pdf``,
  ``report.xlsx``) are in the working folder. ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` point
  at the server too, for the Agents SDK's own model client.
- Shell blocks run with ``set -eo pipefail`` and a ``curl`` that fails on a 4xx or 5xx answer
  (``--fail-with-body``), so an example whose request is refused fails here.
- The scripts in examples/ read ``SANDBOX_URL`` (the service's root, without ``/v1``),
  ``SANDBOX_KEY`` and ``SANDBOX_MODEL``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ..support.documents import pdf
from ..support.servers import LiveServer, ServerThread, serve_live

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
KEYS = ("sk-local-example", "your-api-key", "e2b_0123456789abcdef0123456789abcdef01234567")
RUNS = {"python", "bash", "sh"}
ADDRESS = re.compile(r"https?://(?:127\.0\.0\.1|localhost):8000|(?<![\w/.])localhost:8000")
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
MARK = re.compile(r"<!--\s*(not-run|continues)\s*(?::\s*(.*?))?\s*-->\s*$")
TIMEOUT = 300
WORKERS = 3  # a 2-core machine: the sandboxes, not this process, are the load


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip: str | None = None
    continues: bool = False

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass
class Chain:
    """Blocks that run as one script; a failure names the block it stopped in."""

    blocks: list[Block] = field(default_factory=list)


def page_blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        block = Block(page, line, m.group(1).strip(), m.group(2))
        if mark and mark.group(1) == "not-run":
            block.skip = mark.group(2) or ""
        block.continues = bool(mark and mark.group(1) == "continues")
        found.append(block)
    return found


ALL = [b for page in PAGES for b in page_blocks(page)]
CODE = [b for b in ALL if b.lang in RUNS and b.skip is None]


def chains(blocks: list[Block]) -> list[Chain]:
    out: list[Chain] = []
    last: dict[tuple[Path, str], Chain] = {}
    for b in blocks:
        key = (b.page, "python" if b.lang == "python" else "shell")
        if b.continues:
            assert key in last, f"{b.name}: <!-- continues --> with nothing before it"
            last[key].blocks.append(b)
        else:
            last[key] = Chain([b])
            out.append(last[key])
    return out


def script(chain: Chain, url: str) -> tuple[list[str], str]:
    """The command and the program text: each block, then a line that reports it done."""
    parts = []
    python = chain.blocks[0].lang == "python"
    for n, b in enumerate(chain.blocks):
        parts.append(ADDRESS.sub(url, b.code))
        parts.append(
            f"import sys as _s; _s.stderr.write('@@done {n}\\n')\n"
            if python
            else f"echo '@@done {n}' >&2\n"
        )
    if python:
        return [sys.executable, "-"], "".join(parts)
    prelude = 'set -eo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n'
    return ["bash", "-"], prelude + "".join(parts)


@dataclass
class Outcome:
    returncode: int
    output: str
    done: int  # how many blocks of the chain finished

    def of(self, index: int) -> tuple[bool, str]:
        if index < self.done:
            return True, ""
        if index == self.done:
            return False, self.output[-6000:]
        return False, "an earlier block of this chain failed"


def fixtures(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sales.csv").write_text("region,amount\nnorth,3\nsouth,4\neast,5\n")
    (folder / "data.csv").write_text("a,b\n1,2\n")
    (folder / "report.xlsx").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    (folder / "handbook.pdf").write_bytes(
        pdf(["Staff handbook.", "Every employee gets 25 days of paid leave each year."])
    )


def run(command: list[str], program: str | None, env: dict[str, str], cwd: Path) -> Outcome:
    try:
        done = subprocess.run(
            command,
            input=program,
            capture_output=True,
            text=True,
            env=env,
            cwd=cwd,
            timeout=TIMEOUT,
        )
        code, out = done.returncode, done.stdout + "\n" + done.stderr
    except subprocess.TimeoutExpired as exc:
        parts = [p.decode() if isinstance(p, bytes) else p or "" for p in (exc.stdout, exc.stderr)]
        code, out = -1, f"timed out after {TIMEOUT} s\n" + "\n".join(parts)
    marks = [int(n) for n in re.findall(r"@@done (\d+)$", out, re.M)]
    return Outcome(code, out, max(marks, default=-1) + 1)


@pytest.fixture(scope="module")
def docs_server(
    tmp_path_factory: pytest.TempPathFactory, model_server: ServerThread
) -> Iterator[LiveServer]:
    yield from serve_live(tmp_path_factory, model_server, KEYS)


@pytest.fixture(scope="module")
def outcomes(
    docs_server: LiveServer, model_server: ServerThread, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome | tuple[Outcome, int]]:
    """Every chain and example script, run once, a few at a time."""
    base = tmp_path_factory.mktemp("docs-run")
    env = {
        **os.environ,
        "SANDBOX_URL": docs_server.url,
        "SANDBOX_KEY": KEYS[0],
        "SANDBOX_MODEL": "gpt-4o",
        # An agent's own model calls (the Agents SDK's default client) go to this server too.
        "OPENAI_BASE_URL": f"{docs_server.url}/v1",
        "OPENAI_API_KEY": KEYS[0],
        # The library's own engines (engine.responses, engine.threads) call the scripted model.
        "SANDBOX_LLM_BASE_URL": f"{model_server.url}/v1",
        "SANDBOX_MEMORY_LIMIT_MB": "512",
        "SANDBOX_SHUTDOWN_SANDBOXES": "close",
        "PYTHONPATH": str(ROOT),
        "OPENAI_AGENTS_DISABLE_TRACING": "1",
    }
    jobs: list[tuple[Chain | Path, list[str], str | None, dict[str, str], Path]] = []
    for n, chain in enumerate(chains(CODE)):
        cwd = base / f"chain{n}"
        fixtures(cwd)
        command, program = script(chain, docs_server.url)
        jobs.append((chain, command, program, {**env, "SANDBOX_DATA_DIR": str(cwd / "data")}, cwd))
    for path in EXAMPLES:
        cwd = base / path.stem
        fixtures(cwd)
        jobs.append((path, [sys.executable, str(path)], None, {**env, "OUTPUT_DIR": str(cwd)}, cwd))
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda j: run(*j[1:]), jobs))
    out: dict[str, Outcome | tuple[Outcome, int]] = {}
    for (what, *_), outcome in zip(jobs, results, strict=True):
        if isinstance(what, Path):
            out[str(what.relative_to(ROOT))] = outcome
        else:
            for i, b in enumerate(what.blocks):
                out[b.name] = (outcome, i)
    return out


def test_every_block_says_what_it_is() -> None:
    untyped = [b.name for b in ALL if not b.lang]
    assert untyped == [], "give these blocks an info string (python, bash, json, text, ...)"
    unexplained = [b.name for b in ALL if b.skip == ""]
    assert unexplained == [], "<!-- not-run: --> needs a reason"
    marked_data = [b.name for b in ALL if b.lang not in RUNS and (b.skip is not None)]
    assert marked_data == [], "only code blocks take <!-- not-run -->"
    assert len(CODE) >= 30  # the docs hold many examples: a parsing slip must not hide them


@pytest.mark.parametrize("block", CODE, ids=[b.name for b in CODE])
def test_the_example_runs(block: Block, outcomes: dict[str, Outcome | tuple[Outcome, int]]) -> None:
    got = outcomes[block.name]
    assert isinstance(got, tuple)
    outcome, index = got
    ok, why = outcome.of(index)
    assert ok, f"{block.name} ({block.lang}) failed:\n{why}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_example_script_runs(
    path: Path, outcomes: dict[str, Outcome | tuple[Outcome, int]]
) -> None:
    got = outcomes[str(path.relative_to(ROOT))]
    assert isinstance(got, Outcome)
    assert got.returncode == 0, got.output[-6000:]
