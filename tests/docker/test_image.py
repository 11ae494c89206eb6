"""The sandbox image: its inputs hash, and the image that scripts/setup built from it."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

import engine.image
from engine.config import Settings
from engine.image import INPUTS_HASH_LABEL, default_image_tag, image_source_dir, inputs_hash

READ_ONLY = {
    "read_only": True,
    "network_mode": "none",
    "user": "10001",
    "tmpfs": {"/tmp": "", "/home/sandbox": "", "/mnt/data": "uid=10001,gid=10001"},
    "remove": True,
    "stderr": True,
}

KERNEL_PROBE = textwrap.dedent(
    """
    import os
    from jupyter_client.manager import KernelManager

    km = KernelManager(transport="ipc", ip="/tmp/kernel")
    with open("/tmp/kernel.err", "w") as err:
        km.start_kernel(stderr=err)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    outputs = []
    kc.execute_interactive(
        "plt.plot([1, 2]); plt.show(); print(type(np).__name__, type(pd).__name__)",
        timeout=60,
        output_hook=outputs.append,
    )
    km.shutdown_kernel(now=True)
    kinds = [m["msg_type"] for m in outputs]
    images = [m for m in outputs if "image/png" in m["content"].get("data", {})]
    stdout = "".join(m["content"]["text"] for m in outputs if m["msg_type"] == "stream")
    print("images", len(images))
    print("stdout", stdout.strip())
    print("history", os.path.exists("/tmp/ipython/profile_default/history.sqlite"))
    print("stderr", repr(open("/tmp/kernel.err").read()))
    """
)


@pytest.fixture(scope="module")
def image_settings() -> Settings:
    return Settings()


@pytest.fixture(scope="module")
def client(image_settings: Settings) -> Iterator[docker.DockerClient]:
    host = image_settings.docker_host
    client = docker.DockerClient(base_url=host) if host else docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def image(client: docker.DockerClient, image_settings: Settings) -> str:
    tag = default_image_tag(image_settings)
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{tag} is not built; run scripts/setup (or `sandbox-engine image build`)")
    return tag


def run(client: docker.DockerClient, image: str, *command: str, **options: object) -> str:
    output = client.containers.run(image, list(command), **{**READ_ONLY, **options})
    assert isinstance(output, bytes)
    return output.decode()


def test_inputs_hash_is_stable_and_follows_every_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(image_base="debootstrap:bookworm")
    original = inputs_hash(settings)
    copy = tmp_path / "sandbox-image"
    shutil.copytree(image_source_dir(), copy)
    monkeypatch.setattr(engine.image, "image_source_dir", lambda: copy)

    assert inputs_hash(settings) == original
    assert len(original) == 12
    assert default_image_tag(settings) == f"sandbox-engine:{original}"

    config = copy / "ipython_kernel_config.py"
    text = config.read_text()
    config.write_text(text + "# changed\n")
    changed = inputs_hash(settings)
    assert changed != original
    config.write_text(text)
    assert inputs_hash(settings) == original

    (copy / "extra.txt").write_text("new file")
    assert inputs_hash(settings) not in {original, changed}
    (copy / "extra.txt").unlink()

    assert inputs_hash(Settings(image_base="python:3.12-slim")) != original


def test_image_runs_as_the_sandbox_user_in_mnt_data(
    client: docker.DockerClient, image: str, image_settings: Settings
) -> None:
    labels = client.images.get(image).labels
    assert labels[INPUTS_HASH_LABEL] == inputs_hash(image_settings)
    assert run(client, image, "sh", "-c", "id -u; id -g; pwd; echo $HOME").split() == [
        "10001",
        "10001",
        "/mnt/data",
        "/home/sandbox",
    ]


def test_stack_imports_on_a_read_only_root_without_warnings(
    client: docker.DockerClient, image: str
) -> None:
    code = (
        "import pandas, matplotlib.pyplot, scipy, docx, pptx, pypdf, openpyxl, PIL, ipykernel;"
        "print(matplotlib.get_backend())"
    )
    output = run(client, image, "python", "-W", "error::UserWarning", "-c", code)
    assert output == "module://matplotlib_inline.backend_inline\n"


def test_kernel_starts_on_a_read_only_root_with_figures_as_png(
    client: docker.DockerClient, image: str
) -> None:
    output = run(client, image, "python", "-c", KERNEL_PROBE).splitlines()
    assert output == [
        "images 1",
        "stdout module module",
        "history False",
        "stderr ''",
    ]
