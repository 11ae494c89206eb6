"""The ``sandbox-engine`` command line.

Each command is one ``_command_*`` function that adds its parser and sets ``handler`` to a
function taking the parsed arguments and returning the exit code; list it in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TypeAlias

from rich.console import Console
from rich.text import Text

from .config import Settings
from .errors import EngineError

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

console = Console(stderr=True)


def _command_image(subparsers: Subparsers) -> None:
    image = subparsers.add_parser("image", help="build and inspect the sandbox image")
    actions = image.add_subparsers(dest="action", required=True)
    build = actions.add_parser("build", help="build the sandbox image if its inputs changed")
    build.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    build.add_argument(
        "--base",
        help="base image: debootstrap:<suite> or an image name (default: SANDBOX_IMAGE_BASE)",
    )
    build.set_defaults(handler=_image_build)


def _image_build(args: argparse.Namespace) -> int:
    from .image import build_image

    settings = Settings()
    if args.base:
        settings = settings.model_copy(update={"image_base": args.base})
    print(build_image(settings, force=args.force, console=console))
    return 0


COMMANDS: list[Callable[[Subparsers], None]] = [
    _command_image,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox-engine", description="Run model-written code in locked-down Jupyter kernels."
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except EngineError as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
