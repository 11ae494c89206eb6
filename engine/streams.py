"""Copying a byte stream with a cap on its size."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def copy_at_most(
    src: BinaryIO,
    out: BinaryIO,
    max_bytes: int,
    too_big: Callable[[], Exception],
    digest: Digest | None = None,
) -> int:
    """Copy ``src`` to ``out``; raise ``too_big()`` once more than ``max_bytes`` came. Returns
    how many bytes were copied (each also fed to ``digest``)."""
    copied = 0
    while chunk := src.read(CHUNK):
        copied += len(chunk)
        if copied > max_bytes:
            raise too_big()
        if digest is not None:
            digest.update(chunk)
        out.write(chunk)
    return copied
