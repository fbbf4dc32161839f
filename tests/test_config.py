"""Config: defaults, environment overrides, and a ConfigError naming each bad field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import eventlog

BASE = "http://127.0.0.1:8787"


def test_defaults_match_the_design(tmp_path: Path) -> None:
    """Every default is the one docs/configuration.md gives."""
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
    assert config.max_retry_after == 300.0
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
        ("base_url", "http://127.0.0.1:8787\n"),
        ("base_url", " https://events.example.com"),
        ("base_url", "https://events.example.com "),
        ("base_url", "https://events.example.com\t"),
        ("base_url", "https://events example.com"),
        ("base_url", "https://events.example\x00.com"),
        ("base_url", "https://events.example.com/a\x7fb"),
        ("base_url", "https://events.example.com/a b"),
        ("base_url", "http://127.0.0.1:0"),
        ("base_url", "https://events.example.com:0"),
        ("base_url", "https://events.example.com:65536"),
        ("base_url", "https://events.example.com:-1"),
        ("base_url", "http://:8787"),
        ("base_url", "https://events..example.com"),
        ("base_url", "https://.example.com"),
        ("base_url", "https://ev<ents.example.com"),
        ("base_url", "https://events%2eexample.com"),
        ("base_url", "http://[::1]x"),
        ("base_url", "http://[::1"),
        ("base_url", "http://[::g]"),
        ("base_url", "http://128.1"),
        ("base_url", "http://127.0.0.08"),
        ("base_url", "http://localhost.."),
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
        ("max_retry_after", -1),
        ("max_retry_after", float("nan")),
        ("max_retry_after", float("inf")),
        ("max_retry_after", "300"),
        ("enabled", 1),
        ("enabled", "yes"),
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
        "http://127.1",
        "http://127.1:8787",
        "http://localhost.",
        "http://LOCALHOST.:8787",
        "http://localhost.localdomain.",
        "http://0x7f.1",
        "http://0177.0.0.1",
        "http://2130706433",
        "https://bücher.example",
        "https://events.example.com.",
        "https://events.example.com:0443",
        "https://events.example.com:",
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


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@events.example.com\n",
        " https://user:secret@events.example.com",
        "https://user:secret@events example.com",
        "https:user:secret@events.example.com",
        "https://user:secret@[::1",
        "https://events.example.com/user:secret@?q=1",
    ],
)
def test_base_url_errors_never_show_credentials(tmp_path: Path, url: str) -> None:
    """A refused base_url holding a password is named, never echoed."""
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.Config(base_url=url, storage_dir=str(tmp_path))
    assert info.value.field == "base_url"
    assert "secret" not in str(info.value)


def test_base_url_from_the_environment_is_not_stripped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """EVENTLOG_BASE_URL with a trailing newline is refused, naming base_url and the variable."""
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    monkeypatch.delenv("EVENTLOG_DISABLED", raising=False)
    monkeypatch.setenv("EVENTLOG_BASE_URL", "https://events.example.com\n")
    with pytest.raises(eventlog.ConfigError, match="EVENTLOG_BASE_URL") as info:
        eventlog.Config(storage_dir=str(tmp_path))
    assert info.value.field == "base_url"


def test_a_remote_base_url_is_validated_strictly(tmp_path: Path) -> None:
    """RemoteConfig cannot bring in a base_url the constructor would refuse."""
    config = eventlog.Config(base_url=BASE, storage_dir=str(tmp_path))
    for url in ("https://events.example.com\n", "http://127.0.0.1:0"):
        with pytest.raises(eventlog.ConfigError) as info:
            eventlog.RemoteConfig(base_url=url).merged_into(config)
        assert info.value.field == "base_url"
    moved = eventlog.RemoteConfig(base_url="http://127.1:9000/").merged_into(config)
    assert moved.base_url == "http://127.1:9000"


# -- max_retry_after ---------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, 300.0), ("", 300.0), ("45", 45.0)])
def test_max_retry_after_default_and_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None, expected: float
) -> None:
    """max_retry_after is 300 s, or EVENTLOG_MAX_RETRY_AFTER (seconds); an argument wins."""
    if value is None:
        monkeypatch.delenv("EVENTLOG_MAX_RETRY_AFTER", raising=False)
    else:
        monkeypatch.setenv("EVENTLOG_MAX_RETRY_AFTER", value)
    assert eventlog.Config(base_url=BASE, storage_dir=str(tmp_path)).max_retry_after == expected
    config = eventlog.Config(base_url=BASE, storage_dir=str(tmp_path), max_retry_after=5)
    assert config.max_retry_after == 5.0
    assert isinstance(config.max_retry_after, float)


def test_max_retry_after_is_independent_of_max_backoff(tmp_path: Path) -> None:
    """max_retry_after may be below or above max_backoff."""
    for cap in (0, 1.0, 86400):
        config = eventlog.Config(base_url=BASE, storage_dir=str(tmp_path), max_retry_after=cap)
        assert config.max_retry_after == cap


# -- environment values, enabled or not ---------------------------------------------------


@pytest.fixture
def enabled_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No opt-out variable and no environment default from the surrounding environment."""
    for variable in (
        "DO_NOT_TRACK",
        "EVENTLOG_DISABLED",
        "EVENTLOG_BASE_URL",
        "EVENTLOG_STRICT",
        "EVENTLOG_MAX_RETRY_AFTER",
        "OTEL_LOGS_EXPORT_INTERVAL",
    ):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


BAD_ENVIRONMENT = [
    ("EVENTLOG_BASE_URL", "http://events.example.com", "base_url"),
    ("EVENTLOG_BASE_URL", "https://events.example.com\n", "base_url"),
    ("EVENTLOG_BASE_URL", "https://events example.com", "base_url"),
    ("OTEL_LOGS_EXPORT_INTERVAL", "abc", "scheduled_delay"),
    ("OTEL_LOGS_EXPORT_INTERVAL", "nan", "scheduled_delay"),
    ("OTEL_LOGS_EXPORT_INTERVAL", "-5", "scheduled_delay"),
    ("OTEL_LOGS_EXPORT_INTERVAL", "0", "scheduled_delay"),
    ("EVENTLOG_STRICT", "maybe", "strict"),
    ("EVENTLOG_MAX_RETRY_AFTER", "abc", "max_retry_after"),
    ("EVENTLOG_MAX_RETRY_AFTER", "-1", "max_retry_after"),
    ("EVENTLOG_MAX_RETRY_AFTER", "inf", "max_retry_after"),
]


@pytest.mark.parametrize(("variable", "value", "field"), BAD_ENVIRONMENT)
def test_a_bad_environment_value_names_the_field_and_the_variable(
    enabled_env: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, field: str
) -> None:
    """Enabled, a bad environment value raises ConfigError naming its field and variable."""
    enabled_env.setenv(variable, value)
    kwargs: dict[str, Any] = {"storage_dir": str(tmp_path)}
    if variable != "EVENTLOG_BASE_URL":
        kwargs["base_url"] = BASE
    with pytest.raises(eventlog.ConfigError, match=variable) as info:
        eventlog.Config(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(
    "disable", [("DO_NOT_TRACK", "1"), ("EVENTLOG_DISABLED", "1"), ("enabled", False)]
)
@pytest.mark.parametrize(("variable", "value", "field"), BAD_ENVIRONMENT)
def test_a_disabled_config_reads_no_other_environment_variable(
    enabled_env: pytest.MonkeyPatch,
    disable: tuple[str, object],
    variable: str,
    value: str,
    field: str,
) -> None:
    """Disabled, a bad environment value never raises: its field keeps the built-in default."""
    enabled_env.setenv(variable, value)
    name, setting = disable
    if name == "enabled":
        config = eventlog.Config(enabled=False)
    else:
        enabled_env.setenv(name, str(setting))
        config = eventlog.Config()
    assert config.enabled is False
    defaults = {
        "base_url": "",
        "scheduled_delay": 10.0,
        "strict": False,
        "max_retry_after": 300.0,
    }
    assert getattr(config, field) == defaults[field]


def test_do_not_track_wins_over_an_unreadable_eventlog_disabled(
    enabled_env: pytest.MonkeyPatch,
) -> None:
    """With DO_NOT_TRACK=1 a malformed EVENTLOG_DISABLED is not read, so it cannot fail."""
    enabled_env.setenv("DO_NOT_TRACK", "1")
    enabled_env.setenv("EVENTLOG_DISABLED", "maybe")
    assert eventlog.Config().enabled is False


def test_an_unreadable_eventlog_disabled_still_fails_without_do_not_track(
    enabled_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without DO_NOT_TRACK, EVENTLOG_DISABLED=maybe leaves enabled unknown: ConfigError."""
    enabled_env.setenv("EVENTLOG_DISABLED", "maybe")
    with pytest.raises(eventlog.ConfigError, match="EVENTLOG_DISABLED") as info:
        eventlog.Config(base_url=BASE, storage_dir=str(tmp_path))
    assert info.value.field == "enabled"


def test_a_disabled_config_checks_no_given_value(enabled_env: pytest.MonkeyPatch) -> None:
    """enabled=False accepts values it would refuse when enabled, and keeps them as given."""
    config = eventlog.Config(
        enabled=False,
        base_url="http://events.example.com",
        session_id="../x",
        storage_dir="~/relative",
        scheduled_delay=-1,
        max_queue_size=1,
        max_retry_after=float("nan"),
    )
    assert config.base_url == "http://events.example.com"
    assert config.storage_dir == "~/relative"
    assert config.scheduled_delay == -1


def test_a_disabled_config_still_checks_enabled() -> None:
    """enabled itself must be a bool, disabled or not."""
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.Config(enabled=0)  # type: ignore[arg-type]
    assert info.value.field == "enabled"


async def test_a_disabled_logger_opens_whatever_the_other_settings(
    enabled_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Under DO_NOT_TRACK=1 with bad settings, open_event_logger() yields a working no-op."""
    enabled_env.setenv("DO_NOT_TRACK", "1")
    enabled_env.setenv("EVENTLOG_HOME", str(tmp_path / "home"))
    enabled_env.setenv("EVENTLOG_DISABLED", "maybe")
    enabled_env.setenv("EVENTLOG_BASE_URL", "http://events.example.com")
    enabled_env.setenv("OTEL_LOGS_EXPORT_INTERVAL", "abc")
    enabled_env.setenv("EVENTLOG_STRICT", "maybe")
    enabled_env.setenv("EVENTLOG_MAX_RETRY_AFTER", "abc")
    async with eventlog.open_event_logger() as log:
        assert log.enabled is False
        log.log_event("e", {"n": 1})
        await log.flush()
    assert log.stats == eventlog.Stats()
    assert list(tmp_path.iterdir()) == []
