"""Config: defaults, environment overrides, and a ConfigError naming each bad field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import eventlog

BASE = "http://127.0.0.1:8787"


def test_defaults_match_the_design(tmp_path: Path) -> None:
    """Every default is the one of design section 2."""
    config = eventlog.Config(base_url=BASE, storage_dir=str(tmp_path))
    assert config.path == "/api/event_logging/batch"
    assert config.scheduled_delay == 10.0
    assert config.max_export_batch_size == 200
    assert config.max_queue_size == 8192
    assert config.export_timeout == 10.0
    assert config.batch_delay == 0.1
    assert (config.base_backoff, config.max_backoff) == (0.5, 30.0)
    assert config.backoff_jitter == 0.2
    assert config.max_attempts == 8
    assert config.shutdown_timeout == 5.0
    assert config.skip_auth is False
    assert config.gzip is False
    assert config.endpoint == BASE + "/api/event_logging/batch"


def test_session_ids_are_random_and_safe(tmp_path: Path) -> None:
    """Two configs get two different session ids, each usable in a file name."""
    a = eventlog.Config(base_url=BASE, storage_dir=str(tmp_path))
    b = eventlog.Config(base_url=BASE, storage_dir=str(tmp_path))
    assert a.session_id != b.session_id
    assert a.session_id.isalnum()


def test_environment_supplies_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """EVENTLOG_BASE_URL, EVENTLOG_HOME and OTEL_LOGS_EXPORT_INTERVAL fill unset fields."""
    monkeypatch.setenv("EVENTLOG_BASE_URL", "https://events.example.com/")
    monkeypatch.setenv("EVENTLOG_HOME", str(tmp_path))
    monkeypatch.setenv("OTEL_LOGS_EXPORT_INTERVAL", "2500")
    config = eventlog.Config()
    assert config.base_url == "https://events.example.com"
    assert config.storage_dir == str(tmp_path / "telemetry")
    assert config.scheduled_delay == 2.5


def test_explicit_values_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An argument beats the environment variable for the same field."""
    monkeypatch.setenv("EVENTLOG_BASE_URL", "https://events.example.com")
    monkeypatch.setenv("OTEL_LOGS_EXPORT_INTERVAL", "2500")
    config = eventlog.Config(base_url=BASE, scheduled_delay=1.0, storage_dir="/tmp/x")
    assert config.base_url == BASE
    assert config.scheduled_delay == 1.0


def test_default_storage_dir_follows_xdg_and_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without EVENTLOG_HOME the spool lives under XDG_STATE_HOME, per service."""
    monkeypatch.delenv("EVENTLOG_HOME", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    config = eventlog.Config(base_url=BASE, service_name="myapp")
    assert config.storage_dir == str(tmp_path / "eventlog" / "myapp" / "telemetry")


def test_storage_dir_is_expanded_and_accepts_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """``~`` is expanded and a pathlib.Path is accepted."""
    monkeypatch.setenv("HOME", "/home/someone")
    assert eventlog.Config(base_url=BASE, storage_dir="~/t").storage_dir == "/home/someone/t"
    config = eventlog.Config(base_url=BASE, storage_dir=Path("/var/tmp/t"))  # type: ignore[arg-type]
    assert config.storage_dir == "/var/tmp/t"


def test_bad_environment_interval_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-numeric OTEL_LOGS_EXPORT_INTERVAL is a ConfigError on scheduled_delay."""
    monkeypatch.setenv("OTEL_LOGS_EXPORT_INTERVAL", "soon")
    with pytest.raises(eventlog.ConfigError, match="OTEL_LOGS_EXPORT_INTERVAL") as info:
        eventlog.Config(base_url=BASE)
    assert info.value.field == "scheduled_delay"


def test_missing_base_url_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no base_url and no EVENTLOG_BASE_URL, construction fails on base_url."""
    monkeypatch.delenv("EVENTLOG_BASE_URL", raising=False)
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.Config()
    assert info.value.field == "base_url"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_url", "ftp://127.0.0.1"),
        ("base_url", "http://"),
        ("base_url", "not a url"),
        ("base_url", "http://127.0.0.1:99999"),
        ("base_url", "http://events.example.com"),
        ("base_url", "https://user:secret@events.example.com"),
        ("base_url", "https://events.example.com/?q=1"),
        ("base_url", 42),
        ("path", "api/batch"),
        ("path", "/api?x=1"),
        ("session_id", "../../etc"),
        ("session_id", "a/b"),
        ("session_id", ""),
        ("session_id", "x" * 129),
        ("service_name", "my app"),
        ("service_version", "1 2"),
        ("storage_dir", 3),
        ("storage_dir", b"/tmp"),
        ("scheduled_delay", 0),
        ("scheduled_delay", -1.0),
        ("scheduled_delay", float("nan")),
        ("scheduled_delay", "10"),
        ("export_timeout", 0.0),
        ("batch_delay", -0.1),
        ("base_backoff", -1),
        ("max_backoff", float("inf")),
        ("max_backoff", 0.1),
        ("shutdown_timeout", -5),
        ("max_export_batch_size", 0),
        ("max_export_batch_size", 2.5),
        ("max_export_batch_size", True),
        ("max_queue_size", 10),
        ("max_attempts", 0),
        ("backoff_jitter", 1.0),
        ("backoff_jitter", -0.1),
        ("skip_auth", "yes"),
        ("gzip", 1),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(
    tmp_path: Path, field: str, value: Any
) -> None:
    """Each bad value fails at construction with ConfigError.field set to its field."""
    kwargs: dict[str, Any] = {"base_url": BASE, "storage_dir": str(tmp_path), field: value}
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.Config(**kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8787",
        "http://localhost",
        "http://[::1]:80",
        "http://127.9.9.9",
        "https://x.io",
    ],
)
def test_loopback_http_and_any_https_are_accepted(tmp_path: Path, url: str) -> None:
    """Plain http is fine on loopback; https anywhere."""
    assert eventlog.Config(base_url=url, storage_dir=str(tmp_path)).base_url == url


def test_config_is_frozen(tmp_path: Path) -> None:
    """A Config cannot be changed after construction."""
    config = eventlog.Config(base_url=BASE, storage_dir=str(tmp_path))
    with pytest.raises(AttributeError):
        config.max_attempts = 3  # type: ignore[misc]


def test_max_attempts_none_means_unbounded(tmp_path: Path) -> None:
    """max_attempts=None is accepted."""
    assert (
        eventlog.Config(base_url=BASE, storage_dir=str(tmp_path), max_attempts=None).max_attempts
        is None
    )


def test_durations_are_floats(tmp_path: Path) -> None:
    """Integer durations are stored as floats."""
    config = eventlog.Config(base_url=BASE, storage_dir=str(tmp_path), scheduled_delay=3)
    assert isinstance(config.scheduled_delay, float)
    assert os.path.isabs(config.storage_dir)
