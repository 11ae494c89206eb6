"""Text extraction. Plain text and source files are decoded on the host (no parser runs on
them); documents that need a parser (pdf, docx, pptx, html) are parsed inside a sandbox.

Each document is parsed in a locked-down container of its own, like a session's (no network,
capped memory and time), removed after the parse: no tenant's parse shares a sandbox with
another document. The bytes go in through the backend's ``write_file``; the text comes back
through its no-follow ``open_file``, capped.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import PurePosixPath

from .. import errors
from ..sandbox.base import Sandbox, SandboxBackend, SandboxSpec

log = logging.getLogger("engine.retrieval")

TEXT_TYPES = frozenset(
    {"txt", "md", "markdown", "json", "c", "cpp", "cs", "css", "go", "java", "js", "php", "py"}
    | {"rb", "sh", "tex", "ts"}
)
PARSED_TYPES = frozenset({"pdf", "docx", "pptx", "html", "htm"})
SUPPORTED = sorted(TEXT_TYPES | PARSED_TYPES)
PARSER_ROLE = {"org.sandbox-engine.role": "document-parser"}


class UnsupportedFile(errors.InvalidRequest):
    code = "unsupported_file"


class InvalidFile(errors.EngineError):
    """The file could not be read as its type says: it fails alone, with this reason."""

    code = "invalid_file"


LIFETIME_MARGIN = 60.0
"""Seconds a parser sandbox outlives the latest moment its work could end."""


def file_kind(filename: str) -> str:
    kind = PurePosixPath(filename.lower()).suffix.lstrip(".")
    if kind not in TEXT_TYPES and kind not in PARSED_TYPES:
        raise UnsupportedFile(
            f"{filename!r}: file_search reads {', '.join(SUPPORTED)} files, not "
            f"{'.' + kind if kind else 'files without an extension'}"
        )
    return "html" if kind == "htm" else kind


def decode_text(data: bytes, filename: str) -> str:
    if b"\x00" in data[:8192]:
        raise InvalidFile(f"{filename!r} holds binary data (NUL bytes), not text")
    for encoding in (
        ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",)
    ):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    text = data.decode("utf-8", errors="replace")
    if text.count("\ufffd") > max(16, len(text) // 100):
        raise InvalidFile(f"{filename!r} is not UTF-8 text")
    return text


# Runs inside the sandbox as the sandbox user: python3 -c PARSER kind src dst max_chars.
PARSER = r"""
import resource, sys, zipfile
kind, src, dst, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
def fail(code, message):
    open(dst + ".err", "w").write(message[:2000])
    sys.exit(code)
def check_zip(path):
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        fail(2, "not a valid %s file: it is not a zip archive" % kind)
    total = sum(i.file_size for i in z.infolist())
    packed = max(1, sum(i.compress_size for i in z.infolist()))
    if total > 256 << 20 or total > 100 * packed + (1 << 20):
        ratio = total // packed
        fail(3, "refused: the archive unpacks to %d bytes (%dx its size): a zip bomb"
             % (total, ratio))
out, size = [], 0
def put(text):
    global size
    if text and size < limit:
        out.append(text[: limit - size])
        size += len(out[-1])
def run():
    if kind == "pdf":
        from pypdf import PdfReader
        for page in PdfReader(src).pages:
            put((page.extract_text() or "") + "\n\n")
    elif kind == "docx":
        check_zip(src)
        import docx
        document = docx.Document(src)
        for p in document.paragraphs:
            put(p.text + "\n")
        for table in document.tables:
            for row in table.rows:
                put(" | ".join(c.text for c in row.cells) + "\n")
    elif kind == "pptx":
        check_zip(src)
        from pptx import Presentation
        for n, slide in enumerate(Presentation(src).slides, 1):
            put("Slide %d\n" % n)
            for shape in slide.shapes:
                if getattr(shape, "has_text_frame", False):
                    put(shape.text_frame.text + "\n")
            put("\n")
    elif kind == "html":
        from html.parser import HTMLParser
        class Text(HTMLParser):
            skip = 0
            def handle_starttag(self, tag, attrs):
                self.skip += tag in ("script", "style")
                if tag in ("p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"):
                    put("\n")
            def handle_endtag(self, tag):
                self.skip -= tag in ("script", "style") and self.skip > 0
            def handle_data(self, data):
                if not self.skip:
                    put(data)
        parser = Text(convert_charrefs=True)
        parser.feed(open(src, encoding="utf-8", errors="replace").read())
        parser.close()
try:
    run()
except MemoryError:
    fail(4, "the parser ran out of memory")
except SystemExit:
    raise
except BaseException as exc:
    fail(2, "%s: %s" % (type(exc).__name__, exc))
open(dst, "w").write("".join(out))
"""


class DocumentParser:
    """Parses untrusted documents, each in a sandbox of its own that is removed afterwards.

    Nothing of one document (files, processes, memory) can reach the next parse, whoever owns
    it. To keep the start of a container off the path, one spare sandbox is kept ready while
    documents come: it has never run anything, so it belongs to no tenant until it is taken,
    and it is removed after ``idle`` seconds without a parse. At most ``parallel`` documents are
    parsed at once, and a tenant parses one at a time, so one tenant holds at most one of those
    slots, each for at most ``timeout`` seconds.
    """

    def __init__(
        self,
        backend: SandboxBackend,
        spec: SandboxSpec,
        *,
        timeout: float = 60.0,
        max_chars: int = 5_000_000,
        idle: float = 60.0,
        parallel: int = 2,
    ) -> None:
        self._backend = backend
        self._spec = replace(
            spec,
            memory_limit_mb=min(spec.memory_limit_mb, 1024),
            labels={**spec.labels, **PARSER_ROLE},
        )
        self.timeout = timeout
        self.max_chars = max_chars
        self._idle = idle
        self._slots = asyncio.Semaphore(max(1, parallel))
        self._tenants: dict[str, tuple[asyncio.Lock, int]] = {}
        self._live: set[Sandbox] = set()
        self._spare: Sandbox | None = None
        self._filling: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._last_used = 0.0
        self._closed = False
        self.sandboxes_started = 0
        self.last_sandbox_id: str | None = None
        """The sandbox of the latest parse (it is gone by now): for tests and the bench."""

    def live_sandboxes(self) -> list[Sandbox]:
        """Sandboxes that exist right now: those parsing and the spare."""
        return [*self._live, *([self._spare] if self._spare is not None else [])]

    async def parse(self, kind: str, data: bytes, filename: str, owner: str = "") -> str:
        async with self._tenant(owner), self._slots:
            sandbox = await self._take()
            self._live.add(sandbox)
            try:
                return await self._parse(sandbox, kind, data, filename)
            finally:
                self._live.discard(sandbox)
                self.last_sandbox_id = sandbox.id
                self._last_used = time.monotonic()
                await self._remove(sandbox)

    @contextlib.asynccontextmanager
    async def _tenant(self, owner: str) -> AsyncIterator[None]:
        lock, users = self._tenants.get(owner) or (asyncio.Lock(), 0)
        self._tenants[owner] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._tenants[owner]
            if users == 1:
                del self._tenants[owner]
            else:
                self._tenants[owner] = (lock, users - 1)

    async def _parse(self, sandbox: Sandbox, kind: str, data: bytes, filename: str) -> str:
        src, dst = f"document.{kind}", "document.txt"
        await sandbox.write_file(src, io.BytesIO(data), len(data) + 1)
        argv = ["python3", "-c", PARSER, kind, src, dst, str(self.max_chars)]
        process = await sandbox.start_process(argv, env={})
        deadline = time.monotonic() + self.timeout
        code = await sandbox.exit_code(process)
        while code is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            code = await sandbox.exit_code(process)
        if code is None:
            raise InvalidFile(f"{filename!r}: parsing took longer than {self.timeout:g} s")
        if code == 0:
            return await self._read(sandbox, dst, self.max_chars * 4)
        if code in (2, 3, 4):
            reason = await self._read(sandbox, dst + ".err", 4000)
            raise InvalidFile(f"{filename!r}: {reason}")
        oom = await sandbox.oom_kills()
        cause = "ran out of memory" if oom or code == 137 else f"crashed (exit {code})"
        raise InvalidFile(f"{filename!r}: the document parser {cause}")

    @staticmethod
    async def _read(sandbox: Sandbox, path: str, cap: int) -> str:
        f = await sandbox.open_file(path)
        with f:
            raw = await asyncio.to_thread(f.read, cap)
        return raw.decode("utf-8", errors="replace")

    async def _take(self) -> Sandbox:
        """The spare if it is still up (another is started for the next parse), else a new one."""
        if self._closed:
            raise InvalidFile("the document parser is closed")
        spare, self._spare = self._spare, None
        if spare is not None and not await spare.is_running():
            await self._remove(spare)
            spare = None
        # Engine or not, a parser sandbox stops itself soon after its parse could have ended.
        parse_ends = time.time() + self.timeout + LIFETIME_MARGIN
        if spare is not None:
            await spare.set_deadline(parse_ends)
        sandbox = spare or await self._create(parse_ends)
        if self._filling is None or self._filling.done():
            self._filling = asyncio.create_task(self._fill(), name="parser-spare")
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_idle(), name="parser-reaper")
        return sandbox

    async def _create(self, deadline: float) -> Sandbox:
        sandbox = await self._backend.create(self._spec, deadline=deadline)
        self.sandboxes_started += 1
        return sandbox

    async def _fill(self) -> None:
        if self._spare is not None or self._closed:
            return
        try:
            # A spare waits at most ``idle`` before it is reaped, and its parse renews this.
            sandbox = await self._create(
                time.time() + 2 * self._idle + self.timeout + LIFETIME_MARGIN
            )
        except errors.EngineError as exc:
            log.warning("could not start a spare parser sandbox: %s", exc)
            return
        if self._spare is None and not self._closed:
            self._spare = sandbox
        else:
            await self._remove(sandbox)

    async def _reap_idle(self) -> None:
        while self._spare is not None or self._live or not self._filling_done():
            await asyncio.sleep(min(self._idle, 5.0))
            if not self._live and time.monotonic() - self._last_used >= self._idle:
                await self._drop_spare()

    def _filling_done(self) -> bool:
        return self._filling is None or self._filling.done()

    async def _drop_spare(self) -> None:
        if self._filling is not None:
            await asyncio.gather(self._filling, return_exceptions=True)
        spare, self._spare = self._spare, None
        if spare is not None:
            await self._remove(spare)

    @staticmethod
    async def _remove(sandbox: Sandbox) -> None:
        try:
            await sandbox.destroy()
        except errors.EngineError as exc:
            log.warning("could not remove a parser sandbox: %s", exc)

    async def release(self) -> None:
        """Remove the spare now (it comes back with the next document)."""
        await self._drop_spare()

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
        await self._drop_spare()
        for sandbox in list(self._live):
            await self._remove(sandbox)
