"""API fuzzing: schemathesis generates requests from /openapi.json for every operation, valid and
invalid, against a live server; none may get a 5xx.

Bounded for the test suite: ``SANDBOX_FUZZ_EXAMPLES`` examples per operation (default 10). The
server caps live sessions low so that generated creates cost little.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from engine import Settings

from ..support.servers import LiveServer

KEY = "fuzz-key"
EXAMPLES = int(os.environ.get("SANDBOX_FUZZ_EXAMPLES", "10"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        Settings(
            data_dir=tmp_path_factory.mktemp("fuzz"),
            api_keys=KEY,
            shutdown_sandboxes="close",
            pool_size=0,
            pool_min=0,
            max_sessions=3,
            max_sessions_per_owner=3,
            idle_timeout=5,
            auto_pause_after=0,
            reaper_interval=1,
            memory_limit_mb=256,
            max_memory_limit_mb=512,
            default_timeout=5,
            max_timeout=10,
            max_file_mb=4,
            drain_timeout=2,
        )
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api_schema(fuzz_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {KEY}"}, checks=[not_a_server_error], timeout=60
    )
