"""Fast tests, no Docker: the sync face mirrors the async one, and the /mnt/data bookkeeping."""

from __future__ import annotations

import base64
import inspect
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, Session, Settings, SyncEngine, SyncSession, errors
from engine.files import FileStore
from engine.results import ExecutionResult, ExecutionStatus
from engine.sandbox.base import FileEntry
from engine.sessions import (
    UPLOAD_PREFIX,
    KnownFile,
    OutputExport,
    SessionFile,
    SessionInfo,
    SessionManager,
    SessionRecords,
    SessionStatus,
)
from engine.sessions.outputs import decode_images, user_files
from engine.store import Store
from engine.sync import (
    SyncAssistants,
    SyncConversationItems,
    SyncConversations,
    SyncFileBatches,
    SyncFiles,
    SyncInputItems,
    SyncMessages,
    SyncResponses,
    SyncRuns,
    SyncSessions,
    SyncSteps,
    SyncThreads,
    SyncVectorStoreFiles,
    SyncVectorStores,
)

# The manager's own lifecycle: SyncEngine.start and SyncEngine.close run it.
# take_over: a cluster node agent's, never a library caller's.
MANAGER_LIFECYCLE = {"start", "recover", "close_all", "take_over"}


def _public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def _params(fn: Any) -> list[tuple[str, Any, Any, Any]]:
    return [
        (p.name, p.kind, p.default, p.annotation) for p in inspect.signature(fn).parameters.values()
    ]


def _assert_mirrors(sync_cls: type, async_cls: type, names: set[str]) -> None:
    for name in sorted(names):
        assert name in vars(sync_cls), f"{sync_cls.__name__} lacks {name}"
        theirs = inspect.getattr_static(async_cls, name, None)
        ours = inspect.getattr_static(sync_cls, name)
        if theirs is None or isinstance(theirs, property):
            # An instance attribute or a property of the async class: a plain property here.
            assert isinstance(ours, property), f"{sync_cls.__name__}.{name} is not a property"
            continue
        assert inspect.isfunction(ours), f"{sync_cls.__name__}.{name} is not a method"
        assert _params(ours) == _params(theirs), f"{sync_cls.__name__}.{name}: other parameters"


def _instance_attributes(obj: object) -> set[str]:
    return {n for n in vars(obj) if not n.startswith("_")}


@pytest.fixture
def offline_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "engine", pool_size=0, pool_min=0)


def test_sync_session_mirrors_every_public_name_of_session() -> None:
    # spec, deadline and last_active are set in Session.__init__, not on the class.
    names = _public(Session) | {"spec", "deadline", "last_active"}
    _assert_mirrors(SyncSession, Session, names)


def test_sync_engine_mirrors_every_public_name_of_engine(offline_settings: Settings) -> None:
    names = _public(Engine) | _instance_attributes(Engine(offline_settings))
    assert {"files", "sessions", "session", "get_session", "settings"} <= names
    _assert_mirrors(SyncEngine, Engine, names)
    assert _params(SyncEngine.__init__) == _params(Engine.__init__)


def test_sync_sessions_and_files_mirror_the_manager_and_the_file_store(tmp_path: Path) -> None:
    _assert_mirrors(SyncSessions, SessionManager, _public(SessionManager) - MANAGER_LIFECYCLE)
    assert "__len__" in vars(SyncSessions)
    files = FileStore(Store(tmp_path / "db"), tmp_path / "files", 1024)
    _assert_mirrors(SyncFiles, FileStore, _public(FileStore) | _instance_attributes(files))


@pytest.mark.parametrize("cls", [SyncEngine, SyncSession, SyncSessions, SyncFiles])
def test_the_sync_face_blocks_and_forwards_nothing_implicitly(cls: type) -> None:
    assert "__getattr__" not in vars(cls) and "__getattribute__" not in vars(cls)
    for name, member in vars(cls).items():
        assert not inspect.iscoroutinefunction(member), f"{cls.__name__}.{name} is async"
        assert not inspect.isasyncgenfunction(member), f"{cls.__name__}.{name} is async"


def test_a_session_method_missing_from_the_sync_face_is_an_attribute_error() -> None:
    # With __getattr__ forwarding, a new async method would silently return a coroutine.
    assert not hasattr(SyncSession, "no_such_method")
    with pytest.raises(AttributeError):
        object.__getattribute__(SyncSession, "no_such_method")


def test_calls_before_start_and_after_close_say_the_engine_is_not_started(
    offline_settings: Settings,
) -> None:
    engine = SyncEngine(offline_settings)
    calls: list[Callable[[], object]] = [
        lambda: engine.session("t"),
        lambda: engine.get_session("sess_x"),
        lambda: engine.sessions,
        lambda: engine.files.create(b"x", "x.txt"),
        lambda: engine.files.list(),
        lambda: engine.files.content("file-x"),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match="not started"):
            call()
    engine.close()  # closing an engine that never started is harmless
    with pytest.raises(RuntimeError, match="not started"):
        engine.session("t")
    assert "not started" in repr(engine)


def _entry(path: str, size: int = 10, mtime_ns: int = 1_000, inode: int = 7) -> FileEntry:
    return FileEntry(path, size, mtime_ns, inode)


def test_known_file_matches_only_the_same_size_mtime_and_inode() -> None:
    entry = _entry("a.csv")
    known = KnownFile.of(entry, "file-1")
    assert known == KnownFile(10, 1_000, 7, "file-1")
    assert known.matches(entry)
    assert not known.matches(_entry("a.csv", size=11))
    assert not known.matches(_entry("a.csv", mtime_ns=2_000))
    assert not known.matches(_entry("a.csv", inode=8))  # replaced by a file of the same size
    # What the store recorded has no inode: size and mtime decide.
    assert KnownFile(10, 1_000, None, "file-1").matches(_entry("a.csv", inode=8))
    with pytest.raises(AttributeError):
        known.size = 3  # type: ignore[misc]


def test_the_upload_prefix_rule_looks_at_the_file_name_only() -> None:
    entries = [
        _entry("out.csv"),
        _entry(f"{UPLOAD_PREFIX}0123abcd"),
        _entry(f"sub/dir/{UPLOAD_PREFIX}ff"),
        _entry(f"{UPLOAD_PREFIX}dir/kept.txt"),  # a folder so named is the user's business
        _entry(f"x{UPLOAD_PREFIX}y"),
    ]
    assert [e.path for e in user_files(entries)] == [
        "out.csv",
        f"{UPLOAD_PREFIX}dir/kept.txt",
        f"x{UPLOAD_PREFIX}y",
    ]


def _export(tmp_path: Path, session_id: str = "sess_1") -> tuple[OutputExport, Store]:
    store = Store(tmp_path / "engine.db")
    files = FileStore(store, tmp_path / "files", 1024)

    def no_sandbox() -> Any:
        raise AssertionError("these tests need no sandbox")

    export = OutputExport(
        session_id, "owner-a", no_sandbox, files, SessionRecords(store), Settings()
    )
    return export, store


def test_changed_reports_new_and_changed_files_once(tmp_path: Path) -> None:
    export, _ = _export(tmp_path)
    a, b = _entry("a.csv"), _entry("b/c.png", inode=9)
    temp = _entry(f"{UPLOAD_PREFIX}1234")
    assert export.changed([a, b, temp]) == [a, b]
    assert export.changed([a, b, temp]) == []  # seen: nothing new
    a2 = _entry("a.csv", size=20, mtime_ns=2_000)
    assert export.changed([a2, b]) == [a2]
    assert export.changed([b]) == []  # a.csv was removed: it is forgotten ...
    assert export.changed([a2, b]) == [a2]  # ... so it is new when it comes back
    assert set(export.known) == {"a.csv", "b/c.png"}  # upload temp files are never known
    export.forget()
    assert export.changed([a2, b]) == [a2, b]


def test_listing_keeps_the_file_id_only_while_the_content_is_unchanged(tmp_path: Path) -> None:
    export, store = _export(tmp_path)
    data = _entry("data.csv", size=5, mtime_ns=3_000_000_000)
    export.remember(data, "file-abc")
    listed = export.listing([data, _entry(f"{UPLOAD_PREFIX}9")])
    assert listed == [
        SessionFile(
            path="/mnt/data/data.csv",
            filename="data.csv",
            bytes=5,
            modified_at=3,
            file_id="file-abc",
        )
    ]
    assert [f.file_id for f in export.listing([_entry("data.csv", size=6)])] == [None]
    assert store.all("SELECT path, file_id, size FROM session_files") == [
        {"path": "data.csv", "file_id": "file-abc", "size": 5}
    ]


def test_restore_reads_what_an_earlier_process_recorded(tmp_path: Path) -> None:
    first, _ = _export(tmp_path)
    saved = _entry("report.txt", size=3, mtime_ns=5, inode=1)
    first.remember(saved, "file-1")
    later, _ = _export(tmp_path)
    later.restore()
    assert later.known == {"report.txt": KnownFile(3, 5, None, "file-1")}
    # Salvage after a restart: same size and mtime under a new inode is the same content.
    moved = _entry("report.txt", size=3, mtime_ns=5, inode=99)
    assert later.changed([moved, _entry("new.txt")]) == [_entry("new.txt")]
    other, _ = _export(tmp_path, "sess_2")
    other.restore()
    assert other.known == {}


def test_images_are_decoded_from_display_bundles_and_the_result() -> None:
    png = b"\x89PNG\r\n\x1a\n-png-"
    result = ExecutionResult(
        status=ExecutionStatus.OK,
        execution_count=4,
        display=[
            {"text/plain": "<Figure>"},
            {"image/png": base64.b64encode(png).decode(), "text/plain": "<Figure>"},
            {"image/jpeg": "not base64 at all!"},
        ],
        result={"image/gif": base64.b64encode(b"GIF89a").decode()},
    )
    # Numbered by bundle; the text-only bundle and the undecodable JPEG give no image.
    assert decode_images(result) == [
        ("image-4-2.png", "image/png", png),
        ("image-4-4.gif", "image/gif", b"GIF89a"),
    ]


def test_session_rows_show_the_earlier_deadline_and_hide_other_owners(tmp_path: Path) -> None:
    records = SessionRecords(Store(tmp_path / "engine.db"))
    info = SessionInfo(
        id="sess_1",
        thread_id="t",
        status=SessionStatus.ACTIVE,
        created_at=100,
        last_active_at=100,
        expires_at=130,
        idle_timeout=30,
        owner="alice",
    )
    records.insert(info, deadline=1_000)
    assert records.owned("sess_1", "alice") == info
    assert records.owned("sess_1", None).expires_at == 130
    records.update("sess_1", {"last_active_at": 2_000})
    assert records.owned("sess_1", None).expires_at == 1_000  # the hard deadline comes first
    with pytest.raises(errors.SessionNotFound):
        records.owned("sess_1", "mallory")
    with pytest.raises(errors.SessionNotFound):
        records.owned("sess_unknown", None)
    assert [r["id"] for r in records.unfinished([None])] == ["sess_1"]
    assert records.unfinished(["primary"]) == []
    records.expire("sess_1")
    assert records.owned("sess_1", "alice").status is SessionStatus.EXPIRED
    assert records.unfinished([None]) == []


def test_a_database_with_the_old_data_column_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
            "thread_id TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, "
            "last_active_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, "
            "idle_timeout INTEGER NOT NULL, sandbox_id TEXT, data TEXT NOT NULL DEFAULT '{}')"
        )
    store = Store(path)
    records = SessionRecords(store)
    info = SessionInfo(
        id="sess_old",
        thread_id="t",
        status=SessionStatus.STARTING,
        created_at=1,
        last_active_at=1,
        expires_at=5,
        idle_timeout=9,
    )
    records.insert(info, deadline=5)
    assert records.owned("sess_old", "") == info
    assert store.one("SELECT data FROM sessions") == {"data": "{}"}


def test_every_face_has_a_blocking_twin(tmp_path: Path) -> None:
    engine = Engine(Settings(data_dir=tmp_path / "engine", pool_size=0, pool_min=0))
    pairs = [
        (SyncResponses, engine.responses),
        (SyncInputItems, engine.responses.input_items),
        (SyncConversations, engine.conversations),
        (SyncConversationItems, engine.conversations.items),
        (SyncVectorStores, engine.vector_stores),
        (SyncVectorStoreFiles, engine.vector_stores.files),
        (SyncFileBatches, engine.vector_stores.file_batches),
        (SyncAssistants, engine.assistants),
        (SyncThreads, engine.threads),
        (SyncMessages, engine.threads.messages),
        (SyncRuns, engine.threads.runs),
        (SyncSteps, engine.threads.runs.steps),
    ]
    faces = {type(face) for _, face in pairs}
    for _, face in pairs:  # every sub-face of a face is in the list
        assert {type(v) for k, v in vars(face).items() if k != "service"} <= faces
    for ours, theirs in pairs:
        names = _public(type(theirs)) | {n for n in vars(theirs) if not n.startswith("_")}
        _assert_mirrors(ours, type(theirs), names)
        assert "__getattr__" not in vars(ours)
        for name, member in vars(ours).items():
            assert not inspect.iscoroutinefunction(member), f"{ours.__name__}.{name} is async"


def test_the_faces_before_start_say_the_engine_is_not_started(tmp_path: Path) -> None:
    engine = SyncEngine(Settings(data_dir=tmp_path / "engine", pool_size=0, pool_min=0))
    faces = ("responses", "conversations", "vector_stores", "assistants", "threads", "file_search")
    for face in faces:
        with pytest.raises(RuntimeError, match="not started"):
            getattr(engine, face)


def test_import_engine_leaves_the_services_modules_unloaded() -> None:
    # `run`, `doctor` and sessions-only scripts pay for the services only when they use them.
    probe = "import sys, engine; print(sorted(m for m in HEAVY if m in sys.modules))"
    heavy = "HEAVY = ('openai', 'numpy', 'engine.faces', 'engine.retrieval');"
    done = subprocess.run(
        [sys.executable, "-c", heavy + probe], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
