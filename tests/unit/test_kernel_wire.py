"""The engine's own ZMTP client against real libzmq sockets (no Docker): what a kernel's sockets
may send it, and what it refuses before reading."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
import zmq
import zmq.asyncio

from engine.kernel import wire
from engine.kernel.wire import (
    SMALL,
    ChannelBroken,
    Connection,
    PermitGate,
    ReceiveBudget,
    WireLimits,
)

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


async def _stalling_peer(path: Path, first: bytes) -> asyncio.Server:
    """A kernel-side socket written by hand: it greets, sends ``first`` (raw ZMTP frames), and
    then goes silent with the connection open, as code in a sandbox can do on its own socket."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0")
        ready = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"ROUTER"
        writer.write(greeting.ljust(64, b"\0") + struct.pack(">BB", 4, len(ready)) + ready)
        writer.write(first)
        await writer.drain()
        await asyncio.Event().wait()  # silent until the test ends

    return await asyncio.start_unix_server(serve, str(path))


def _frame(body: bytes, *, more: bool) -> bytes:
    return struct.pack(">BQ", (1 if more else 0) | 2, len(body)) + body


async def _wait_for(predicate: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``predicate`` held; fails the test if it did not within ``seconds``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > seconds:
            pytest.fail(f"not within {seconds:g} s")
        await asyncio.sleep(0.02)
    return loop.time() - start


async def _big_from_router(
    ctx: zmq.asyncio.Context, tmp_path: Path, name: str, budget: ReceiveBudget
) -> tuple[zmq.asyncio.Socket, Connection, bytes]:
    router = ctx.socket(zmq.ROUTER)
    router.bind(f"ipc://{tmp_path}/{name}")
    conn = await Connection.open(f"ipc://{tmp_path}/{name}", "DEALER", name, LIMITS, budget=budget)
    await conn.send([b"hi"])
    ident, _ = await asyncio.wait_for(router.recv_multipart(), 5)
    return router, conn, ident


async def test_a_peer_that_stalls_between_frames_gives_its_permit_back(
    ctx: zmq.asyncio.Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One 2 MB frame marked MORE, then silence: the permit comes back at the deadline even
    though nothing waits on the read (the shell channel's read stays pending between
    executions), and another kernel's big message then gets through."""
    monkeypatch.setattr(wire, "STALL_SECONDS", 1.0)
    budget = ReceiveBudget(1)
    server = await _stalling_peer(tmp_path / "stall", _frame(b"s" * (2 * MB), more=True))
    stalled = await Connection.open(
        f"ipc://{tmp_path}/stall", "DEALER", "shell", LIMITS, budget=budget
    )
    assert await stalled.recv(0) is None  # the read is left pending, as between executions
    await _wait_for(lambda: budget.available == 0, 5)  # the body arrived: the permit is taken
    held = await _wait_for(lambda: budget.available == 1, 5)
    assert held < 2.5, f"the permit was held {held:.1f} s past a 1 s deadline"
    with pytest.raises(ChannelBroken, match="stalled in the middle of a large message"):
        await stalled.recv(0)

    router, other, ident = await _big_from_router(ctx, tmp_path, "other", budget)
    await router.send_multipart([ident, b"o" * (2 * MB)])
    message = await other.recv(5)
    assert message is not None and len(message.frames[0]) == 2 * MB
    message.release()
    stalled.close()
    other.close()
    server.close()


async def test_a_kernel_holds_at_most_one_permit_and_waits_a_bounded_time(
    ctx: zmq.asyncio.Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two channels of one kernel stall on large messages: the first holds the kernel's only
    permit, the second is refused once its bounded wait ends (as a message over the cap is),
    and the rest of the budget stays free for other kernels."""
    monkeypatch.setattr(wire, "STALL_SECONDS", 30.0)
    monkeypatch.setattr(wire, "PERMIT_WAIT_SECONDS", 0.5)
    budget = ReceiveBudget(2)
    gate = PermitGate(budget)
    conns = []
    for name in ("shell", "iopub"):
        await _stalling_peer(tmp_path / name, _frame(b"h" * (2 * MB), more=True))
        conns.append(
            await Connection.open(f"ipc://{tmp_path}/{name}", "DEALER", name, LIMITS, gate=gate)
        )
    shell, iopub = conns
    assert await shell.recv(0) is None
    await _wait_for(lambda: budget.available == 1, 5)
    with pytest.raises(ChannelBroken, match="no room to receive") as info:
        await iopub.recv(5)
    assert info.value.oversize is not None  # handled as a message over the cap
    assert budget.available == 1, "one kernel took a second permit"

    router, other, ident = await _big_from_router(ctx, tmp_path, "other", budget)
    await router.send_multipart([ident, b"o" * (2 * MB)])
    message = await other.recv(5)
    assert message is not None
    message.release()
    for conn in (shell, iopub, other):
        conn.close()
    await _wait_for(lambda: budget.available == 2, 5)


async def test_a_large_message_nobody_takes_is_dropped_at_its_deadline(
    ctx: zmq.asyncio.Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole large message that arrives on a read left pending holds its permit only until
    the deadline; the channel stays usable."""
    monkeypatch.setattr(wire, "STALL_SECONDS", 0.5)
    budget = ReceiveBudget(1)
    router, conn, ident = await _big_from_router(ctx, tmp_path, "shell", budget)
    await router.send_multipart([ident, b"u" * (2 * MB)])
    assert await conn.recv(0) is None
    await _wait_for(lambda: budget.available == 0, 5)
    await _wait_for(lambda: budget.available == 1, 5)
    await router.send_multipart([ident, b"after"])
    message = await conn.recv(5)
    assert message is not None and message.frames == [b"after"]
    conn.close()


async def test_a_flood_of_malformed_messages_makes_one_log_line(
    ctx: zmq.asyncio.Context, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A kernel that writes junk on its socket (or misaligns its own framing) gets each
    message dropped, without a log line per message."""
    from jupyter_client.session import Session

    from engine.kernel.channels import MALFORMED, KernelChannels

    router, conn, ident = await _dealer_pair(ctx, tmp_path)
    channels = KernelChannels(Session(key=b"k"), LIMITS)
    channels._conns["shell"] = conn
    for n in range(200):
        await router.send_multipart([ident, b"junk %d" % n])
    with caplog.at_level("WARNING", logger="engine.kernel.channels"):
        for _ in range(200):
            assert await channels.recv("shell", 5) is MALFORMED
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    channels.close()


def test_the_decoder_keeps_jupyter_clients_checks() -> None:
    """Messages signed by a kernel's Session decode; unsigned, forged, replayed or short ones
    fail as jupyter_client's own ``deserialize`` fails them; another request's content is left
    undecoded."""
    from jupyter_client.session import Session

    from engine.kernel.channels import Decoder

    kernel = Session(key=b"secret", username="kernel")
    decoder = Decoder(Session(key=b"secret"))
    request = kernel.msg("execute_request", {"code": "x = 1"})
    reply = kernel.msg("execute_reply", {"status": "ok"}, parent=request)
    frames = kernel.serialize(reply, ident=b"topic")
    msg = decoder.decode(frames, request["header"]["msg_id"])
    assert msg["msg_type"] == "execute_reply" and msg["content"] == {"status": "ok"}
    assert msg["parent_header"]["msg_id"] == request["header"]["msg_id"]
    assert msg["header"]["date"] == reply["header"]["date"].isoformat().replace("+00:00", "Z")
    other = decoder.decode(kernel.serialize(kernel.msg("stream", {"text": "t"})), "another")
    assert other["content"] == {}
    with pytest.raises(ValueError, match="duplicate"):
        decoder.decode(frames, None)
    fresh = kernel.serialize(kernel.msg("status", {"execution_state": "idle"}))
    delim = fresh.index(b"<IDS|MSG>")
    with pytest.raises(ValueError, match="unsigned"):
        decoder.decode([*fresh[: delim + 1], b"", *fresh[delim + 2 :]], None)
    forged = [*fresh[: delim + 4], b'{"injected": true}', *fresh[delim + 5 :]]
    with pytest.raises(ValueError, match="invalid signature"):
        decoder.decode(forged, None)
    with pytest.raises(TypeError, match="at least 5"):
        decoder.decode(fresh[: delim + 4], None)
    with pytest.raises(ValueError):
        decoder.decode(fresh[delim + 1 :], None)  # no delimiter
    assert decoder.decode(fresh, None)["content"] == {"execution_state": "idle"}
