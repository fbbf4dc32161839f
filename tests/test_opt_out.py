"""Opt-out: ``DO_NOT_TRACK``, ``EVENTLOG_DISABLED`` or ``enabled=False``: a logger doing nothing."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import eventlog
from eventlog.testing import CapturingTransport
from tests.helpers import FULL_CONTEXT

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import MakeConfig


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No eventlog or opt-out variables from the surrounding environment."""
    for variable in (
        "EVENTLOG_BASE_URL",
        "EVENTLOG_DISABLED",
        "EVENTLOG_STRICT",
        "EVENTLOG_HOME",
        "DO_NOT_TRACK",
    ):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


@pytest.mark.parametrize("how", ["config", "DO_NOT_TRACK", "EVENTLOG_DISABLED"])
async def test_a_disabled_logger_does_nothing(
    autojump_clock: trio.testing.MockClock,
    clean_env: pytest.MonkeyPatch,
    tmp_path: Path,
    how: str,
) -> None:
    """No task, request, file or time: every method is a no-op and stats stay zero."""
    storage = tmp_path / "telemetry"
    if how == "config":
        config = eventlog.Config(enabled=False, storage_dir=str(storage))
    else:
        clean_env.setenv(how, "1")
        config = eventlog.Config(storage_dir=str(storage))
    assert config.enabled is False
    transport = CapturingTransport()
    task = trio.lowlevel.current_task()
    nurseries = task.child_nurseries
    start = trio.current_time()
    async with eventlog.open_event_logger(
        config, transport=transport, context=FULL_CONTEXT, random=random.Random(0)
    ) as log:
        assert log.enabled is False
        assert eventlog.current_logger() is log
        assert task.child_nurseries == nurseries
        log.log_event("e", {"n": 1})
        log.log_event("invalid", {"s": "text"})
        eventlog.log_event("ambient")
        log.log_experiment("exp-1", 1, user_attributes={"plan": "pro"})
        await log.flush()
        assert await log.apply_remote_config(eventlog.RemoteConfig(sampling={"e": 0.5})) is False
        assert log.stats == eventlog.Stats()
        assert trio.current_time() == start
    assert trio.current_time() == start
    assert eventlog.current_logger() is None
    assert log.stats == eventlog.Stats()
    assert transport.requests == []
    assert not storage.exists()
    assert list(tmp_path.iterdir()) == []


async def test_a_disabled_logger_never_raises_even_in_strict_mode(
    autojump_clock: trio.testing.MockClock, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Strict mode does not make a disabled logger validate anything."""
    config = eventlog.Config(enabled=False, strict=True, storage_dir=str(tmp_path / "t"))
    async with eventlog.open_event_logger(config) as log:
        bad: Any = {"s": "text", 1: math.nan}
        log.log_event("", bad)
        log.log_experiment("", True)
    assert log.stats == eventlog.Stats()
    assert list(tmp_path.iterdir()) == []


async def test_config_from_the_environment_can_be_disabled(
    autojump_clock: trio.testing.MockClock, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """open_event_logger() with DO_NOT_TRACK=1 and no base URL gives a disabled logger."""
    clean_env.setenv("DO_NOT_TRACK", "1")
    clean_env.setenv("EVENTLOG_HOME", str(tmp_path / "home"))
    async with eventlog.open_event_logger() as log:
        assert log.enabled is False
        # Disabled, nothing but the opt-out variables is read: not even EVENTLOG_HOME.
        assert log.config.storage_dir == ""
        log.log_event("e")
        await log.flush()
    assert log.stats == eventlog.Stats()
    assert list(tmp_path.iterdir()) == []


def test_a_disabled_logger_needs_no_clock(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Under a plain trio.run (real clock, no autojump) the block enters and exits at once."""
    config = eventlog.Config(enabled=False, storage_dir=str(tmp_path / "telemetry"))

    async def main() -> eventlog.Stats:
        with trio.fail_after(5):
            async with eventlog.open_event_logger(config) as log:
                log.log_event("e")
                log.log_experiment("exp-1", 1)
                await log.flush()
        return log.stats

    assert trio.run(main) == eventlog.Stats()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["garbage", "2", "disabled"])
def test_unreadable_eventlog_disabled_is_a_config_error(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, value: str
) -> None:
    """EVENTLOG_DISABLED must be a boolean word; anything else names the enabled field."""
    clean_env.setenv("EVENTLOG_DISABLED", value)
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.Config(base_url="http://127.0.0.1:8787", storage_dir=str(tmp_path))
    assert info.value.field == "enabled"


@pytest.mark.parametrize(
    ("variable", "value", "enabled"),
    [
        ("DO_NOT_TRACK", "1", False),
        ("DO_NOT_TRACK", "true", False),
        ("DO_NOT_TRACK", "0", True),
        ("DO_NOT_TRACK", "", True),
        ("DO_NOT_TRACK", "false", True),
        ("EVENTLOG_DISABLED", "yes", False),
        ("EVENTLOG_DISABLED", "0", True),
        ("EVENTLOG_DISABLED", "false", True),
    ],
)
def test_opt_out_variables(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, enabled: bool
) -> None:
    """Truthy DO_NOT_TRACK or EVENTLOG_DISABLED disables; falsy values keep it enabled."""
    clean_env.setenv(variable, value)
    config = eventlog.Config(base_url="http://127.0.0.1:8787", storage_dir=str(tmp_path))
    assert config.enabled is enabled


async def test_do_not_track_zero_still_delivers(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, clean_env: pytest.MonkeyPatch
) -> None:
    """DO_NOT_TRACK=0 is not an opt-out: the logger runs and delivers."""
    clean_env.setenv("DO_NOT_TRACK", "0")
    transport = CapturingTransport()
    async with eventlog.open_event_logger(make_config(), transport=transport) as log:
        assert log.enabled is True
        log.log_event("e")
        await log.flush()
    assert transport.event_names() == ["e"]


def test_an_enabled_config_still_requires_a_base_url(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Only a disabled config may omit base_url."""
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.Config(storage_dir=str(tmp_path))
    assert info.value.field == "base_url"
