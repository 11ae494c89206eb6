"""Interrupts and the timeout ladder, repeated in one session."""

from __future__ import annotations

import asyncio

from engine import ExecutionStatus, Session

SWALLOWS_INTERRUPTS = (
    "import time\nwhile True:\n    try:\n        while True:\n            time.sleep(1)\n"
    "    except KeyboardInterrupt:\n        pass"
)


async def test_an_interrupt_never_ends_another_execution(session: Session) -> None:
    """The kernel manager sends interrupt_request from a Session of its own; with a second
    message counter its msg_id once equalled the running execute's, and the interrupt's idle
    status was taken for the cell's: "interrupted" while the code ran on."""
    for _ in range(4):
        r = await session.execute(SWALLOWS_INTERRUPTS, timeout=1)
        assert r.status is ExecutionStatus.TIMEOUT
        assert r.state_lost, "the loop swallows KeyboardInterrupt: only a restart stops it"
        after = await session.execute("6 * 7", timeout=30)
        assert after.status is ExecutionStatus.OK and after.text == "42"


async def test_an_interrupt_before_the_code_starts_stops_it_as_it_starts(
    session: Session,
) -> None:
    """A cancel that lands between the call and the kernel running the code (an idle kernel
    ignores SIGINT) used to be lost, and the code ran to its end."""
    for _ in range(3):
        running = asyncio.create_task(session.execute("import time; time.sleep(60)", timeout=120))
        await asyncio.sleep(0)  # the execution is under way; its code has not started
        await session.interrupt()
        result = await asyncio.wait_for(running, 30)
        assert result.status is ExecutionStatus.ERROR
        assert result.error is not None and result.error.name == "KeyboardInterrupt"
        assert not result.state_lost
    assert (await session.execute("6 * 7", timeout=30)).text == "42"
