"""The E2B face's wire pieces that need no sandbox: Connect's envelopes and error codes, and
where E2B's paths land in our sandbox."""

from __future__ import annotations

import struct

import pytest

from engine import errors
from engine.api import connect_rpc
from engine.api.connect_rpc import ConnectError
from engine.e2b.paths import sandbox_path


def test_an_envelope_round_trips() -> None:
    frame = connect_rpc.envelope({"path": "/tmp", "depth": 2})
    flags, size = struct.unpack(">BI", frame[:5])
    assert flags == 0 and size == len(frame) - 5
    assert connect_rpc.unwrap(frame) == {"path": "/tmp", "depth": 2}


def test_the_end_of_a_stream_is_flagged() -> None:
    frame = connect_rpc.envelope({"error": {"code": "not_found", "message": "gone"}}, 0x02)
    assert frame[0] == 0x02


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "invalid_argument"),
        (struct.pack(">BI", 1, 2) + b"{}", "unimplemented"),  # compressed
        (struct.pack(">BI", 0, 9) + b"{}", "invalid_argument"),  # length lies
        (struct.pack(">BI", 0, 2) + b"[]", "invalid_argument"),  # not an object
        (struct.pack(">BI", 0, 3) + b"{x}", "invalid_argument"),  # not JSON
    ],
)
def test_a_bad_envelope_is_refused(body: bytes, code: str) -> None:
    with pytest.raises(ConnectError) as refused:
        connect_rpc.unwrap(body)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (errors.NotFound("no"), "not_found", 404),
        (errors.InvalidRequest("bad"), "invalid_argument", 400),
        (errors.AccessDenied("token"), "unauthenticated", 401),
        (errors.SandboxFileError("already_exists", "there"), "already_exists", 409),
        (errors.LimitExceeded("big"), "resource_exhausted", 429),
        (errors.SandboxLost("gone"), "unavailable", 503),
        (RuntimeError("secret detail"), "internal", 500),
    ],
)
def test_engine_errors_map_to_connect_codes(exc: Exception, code: str, status: int) -> None:
    mapped = connect_rpc.from_engine(exc)
    assert mapped.code == code
    assert connect_rpc.error_response(mapped).status_code == status
    if code == "internal":
        assert "secret" not in mapped.message  # an unexpected error's text stays in the log


@pytest.mark.parametrize(
    ("given", "path"),
    [
        ("notes.txt", "/home/sandbox/notes.txt"),
        ("/home/user", "/home/sandbox"),
        ("/home/user/a/../b.txt", "/home/sandbox/b.txt"),
        ("/home/username/x", "/home/username/x"),
        ("/mnt/data/f.csv", "/mnt/data/f.csv"),
        ("../../etc/passwd", "/etc/passwd"),  # as envd: the sandbox user's own reach decides
    ],
)
def test_e2b_paths_land_in_our_sandbox(given: str, path: str) -> None:
    assert sandbox_path(given) == path


@pytest.mark.parametrize("bad", ["", "a\x00b", "\ud800"])
def test_a_bad_path_is_refused(bad: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        sandbox_path(bad)
