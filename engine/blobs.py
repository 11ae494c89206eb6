"""Where the engine keeps bytes it does not query: file objects' contents and paused sessions'
snapshots. A ``BlobStore`` holds one kind of them, each blob named by its tenant and a name of
the engine's own making (a file id, a session id).

Two kinds of store: ``LocalBlobs``, a folder of the data folder (today's layout: the folder
is one engine's, so the tenant is not part of the path), and ``S3Blobs``
(``SANDBOX_FILES_URL=s3://bucket/prefix``), shared by every engine of a cluster, under
``<prefix>/t/<tenant digest>/<kind>/<name>``: a request can name neither the digest nor a
slash, so no tenant's request can reach another tenant's prefix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from . import errors
from .streams import CHUNK, copy_at_most

NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
PART_BYTES = 8 * 1024 * 1024
PARALLEL_PARTS = 4
"""An upload holds at most this many parts in memory at once."""


def check_name(name: str) -> str:
    """A blob's name: letters, digits, ``_`` and ``-`` only (never a path)."""
    if not NAME.fullmatch(name):
        raise errors.InvalidRequest(f"not a blob name: {name!r}")
    return name


def tenant_digest(owner: str) -> str:
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Listed:
    """A blob found by ``BlobStore.listed``: where it is, its name and when it was written."""

    key: str
    name: str
    mtime: float


class BlobStore(Protocol):
    """One kind of blob (file contents, or snapshots), read and written as streams."""

    @property
    def shared(self) -> bool:
        """Whether other engines write here too (a sweep then leaves recent blobs alone)."""
        ...

    def put(
        self,
        owner: str,
        name: str,
        src: BinaryIO,
        max_bytes: int,
        too_big: Callable[[], Exception],
        digest: hashlib._Hash,
    ) -> int:
        """Copy ``src`` in, ``too_big()`` past ``max_bytes``, each chunk fed to ``digest``;
        replaces the blob only once it is whole. Returns the size."""
        ...

    def put_file(self, owner: str, name: str, path: Path) -> None:
        """Move a finished local file in (``path`` is gone after)."""
        ...

    def open(self, owner: str, name: str) -> BinaryIO:
        """The blob as a stream; ``FileNotFoundError`` when there is none."""
        ...

    def exists(self, owner: str, name: str) -> bool: ...

    def size(self, owner: str, name: str) -> int:
        """Its size in bytes; ``FileNotFoundError`` when there is none."""
        ...

    def delete(self, owner: str, name: str) -> None:
        """Remove it; nothing when there is none."""
        ...

    def listed(self) -> Iterator[Listed]:
        """Every blob of this kind, any tenant's (for sweeps)."""
        ...

    def remove(self, listed: Listed) -> None: ...


class LocalBlobs:
    """One folder, a file per blob named by its name alone, written 0600."""

    shared = False

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def put(
        self,
        owner: str,
        name: str,
        src: BinaryIO,
        max_bytes: int,
        too_big: Callable[[], Exception],
        digest: hashlib._Hash,
    ) -> int:
        target = self.path(name)
        partial = target.with_name(f".{target.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                size = copy_at_most(src, out, max_bytes, too_big, digest)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
        return size

    def put_file(self, owner: str, name: str, path: Path) -> None:
        os.replace(path, self.path(name))

    def open(self, owner: str, name: str) -> BinaryIO:
        fd = os.open(self.path(name), os.O_RDONLY | os.O_NOFOLLOW)
        return os.fdopen(fd, "rb")

    def exists(self, owner: str, name: str) -> bool:
        return self.path(name).is_file()

    def size(self, owner: str, name: str) -> int:
        return self.path(name).stat().st_size

    def delete(self, owner: str, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def listed(self) -> Iterator[Listed]:
        if not self.root.is_dir():
            return
        for entry in os.scandir(self.root):
            with contextlib.suppress(OSError):
                mtime = entry.stat(follow_symlinks=False).st_mtime
                yield Listed(entry.path, entry.name, mtime)

    def remove(self, listed: Listed) -> None:
        with contextlib.suppress(OSError):
            os.unlink(listed.key)


class _Capped:
    """A reader of ``src`` that counts and digests what it gives, ``too_big()`` past a cap."""

    def __init__(
        self,
        src: BinaryIO,
        max_bytes: int,
        too_big: Callable[[], Exception],
        digest: hashlib._Hash,
    ) -> None:
        self._src, self._max, self._too_big, self._digest = src, max_bytes, too_big, digest
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self._src.read(CHUNK if n is None or n < 0 else n)
        self.size += len(chunk)
        if self.size > self._max:
            raise self._too_big()
        self._digest.update(chunk)
        return chunk


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` -> (bucket, prefix without slashes at its ends)."""
    if not url.startswith("s3://"):
        raise ValueError(f"SANDBOX_FILES_URL must be empty or s3://bucket/prefix, not {url!r}")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"SANDBOX_FILES_URL names no bucket: {url!r}")
    return bucket, prefix.strip("/")


class S3Blobs:
    """One kind of blob in an S3 bucket, per tenant (see the module). The endpoint, region and
    credentials are the standard AWS settings (``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``,
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, profiles...), read by boto3."""

    shared = True

    def __init__(self, url: str, kind: str, client: Any | None = None) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
        except ImportError as exc:  # pragma: no cover - the cluster extra is not installed
            raise ImportError(
                "SANDBOX_FILES_URL names S3, which needs the cluster extra: "
                "pip install 'sandbox-engine[cluster]'"
            ) from exc
        self.bucket, prefix = parse_s3_url(url)
        self._base = f"{prefix}/t/" if prefix else "t/"
        self.kind = check_name(kind)
        self._s3 = client or boto3.client("s3")
        self._transfer = TransferConfig(
            multipart_chunksize=PART_BYTES,
            multipart_threshold=PART_BYTES,
            max_concurrency=PARALLEL_PARTS,
        )

    def key(self, owner: str, name: str) -> str:
        return f"{self._base}{tenant_digest(owner)}/{self.kind}/{check_name(name)}"

    def put(
        self,
        owner: str,
        name: str,
        src: BinaryIO,
        max_bytes: int,
        too_big: Callable[[], Exception],
        digest: hashlib._Hash,
    ) -> int:
        reader = _Capped(src, max_bytes, too_big, digest)
        self._s3.upload_fileobj(reader, self.bucket, self.key(owner, name), Config=self._transfer)
        return reader.size

    def put_file(self, owner: str, name: str, path: Path) -> None:
        try:
            self._s3.upload_file(
                str(path), self.bucket, self.key(owner, name), Config=self._transfer
            )
        finally:
            path.unlink(missing_ok=True)

    def open(self, owner: str, name: str) -> BinaryIO:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self.key(owner, name))["Body"]
        except self._s3.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(f"no blob {name!r}") from exc
        return body  # type: ignore[no-any-return]  # a StreamingBody: read(n), close()

    def _head(self, owner: str, name: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self._s3.head_object(
                Bucket=self.bucket, Key=self.key(owner, name)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    def exists(self, owner: str, name: str) -> bool:
        return self._head(owner, name) is not None

    def size(self, owner: str, name: str) -> int:
        head = self._head(owner, name)
        if head is None:
            raise FileNotFoundError(f"no blob {name!r}")
        return int(head["ContentLength"])

    def delete(self, owner: str, name: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=self.key(owner, name))

    def listed(self) -> Iterator[Listed]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._base
        )
        for page in pages:
            for item in page.get("Contents", []):
                key: str = item["Key"]
                parts = key[len(self._base) :].split("/")
                if len(parts) == 3 and parts[1] == self.kind:
                    yield Listed(key, parts[2], item["LastModified"].timestamp())

    def remove(self, listed: Listed) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=listed.key)


def open_blobs(files_url: str, kind: str, local: Path) -> BlobStore:
    """The blob store of ``kind``: the folder ``local`` when ``files_url`` is empty, else the
    S3 bucket it names."""
    if not files_url:
        return LocalBlobs(local)
    return S3Blobs(files_url, kind)


SWEEP_GRACE_S = 3600.0
"""A shared store's blob younger than this may be another engine's upload whose row is not
committed yet: sweeps leave it."""


def sweep_before(blobs: BlobStore, started: float) -> float:
    """Blobs written before this time may be swept."""
    return started - SWEEP_GRACE_S if blobs.shared else started
