"""With ``SANDBOX_TEST_NO_SKIPS=1`` (as ``.ci/run`` sets), a skipped test fails instead.

A skip proves nothing. Each skip in this suite waits for something a developer's machine may
lack (root, a dockerd that setup started, runsc); CI has all of it, so there it must not skip."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

VARIABLE = "SANDBOX_TEST_NO_SKIPS"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and os.environ.get(VARIABLE) == "1":
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but {VARIABLE}=1 (CI runs every test): {reason}"
    return report
