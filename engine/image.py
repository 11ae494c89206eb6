"""Builds the sandbox image from ``sandbox-image/`` without a registry or network in the build.

The base comes from Debian packages (debootstrap, then ``docker import``) or is an image already
present; the Python stack comes from a wheelhouse that pip downloads on the host, where the
package index is reachable and trusted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
from rich.console import Console
from rich.status import Status
from rich.text import Text

from .config import Settings
from .errors import BackendUnavailable, ImageBuildError

IMAGE_REPOSITORY = "sandbox-engine"
PROXY_REPOSITORY = "sandbox-engine-egress"
LATEST_TAG = f"{IMAGE_REPOSITORY}:latest"
BASE_REPOSITORY = "sandbox-engine-base"
INPUTS_HASH_LABEL = "org.sandbox-engine.inputs-hash"
BUILD_STAGE_LABEL = "org.sandbox-engine.build-stage"
DEBOOTSTRAP_PACKAGES = ("python3", "python3-venv", "ca-certificates", "fonts-dejavu-core")
MANYLINUX_TAGS = ("manylinux2014", "manylinux_2_17", "manylinux_2_28")

_SOURCE_EXCLUDES = {"__pycache__", "wheels"}
_LOG_NOISE = (" ---> ", "Removing intermediate container")


def image_source_dir() -> Path:
    """The ``sandbox-image/`` folder: the repository's, or the copy shipped inside the wheel."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir.parent / "sandbox-image", package_dir / "sandbox_image"):
        if (candidate / "Dockerfile").is_file():
            return candidate
    raise ImageBuildError(f"sandbox-image/ not found next to or inside {package_dir}")


def _source_files(root: Path) -> dict[str, Path]:
    """The build context's files by their name in it."""
    files = {
        path.relative_to(root).as_posix(): path
        for path in root.rglob("*")
        if path.is_file() and not _SOURCE_EXCLUDES.intersection(path.relative_to(root).parts)
    }
    return dict(sorted(files.items()))


def _proxy_files() -> dict[str, Path]:
    """The egress proxy's build context: its folder, and the host matching its addon shares
    with the engine."""
    package_dir = Path(__file__).resolve().parent / "egress"
    return {
        **_source_files(package_dir / "proxy_image"),
        "egress_hosts.py": package_dir / "hosts.py",
    }


def _hash(files: dict[str, Path], settings: Settings) -> str:
    """First 12 hex digits of a sha256 over an image's sources and the base; no Docker call."""
    digest = hashlib.sha256()
    for name, path in files.items():
        data = path.read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    digest.update(f"base\0{settings.image_base}".encode())
    return digest.hexdigest()[:12]


def inputs_hash(settings: Settings) -> str:
    """First 12 hex digits of a sha256 over the image sources and the base; no Docker call."""
    return _hash(_source_files(image_source_dir()), settings)


def default_image_tag(settings: Settings) -> str:
    return f"{IMAGE_REPOSITORY}:{inputs_hash(settings)}"


def proxy_image_tag(settings: Settings) -> str:
    """The egress proxy's image: ``SANDBOX_EGRESS_PROXY_IMAGE``, or the tag built from
    ``engine/egress/proxy_image/``."""
    return settings.egress_proxy_image or f"{PROXY_REPOSITORY}:{_hash(_proxy_files(), settings)}"


def build_image(settings: Settings, *, force: bool = False, console: Console | None = None) -> str:
    """Build the sandbox image if its tag is missing (or ``force``); return the tag."""
    files = _source_files(image_source_dir())
    requirements = image_source_dir() / "requirements.txt"
    return _build_tagged(
        settings, default_image_tag(settings), files, requirements, force=force, console=console
    )


def build_proxy_image(
    settings: Settings, *, force: bool = False, console: Console | None = None
) -> str:
    """Build the egress proxy's image if its tag is missing (or ``force``); return the tag."""
    files = _proxy_files()
    tag = proxy_image_tag(settings)
    return _build_tagged(
        settings, tag, files, files["requirements.txt"], force=force, console=console, no_deps=True
    )


def _build_tagged(
    settings: Settings,
    tag: str,
    files: dict[str, Path],
    requirements: Path,
    *,
    force: bool,
    console: Console | None,
    no_deps: bool = False,
) -> str:
    out = _Progress(console or Console(stderr=True))
    repository = tag.partition(":")[0]
    client = _docker_client(settings)
    try:
        if not force and _image_exists(client, tag):
            client.api.tag(tag, repository, "latest")
            out.done(f"image {tag} is up to date")
            return tag
        base = _ensure_base(client, settings, out)
        python_version, arch = _probe_base(client, base, out)
        wheels = _download_wheels(settings, python_version, arch, requirements, no_deps, out)
        _build(client, files, base=base, wheels=wheels, tag=tag, force=force, out=out)
        client.api.tag(tag, repository, "latest")
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"Docker failed while building {tag}: {exc}") from exc
    finally:
        client.close()
    out.done(f"built {tag} (also tagged {repository}:latest)")
    return tag


class _Progress:
    """A spinner per step showing its latest output, a line with its duration when it ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Status | None = None
        self._title = ""

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        started = time.monotonic()
        self._title = title
        with self.console.status(title) as self._status:
            yield
        self._status = None
        self.done(f"{title} ({time.monotonic() - started:.1f} s)")

    def done(self, message: str) -> None:
        self.console.print(Text.assemble(("✓ ", "green"), message), soft_wrap=True)

    def log(self, line: str) -> None:
        self.console.print(Text(line.rstrip(), style="dim"), soft_wrap=True)

    def update(self, line: str) -> None:
        """Show a line of chatty output in the spinner only."""
        if self._status is not None:
            self._status.update(Text(f"{self._title}: {line.strip()[:100]}"))


def _docker_client(settings: Settings) -> docker.DockerClient:
    try:
        if settings.docker_host:
            client = docker.DockerClient(base_url=settings.docker_host)
        else:
            client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise BackendUnavailable(
            f"cannot reach Docker ({exc}); start dockerd or run scripts/setup"
        ) from exc
    return client


def _image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def _ensure_base(client: docker.DockerClient, settings: Settings, out: _Progress) -> str:
    base = settings.image_base
    if base.startswith("debootstrap:"):
        suite = base.removeprefix("debootstrap:")
        tag = f"{BASE_REPOSITORY}:{suite}"
        if _image_exists(client, tag):
            out.done(f"base image {tag} is present")
        else:
            with out.step(f"base image {tag} from debootstrap {suite} ({settings.debian_mirror})"):
                _debootstrap_base(client, suite, settings.debian_mirror, tag, out)
        return tag
    if _image_exists(client, base):
        out.done(f"base image {base} is present")
        return base
    with out.step(f"pulling base image {base}"):
        try:
            client.images.pull(base)
        except docker.errors.DockerException as exc:
            raise ImageBuildError(
                f"base image {base!r} is not present and could not be pulled ({exc}). Load it "
                "with `docker load`, or use SANDBOX_IMAGE_BASE=debootstrap:bookworm to build "
                "one from Debian packages."
            ) from exc
    return base


def _debootstrap_base(
    client: docker.DockerClient, suite: str, mirror: str, tag: str, out: _Progress
) -> None:
    debootstrap = shutil.which("debootstrap") or shutil.which("/usr/sbin/debootstrap")
    if debootstrap is None:
        raise ImageBuildError(
            "debootstrap is not installed; run scripts/setup (or apt-get install debootstrap), "
            "or set SANDBOX_IMAGE_BASE to an image you already have, e.g. python:3.12-slim"
        )
    if os.geteuid() != 0:
        raise ImageBuildError(
            "building the base image with debootstrap needs root; run "
            "`sandbox-engine image build` as root once, or set SANDBOX_IMAGE_BASE to an image "
            "you already have"
        )
    with tempfile.TemporaryDirectory(prefix="sandbox-engine-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run_logged(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(DEBOOTSTRAP_PACKAGES)}",
                suite,
                str(rootfs),
                mirror,
            ],
            what="debootstrap",
            out=out,
        )
        _slim_rootfs(rootfs)
        tarball = Path(tmp) / "rootfs.tar"
        _run_logged(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tarball), "."],
            what="tar",
            out=out,
        )
        repository, _, image_tag = tag.partition(":")
        client.api.import_image(
            src=str(tarball),
            repository=repository,
            tag=image_tag,
            changes=["ENV LANG=C.UTF-8", 'CMD ["bash"]'],
        )


def _slim_rootfs(rootfs: Path) -> None:
    """Drop package caches, docs and the host's name and resolver files picked up by debootstrap."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()
    for folder in ("usr/share/man", "usr/share/info", "usr/share/locale"):
        for path in (rootfs / folder).glob("*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for path in (rootfs / "usr/share/doc").rglob("*"):
        if (path.is_file() or path.is_symlink()) and path.name != "copyright":
            path.unlink()
    (rootfs / "etc/resolv.conf").unlink(missing_ok=True)
    (rootfs / "etc/hostname").write_text("localhost\n")


def _probe_base(client: docker.DockerClient, base: str, out: _Progress) -> tuple[str, str]:
    """The base's ``python3`` version (``3.11``) and machine (``x86_64``)."""
    probe = "import platform, sys; print('%d.%d' % sys.version_info[:2], platform.machine())"
    try:
        raw = client.containers.run(
            base, ["python3", "-c", probe], remove=True, network_disabled=True
        )
    except docker.errors.ContainerError as exc:
        raise ImageBuildError(f"base image {base!r} has no working python3: {exc}") from exc
    output = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        version, arch = output.strip().splitlines()[-1].split()
    except (IndexError, ValueError):
        message = f"could not read the Python version of {base!r}: {output!r}"
        raise ImageBuildError(message) from None
    out.done(f"base python {version} on {arch}")
    return version, arch


def _download_wheels(
    settings: Settings,
    python_version: str,
    arch: str,
    requirements: Path,
    no_deps: bool,
    out: _Progress,
) -> Path:
    """A wheelhouse for the base's Python, cached by requirements, Python version and machine."""
    platforms = [f"{tag}_{arch}" for tag in MANYLINUX_TAGS] + ["any"]
    key = hashlib.sha256(
        "\0".join([requirements.read_text(), python_version, *platforms]).encode()
    ).hexdigest()[:12]
    # Each image's wheelhouses are named apart: a new one replaces only its own stale ones.
    prefix = f"{'egress-' if no_deps else ''}py{python_version.replace('.', '')}-{arch}-"
    cache = settings.data_dir / "cache" / "wheels"
    wheels = cache / f"{prefix}{key}"
    complete = wheels / ".complete"
    if complete.is_file():
        out.done(f"wheelhouse {wheels} is complete")
        return wheels
    wheels.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
        *(arg for name in platforms for arg in ("--platform", name)),
        "-r", str(requirements), "-d", str(wheels), *(["--no-deps"] if no_deps else []),
    ]  # fmt: skip
    with out.step(f"downloading wheels for Python {python_version} into {wheels}"):
        _run_logged(command, what="pip download", out=out)
    complete.write_text(requirements.read_text())
    for stale in cache.glob(f"{prefix}*"):
        if stale != wheels and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return wheels


def _build(
    client: docker.DockerClient,
    files: dict[str, Path],
    *,
    base: str,
    wheels: Path,
    tag: str,
    force: bool,
    out: _Progress,
) -> None:
    staging = wheels.parent.parent
    with tempfile.TemporaryDirectory(prefix="build-", dir=staging) as tmp:
        context = Path(tmp)
        for name, path in files.items():
            target = context / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        (context / "wheels").mkdir()
        for wheel in wheels.glob("*.whl"):
            _link_or_copy(wheel, context / "wheels" / wheel.name)
        with out.step(f"building {tag} from {base}"):
            stream: Iterator[dict[str, Any]] = client.api.build(
                path=str(context),
                tag=tag,
                buildargs={"BASE_IMAGE": base},
                labels={INPUTS_HASH_LABEL: tag.partition(":")[2]},
                network_mode="none",
                nocache=force,
                pull=False,
                rm=True,
                forcerm=True,
                decode=True,
            )
            tail: list[str] = []
            for chunk in stream:
                if "error" in chunk:
                    error, log = str(chunk["error"]).strip(), "\n".join(tail[-20:])
                    raise ImageBuildError(f"docker build failed: {error}\n{log}")
                for line in str(chunk.get("stream", "")).splitlines():
                    if line.strip() and not line.startswith(_LOG_NOISE):
                        tail.append(line)
                        out.log(line)
    # The wheel-installing stage is left untagged; it is only a build cache, hundreds of MB.
    stage = "egress-venv" if "egress_hosts.py" in files else "venv"
    client.api.prune_images(filters={"dangling": True, "label": f"{BUILD_STAGE_LABEL}={stage}"})


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _run_logged(command: list[str], *, what: str, out: _Progress) -> None:
    """Run a command, its output in the spinner; raise ImageBuildError with its tail on failure."""
    tail: list[str] = []
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as exc:
        raise ImageBuildError(f"{what} could not start: {exc}") from exc
    assert process.stdout is not None
    with process:
        for line in process.stdout:
            tail = [*tail[-29:], line.rstrip()]
            if line.startswith(("W:", "E:", "WARNING", "ERROR")):
                out.log(line)
            else:
                out.update(line)
    if process.returncode != 0:
        log = "\n".join(tail)
        raise ImageBuildError(f"{what} failed with exit code {process.returncode}:\n{log}")
