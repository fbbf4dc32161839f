"""Environment detection: the CI variables, this interpreter and platform, the WSL version."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

from eventlog import _environment
from eventlog._environment import (
    CI_VARIABLES,
    ProcessFacts,
    detect_environment,
    detect_wsl_version,
)


@pytest.mark.parametrize("variable", CI_VARIABLES)
@pytest.mark.parametrize("value", ["true", "1"])
def test_each_ci_variable_marks_a_ci_run(variable: str, value: str) -> None:
    """Any of the known CI variables set to a true value makes is_ci True."""
    assert detect_environment(environ={variable: value})["is_ci"] is True


@pytest.mark.parametrize(
    "environ",
    [{}, {"CI": "false"}, {"CI": "0"}, {"CI": ""}, {"HOME": "/root", "PATH": "/usr/bin"}],
    ids=["empty", "ci-false", "ci-0", "ci-empty", "unrelated"],
)
def test_no_true_ci_variable_is_not_ci(environ: dict[str, str]) -> None:
    """Without a true CI variable, is_ci is False."""
    assert detect_environment(environ=environ)["is_ci"] is False


def test_detected_environment_describes_this_interpreter() -> None:
    """platform, arch, versions and implementation are this machine's."""
    env = detect_environment(environ={})
    assert {k: v for k, v in env.items() if k != "wsl_version"} == {
        "platform": sys.platform,
        "arch": platform.machine() or "unknown",
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "os_version": platform.release() or "unknown",
        "is_ci": False,
    }


@pytest.mark.parametrize(
    ("proc_version", "expected"),
    [
        ("Linux version 5.15.153.1-microsoft-standard-WSL2 (root@1234) (gcc 11.2.0)", "2"),
        ("Linux version 5.10.16.3-microsoft-standard-WSL2", "2"),
        ("Linux version 4.19.128-microsoft-standard (oe-user@oe-host)", "2"),
        ("Linux version 6.6.36.3-MICROSOFT-STANDARD-WSL2", "2"),
        ("Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com) (gcc 5.4.0)", "1"),
        ("Linux version 4.4.0-22000-Microsoft", "1"),
        ("Linux version 6.1.0-13-amd64 (debian-kernel@lists.debian.org)", None),
        ("Linux version 6.8.0-45-generic (buildd@lcy02-amd64-075) (Ubuntu)", None),
        ("", None),
    ],
)
def test_wsl_version_from_proc_version(proc_version: str, expected: str | None) -> None:
    """WSL 2 kernels say microsoft-standard or WSL2, WSL 1 just Microsoft; others are None."""
    assert detect_wsl_version(proc_version) == expected


def test_ci_off_is_not_a_ci_run() -> None:
    """CI=off reads as false, like the other falsy spellings."""
    assert detect_environment(environ={"CI": "off"})["is_ci"] is False


# -- /proc, faked: the files eventlog/_environment.py reads, from a directory of the test's --


@pytest.fixture
def fake_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory that stands for /proc in eventlog/_environment.py (only there)."""
    root = tmp_path / "proc"
    (root / "self").mkdir(parents=True)

    def proc_open(path: str, *args: Any, **kwargs: Any) -> IO[Any]:
        # The caller closes it (its own with block).
        opened: IO[Any] = open(root / Path(path).relative_to("/proc"), *args, **kwargs)  # noqa: SIM115
        return opened

    # A module global shadows the builtin for that module's own calls only.
    monkeypatch.setattr(_environment, "open", proc_open, raising=False)
    return root


def write_stat(proc: Path, *, btime: str | None, start_ticks: str) -> None:
    """Fake /proc/stat (``btime``, no such line if None) and /proc/self/stat (``start_ticks``)."""
    (proc / "stat").write_text("cpu  1 2 3 4\n" + ("" if btime is None else f"btime {btime}\n"))
    # 22 fields; the comm field (2) has a space and a ")" of its own, as a process's name may.
    fields = ["S", *map(str, range(4, 22)), start_ticks, "7", "8"]
    (proc / "self" / "stat").write_text(f"42 (my (app)) {' '.join(fields)}\n")


def test_without_a_readable_proc_version_there_is_no_wsl_version(fake_proc: Path) -> None:
    """No /proc/version (a sandbox, a non-Linux system): not WSL, and no wsl_version."""
    assert detect_wsl_version() is None
    assert "wsl_version" not in detect_environment(environ={})


@pytest.mark.skipif(sys.platform != "linux", reason="only looked for on Linux")
def test_under_wsl_the_environment_says_which_version(fake_proc: Path) -> None:
    """A WSL 2 kernel's /proc/version gives the env object wsl_version "2"."""
    (fake_proc / "version").write_text("Linux version 5.15.153.1-microsoft-standard-WSL2\n")
    assert detect_environment(environ={})["wsl_version"] == "2"


def test_the_process_start_places_uptime_on_the_loggers_clock(fake_proc: Path) -> None:
    """Started 100 s before the logger opened at 1000.0: the start is 900.0 on its clock."""
    ticks = os.sysconf("SC_CLK_TCK")
    started = int(time.time()) - 100
    write_stat(fake_proc, btime=str(started - 50), start_ticks=str(50 * ticks))
    facts = ProcessFacts(opened_at=1000.0)
    assert facts.start == pytest.approx(900.0, abs=2.0)


@pytest.mark.parametrize(
    ("btime", "start_ticks"),
    [
        (None, "100"),  # no btime line
        ("12x", "100"),  # btime not a number
        ("1700000000", "1.5e3"),  # starttime not a number of ticks
    ],
    ids=["no-btime", "bad-btime", "bad-starttime"],
)
def test_an_unreadable_process_start_gives_uptime_from_the_open(
    fake_proc: Path, btime: str | None, start_ticks: str
) -> None:
    """When the process start cannot be read, uptime counts from the logger's open."""
    write_stat(fake_proc, btime=btime, start_ticks=start_ticks)
    assert ProcessFacts(opened_at=1000.0).start == 1000.0


def test_a_stat_line_cut_short_gives_uptime_from_the_open(fake_proc: Path) -> None:
    """A /proc/self/stat without its 22nd field: uptime counts from the logger's open."""
    write_stat(fake_proc, btime="1700000000", start_ticks="100")
    (fake_proc / "self" / "stat").write_text("42 (app) S 1 2\n")
    assert ProcessFacts(opened_at=1000.0).start == 1000.0


def test_without_proc_there_is_no_start_and_no_rss(fake_proc: Path) -> None:
    """No /proc files at all: uptime counts from the open and rss_bytes is None."""
    facts = ProcessFacts(opened_at=1000.0)
    assert facts.start == 1000.0
    assert facts.rss_bytes() is None


@pytest.mark.parametrize(
    ("statm", "expected_pages"), [("100 25 3 4 0 5 0\n", 25), ("100\n", None), ("x y\n", None)]
)
def test_rss_is_the_second_field_of_statm_in_pages(
    fake_proc: Path, statm: str, expected_pages: int | None
) -> None:
    """rss_bytes is statm's resident pages times the page size; None if statm is malformed."""
    (fake_proc / "self" / "statm").write_text(statm)
    rss = ProcessFacts(opened_at=0.0).rss_bytes()
    page = os.sysconf("SC_PAGE_SIZE")
    assert rss == (None if expected_pages is None else expected_pages * page)
