"""File objects, inputs placed in /mnt/data, outputs exported, and hostile names and links."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from engine import Engine, ExecutionStatus, InvalidRequest, Session
from engine.errors import FileNotFound, LimitExceeded, NotFound

from ..support.engines import make_settings

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

HOSTILE_NAMES = [
    "../escape.txt",
    "..",
    ".",
    "/etc/passwd",
    "/mnt/data/../../etc/passwd",
    "a/../../b",
    "%2e%2e/x",
    "%2e%2e%2fetc%2fpasswd",
    "..%2fx",
    "a\x00b",
    "",
    "   ",
    "x" * 300,
    "a\nb",
    "bell\x07",
    "esc\x1b[31m",
    "x\\..\\y",
    "\u202egnp.exe",
    " leading",
]


async def test_file_objects_round_trip(engine: Engine) -> None:
    f = await engine.files.create(io.BytesIO(b"a,b\n1,2\n"), "sales.csv", purpose="assistants")
    assert f.id.startswith("file-")
    assert (f.bytes, f.filename, f.purpose, f.mime_type) == (
        8,
        "sales.csv",
        "assistants",
        "text/csv",
    )
    assert engine.files.retrieve(f.id) == f
    assert await engine.files.content(f.id) == b"a,b\n1,2\n"
    chunks = [c async for c in engine.files.iter_content(f.id)]
    assert b"".join(chunks) == b"a,b\n1,2\n"
    engine.files.delete(f.id)
    with pytest.raises(FileNotFound):
        engine.files.retrieve(f.id)
    with pytest.raises(FileNotFound):
        await engine.files.content(f.id)


async def test_filename_taken_from_an_open_file(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_bytes(b"hello")
    fh = await asyncio.to_thread(open, path, "rb")
    with fh:
        f = await engine.files.create(fh, purpose="assistants")
    assert f.filename == "report.txt" and f.mime_type == "text/plain"


async def test_list_paginates(engine: Engine) -> None:
    owner = "pager"
    ids = [(await engine.files.create(b"x", f"f{i}.txt", owner=owner)).id for i in range(5)]
    first = engine.files.list(owner, limit=2, order="asc")
    assert [f.id for f in first.data] == ids[:2] and first.has_more
    second = engine.files.list(owner, limit=2, order="asc", after=first.last_id)
    assert [f.id for f in second.data] == ids[2:4] and second.has_more
    third = engine.files.list(owner, limit=2, order="asc", after=second.last_id)
    assert [f.id for f in third.data] == ids[4:] and not third.has_more
    newest = engine.files.list(owner, limit=3)
    assert [f.id for f in newest.data] == ids[::-1][:3]
    back = engine.files.list(owner, limit=2, order="asc", before=ids[4])
    assert [f.id for f in back.data] == ids[2:4]
    assert engine.files.list("someone-else").data == []


@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_hostile_names_are_rejected(engine: Engine, session: Session, name: str) -> None:
    with pytest.raises(InvalidRequest):
        await engine.files.create(b"x", name)
    with pytest.raises(InvalidRequest):
        await session.upload(name, b"x")
    with pytest.raises(InvalidRequest):
        await session.read_file(name)


async def test_bad_file_arguments(engine: Engine, session: Session) -> None:
    with pytest.raises(InvalidRequest):
        await engine.files.create(b"x", "ok.txt", purpose="nonsense")
    with pytest.raises(InvalidRequest):
        await engine.files.create(12345, "ok.txt")  # type: ignore[arg-type]
    with pytest.raises(FileNotFound):
        await session.add_file("file-doesnotexist")
    with pytest.raises(InvalidRequest):
        engine.files.list(limit=0)


async def test_issue_example_inputs_and_outputs(engine: Engine) -> None:
    f = await engine.files.create(b"a,b\n1,2\n3,5\n", "sales.csv", purpose="assistants")
    session = await engine.session("thread-9", file_ids=[f.id])
    r = await session.execute(
        "import pandas as pd; df = pd.read_csv('/mnt/data/sales.csv');"
        "df.plot().get_figure().savefig('/mnt/data/chart.png'); df.describe()"
    )
    assert r.status is ExecutionStatus.OK, r
    assert r.result is not None and "mean" in r.result["text/plain"]
    files = [o for o in r.outputs if o.type == "file"]
    assert [o.path for o in files] == ["/mnt/data/chart.png"]
    assert files[0].sandbox_path == "sandbox:/mnt/data/chart.png"
    png = await engine.files.content(files[0].file_id)
    assert png.startswith(PNG_MAGIC)
    assert png == await session.read_file("chart.png")
    obj = engine.files.retrieve(files[0].file_id)
    assert (obj.purpose, obj.session_id, obj.path) == (
        "assistants_output",
        session.id,
        "/mnt/data/chart.png",
    )
    images = [o for o in r.outputs if o.type == "image"]
    assert images and (await engine.files.content(images[0].file_id)).startswith(PNG_MAGIC)
    # The input itself was not re-exported, and an unchanged file is not exported again.
    again = await session.execute("1")
    assert again.outputs == []
    changed = await session.execute("open('/mnt/data/sales.csv', 'a').write('7,8\\n')")
    assert [o.path for o in changed.outputs] == ["/mnt/data/sales.csv"]
    await engine.sessions.close(session.id)


async def test_inputs_later_by_id_and_bytes_and_listing(engine: Engine, session: Session) -> None:
    f = await engine.files.create(b"one", "one.txt")
    placed = await session.add_file(f.id)
    assert placed.path == "/mnt/data/one.txt" and placed.file_id == f.id
    await session.upload("two.bin", b"\x00\x01")
    await session.add_file(f.id, "renamed.txt")
    r = await session.execute("import os; print(sorted(os.listdir('/mnt/data')))")
    assert r.stdout.strip() == "['one.txt', 'renamed.txt', 'two.bin']"
    listing = {sf.filename: sf for sf in await session.list_files()}
    assert set(listing) == {"one.txt", "renamed.txt", "two.bin"}
    assert listing["two.bin"].bytes == 2
    r = await session.execute("import os; print(os.stat('/mnt/data/one.txt').st_uid)")
    assert r.stdout.strip() == "10001"


async def test_nested_outputs_and_special_files_are_not_exported(session: Session) -> None:
    code = """
import os
os.makedirs('out/deep', exist_ok=True)
open('out/deep/r.txt', 'w').write('nested')
os.symlink('/etc/passwd', 'link')
os.mkfifo('fifo')
import socket; s = socket.socket(socket.AF_UNIX); s.bind('/mnt/data/sock')
"""
    r = await session.execute(code)
    assert r.status is ExecutionStatus.OK, r
    assert [o.path for o in r.outputs] == ["/mnt/data/out/deep/r.txt"]
    for name in ("link", "fifo", "sock", "out", "out/deep"):
        with pytest.raises(InvalidRequest):
            await session.read_file(name)
    assert await session.read_file("out/deep/r.txt") == b"nested"


async def test_planted_symlinks_are_never_followed(session: Session, tmp_path: Path) -> None:
    host_secret = tmp_path / "host-secret.txt"
    host_secret.write_text("HOST SECRET")
    code = f"""
import os
os.symlink({str(host_secret)!r}, 'secret.txt')
os.symlink('/etc', 'etcdir')
os.symlink({str(tmp_path)!r}, 'hostdir')
"""
    assert (await session.execute(code)).status is ExecutionStatus.OK
    for name in ("secret.txt", "etcdir/passwd", "hostdir/host-secret.txt"):
        with pytest.raises(InvalidRequest):
            await session.read_file(name)
    # Uploading over a planted link replaces the link; the host file is untouched.
    await session.upload("secret.txt", b"uploaded")
    with pytest.raises(InvalidRequest):
        await session.upload("hostdir/x.txt", b"x")
    assert host_secret.read_text() == "HOST SECRET"
    r = await session.execute(
        "import os; print(os.path.islink('secret.txt'), open('secret.txt').read())"
    )
    assert r.stdout == "False uploaded\n"


async def test_file_swapped_for_symlink_during_downloads(session: Session) -> None:
    code = """
import os, threading, time
open('real.txt', 'w').write('REAL')
def swap():
    end = time.time() + 3
    while time.time() < end:
        try:
            os.symlink('/etc/passwd', 'tmp-link'); os.replace('tmp-link', 'swap.txt')
            open('tmp-file', 'w').write('SAFE'); os.replace('tmp-file', 'swap.txt')
        except OSError:
            pass
threading.Thread(target=swap, daemon=True).start()
"""
    assert (await session.execute(code)).status is ExecutionStatus.OK
    safe = refused = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + 2.5
    while loop.time() < end:
        try:
            data = await session.read_file("swap.txt")
        except (InvalidRequest, NotFound):
            refused += 1
            continue
        assert data == b"SAFE"
        safe += 1
    assert b"root:" not in data
    assert safe + refused > 20


async def test_caps_on_size_count_and_total(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_file_mb=1, max_session_files=2, data_size_mb=3)
    async with Engine(settings) as engine:
        with pytest.raises(LimitExceeded):
            await engine.files.create(b"x" * (1024 * 1024 + 1), "big.bin")
        assert list((settings.data_dir / "files" / "tmp").iterdir()) == []
        session = await engine.session()
        await session.upload("a.bin", b"a" * 1024 * 1024)
        await session.upload("b.bin", b"b")
        with pytest.raises(LimitExceeded):
            await session.upload("c.bin", b"c")
        r = await session.execute("open('/mnt/data/fill.bin', 'wb').write(b'z' * 5 * 1024 * 1024)")
        assert r.status is ExecutionStatus.ERROR
        assert r.error is not None and "No space left" in r.error.value
        # Oversized outputs are not exported, and nothing breaks.
        r = await session.execute(
            "import os; os.remove('/mnt/data/fill.bin');"
            "open('/mnt/data/big.out', 'wb').write(b'o' * 1_500_000)"
        )
        assert r.status is ExecutionStatus.OK and r.outputs == []
