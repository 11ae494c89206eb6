"""Checks for names and paths that users and models hand us: no traversal, no tricks."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

from . import errors

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def check_filename(name: object) -> str:
    """A single file name, safe to place under /mnt/data."""
    parts = check_relative_path(name)
    if len(parts) != 1:
        raise errors.InvalidRequest(f"file name {name!r} must not contain '/'")
    return parts[0]


def check_relative_path(path: object) -> list[str]:
    """A path below /mnt/data, returned as its components."""
    if not isinstance(path, str):
        raise errors.InvalidRequest(f"a file name must be a string, not {type(path).__name__}")
    if path.startswith("/mnt/data/"):
        path = path[len("/mnt/data/") :]
    if not path.strip():
        raise errors.InvalidRequest("the file name is empty")
    if "\x00" in path:
        raise errors.InvalidRequest("the file name contains a NUL byte")
    check_text("the file name", path)
    for ch in path:
        if unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS:
            raise errors.InvalidRequest(f"the file name {path!r} contains a control character")
    decoded = unquote(path)
    if decoded != path and any(s in decoded for s in ("..", "/", "\\", "\x00")):
        raise errors.InvalidRequest(
            f"the file name {path!r} contains percent-encoded separators or traversal"
        )
    if path.startswith("/"):
        raise errors.InvalidRequest(f"absolute paths are not allowed: {path!r}")
    if "\\" in path:
        raise errors.InvalidRequest(f"backslashes are not allowed in file names: {path!r}")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise errors.InvalidRequest(f"the path is longer than {MAX_PATH_BYTES} bytes")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise errors.InvalidRequest(f"path traversal or empty component in {path!r}")
        if len(part.encode()) > MAX_NAME_BYTES:
            raise errors.InvalidRequest(f"a file name is longer than {MAX_NAME_BYTES} bytes")
        if part != part.strip():
            raise errors.InvalidRequest(f"file names may not start or end with spaces: {part!r}")
    return parts


def check_text(what: str, text: str) -> str:
    """Text that cannot be encoded as UTF-8 (a lone surrogate such as ``"\\ud800"``) is refused."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidRequest(f"{what} is not valid Unicode (lone surrogate)") from None
    return text
