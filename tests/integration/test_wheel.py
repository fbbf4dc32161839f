"""The built wheel, installed in a fresh venv, runs ``eventlog --version`` and the demo.

What a user gets from ``pip install 'eventlog-sdk[collector]'``: the wheel is
built from this checkout (``pip wheel --no-deps``), installed with its
collector extra into a new venv that sees none of the developer's packages
(pip uses the machine's configured index and wheel cache), and its console
script runs from there. The test skips, saying so, only when the package
index cannot be reached.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

import eventlog

ROOT: Final = Path(__file__).resolve().parents[2]
PIP_TIMEOUT: Final = 180
"""Seconds for one pip command (a build, or an install of the extra's dependencies)."""
RUN_TIMEOUT: Final = 60
"""Seconds for ``eventlog --version`` or the demo."""
BUILD_BACKEND: Final = "hatchling"
"""What ``pip wheel`` fetches first: reachable, the index is."""


def clean_env(home: Path) -> dict[str, str]:
    """The environment without the developer's venv, paths or eventlog settings."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith(("EVENTLOG_", "OTEL_"))
    }
    env.pop("DO_NOT_TRACK", None)
    env.update(EVENTLOG_HOME=str(home), PYTHONIOENCODING="utf-8", COLUMNS="80")
    return env


def run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def pip(python: Path | str, *args: str, cwd: Path, env: dict[str, str]) -> None:
    """Run ``python -m pip <args>``, failing with its output if it fails."""
    done = run([str(python), "-m", "pip", *args, "--no-input"], cwd, env, PIP_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr


def table_value(output: str, label: str) -> int:
    """The number in the demo's final table's ``label`` row."""
    values = re.findall(rf"^\W*{label}\s*[│|]\s*(\d+)\s*[│|]", output, re.MULTILINE)
    assert values, f"no {label!r} row in:\n{output}"
    return int(values[-1])


def require_index(work: Path, env: dict[str, str]) -> None:
    """Skip the test if pip cannot fetch the build backend: the index is unreachable."""
    command = [sys.executable, "-m", "pip", "download", "--no-input", "--no-deps"]
    probe = run([*command, "--dest", str(work / "probe"), BUILD_BACKEND], work, env, PIP_TIMEOUT)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"package index unreachable (pip download {BUILD_BACKEND}: {last})")


def test_the_wheel_in_a_fresh_venv_runs_version_and_the_demo(tmp_path: Path) -> None:
    """``eventlog --version`` prints this version; ``eventlog demo`` survives an outage, 0 lost."""
    env = clean_env(tmp_path / "home")
    require_index(tmp_path, env)

    dist = tmp_path / "dist"
    pip(
        sys.executable,
        "wheel",
        "--no-deps",
        "--wheel-dir",
        str(dist),
        str(ROOT),
        cwd=tmp_path,
        env=env,
    )
    [wheel] = dist.glob("eventlog_sdk-*.whl")
    assert wheel.name.startswith(f"eventlog_sdk-{eventlog.__version__}-")

    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, PIP_TIMEOUT)
    assert made.returncode == 0, made.stdout + made.stderr
    python = venv / "bin" / "python"
    pip(python, "install", f"{wheel}[collector]", cwd=tmp_path, env=env)

    # The venv's own copy, not this checkout: nothing of the developer's leaks in.
    where = run([str(python), "-c", "import eventlog; print(eventlog.__file__)"], tmp_path, env, 30)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout

    script = venv / "bin" / "eventlog"
    version = run([str(script), "--version"], tmp_path, env, RUN_TIMEOUT)
    assert version.returncode == 0, version.stdout + version.stderr
    assert version.stdout.split() == ["eventlog", eventlog.__version__]

    demo = run(
        [str(script), "demo", "--events", "300", "--outage", "1"], tmp_path, env, RUN_TIMEOUT
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert table_value(demo.stdout, "emitted") == 300
    assert table_value(demo.stdout, "delivered") == 300
    assert table_value(demo.stdout, "lost") == 0
