"""The quantgpu command: version, info, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from quantgpu import __version__
from quantgpu.backend import gpu_available

QUANTGPU = Path(sys.executable).parent / "quantgpu"


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(QUANTGPU), *args], capture_output=True, text=True, timeout=120, **kwargs)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_console_script_is_installed_in_the_venv():
    assert QUANTGPU.exists()


def test_version():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"quantgpu {__version__}"


def test_info_json():
    proc = run("info", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["version"] == __version__
    assert info["backends"] == {"numpy": True, "cupy": gpu_available()}
    assert (info["gpu"] is None) == (not gpu_available())
    from importlib.metadata import version

    assert info["slicer_core"] == version("slicer-core")


@pytest.mark.parametrize("command", ["calcium", "perfusion", "mammo", "demo", "web", "info"])
def test_subcommands_are_registered(command):
    proc = run(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"usage: quantgpu {command}" in proc.stdout


def test_missing_input_exits_2_with_one_line():
    assert_one_line_error(run("calcium", "/no/such/dir"), "/no/such/dir")


def test_usage_errors_exit_2():
    assert_one_line_error(run("no-such-command"), "invalid choice")
    assert_one_line_error(run("calcium"), "required")
    assert_one_line_error(run("demo", "nonsense"), "unknown demo module")


@pytest.mark.skipif(gpu_available(), reason="checks the message on machines without a GPU")
def test_gpu_backend_without_device_exits_2(tmp_path):
    proc = run("demo", "--backend", "gpu", "--output-dir", str(tmp_path / "out"))
    assert_one_line_error(proc, "backend 'gpu' was requested but no usable CUDA device")
    assert not (tmp_path / "out").exists()


def test_internal_errors_exit_1_without_traceback(monkeypatch, capsys):
    from quantgpu import cli

    def boom(args):
        raise RuntimeError("unexpected state")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(func=boom)
    assert cli.main(["info"]) == 0  # info has its own func; the default applies to the bare command
    assert cli.main([]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: unexpected state" in err and "Traceback" not in err
