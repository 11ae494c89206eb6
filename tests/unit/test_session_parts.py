"""Fast tests, no Docker: a session's parts, the face it shows callers, and the sandbox
package's import directions."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import engine
from engine.results import ExecutionResult, ExecutionStatus
from engine.sessions import Session, SessionInfo
from engine.sessions.notices import Notices
from engine.sessions.session import SessionControl

SANDBOX = Path(engine.__file__).parent / "sandbox"


def _info() -> SessionInfo:
    times = dict.fromkeys(("created_at", "last_active_at", "expires_at", "idle_timeout"), 1)
    return SessionInfo.model_validate(
        {"id": "sess_1", "thread_id": "t", "status": "active", **times}
    )


def _result() -> ExecutionResult:
    return ExecutionResult(status=ExecutionStatus.OK)


def test_notices_join_show_in_the_info_and_reach_one_result_only() -> None:
    info = _info()
    notices = Notices(info)
    notices.add("the engine restarted")
    notices.add("its kernel was restarted", state_lost=True)
    assert info.notice == "the engine restarted. Its kernel was restarted"
    first, second = _result(), _result()
    notices.deliver(first)
    notices.deliver(second)
    assert (first.notice, first.state_lost) == (
        "the engine restarted. Its kernel was restarted",
        True,
    )
    assert (second.notice, second.state_lost) == (None, False)
    assert info.notice is None


def test_a_notice_without_lost_state_leaves_state_lost_alone() -> None:
    notices = Notices(_info())
    notices.add("an execution was interrupted")
    result = _result()
    notices.deliver(result)
    assert result.notice == "an execution was interrupted"
    assert result.state_lost is False


def test_what_only_the_engine_does_to_a_session_is_off_its_face() -> None:
    engine_only = {"adopt", "start_over", "detach", "refresh_deadline"}
    assert not engine_only & set(dir(Session))
    assert engine_only <= {n for n, _ in inspect.getmembers(SessionControl, inspect.isfunction)}


def _imports(module: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


def test_the_sandbox_contract_imports_no_backend_and_the_docker_modules_no_cycle() -> None:
    assert _imports(SANDBOX / "base.py").isdisjoint(
        {".hostfs", ".docker", ".docker_sandbox", ".ipc"}
    )
    assert ".docker" not in _imports(SANDBOX / "docker_sandbox.py")
    assert ".docker_sandbox" in _imports(SANDBOX / "docker.py")
