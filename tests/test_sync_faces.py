"""Fast tests, no Docker: each service face of the library has a blocking twin on SyncEngine."""

from __future__ import annotations

import inspect
from pathlib import Path

from engine import Engine, Settings, SyncEngine

from .test_sync_face import _assert_mirrors, _public


def test_every_face_has_a_blocking_twin(tmp_path: Path) -> None:
    engine = Engine(Settings(data_dir=tmp_path / "engine", pool_size=0, pool_min=0))
    sync = SyncEngine(Settings(data_dir=tmp_path / "engine", pool_size=0, pool_min=0))
    pairs = [
        (sync.responses, engine.responses),
        (sync.vector_stores, engine.vector_stores),
        (sync.vector_stores.files, engine.vector_stores.files),
        (sync.assistants, engine.assistants),
        (sync.threads, engine.threads),
        (sync.threads.messages, engine.threads.messages),
        (sync.threads.runs, engine.threads.runs),
    ]
    for ours, theirs in pairs:
        names = _public(type(theirs)) | {n for n in vars(theirs) if not n.startswith("_")}
        _assert_mirrors(type(ours), type(theirs), names)
        for name, member in vars(type(ours)).items():
            assert not inspect.iscoroutinefunction(member), f"{type(ours).__name__}.{name}"
        assert "__getattr__" not in vars(type(ours))
