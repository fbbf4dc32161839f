"""Benchmarks of eventlog, run with ``python -m benchmarks`` (``nox -s bench``).

Every figure is reported next to a baseline measured in the same run, so the
ratios mean something across machines while the absolute numbers do not.
Benchmarks are not tests: they always exit 0, whatever they measure.
"""
