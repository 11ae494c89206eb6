"""What every Ray process of ours starts with: token auth, no dashboard or Jobs API, no Ray
Client port. A reachable Jobs API or Ray Client port is remote code execution on a host that
holds the Docker socket (ShadowRay, CVE-2023-48022)."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from .. import errors

TOKEN_FILE = "cluster-token"
"""In the data folder, mode 0600: the token this host's Ray processes present."""


class ClusterTokenMissing(errors.InvalidRequest):
    """A cluster command found no Ray token: Ray would run without authentication."""

    code = "cluster_token_missing"


@dataclass(frozen=True)
class RayToken:
    """Where the token lives; ``env()`` is what every Ray process and driver of ours gets."""

    path: Path

    def env(self) -> dict[str, str]:
        return {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.path),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def apply(self) -> None:
        """For a driver in this process (``ray.init`` reads the environment)."""
        os.environ.pop("RAY_AUTH_TOKEN", None)  # the file wins: one token per process
        os.environ.update(self.env())


def token_for(data_dir: Path, *, generate: bool = False) -> RayToken:
    """The operator's token (``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``), else the data
    folder's; ``generate`` makes one there if there is none (the head does; a node that joins
    must be given the head's). Raises ClusterTokenMissing otherwise."""
    given = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    path = data_dir / TOKEN_FILE
    if given:
        _write_private(path, given)
        return RayToken(path)
    if given_path := os.environ.get("RAY_AUTH_TOKEN_PATH"):
        token = Path(given_path)
        if not token.is_file() or not token.read_text().strip():
            raise ClusterTokenMissing(f"RAY_AUTH_TOKEN_PATH names {token}, which holds no token")
        _check_private(token)
        return RayToken(token)
    if path.is_file() and path.read_text().strip():
        _check_private(path)
        return RayToken(path)
    if not generate:
        raise ClusterTokenMissing(
            "no Ray auth token: set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's "
            f"token, or copy the head's {TOKEN_FILE} into {data_dir}; a cluster never runs "
            "without one"
        )
    _write_private(path, secrets.token_hex(32))
    return RayToken(path)


def _write_private(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    path.chmod(0o600)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClusterTokenMissing(
            f"{path} is readable by others (mode {stat.S_IMODE(mode):o}): chmod 600 it"
        )


def ray_client_installed() -> bool:
    """``ray start --head`` opens the Ray Client port (10001, every interface) only when grpc is
    importable (``ray[client]``); the ``cluster`` extra leaves it out."""
    try:
        import grpc  # noqa: F401
    except ImportError:
        return False
    return True
