"""The engine's own ZMTP client against real libzmq sockets (no Docker): what a kernel's sockets
may send it, and what it refuses before reading."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import zmq
import zmq.asyncio

from engine.kernel.wire import SMALL, ChannelBroken, Connection, ReceiveBudget, WireLimits

MB = 1024 * 1024
LIMITS = WireLimits(max_message_bytes=4 * MB, receive_budget_bytes=4 * MB)


@pytest_asyncio.fixture
async def ctx() -> AsyncIterator[zmq.asyncio.Context]:
    context = zmq.asyncio.Context()
    yield context
    context.destroy(linger=0)


async def _router(ctx: zmq.asyncio.Context, tmp_path: Path) -> tuple[zmq.asyncio.Socket, str]:
    sock = ctx.socket(zmq.ROUTER)
    url = f"ipc://{tmp_path}/shell"
    sock.bind(url)
    return sock, url


async def _dealer_pair(
    ctx: zmq.asyncio.Context, tmp_path: Path
) -> tuple[zmq.asyncio.Socket, Connection, bytes]:
    """A kernel-side ROUTER and our DEALER connection; the routing id the ROUTER sees."""
    router, url = await _router(ctx, tmp_path)
    conn = await Connection.open(url, "DEALER", "shell", LIMITS, identity=b"engine")
    await conn.send([b"hello"])
    ident, body = await asyncio.wait_for(router.recv_multipart(), 5)
    assert body == b"hello"
    return router, conn, ident


async def test_requests_and_replies_travel_both_ways(
    ctx: zmq.asyncio.Context, tmp_path: Path
) -> None:
    router, conn, ident = await _dealer_pair(ctx, tmp_path)
    assert ident == b"engine"
    await router.send_multipart([ident, b"a", b"b" * 300, b"c" * (2 * MB)])
    message = await conn.recv(5)
    assert message is not None
    assert [bytes(f) for f in message.frames] == [b"a", b"b" * 300, b"c" * (2 * MB)]
    message.release()
    assert await conn.recv(0.05) is None
    conn.close()


async def test_a_subscriber_gets_what_is_published(
    ctx: zmq.asyncio.Context, tmp_path: Path
) -> None:
    pub = ctx.socket(zmq.PUB)
    pub.bind(f"ipc://{tmp_path}/iopub")
    conn = await Connection.open(f"ipc://{tmp_path}/iopub", "SUB", "iopub", LIMITS)
    for _ in range(100):  # the subscription takes effect a little after connecting
        await pub.send_multipart([b"topic", b"body"])
        message = await conn.recv(0.05)
        if message is not None:
            assert message.frames == [b"topic", b"body"]
            break
    else:
        pytest.fail("nothing published arrived")
    conn.close()


async def test_a_frame_over_the_cap_is_refused_before_it_is_read(
    ctx: zmq.asyncio.Context, tmp_path: Path
) -> None:
    router, conn, ident = await _dealer_pair(ctx, tmp_path)
    await router.send_multipart([ident, b"x" * (5 * MB)])
    with pytest.raises(ChannelBroken) as info:
        await conn.recv(5)
    assert info.value.oversize is not None and "larger than 4 MB" in info.value.reason
    with pytest.raises(ChannelBroken):  # a broken channel stays broken
        await conn.recv(0)


async def test_many_small_frames_over_the_cap_are_refused(
    ctx: zmq.asyncio.Context, tmp_path: Path
) -> None:
    """What libzmq's MAXMSGSIZE lets through: it caps frames, and buffers a multipart message
    whole whatever its size."""
    router, conn, ident = await _dealer_pair(ctx, tmp_path)
    frame = b"y" * (64 * 1024)
    await router.send_multipart([ident, *([frame] * 100)])  # 6.4 MB in 64 KB frames
    with pytest.raises(ChannelBroken) as info:
        await conn.recv(5)
    assert info.value.oversize is not None


async def test_a_kernel_that_closes_its_socket_breaks_the_channel(
    ctx: zmq.asyncio.Context, tmp_path: Path
) -> None:
    router, conn, _ = await _dealer_pair(ctx, tmp_path)
    router.close(linger=0)
    with pytest.raises(ChannelBroken, match="closed its shell channel"):
        for _ in range(50):
            await conn.recv(0.1)


async def test_large_messages_wait_for_the_shared_budget(
    ctx: zmq.asyncio.Context, tmp_path: Path
) -> None:
    """One permit: a second large message is not read while the first is held; small ones
    need no permit and pass."""
    budget = ReceiveBudget(1)  # the loop's shared one may be in use by other tests
    routers = []
    conns = []
    for name in ("a", "b"):
        router = ctx.socket(zmq.ROUTER)
        router.bind(f"ipc://{tmp_path}/{name}")
        conn = await Connection.open(
            f"ipc://{tmp_path}/{name}", "DEALER", name, LIMITS, budget=budget
        )
        await conn.send([b"hi"])
        ident, _ = await asyncio.wait_for(router.recv_multipart(), 5)
        routers.append((router, ident))
        conns.append(conn)
    big = b"z" * (SMALL + 1)
    for router, ident in routers:
        await router.send_multipart([ident, big])
    first = await conns[0].recv(5)
    assert first is not None
    assert await conns[1].recv(0.3) is None, "the only permit is held by the first message"
    first.release()
    second = await conns[1].recv(5)
    assert second is not None and bytes(second.frames[0]) == big
    second.release()
    for conn in conns:
        conn.close()
