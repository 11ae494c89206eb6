"""Ships ``sandbox-image/`` inside the wheel as ``engine/sandbox_image`` (see engine.image)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithImage(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "sandbox-image"
        target = Path(self.build_lib) / "engine" / "sandbox_image"
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("wheels"))


setup(cmdclass={"build_py": BuildPyWithImage})
