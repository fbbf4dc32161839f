"""Environment detection: the CI variables, this interpreter and platform, the WSL version."""

from __future__ import annotations

import platform
import sys

import pytest

from eventlog._environment import CI_VARIABLES, detect_environment, detect_wsl_version


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
