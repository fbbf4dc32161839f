"""Facts about the machine (detected once) and the process (per batch): docs/events.md."""

from __future__ import annotations

import os
import platform
import sys
from typing import Final, final

from eventlog._clock import SystemClock

__all__ = [
    "CI_VARIABLES",
    "EnvFacts",
    "ProcessFacts",
    "detect_environment",
    "detect_wsl_version",
]

# Set by the CI services people use most; any of them present means a CI run.
CI_VARIABLES: Final = (
    "CI",
    "CONTINUOUS_INTEGRATION",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "BUILDKITE",
    "JENKINS_URL",
    "TEAMCITY_VERSION",
    "TF_BUILD",
    "BITBUCKET_BUILD_NUMBER",
    "CODEBUILD_BUILD_ID",
    "DRONE",
    "APPVEYOR",
    "SEMAPHORE",
)
_FALSY: Final = frozenset({"", "0", "false", "no", "off"})


def detect_wsl_version(proc_version: str | None = None) -> str | None:
    """``"2"`` or ``"1"`` under Windows Subsystem for Linux, else None.

    >>> detect_wsl_version("Linux version 5.15.90.1-microsoft-standard-WSL2")
    '2'
    >>> detect_wsl_version("Linux version 4.4.0-19041-Microsoft")
    '1'
    >>> detect_wsl_version("Linux version 6.1.0-13-amd64") is None
    True
    """
    if proc_version is None:
        try:
            with open("/proc/version", encoding="utf-8", errors="replace") as file:
                proc_version = file.read()
        except OSError:
            return None
    lowered = proc_version.lower()
    if "microsoft" not in lowered:
        return None
    return "2" if "wsl2" in lowered or "microsoft-standard" in lowered else "1"


EnvFacts = dict[str, str | int | float | bool]
"""The ``env`` object of an event."""


def detect_environment(environ: dict[str, str] | None = None) -> EnvFacts:
    """The ``env`` object of every event: platform, arch, versions, CI, WSL."""
    environ = dict(os.environ) if environ is None else environ
    env: EnvFacts = {
        "platform": sys.platform,
        "arch": platform.machine() or "unknown",
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "os_version": platform.release() or "unknown",
        "is_ci": any(environ.get(name, "").strip().lower() not in _FALSY for name in CI_VARIABLES),
    }
    wsl = detect_wsl_version() if sys.platform == "linux" else None
    if wsl is not None:
        env["wsl_version"] = wsl
    return env


def _process_start_wall() -> float | None:
    """When this process started (epoch seconds), from /proc; None elsewhere."""
    try:
        with open("/proc/self/stat", "rb") as file:
            stat = file.read()
        with open("/proc/stat", "rb") as file:
            btime = next(int(line.split()[1]) for line in file if line.startswith(b"btime "))
        # Field 22 (starttime, in clock ticks since boot) follows the ")" of the comm field.
        start_ticks = int(stat.rsplit(b")", 1)[1].split()[19])
        return btime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


@final
class ProcessFacts:
    """What the ``process`` object of events is built from: the start, the current RSS."""

    def __init__(self, *, opened_at: float) -> None:
        # Uptime is measured on the logger's clock, so that it agrees with event
        # timestamps even under a test clock: the process start is placed on
        # that clock by subtracting the process's real age at open.
        real_start = _process_start_wall()
        age = 0.0 if real_start is None else max(SystemClock().wall_time() - real_start, 0.0)
        self.start = opened_at - age
        self._page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def rss_bytes(self) -> int | None:
        """Resident set size now; None where it cannot be read."""
        try:
            with open("/proc/self/statm", "rb") as file:
                return int(file.read().split()[1]) * self._page_size
        except (OSError, ValueError, IndexError):
            return None
