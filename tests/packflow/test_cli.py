import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from packflow import __version__
from packflow.cli import cli
from tests.packflow.test_project import TEMPLATE_FILES

pytestmark = pytest.mark.usefixtures("restore_import_state")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), prog_name="packflow")


def assert_failed_cleanly(result: Result) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"packflow, version {__version__}"


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("create", "validate", "export"):
        assert command in result.output


def test_usage_errors_exit_1() -> None:
    assert_failed_cleanly(run("create"))
    assert_failed_cleanly(run("frobnicate"))
    assert_failed_cleanly(run("validate", "--bogus"))
    assert_failed_cleanly(run("--bogus"))


def test_create_then_validate_passes_with_template_warnings(in_tmp: Path) -> None:
    created = run("create", "demo")
    assert created.exit_code == 0, created.output
    assert created.output == f"Success: PackflowProject @ {in_tmp / 'demo'}\n"

    result = run("validate", "demo")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert "6 warning(s) found" in lines
    assert lines[-1] == "Success: All validation checks passed."
    assert sum(line.startswith("Warning: ") for line in lines) == 6
    assert not any(line.startswith("Error:") for line in lines)


def test_validate_no_warnings_and_default_dir(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run("create", "demo")
    monkeypatch.chdir(in_tmp / "demo")
    result = run("validate", "--no-warnings")
    assert result.exit_code == 0
    assert result.output.strip() == "Success: All validation checks passed."


def test_validate_verbose_lists_checks(in_tmp: Path) -> None:
    run("create", "demo")
    result = run("validate", "demo", "-v")
    assert result.exit_code == 0
    assert "Required files:" in result.output
    assert "Smoke test:" in result.output


def test_validate_reports_errors_then_warnings_and_exits_1(in_tmp: Path) -> None:
    run("create", "demo")
    (in_tmp / "demo" / "inference.py").unlink()
    result = run("validate", "demo")
    assert_failed_cleanly(result)
    lines = result.output.strip().splitlines()
    assert lines[0] == "1 error(s), 6 warning(s) found"
    assert lines[1] == ""
    assert lines[2].startswith("Error: Inference backend file 'inference.py' is missing.")
    assert all(line.startswith("Warning: ") for line in lines[3:])

    quiet = run("validate", "demo", "--no-warnings")
    assert quiet.output.strip().splitlines()[0] == "1 error(s) found"
    assert "Warning:" not in quiet.output


def test_validate_names_the_bad_field(in_tmp: Path) -> None:
    run("create", "demo")
    config = in_tmp / "demo" / "packflow.yaml"
    config.write_text(config.read_text().replace("loader: local", "loader: remote"))
    result = run("validate", "demo")
    assert_failed_cleanly(result)
    assert "field 'loader': Input should be 'local' or 'module'" in result.output


@pytest.mark.parametrize("target", ["absent", "empty"])
def test_validate_outside_a_project_is_one_error_line(in_tmp: Path, target: str) -> None:
    (in_tmp / "empty").mkdir()
    result = run("validate", target)
    assert_failed_cleanly(result)
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: ")


def test_create_invalid_name(in_tmp: Path) -> None:
    result = run("create", "9lives")
    assert_failed_cleanly(result)
    assert result.stderr.startswith("Error: Invalid project name '9lives'.")
    assert list(in_tmp.iterdir()) == []


def test_create_existing_folder_needs_force(in_tmp: Path) -> None:
    (in_tmp / "demo").mkdir()
    result = run("create", "demo")
    assert_failed_cleanly(result)
    assert "already exists" in result.stderr
    forced = run("create", "demo", "--force")
    assert forced.exit_code == 0
    assert run("create", "demo", "-f", "--no-input").exit_code == 0


def test_export_writes_the_archive_into_the_cwd(in_tmp: Path) -> None:
    run("create", "demo")
    result = run("export", "demo")
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == f"Success: Saved Package to {in_tmp / 'demo-0.1.0.zip'}"
    assert all(line.startswith("Warning: ") for line in lines[:-1])
    assert zipfile.is_zipfile(in_tmp / "demo-0.1.0.zip")


def test_export_output_dir_option(in_tmp: Path) -> None:
    run("create", "demo")
    result = run("export", "demo", "-o", "dist", "-v")
    assert result.exit_code == 0, result.output
    assert "=== Export Validation ===" in result.output
    assert (in_tmp / "dist" / "demo-0.1.0.zip").is_file()


def test_export_blocked_by_errors_exits_1_without_archive(in_tmp: Path) -> None:
    run("create", "demo")
    config = in_tmp / "demo" / "packflow.yaml"
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "version": ""}))
    result = run("export", "demo")
    assert_failed_cleanly(result)
    assert result.stderr.startswith("Error: Export blocked due to validation errors:")
    assert "'version' is required for export but is empty." in result.stderr
    assert not list(in_tmp.glob("*.zip"))


def test_console_script_create_validate_export_round_trip(tmp_path: Path) -> None:
    """The installed `packflow` script, end to end, on a fresh project."""
    script = shutil.which("packflow", path=os.path.dirname(sys.executable))
    assert script is not None, "the packflow console script is not installed"
    env = {**os.environ, "NO_COLOR": "1"}

    def packflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [script, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )

    created = packflow("create", "round-trip", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    project = tmp_path / "round-trip"
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "inference.cpython-311.pyc").write_bytes(b"\0")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / "scratch.zip").write_bytes(b"")
    (project / "weights.bin").write_bytes(b"\1\2")

    validated = packflow("validate", cwd=project)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert validated.stdout.strip().endswith("Success: All validation checks passed.")

    exported = packflow("export", str(project), cwd=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    archive = tmp_path / "round_trip-0.1.0.zip"
    assert f"Success: Saved Package to {archive}" in exported.stdout

    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(unpacked)
    files = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()}
    assert files == TEMPLATE_FILES | {"weights.bin", "scratch.zip"}  # only exports are ignored
    assert (unpacked / "weights.bin").read_bytes() == b"\1\2"

    # The unpacked package is a working project: its own tests pass, wherever pytest runs.
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(unpacked / "tests.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr

    as_module = subprocess.run(
        [sys.executable, "-m", "packflow", "--version"], capture_output=True, text=True
    )
    assert as_module.stdout.strip() == f"packflow, version {__version__}"

    failed = packflow("validate", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: ")
    assert "Traceback" not in failed.stderr
