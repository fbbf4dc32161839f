"""Development sessions: ``nox -s tests``, ``lint``, ``typecheck``, ``docs``, ``demo``, ...

``nox --list`` shows them all; ``nox`` alone runs the default ones.
"""

from __future__ import annotations

import glob
import shutil
from pathlib import Path

import nox

nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "integration",
    "tests_asyncio",
    "docs",
    "build",
]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
# Branch coverage of eventlog/: of the fast session alone, and of both
# sessions together (every exclusion is justified where it is made).
FAST_COVERAGE_FLOOR = 98
COVERAGE_FLOOR = 98


def _group(name: str) -> list[str]:
    """Requirements of a dependency group (pip < 25.1 cannot install groups itself)."""
    return list(nox.project.dependency_groups(PYPROJECT, name))


def _pytest_under_coverage(session: nox.Session, env: dict[str, str], *args: str) -> None:
    """pytest with ``args`` (then the session's own) under coverage, into ``env``'s data file."""
    session.run("coverage", "erase", env=env)
    session.run("coverage", "run", "-m", "pytest", *args, *session.posargs, env=env)
    session.run("coverage", "combine", "--quiet", env=env)


@nox.session
def tests(session: nox.Session) -> None:
    """The fast suite, in virtual time, with branch coverage: everything not marked integration.

    Its coverage data ends in .coverage-tests, not .coverage.*: any
    ``coverage report`` combines (and deletes) those. ``coverage combine
    --keep`` of both sessions' files then ``coverage report`` give the figure
    of this session and ``nox -s integration`` together (docs/contributing.md).
    """
    session.install("-e", ".[collector]", *_group("tests"))
    env = {"COVERAGE_FILE": ".coverage-tests"}
    # One worker per CPU: the fast suite is CPU-bound, and in virtual time it
    # does not care how busy the machine is.
    _pytest_under_coverage(session, env, "-m", "not integration", "-n", "auto")
    # The fast suite alone; the floor of both sessions together is nox -s integration's.
    session.run("coverage", "report", f"--fail-under={FAST_COVERAGE_FLOOR}", env=env)


@nox.session
def integration(session: nox.Session) -> None:
    """Real time, real sockets, processes: the integration tests, and the property tests at length.

    The collector, crash and multi-process tests, the benchmark sink, the CLI
    as a subprocess and a built wheel in a fresh venv; the hypothesis tests run
    again under the ``thorough`` profile. Each test is bounded (pytest-timeout
    dumps every thread's stack and ends the run). Coverage goes to
    .coverage-integration, reported here; after ``nox -s tests`` both
    sessions together must reach ``COVERAGE_FLOOR``.
    """
    session.install("-e", ".[collector]", *_group("integration"))
    env = {"COVERAGE_FILE": ".coverage-integration", "HYPOTHESIS_PROFILE": "thorough"}
    _pytest_under_coverage(
        session,
        env,
        "-m",
        "integration or hypothesis",
        "--timeout=300",
        "--timeout-method=thread",
        # pytest-timeout dumps the stacks of a hung test; faulthandler's dump
        # after 60 s would print those of the long ones (the crash loop) too.
        "-o",
        "faulthandler_timeout=0",
    )
    session.run("coverage", "report", env=env)
    if Path(".coverage-tests").exists():
        # After nox -s tests (as in .ci/run): both sessions together.
        both = {"COVERAGE_FILE": ".coverage"}
        session.run(
            "coverage",
            "combine",
            "--keep",
            "--quiet",
            ".coverage-tests",
            ".coverage-integration",
            env=both,
        )
        session.run("coverage", "report", f"--fail-under={COVERAGE_FLOOR}", env=both)


@nox.session
def tests_asyncio(session: nox.Session) -> None:
    """The backend-neutral behaviour again, on asyncio through anyio's pytest plugin.

    A separate run: pytest-trio's trio_mode would claim every async test.
    """
    session.install("-e", ".[collector]", *_group("tests"))
    session.run(
        "pytest",
        "-c",
        "tests/compat_asyncio/pytest.ini",
        "-p",
        "no:trio",
        "tests/compat_asyncio",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*_group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, the tests and this file."""
    session.install("-e", ".[collector]", *_group("typing"))
    session.run("mypy", "eventlog", "tests", "noxfile.py", "benchmarks", "examples")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (mkdocs, material theme) into site/; any warning fails it."""
    session.install("-e", ".[collector]", *_group("docs"))
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        "site",
        # mkdocs-material >= 9.7 prints a banner about MkDocs 2.0 on every build.
        env={"NO_MKDOCS_2_WARNING": "1"},
    )
    # What --strict does not catch: examples rendered as blockquotes, no search index.
    session.run("python", "docs/_ext/check_site.py", "site")


@nox.session
def build(session: nox.Session) -> None:
    """The sdist and the wheel into dist/, checked by twine; the changelog's draft renders."""
    session.install(*_group("build"))
    shutil.rmtree("dist", ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", "dist")
    session.run("twine", "check", "--strict", *sorted(glob.glob("dist/*")))
    # Every fragment in newsfragments/ renders (a typo in a type fails here, not at release).
    session.run("towncrier", "build", "--draft", "--version", "next")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: ``eventlog demo`` on the embedded collector, through an outage."""
    session.install("-e", ".[collector]")
    session.run("eventlog", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; figures are ratios against a baseline measured in the same run."""
    session.install("-e", ".[collector]", *_group("bench"))
    session.run("python", "-m", "benchmarks", *session.posargs)
