"""The fast tier's core: names and paths, output caps, result models, settings, the image tag and
the command line. Pure Python: no Docker, no network, no kernel."""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError
from pydantic_settings import SettingsError

import engine.image
from engine import errors
from engine.cli import DEFAULT_BENCH_OUT, build_parser, main
from engine.config import Settings
from engine.image import default_image_tag, inputs_hash
from engine.names import MAX_NAME_BYTES, check_filename, check_relative_path, check_text
from engine.results import (
    CappedText,
    DisplayEvent,
    ErrorInfo,
    ExecutionResult,
    ExecutionStatus,
    OutputEvent,
    OutputFile,
    StreamEvent,
)

# --- names and paths ---

HOSTILE_PATHS = {
    "parent": "..",
    "traversal": "../etc/passwd",
    "inner traversal": "a/../../b",
    "dot": "./a",
    "encoded traversal": "%2e%2e/etc/passwd",
    "encoded dots alone": "%2e%2e",
    "encoded slash": "a%2fb",
    "mixed case encoding": "%2E%2E%2Fetc",
    "absolute": "/etc/passwd",
    "data prefix then traversal": "/mnt/data/../../etc/passwd",
    "backslash": "a\\b",
    "windows traversal": "..\\..\\boot.ini",
    "NUL": "a\x00b",
    "empty": "",
    "blank": "   ",
    "empty component": "a//b",
    "trailing slash": "a/",
    "name over 255 bytes": "a" * (MAX_NAME_BYTES + 1),
    "multibyte name over 255 bytes": "é" * 128,
    "path over 1024 bytes": "/".join(["abcdefgh"] * 120),
    "bell": "a\x07b",
    "newline": "a\nb",
    "escape": "\x1b[31mred",
    "DEL": "a\x7fb",
    "right-to-left override": "invoice\u202etxt.exe",
    "right-to-left mark": "a\u200fb",
    "isolate": "a\u2066b",
    "lone surrogate": "a\ud800b",
    "leading space": " a.txt",
    "trailing space": "a.txt ",
}


@pytest.mark.parametrize("path", HOSTILE_PATHS.values(), ids=HOSTILE_PATHS.keys())
def test_hostile_paths_are_refused(path: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        check_relative_path(path)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/etc/passwd", "absolute paths are not allowed"),
        ("a\x00b", "NUL byte"),
        ("../etc/passwd", "path traversal"),
        ("%2e%2e%2fetc", "percent-encoded"),
        ("a\x1bb", "control character"),
        ("invoice\u202etxt.exe", "control character"),
        ("a\\b", "backslashes"),
        ("a" * (MAX_NAME_BYTES + 1), "longer than 255 bytes"),
        ("/".join(["abcdefgh"] * 120), "longer than 1024 bytes"),
        ("", "empty"),
    ],
)
def test_the_refusal_names_the_reason(path: str, reason: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=re.escape(reason)):
        check_relative_path(path)


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("data.csv", ["data.csv"]),
        ("sub/dir/file.txt", ["sub", "dir", "file.txt"]),
        ("/mnt/data/chart.png", ["chart.png"]),
        ("ünïcødé ☃.txt", ["ünïcødé ☃.txt"]),
        ("100%.txt", ["100%.txt"]),
        ("..hidden", ["..hidden"]),
        ("a" * MAX_NAME_BYTES, ["a" * MAX_NAME_BYTES]),
    ],
)
def test_ordinary_paths_are_kept(path: str, parts: list[str]) -> None:
    assert check_relative_path(path) == parts


def test_a_file_name_is_one_component_and_a_string() -> None:
    assert check_filename("report.pdf") == "report.pdf"
    assert check_filename("/mnt/data/report.pdf") == "report.pdf"
    with pytest.raises(errors.InvalidRequest, match="must not contain '/'"):
        check_filename("sub/report.pdf")
    for wrong in (None, 42, b"report.pdf", ["a"]):
        with pytest.raises(errors.InvalidRequest, match="must be a string"):
            check_filename(wrong)


def test_check_text_refuses_only_what_utf8_cannot_carry() -> None:
    assert check_text("the name", "naïve ☃ \U0001f600") == "naïve ☃ \U0001f600"
    with pytest.raises(errors.InvalidRequest, match="the name is not valid Unicode"):
        check_text("the name", "x\udfffy")


# --- output caps and result models ---


def test_capped_text_keeps_everything_under_the_limit() -> None:
    capped = CappedText(100)
    for piece in ("hello ", "world", "\n" * 3):
        capped.write(piece)
    assert capped.getvalue() == "hello world\n\n\n"
    assert capped.dropped == 0


def test_capped_text_keeps_head_and_tail_and_counts_the_rest() -> None:
    capped = CappedText(20)
    text = "".join(f"{i:04d}" for i in range(250))  # 1000 characters
    for start in range(0, len(text), 7):  # uneven writes cross the head/tail boundary
        capped.write(text[start : start + 7])
    value = capped.getvalue()
    assert value.startswith(text[:10] + "\n[... 980 characters dropped ...]\n")
    assert value.endswith(text[-10:])
    assert capped.dropped == 980


def test_capped_text_with_one_huge_write() -> None:
    capped = CappedText(10)
    capped.write("x" * 5 + "y" * 10_000 + "z" * 5)
    assert capped.getvalue() == "xxxxx\n[... 10000 characters dropped ...]\nzzzzz"


def test_execution_result_round_trips_through_json() -> None:
    result = ExecutionResult(
        status=ExecutionStatus.ERROR,
        stdout="1\n",
        result={"text/plain": "42"},
        display=[{"image/png": "iVBOR..."}],
        error=ErrorInfo(name="ZeroDivisionError", value="division by zero", traceback=["tb"]),
        execution_count=3,
        outputs=[
            OutputFile(
                type="file",
                file_id="file-1",
                filename="chart.png",
                mime_type="image/png",
                bytes=10,
                path="/mnt/data/chart.png",
            )
        ],
        dropped={"stdout": 5},
    )
    data = json.loads(result.model_dump_json())
    assert data["status"] == "error" and data["error"]["name"] == "ZeroDivisionError"
    again = ExecutionResult.model_validate_json(result.model_dump_json())
    assert again == result
    assert not again.ok and again.text == "42"
    assert again.outputs[0].sandbox_path == "sandbox:/mnt/data/chart.png"
    assert ExecutionResult(status=ExecutionStatus.OK).text is None
    assert ExecutionResult.model_validate({"status": "ok"}).ok


def test_output_events_are_told_apart_by_type() -> None:
    adapter: TypeAdapter[object] = TypeAdapter(OutputEvent)
    assert adapter.validate_python({"type": "stdout", "text": "hi"}) == StreamEvent(
        type="stdout", text="hi"
    )
    display = adapter.validate_python({"type": "display", "data": {"text/plain": "x"}})
    assert isinstance(display, DisplayEvent) and display.metadata == {}
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "stdin", "text": "hi"})
    with pytest.raises(ValidationError):
        ExecutionResult.model_validate({"status": "exploded"})


# --- settings ---


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No SANDBOX_* variable from the machine running the tests."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("SANDBOX_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_settings_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.memory_limit_mb == 1024
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.api_keys == "" and settings.load_api_keys() == []
    assert settings.llm_base_url is None and settings.llm_api_key is None
    assert settings.runtime is None and settings.image is None
    assert settings.data_dir == Path.home() / ".local" / "share" / "sandbox-engine"


def test_settings_come_from_sandbox_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SANDBOX_MEMORY_LIMIT_MB", "2048")
    clean_env.setenv("SANDBOX_CPUS", "0.5")
    clean_env.setenv("SANDBOX_RUNTIME", "runsc")
    clean_env.setenv("SANDBOX_SANDBOX_ENV", '{"MPLBACKEND": "Agg"}')
    clean_env.setenv("PIDS_LIMIT", "17")  # no prefix: not ours
    settings = Settings()
    assert settings.memory_limit_mb == 2048 and settings.cpus == 0.5
    assert settings.runtime == "runsc"
    assert settings.sandbox_env == {"MPLBACKEND": "Agg"}
    assert settings.pids_limit == 256


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SANDBOX_MEMORY_LIMIT_MB", "10"),
        ("SANDBOX_MEMORY_LIMIT_MB", "lots"),
        ("SANDBOX_PORT", "70000"),
        ("SANDBOX_CPUS", "0"),
        ("SANDBOX_PIDS_LIMIT", "1"),
        ("SANDBOX_DEFAULT_TIMEOUT", "-1"),
        ("SANDBOX_POOL_SIZE", "-1"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    clean_env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    field = variable.removeprefix("SANDBOX_").lower()
    assert [e["loc"][0] for e in refused.value.errors()] == [field]


def test_a_mapping_setting_must_be_json(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SANDBOX_SANDBOX_ENV", "A=1")
    with pytest.raises(SettingsError, match='"sandbox_env"'):
        Settings()


def test_api_keys_from_the_list_and_the_keys_file(tmp_path: Path) -> None:
    assert Settings(api_keys=" a, ,b ,").load_api_keys() == ["a", "b"]
    keys = tmp_path / "keys"
    keys.write_text("# one per line\n\nsk-local-example\n  other-key  \n#disabled-key\n")
    settings = Settings(api_keys="a", api_keys_file=keys)
    assert settings.load_api_keys() == ["a", "sk-local-example", "other-key"]


def test_a_missing_keys_file_is_an_error_not_an_open_service(tmp_path: Path) -> None:
    settings = Settings(api_keys_file=tmp_path / "absent")
    with pytest.raises(FileNotFoundError):
        settings.load_api_keys()


def test_every_engine_error_has_its_own_code() -> None:
    found: list[type[errors.EngineError]] = []
    todo = [errors.EngineError]
    while todo:
        found.append(cls := todo.pop())
        todo += cls.__subclasses__()
    codes = [c.code for c in found]
    assert len(found) >= 15
    assert len(codes) == len(set(codes)), codes


# --- the image tag ---


@pytest.fixture
def image_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of sandbox-image/ that the test may change."""
    source = tmp_path / "sandbox-image"
    shutil.copytree(
        engine.image.image_source_dir(), source, ignore=shutil.ignore_patterns("wheels")
    )
    monkeypatch.setattr(engine.image, "image_source_dir", lambda: source)
    return source


def test_the_image_tag_names_its_inputs(image_source: Path) -> None:
    settings = Settings(image_base="debootstrap:bookworm")
    tag = default_image_tag(settings)
    assert re.fullmatch(r"sandbox-engine:[0-9a-f]{12}", tag)
    assert default_image_tag(settings) == tag
    assert default_image_tag(Settings(image_base="python:3.12-slim")) != tag

    (image_source / "__pycache__").mkdir(exist_ok=True)
    (image_source / "__pycache__" / "x.pyc").write_bytes(b"noise")
    (image_source / "wheels").mkdir(exist_ok=True)
    (image_source / "wheels" / "numpy.whl").write_bytes(b"downloaded")
    assert default_image_tag(settings) == tag, "caches and the wheelhouse are not inputs"

    dockerfile = image_source / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    assert default_image_tag(settings) != tag


def test_renaming_an_input_changes_the_hash(image_source: Path) -> None:
    (image_source / "extra.txt").write_text("same bytes")
    before = inputs_hash(Settings())
    (image_source / "extra.txt").rename(image_source / "other.txt")
    assert inputs_hash(Settings()) != before


# --- the command line ---


Command = tuple[str | None, argparse.ArgumentParser]


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, Command]:
    """Every command and subcommand: its summary in the parent's help, and its parser."""
    found: dict[str, Command] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            sub: argparse.ArgumentParser
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = (helps.get(name), sub)
                found.update(_subcommands(sub, f"{prefix}{name} "))
    return found


def test_every_command_and_option_has_help_text() -> None:
    commands = _subcommands(build_parser())
    assert {"image", "image build", "serve", "run", "doctor", "bench"} <= set(commands)
    missing = []
    for name, (summary, parser) in commands.items():
        if not summary:
            missing.append(name)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {action.option_strings or action.dest}")
    assert missing == []


@pytest.mark.parametrize("argv", [["image"], ["image", "build"], ["serve"], ["run"], ["bench"]])
def test_help_of_each_command(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: sandbox-engine {' '.join(argv)}")
    assert "inspect" not in out, "there is no image inspect command"


def test_bench_writes_outside_the_committed_results_unless_told() -> None:
    parser = build_parser()
    assert parser.parse_args(["bench"]).results == DEFAULT_BENCH_OUT == "bench-results"
    assert parser.parse_args(["bench", "--out", "x"]).results == "x"
    assert parser.parse_args(["bench", "--results", "y"]).results == "y"


def test_bench_refuses_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nonsense"]) == 2
    assert "unknown benchmark(s) nonsense" in capsys.readouterr().err


def test_bench_says_so_when_the_benchmarks_are_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "benchmarks" else real(name)
    )
    assert main(["bench", "acquire"]) == 2
    assert "benchmarks package is not installed" in capsys.readouterr().err


def test_bench_list_needs_no_docker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().err.split()
    assert {"acquire", "security", "timeouts"} <= set(listed)
