"""Interrupts and the timeout ladder, repeated in one session."""

from __future__ import annotations

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
