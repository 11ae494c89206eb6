"""Quotas per tenant: file objects (count and bytes), outputs stacked by rewriting a file,
live sessions and the memory they commit. Each case fills one tenant of its own to its quota;
the refusal must name the setting, and another tenant must go on unhindered."""

from __future__ import annotations

import contextlib
import secrets
import time

from engine import ExecutionStatus
from engine.errors import EngineError, FileNotFound, QuotaExceeded

from ..harness import Context
from ..model import RESOURCES, Case, Verdict, brief, clip

MB = 1024 * 1024
BYSTANDER = "quota-bystander"


def _tenant(name: str) -> str:
    return f"quota-{name}-{secrets.token_hex(4)}"


def _names(exc: QuotaExceeded | None, setting: str) -> bool:
    return exc is not None and exc.setting == setting and setting in str(exc)


async def _bystander_uploads(ctx: Context) -> bool:
    obj = await ctx.engine.files.create(b"bystander", "b.txt", owner=BYSTANDER)
    ctx.engine.files.delete(obj.id, BYSTANDER)
    return True


def _clean_files(ctx: Context, owner: str) -> None:
    """The tenant's files go, so that the data folder stays small for later cases."""
    files = ctx.engine.files
    while page := files.list(owner, limit=100).data:
        for f in page:
            files.delete(f.id, owner)


async def upload_count(ctx: Context) -> Verdict:
    owner, cap = _tenant("count"), ctx.settings.max_files_per_owner
    stored, refusal = 0, None
    try:
        for i in range(cap + 5):
            try:
                await ctx.engine.files.create(b"x", f"f{i}.txt", owner=owner)
            except QuotaExceeded as exc:
                refusal = exc
                break
            stored += 1
        end = time.perf_counter()
        bystander = await _bystander_uploads(ctx)
    finally:
        _clean_files(ctx, owner)
    ok = stored == cap and _names(refusal, "SANDBOX_MAX_FILES_PER_OWNER") and bystander
    return Verdict(
        ok,
        f"{stored} one-byte uploads stored (quota {cap}), then "
        f"{clip(str(refusal), 140) if refusal else 'NOT REFUSED'}; another tenant uploads",
        None,
        end,
    )


async def upload_bytes(ctx: Context) -> Verdict:
    owner = _tenant("bytes")
    quota = ctx.settings.max_file_storage_mb_per_owner * MB
    chunk = b"\0" * ctx.engine.files.max_bytes
    refusal = None
    try:
        for i in range(quota // len(chunk) + 3):
            try:
                await ctx.engine.files.create(chunk, f"big{i}.bin", owner=owner)
            except QuotaExceeded as exc:
                refusal = exc
                break
        end = time.perf_counter()
        count, used = ctx.engine.files.usage(owner)
        bystander = await _bystander_uploads(ctx)
    finally:
        _clean_files(ctx, owner)
    setting = "SANDBOX_MAX_FILE_STORAGE_MB_PER_OWNER"
    ok = used <= quota and _names(refusal, setting) and bystander
    return Verdict(
        ok,
        f"uploads of {len(chunk) // MB} MB: {count} stored, {used // MB} MB (quota "
        f"{quota // MB} MB), then {clip(str(refusal), 120) if refusal else 'NOT REFUSED'}",
        None,
        end,
    )


REWRITE = "open('/mnt/data/out.bin', 'wb').write(bytes([{i}]) * (4 << 20))"


async def export_stacking(ctx: Context) -> Verdict:
    """Hostile code rewrites one 4 MB file 20 times: stacked, that would be 80 MB of outputs."""
    owner = _tenant("rewrite")
    session = await ctx.session(owner=owner)
    ids: list[str] = []
    for i in range(20):
        r = await session.execute(REWRITE.format(i=i), timeout=60)
        if r.status is not ExecutionStatus.OK or len(r.outputs) != 1:
            return Verdict(False, f"rewrite {i}: {brief(r)}", session)
        ids.append(r.outputs[0].file_id)
    end = time.perf_counter()
    files = ctx.engine.files
    count, used = files.usage(owner)
    stale = 0
    for old in ids[:-1]:
        with contextlib.suppress(FileNotFound):
            files.retrieve(old, owner)
            stale += 1
    latest = await files.content(ids[-1], owner)
    await ctx.engine.sessions.close(session.id)
    with contextlib.suppress(FileNotFound):
        files.retrieve(ids[-1], owner)
        stale += 1
    ok = count == 1 and used == 4 * MB and not stale and latest[:1] == bytes([19])
    return Verdict(
        ok,
        f"20 rewrites of a 4 MB output: the tenant held {count} file object(s), "
        f"{used // MB} MB; {stale} replaced or ended output(s) still there; "
        "the last one went with its session",
        session,
        end,
        usable_after=False,
    )


async def session_count(ctx: Context) -> Verdict:
    owner, cap = _tenant("sessions"), ctx.settings.max_sessions_per_owner
    started, refusal = 0, None
    for _ in range(cap + 2):
        try:
            await ctx.session(owner=owner, memory_limit_mb=256)
        except QuotaExceeded as exc:
            refusal = exc
            break
        started += 1
    end = time.perf_counter()
    other = await ctx.session(owner=BYSTANDER, memory_limit_mb=256)
    answered = (await other.execute("6 * 7")).text == "42"
    ok = started == cap and _names(refusal, "SANDBOX_MAX_SESSIONS_PER_OWNER") and answered
    return Verdict(
        ok,
        f"{started} sessions started (quota {cap}), then "
        f"{clip(str(refusal), 120) if refusal else 'NOT REFUSED'}; another tenant's "
        f"session answers: {answered}",
        other,
        end,
    )


async def committed_memory(ctx: Context) -> Verdict:
    owner = _tenant("memory")
    quota, each = ctx.settings.max_memory_mb_per_owner, ctx.settings.max_memory_limit_mb
    started, refusal = 0, None
    for _ in range(quota // each + 2):
        try:
            await ctx.session(owner=owner, memory_limit_mb=each)
        except QuotaExceeded as exc:
            refusal = exc
            break
        started += 1
    end = time.perf_counter()
    _, committed = ctx.engine.sessions.committed(owner)
    try:
        other = await ctx.session(owner=BYSTANDER, memory_limit_mb=each)
        answered = (await other.execute("6 * 7")).text == "42"
    except EngineError as exc:
        return Verdict(False, f"another tenant refused: {exc}", None, end)
    ok = committed <= quota and started == quota // each and answered
    ok = ok and _names(refusal, "SANDBOX_MAX_MEMORY_MB_PER_OWNER")
    return Verdict(
        ok,
        f"sessions of {each} MB: {started} started, {committed} MB committed (quota "
        f"{quota} MB), then {clip(str(refusal), 120) if refusal else 'NOT REFUSED'}; "
        f"another tenant's {each} MB session answers: {answered}",
        other,
        end,
    )


CASES = [
    Case(
        "quota-upload-count",
        RESOURCES,
        "one tenant uploads one-byte files without end",
        "refused at SANDBOX_MAX_FILES_PER_OWNER with an error naming it; others still upload",
        upload_count,
        limit=300.0,
    ),
    Case(
        "quota-upload-bytes",
        RESOURCES,
        "one tenant uploads files of the largest size allowed without end",
        "refused before SANDBOX_MAX_FILE_STORAGE_MB_PER_OWNER is passed; others still upload",
        upload_bytes,
        limit=300.0,
    ),
    Case(
        "quota-export-stacking",
        RESOURCES,
        "hostile code rewrites one 4 MB file in /mnt/data 20 times, one execution each",
        "each rewrite replaces the previous output: one file object, 4 MB; gone with the session",
        export_stacking,
        limit=300.0,
    ),
    Case(
        "quota-session-count",
        RESOURCES,
        "one tenant opens sessions without end",
        "refused at SANDBOX_MAX_SESSIONS_PER_OWNER, naming it; another tenant starts one",
        session_count,
        limit=300.0,
    ),
    Case(
        "quota-committed-memory",
        RESOURCES,
        "one tenant opens sessions at the largest memory limit without end",
        "refused before SANDBOX_MAX_MEMORY_MB_PER_OWNER is committed; another tenant starts one",
        committed_memory,
        limit=300.0,
    ),
]
