"""Where E2B's paths land in our sandbox: E2B's user is ``user`` with its home at /home/user;
ours is ``sandbox`` at /home/sandbox. Relative paths start from the home, as envd's do."""

from __future__ import annotations

import posixpath

from .. import errors
from ..names import check_text
from ..sandbox.docker_sandbox import HOME

E2B_HOME = "/home/user"


def sandbox_path(path: str) -> str:
    """The absolute, normalised path in our sandbox for a path an E2B client sent."""
    if not isinstance(path, str) or not path:
        raise errors.InvalidRequest("the path is empty")
    check_text("path", path)
    if "\x00" in path:
        raise errors.InvalidRequest("the path contains a NUL character")
    if not path.startswith("/"):
        path = f"{HOME}/{path}"
    path = posixpath.normpath(path)
    if path == E2B_HOME or path.startswith(E2B_HOME + "/"):
        path = HOME + path[len(E2B_HOME) :]
    return path
