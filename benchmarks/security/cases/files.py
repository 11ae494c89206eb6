"""File API abuse: names, links, swaps, special files, archives, and upload floods."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tarfile
import time
import zipfile

from engine import ExecutionStatus, Session
from engine.errors import EngineError, InvalidRequest, LimitExceeded, NotFound, PayloadTooLarge

from .. import hostside
from ..harness import Context
from ..model import FILES, Case, Verdict, brief, clip, lines

TRAVERSAL_NAMES = [
    "../evil.txt",
    "../../../../etc/evil",
    "a/../../evil",
    "..",
    ".",
    "%2e%2e%2fevil",
    "..%2fevil",
    "%2e%2e/evil",
    "evil\x00.txt",
    "\u202eevil.txt",
    "C:\\evil",
    "a\\..\\..\\evil",
    " evil",
    "",
    "x" * 300,
    "/etc/passwd",
    "/mnt/data/../etc/x",
    "sub/evil.txt",
]
DOWNLOAD_PATHS = [
    "../../etc/passwd",
    "/etc/passwd",
    "/mnt/data/../../etc/passwd",
    "%2e%2e/%2e%2e/etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "/proc/self/environ",
    "..",
    "./",
]


def _refused(exc: BaseException) -> bool:
    return isinstance(exc, InvalidRequest | NotFound)


async def traversal_uploads(ctx: Context) -> Verdict:
    session = await ctx.session()
    accepted = []
    for name in TRAVERSAL_NAMES:
        try:
            await session.upload(name, b"evil")
            accepted.append(name)
        except InvalidRequest:
            pass
    obj = await ctx.engine.files.create(b"evil", "ok.txt", owner="hostile")
    for name in TRAVERSAL_NAMES:
        try:
            await session.add_file(obj.id, name)
            accepted.append(f"add_file:{name}")
        except InvalidRequest:
            pass
    end = time.perf_counter()
    listed = [f.path for f in await session.list_files()]
    ok = not accepted and listed == []
    return Verdict(
        ok,
        f"{len(TRAVERSAL_NAMES)} hostile names x (upload, add_file): "
        f"{'ACCEPTED ' + repr(accepted) if accepted else 'all refused'}; /mnt/data: {listed}",
        session,
        end,
    )


async def traversal_downloads(ctx: Context) -> Verdict:
    session = await ctx.session()
    served: list[tuple[str, object]] = []
    for path in [*DOWNLOAD_PATHS, str(ctx.sentinel)]:
        try:
            data = await session.read_file(path)
            served.append((path, data[:20]))
        except EngineError as exc:
            if not _refused(exc):
                served.append((path, f"{type(exc).__name__}"))
        try:
            await session.remove_file(path)
            served.append((f"remove:{path}", b""))
        except EngineError:
            pass
    end = time.perf_counter()
    return Verdict(
        not served,
        f"{len(DOWNLOAD_PATHS) + 1} traversal and absolute paths (read, remove): "
        + (f"SERVED {served}" if served else "all refused"),
        session,
        end,
    )


PLANT_LINKS = """
import os
os.symlink('@SENTINEL@', '/mnt/data/link.txt')
os.symlink('/etc/passwd', '/mnt/data/passwd.txt')
os.symlink('/', '/mnt/data/root')
os.symlink('@DATA_DIR@', '/mnt/data/engine')
os.symlink(os.path.dirname('@SENTINEL@'), '/mnt/data/hostdir')
print('planted')
"""


async def planted_symlinks(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(ctx.fill(PLANT_LINKS), timeout=30)
    served: list[tuple[str, object]] = []
    names = [
        "link.txt",
        "passwd.txt",
        "root/etc/passwd",
        "engine/engine.db",
        f"hostdir/{ctx.sentinel.name}",
    ]
    for name in names:
        try:
            data = await session.read_file(name)
            served.append((name, data[:24]))
        except EngineError as exc:
            if not _refused(exc):
                served.append((name, type(exc).__name__))
    # Uploading over the link must replace the link, not write through it.
    await session.upload("link.txt", b"replaced")
    for name in ("hostdir", "engine"):
        with contextlib.suppress(EngineError):
            await session.upload(name, b"x")
    end = time.perf_counter()
    listed = sorted(f.path for f in await session.list_files())
    after = await session.execute(
        "import os; print('islink=' + str(os.path.islink('/mnt/data/link.txt')))"
    )
    ok = not served and not r.outputs and lines(after).get("islink") == "False"
    return Verdict(
        ok,
        f"5 symlinks to host and container paths: reads "
        f"{'SERVED ' + repr(served) if served else 'all refused'}; exported {len(r.outputs)}; "
        f"upload over link.txt replaced the link ({lines(after).get('islink')}); listed {listed}",
        session,
        end,
    )


HARDLINK = """
import os
try:
    os.link('/etc/passwd', '/mnt/data/passwd-hl')
    print('etc_link=ALLOWED')
except OSError as e:
    print('etc_link=' + os.strerror(e.errno))
os.link('/mnt/data/input.txt', '/mnt/data/hl.txt')
with open('/mnt/data/hl.txt', 'ab') as f:
    f.write(b'TAMPERED')
print('done')
"""


async def hard_links(ctx: Context) -> Verdict:
    session = await ctx.session()
    original = b"original input\n" * 100
    placed = await session.upload("input.txt", original)
    assert placed.file_id is not None
    r = await session.execute(HARDLINK, timeout=30)
    end = time.perf_counter()
    stored = await ctx.engine.files.content(placed.file_id)
    found = lines(r)
    ok = stored == original and found.get("etc_link") != "ALLOWED"
    return Verdict(
        ok,
        f"hard link to /etc/passwd: {found.get('etc_link')}; hard link to an input then "
        f"appended: the input's file object is {'unchanged' if stored == original else 'CHANGED'}"
        f"; {len(r.outputs)} outputs exported as new file objects",
        session,
        end,
    )


SWAPPER = """
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE, AT_FDCWD = 2, -100
os.makedirs('/mnt/data/sub', exist_ok=True)
open('/mnt/data/swap.bin', 'wb').write(b'A' * (1 << 20))
open('/mnt/data/sub/@NAME@', 'wb').write(b'B' * (1 << 20))
os.symlink('@SENTINEL@', '/mnt/data/.file-link')
os.symlink(os.path.dirname('@SENTINEL@'), '/mnt/data/.dir-link')
stop = threading.Event()
swaps = [0]
def swap(a, b):
    while not stop.is_set():
        libc.renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE)
        swaps[0] += 1
for pair in ((b'/mnt/data/swap.bin', b'/mnt/data/.file-link'),
             (b'/mnt/data/sub', b'/mnt/data/.dir-link')):
    threading.Thread(target=swap, args=pair, daemon=True).start()
print('swapping')
"""


async def _read_all(session: Session, path: str, slow: bool) -> bytes:
    f = await session.open_file(path)
    with f:
        if not slow:
            return await asyncio.to_thread(f.read)
        head = await asyncio.to_thread(f.read, 4096)
        await asyncio.sleep(0.01)  # the swap happens while we hold the descriptor
        return head + await asyncio.to_thread(f.read)


async def swap_during_download(ctx: Context) -> Verdict:
    session = await ctx.session()
    secret = ctx.sentinel.read_bytes()
    code = ctx.fill(SWAPPER).replace("@NAME@", ctx.sentinel.name)
    r = await session.execute(code, timeout=30)
    if "swapping" not in r.stdout:
        return Verdict(False, f"the swapper did not start: {brief(r)}", session)
    outcomes: dict[str, int] = {}
    leaks = []
    for i in range(400):
        path = "swap.bin" if i % 2 == 0 else f"sub/{ctx.sentinel.name}"
        try:
            data = await _read_all(session, path, slow=i % 4 < 2)
        except EngineError as exc:
            key = type(exc).__name__
        else:
            expected = (b"A" if i % 2 == 0 else b"B") * (1 << 20)
            key = "original" if data == expected else "OTHER"
            if data == secret or secret in data or key == "OTHER":
                leaks.append(clip(repr(data[:40]), 60))
        outcomes[key] = outcomes.get(key, 0) + 1
    # An upload racing the swaps must never write through a link either.
    for _ in range(20):
        with contextlib.suppress(EngineError):
            await session.upload("swap.bin", b"uploaded")
    stopped = await session.execute("stop.set(); print('swaps=' + str(swaps[0]))")
    end = time.perf_counter()
    exported = [o for o in stopped.outputs]
    for out in exported:
        if secret in await ctx.engine.files.content(out.file_id):
            leaks.append(f"exported {out.path}")
    ok = not leaks and ctx.sentinel.read_bytes() == secret
    return Verdict(
        ok,
        f"400 downloads while a thread swaps file<->symlink and dir<->symlink with "
        f"renameat2 ({lines(stopped).get('swaps')} swaps): {outcomes}; "
        + (f"LEAKED {leaks}" if leaks else "never the host file"),
        session,
        end,
    )


SPECIAL = """
import os, socket, stat
os.mkfifo('/mnt/data/pipe.csv')
s = socket.socket(socket.AF_UNIX)
s.bind('/mnt/data/sock.csv')
try:
    os.mknod('/mnt/data/dev.csv', 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    print('mknod=ALLOWED')
except OSError as e:
    print('mknod=' + os.strerror(e.errno))
print('made')
"""


async def pipes_and_devices(ctx: Context) -> Verdict:
    session = await ctx.session()
    t = time.perf_counter()
    r = await session.execute(SPECIAL, timeout=30)
    exec_s = time.perf_counter() - t
    results = {}
    t = time.perf_counter()
    for name in ("pipe.csv", "sock.csv", "dev.csv"):
        try:
            await asyncio.wait_for(session.read_file(name), 10)
            results[name] = "SERVED"
        except TimeoutError:
            results[name] = "HUNG"
        except EngineError as exc:
            results[name] = type(exc).__name__
    read_s = time.perf_counter() - t
    end = time.perf_counter()
    found = lines(r)
    ok = r.status is ExecutionStatus.OK and not r.outputs and read_s < 5 and exec_s < 10
    ok = ok and all(v in ("InvalidRequest", "NotFound") for v in results.values())
    ok = ok and found.get("mknod") != "ALLOWED"
    return Verdict(
        ok,
        f"FIFO, socket and device in /mnt/data: export skipped them ({len(r.outputs)} outputs, "
        f"cell {exec_s:.2f} s); host reads {results} in {read_s:.2f} s; mknod: "
        f"{found.get('mknod')}",
        session,
        end,
    )


def _slip_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../../../tmp/evil_zip", "evil")
        z.writestr("/abs_evil_zip", "evil")
        z.writestr("ok_zip.txt", "ok")
    return buf.getvalue()


def _slip_tar(sentinel_dir: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:

        def add(name: str, data: bytes = b"evil", **kw: object) -> None:
            info = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(info, k, v)
            info.size = len(data) if info.type == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)

        add("../../../../tmp/evil_tar")
        add("/abs_evil_tar")
        add("hostlink", type=tarfile.SYMTYPE, linkname=sentinel_dir)
        add("hostlink/evil_through_link")
        add("hardlink", type=tarfile.LNKTYPE, linkname="/etc/passwd")
        add("ok_tar.txt", b"ok")
    return buf.getvalue()


EXTRACT = """
import os, tarfile, zipfile
os.makedirs('/mnt/data/x/zip', exist_ok=True)
os.makedirs('/mnt/data/x/tar', exist_ok=True)
zipfile.ZipFile('/mnt/data/slip.zip').extractall('/mnt/data/x/zip')
try:
    with tarfile.open('/mnt/data/slip.tar') as t:
        t.extractall('/mnt/data/x/tar')  # no filter: the unsafe, old default
except Exception as e:
    print('tar_error=' + type(e).__name__)
for p in ('/tmp/evil_tar', '/tmp/evil_zip', '/abs_evil_tar'):
    print(p + '=' + str(os.path.exists(p)))
"""


async def archive_slip(ctx: Context) -> Verdict:
    session = await ctx.session()
    before = await session.list_files()
    await session.upload("slip.zip", _slip_zip())
    await session.upload("slip.tar", _slip_tar(str(ctx.sentinel.parent)))
    untouched = sorted(f.filename for f in await session.list_files())
    r = await session.execute(EXTRACT, timeout=60)
    end = time.perf_counter()
    escaped = [o.path for o in r.outputs if not (o.path or "").startswith("/mnt/data/")]
    ok = untouched == ["slip.tar", "slip.zip"] and not before and not escaped
    host_dir = sorted(os.listdir(ctx.sentinel.parent))
    ok = ok and host_dir == [ctx.sentinel.name]
    return Verdict(
        ok,
        f"zip and tar with ../, absolute, symlink-to-host and hardlink entries: the engine "
        f"stored them unextracted ({untouched}); naive extraction inside: "
        f"{clip(r.stdout.strip().replace(chr(10), ' '), 150)}; outputs "
        f"{sorted(o.path or '' for o in r.outputs)}; host sentinel dir {host_dir}",
        session,
        end,
    )


def _zip_bomb(size: int) -> bytes:
    buf = io.BytesIO()
    chunk = bytes(16 << 20)
    with (
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z,
        z.open("zeros.bin", "w", force_zip64=True) as f,
    ):
        for _ in range(size // len(chunk)):
            f.write(chunk)
    return buf.getvalue()


async def zip_bomb(ctx: Context) -> Verdict:
    session = await ctx.session()
    bomb = await asyncio.to_thread(_zip_bomb, 3 << 30)
    host_before = hostside.tree_bytes(ctx.settings.data_dir / "files")
    await session.upload("bomb.zip", bomb)
    r = await session.execute(
        "import zipfile\ntry:\n"
        "    zipfile.ZipFile('/mnt/data/bomb.zip').extractall('/mnt/data/out')\n"
        "except OSError as e:\n    print('stopped=' + e.strerror)",
        timeout=120,
    )
    end = time.perf_counter()
    grew = hostside.tree_bytes(ctx.settings.data_dir / "files") - host_before
    stopped = lines(r).get("stopped")
    oom = (
        r.status is ExecutionStatus.CRASHED
        and r.error is not None
        and ("out of memory" in r.error.value)
    )
    ok = (stopped is not None or oom) and grew < len(bomb) + (64 << 20)
    ok = ok and all(o.bytes <= ctx.engine.files.max_bytes for o in r.outputs)
    return Verdict(
        ok,
        f"{len(bomb) / 2**20:.1f} MB zip of 3 GB zeros: the engine stored it as is; "
        f"extraction inside {'stopped: ' + stopped if stopped else brief(r)}; host file store "
        f"grew {grew / 2**20:.1f} MB",
        session,
        end,
    )


async def oversized_upload(ctx: Context) -> Verdict:
    session = await ctx.session()
    limit = ctx.engine.files.max_bytes
    tmp = ctx.settings.data_dir / "files" / "tmp"
    count = len(ctx.engine.files.list(limit=100).data)
    outcomes = []
    for how in ("bytes", "stream"):
        data: object = bytes(limit + 1)
        if how == "stream":
            data = (bytes(1 << 20) for _ in range(limit // (1 << 20) + 2))
        try:
            await session.upload("big.bin", data)  # type: ignore[arg-type]
            outcomes.append(f"{how}: ACCEPTED")
        except PayloadTooLarge:
            outcomes.append(f"{how}: PayloadTooLarge")
    async with ctx.client(1) as http:
        sid = (await http.post("/v1/sessions", json={})).json()["id"]
        big = bytes(limit + 2 * (1 << 20))
        up = await http.post(f"/v1/sessions/{sid}/files", files={"file": ("big.bin", big)})
        files = await http.post(
            "/v1/files", files={"file": ("big.bin", big)}, data={"purpose": "assistants"}
        )
    end = time.perf_counter()
    left = list(tmp.iterdir())
    placed = [f.path for f in await session.list_files()]
    ok = all(o.endswith("PayloadTooLarge") for o in outcomes) and not left and not placed
    ok = ok and up.status_code == 413 and files.status_code == 413
    ok = ok and len(ctx.engine.files.list(limit=100).data) == count
    return Verdict(
        ok,
        f"uploads of limit+1 bytes ({limit} limit): {outcomes}; API: session upload "
        f"{up.status_code}, /v1/files {files.status_code}; temp files left {len(left)}; "
        f"/mnt/data {placed}",
        session,
        end,
    )


async def many_uploads(ctx: Context) -> Verdict:
    session = await ctx.session()
    cap = ctx.settings.max_session_files
    placed = 0
    refused = ""
    for i in range(cap + 10):
        try:
            await session.upload(f"f{i}.txt", b"x")
            placed += 1
        except LimitExceeded as exc:
            refused = f"{type(exc).__name__}: {exc}"
            break
    end = time.perf_counter()
    ok = placed == cap and bool(refused)
    return Verdict(
        ok, f"{placed} uploads placed (cap {cap}), then {refused or 'NOT REFUSED'}", session, end
    )


async def output_flood(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(
        "for i in range(3000):\n    open(f'/mnt/data/out{i}.txt', 'w').write(str(i))\n"
        "open('/mnt/data/big.bin', 'wb').write(b'x' * (40 << 20))",
        timeout=60,
    )
    end = time.perf_counter()
    cap = ctx.settings.max_output_files
    largest = max((o.bytes for o in r.outputs), default=0)
    dropped = r.dropped.get("files", 0)
    ok = r.status is ExecutionStatus.OK and len(r.outputs) <= cap
    ok = ok and largest <= ctx.engine.files.max_bytes and dropped >= 3001 - cap
    return Verdict(
        ok,
        f"3,000 small files and one 40 MB file written: exported {len(r.outputs)} (cap {cap}), "
        f"largest {largest} bytes, dropped {r.dropped}",
        session,
        end,
    )


DEEP = """
import os
path = '/mnt/data'
for i in range(120):
    path = os.path.join(path, 'd')
    os.mkdir(path)
open(os.path.join(path, 'deep.txt'), 'w').write('deep')
open('/mnt/data/d/d/shallow.txt', 'w').write('shallow')
print('depth=120')
"""


async def deep_directories(ctx: Context) -> Verdict:
    session = await ctx.session()
    r = await session.execute(DEEP, timeout=30)
    end = time.perf_counter()
    paths = [o.path or "" for o in r.outputs]
    ok = r.status is ExecutionStatus.OK and "/mnt/data/d/d/shallow.txt" in paths
    return Verdict(
        ok,
        f"120 nested folders: export walked {len(paths)} file(s) ({paths}); deeper ones skipped "
        "by the depth cap, no recursion error",
        session,
        end,
    )


async def directory_collision(ctx: Context) -> Verdict:
    session = await ctx.session()
    await session.execute("import os; os.mkdir('/mnt/data/report.csv')")
    try:
        await session.upload("report.csv", b"a,b\n")
        outcome = "ACCEPTED"
    except InvalidRequest as exc:
        outcome = f"InvalidRequest: {exc}"
    end = time.perf_counter()
    return Verdict(
        outcome.startswith("InvalidRequest"),
        f"upload onto a directory the code made: {outcome}",
        session,
        end,
    )


async def api_traversal(ctx: Context) -> Verdict:
    async with ctx.client(1) as http:
        sid = (await http.post("/v1/sessions", json={})).json()["id"]
        codes = {}
        for name in ("../../evil", "/etc/evil", "..", "%2e%2e%2fevil", "a/b"):
            r = await http.post(f"/v1/sessions/{sid}/files", files={"file": (name, b"x")})
            codes[f"upload {name}"] = r.status_code
        for path in ("../../etc/passwd", "/etc/passwd", "%2e%2e/x", "..", str(ctx.sentinel)):
            r = await http.get(f"/v1/sessions/{sid}/files/content", params={"path": path})
            codes[f"get {path}"] = r.status_code
        listed = (await http.get(f"/v1/sessions/{sid}/files")).json()["data"]
    end = time.perf_counter()
    ok = all(400 <= c < 500 for c in codes.values()) and all(
        f["path"].startswith("/mnt/data/") and ".." not in f["path"] for f in listed
    )
    accepted = {k: v for k, v in codes.items() if v < 400 or v >= 500}
    return Verdict(
        ok,
        f"{len(codes)} traversal names and paths over HTTP: "
        + (f"NOT REFUSED {accepted}" if accepted else f"all 4xx ({sorted(set(codes.values()))})")
        + f"; files listed {[f['path'] for f in listed]}",
        None,
        end,
    )


CASES = [
    Case(
        "traversal-upload-names",
        FILES,
        "upload with ../, percent-encoded, absolute, NUL, bidi, backslash and over-long names",
        "InvalidRequest for every one; nothing lands in /mnt/data or outside it",
        traversal_uploads,
        quick=True,
    ),
    Case(
        "traversal-download-paths",
        FILES,
        "download and delete ../../etc/passwd, absolute paths, encoded traversal, a host path",
        "refused, never served",
        traversal_downloads,
    ),
    Case(
        "api-traversal",
        FILES,
        "the same traversal names and paths through the HTTP file endpoints",
        "400 for every one",
        api_traversal,
    ),
    Case(
        "planted-symlinks",
        FILES,
        "symlinks in /mnt/data to a host file, /etc/passwd, /, the engine's folder; upload over",
        "downloads refused (O_NOFOLLOW per component); exports skip them; uploads replace the link",
        planted_symlinks,
        quick=True,
    ),
    Case(
        "hard-links",
        FILES,
        "hard-link /etc/passwd into /mnt/data; hard-link an input and append to it",
        "EXDEV across mounts; the input's file object keeps its bytes",
        hard_links,
    ),
    Case(
        "swap-during-download",
        FILES,
        "a thread swaps a file and a folder with symlinks to the host (renameat2) while the "
        "host downloads and uploads",
        "every download is the original bytes or a refusal, never the host file",
        swap_during_download,
        limit=180,
    ),
    Case(
        "pipes-and-devices",
        FILES,
        "a FIFO, a socket and a device node in /mnt/data, then export and download",
        "skipped by the export, refused on download without blocking; mknod refused",
        pipes_and_devices,
    ),
    Case(
        "archive-slip",
        FILES,
        "zip and tar entries with ../, absolute paths, a symlink to the host and a hardlink",
        "the engine never extracts; naive extraction inside cannot reach the host",
        archive_slip,
    ),
    Case(
        "zip-bomb",
        FILES,
        "upload a small zip of 3 GB of zeros and extract it inside",
        "the engine stores the archive as is; extraction hits the sandbox's caps",
        zip_bomb,
        limit=240,
    ),
    Case(
        "oversized-upload",
        FILES,
        "upload one byte over max_file_mb (bytes, a stream, and multipart over HTTP)",
        "PayloadTooLarge / 413; no temp file, no file object, nothing in /mnt/data",
        oversized_upload,
    ),
    Case(
        "many-uploads",
        FILES,
        "upload more files than max_session_files into one session",
        "LimitExceeded once the cap is reached",
        many_uploads,
    ),
    Case(
        "output-flood",
        FILES,
        "write 3,000 files and one file over max_file_mb",
        "at most max_output_files exported, none over the size cap, the rest counted as dropped",
        output_flood,
    ),
    Case(
        "deep-directories",
        FILES,
        "120 nested folders with a file at the bottom",
        "the export walks a bounded depth and carries on",
        deep_directories,
    ),
    Case(
        "upload-onto-directory",
        FILES,
        "upload a file whose name is a directory the code created",
        "InvalidRequest, the session carries on",
        directory_collision,
    ),
]
