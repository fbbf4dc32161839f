"""Value types of the command line's options, shared by every command."""

from __future__ import annotations

import argparse
import math
from typing import Final

from eventlog._config import SERVICE_NAME_PATTERN, is_service_name

__all__ = [
    "MAX_FAULT_SECONDS",
    "fault_seconds",
    "non_negative_seconds",
    "port",
    "positive_int",
    "positive_seconds",
    "rate",
    "service_name",
    "status",
]

MAX_FAULT_SECONDS: Final = 86_400.0
"""The longest outage, latency or ``Retry-After`` the collector accepts: a day.

The collector's ``/api/control`` route uses the same bound; it is kept here
because importing the collector needs its extra, and parsing must not.
"""


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def non_negative_seconds(text: str) -> float:
    """A finite number of seconds, 0 or more."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds greater than 0."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def fault_seconds(text: str) -> float:
    """A number of seconds from 0 to :data:`MAX_FAULT_SECONDS`."""
    value = _number(text)
    if not (math.isfinite(value) and 0 <= value <= MAX_FAULT_SECONDS):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds from 0 to {MAX_FAULT_SECONDS:g}"
        )
    return value


def port(text: str) -> int:
    """A TCP port, 0 to 65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return value


def rate(text: str) -> float:
    """A probability in [0, 1]."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a probability in [0, 1]")
    return value


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def status(text: str) -> int:
    """A 4xx or 5xx HTTP status."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 400 <= value <= 599:
        raise argparse.ArgumentTypeError(f"{text!r} is not a 4xx or 5xx status")
    return value


def service_name(text: str) -> str:
    """A name ``Config.service_name`` accepts."""
    if not is_service_name(text):
        raise argparse.ArgumentTypeError(f"{text!r} must match {SERVICE_NAME_PATTERN}")
    return text
