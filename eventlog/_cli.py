"""The ``eventlog`` command line; filled in below."""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``eventlog`` console script and ``python -m eventlog``."""
    raise SystemExit("eventlog: the command line is being assembled")
