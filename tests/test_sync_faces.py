"""Fast tests, no Docker: each service face of the library has a blocking twin on SyncEngine."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from engine import Engine, Settings, SyncEngine
from engine.sync import (
    SyncAssistants,
    SyncMessages,
    SyncResponses,
    SyncRuns,
    SyncThreads,
    SyncVectorStoreFiles,
    SyncVectorStores,
)

from .test_sync_face import _assert_mirrors, _public


def test_every_face_has_a_blocking_twin(tmp_path: Path) -> None:
    engine = Engine(Settings(data_dir=tmp_path / "engine", pool_size=0, pool_min=0))
    pairs = [
        (SyncResponses, engine.responses),
        (SyncVectorStores, engine.vector_stores),
        (SyncVectorStoreFiles, engine.vector_stores.files),
        (SyncAssistants, engine.assistants),
        (SyncThreads, engine.threads),
        (SyncMessages, engine.threads.messages),
        (SyncRuns, engine.threads.runs),
    ]
    for ours, theirs in pairs:
        names = _public(type(theirs)) | {n for n in vars(theirs) if not n.startswith("_")}
        _assert_mirrors(ours, type(theirs), names)
        assert "__getattr__" not in vars(ours)
        for name, member in vars(ours).items():
            assert not inspect.iscoroutinefunction(member), f"{ours.__name__}.{name} is async"


def test_the_faces_before_start_say_the_engine_is_not_started(tmp_path: Path) -> None:
    engine = SyncEngine(Settings(data_dir=tmp_path / "engine", pool_size=0, pool_min=0))
    for face in ("responses", "vector_stores", "assistants", "threads", "file_search"):
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
