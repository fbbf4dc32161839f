"""Configuration: a frozen, validated :class:`Config`.

msgspec does not type-check ``__init__`` (style pitfall 6), so every field is
checked in ``__post_init__`` and a bad value raises :class:`ConfigError` naming
the field. Environment variables provide defaults through default factories,
so ``Config()`` alone is a complete configuration on a configured machine.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from typing import Final

import msgspec

from eventlog._exceptions import ConfigError

__all__ = ["DEFAULT_PATH", "DEFAULT_PROTO_FIELDS", "Config", "valid_rate"]

DEFAULT_PATH: Final = "/api/event_logging/batch"

# design §2: the session id becomes part of spool file names.
_SESSION_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
# The service name travels in headers and the storage path.
_SERVICE_NAME_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SERVICE_VERSION_RE: Final = re.compile(r"[A-Za-z0-9._+-]{1,64}")
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})


def _env_base_url() -> str:
    return os.environ.get("EVENTLOG_BASE_URL", "")


def _env_scheduled_delay() -> float:
    raw = os.environ.get("OTEL_LOGS_EXPORT_INTERVAL")
    if raw is None or not raw.strip():
        return 10.0
    try:
        millis = float(raw)
    except ValueError:
        raise ConfigError(
            "scheduled_delay", f"OTEL_LOGS_EXPORT_INTERVAL={raw!r} is not a number of milliseconds"
        ) from None
    return millis / 1000.0


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})


def _env_flag(variable: str, field: str) -> bool:
    raw = os.environ.get(variable, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(
        field, f"{variable}={raw!r} is not a boolean (1/0, true/false, yes/no, on/off)"
    )


def _env_enabled() -> bool:
    # DO_NOT_TRACK is a community convention: honour any truthy value, ignore the rest.
    disabled = _env_flag("EVENTLOG_DISABLED", "enabled")  # checked even under DO_NOT_TRACK
    do_not_track = os.environ.get("DO_NOT_TRACK", "").strip().lower() in _TRUE
    return not (do_not_track or disabled)


def _env_strict() -> bool:
    return _env_flag("EVENTLOG_STRICT", "strict")


DEFAULT_PROTO_FIELDS: Final = ("skill_name", "plugin_name", "marketplace_name")
# Top-level event_data fields a hoisted _PROTO_ key must not overwrite.
RESERVED_FIELDS: Final = frozenset(
    {
        "event_id",
        "event_name",
        "client_timestamp",
        "session_id",
        "device_id",
        "email",
        "auth",
        "env",
        "process",
        "service",
        "app",
        "sample_rate",
        "additional_metadata",
    }
)
_PROTO_FIELD_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _new_session_id() -> str:
    return uuid.uuid4().hex


def default_storage_dir(service_name: str) -> str:
    """Where the spool lives when ``Config.storage_dir`` is not given.

    ``$EVENTLOG_HOME/telemetry`` when set, else
    ``$XDG_STATE_HOME/eventlog/<service_name>/telemetry`` (``~/.local/state`` when
    ``XDG_STATE_HOME`` is unset). The service name keeps two applications from
    replaying each other's events to the wrong server.
    """
    home = os.environ.get("EVENTLOG_HOME")
    if home:
        return os.path.join(os.path.expanduser(home), "telemetry")
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return os.path.join(state, "eventlog", service_name, "telemetry")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a logger needs to know, validated at construction.

    Every field has a default; environment variables supply some of them
    (``EVENTLOG_BASE_URL``, ``EVENTLOG_HOME``, ``OTEL_LOGS_EXPORT_INTERVAL``).
    An explicit argument always wins over the environment. Durations are
    seconds.

    Raises:
        ConfigError: a field has a bad value; ``exc.field`` names it.

    Example:
        >>> import eventlog
        >>> config = eventlog.Config(
        ...     base_url="http://127.0.0.1:8787",
        ...     storage_dir="/tmp/myapp-telemetry",
        ...     service_name="myapp",
        ...     service_version="1.4.2",
        ... )
        >>> config.max_export_batch_size
        200
    """

    base_url: str = msgspec.field(default_factory=_env_base_url)
    """Scheme, host and port of the collector; ``EVENTLOG_BASE_URL`` by default.
    ``https`` is required unless the host is loopback."""

    path: str = DEFAULT_PATH
    """Path of the batch endpoint, appended to ``base_url``."""

    storage_dir: str = ""
    """Directory of the spool. Empty: see :func:`default_storage_dir`.
    Always an absolute, expanded path after construction."""

    session_id: str = msgspec.field(default_factory=_new_session_id)
    """Identifies this logging session in events and spool file names:
    ``[A-Za-z0-9_-]{1,128}``. Random by default."""

    service_name: str = "unknown_service"
    """Name of the emitting application, sent in ``x-service-name``, the
    ``User-Agent`` and every event."""

    service_version: str = "0"
    """Version of the emitting application."""

    scheduled_delay: float = msgspec.field(default_factory=_env_scheduled_delay)
    """Seconds between scheduled exports of the queue; 10.0, or
    ``OTEL_LOGS_EXPORT_INTERVAL`` (milliseconds) when set."""

    max_export_batch_size: int = 200
    """Queued events that trigger an export at once; also the POST chunk size."""

    max_queue_size: int = 8192
    """Events held in memory; past it ``log_event`` drops and counts."""

    export_timeout: float = 10.0
    """Deadline for one POST, enforced by the logger through its clock."""

    batch_delay: float = 0.1
    """Pause between the chunks of one export."""

    base_backoff: float = 0.5
    """Backoff after ``n`` consecutive failures is ``min(base_backoff * n**2, max_backoff)``."""

    max_backoff: float = 30.0
    """Upper bound of the backoff delay before jitter, and of an honoured ``Retry-After``."""

    backoff_jitter: float = 0.2
    """Each delay is scaled by a factor drawn from ``[1 - j, 1 + j]``; 0 gives the
    exact schedule."""

    max_attempts: int | None = 8
    """Failed POSTs of one event before it is dropped; ``None`` retries for as
    long as the spool keeps it."""

    shutdown_timeout: float = 5.0
    """Budget for draining on exit; what is still unsent then goes to the spool."""

    skip_auth: bool = False
    """Never call the ``auth`` callable; send every request without credentials."""

    gzip: bool = False
    """Send bodies with ``Content-Encoding: gzip``."""

    protocol: str = "eventlog"
    """``"eventlog"`` (the batch format of the design) or ``"otlp"``: OTLP/HTTP
    JSON logs posted to ``{base_url}/v1/logs`` (when ``path`` is left at its
    default), for an OpenTelemetry Collector."""

    write_ahead: bool = False
    """Every accepted event is written to the spool (fsync'd) before it is
    queued for export, so a crash loses at most the last commit window."""

    write_ahead_interval: float = 0.05
    """Write-ahead mode: the group-commit window; events emitted within it
    share one write and one fsync."""

    max_spool_bytes: int = 64 * 1024 * 1024
    """Spool size limit; past it the oldest events are dropped (counted)."""

    max_spool_age: float = 7 * 24 * 3600.0
    """Events spooled longer ago than this, and spool files of earlier runs
    older than this, are dropped unsent (counted)."""

    enabled: bool = msgspec.field(default_factory=_env_enabled)
    """False turns the logger into a no-op: no task, no socket, no file. Default:
    False when ``DO_NOT_TRACK=1`` or ``EVENTLOG_DISABLED=1``, else True."""

    strict: bool = msgspec.field(default_factory=_env_strict)
    """Development mode: ``log_event`` and ``log_experiment`` raise
    :class:`InvalidEventError` on invalid input instead of counting it.
    Default: ``EVENTLOG_STRICT``."""

    sampling: dict[str, float] = msgspec.field(default_factory=dict)
    """Event name -> rate in [0, 1]. Names not listed are always kept; rate 0
    drops every event of that name; a kept sampled event carries its
    ``sample_rate``."""

    proto_fields: tuple[str, ...] = DEFAULT_PROTO_FIELDS
    """Names ``n`` whose ``_PROTO_<n>`` metadata is hoisted to the top-level field
    ``n``; every other ``_PROTO_`` key is stripped."""

    def __post_init__(self) -> None:
        _check_str(self, "base_url")
        _check_str(self, "path")
        _check_str(self, "session_id")
        _check_str(self, "service_name")
        _check_str(self, "service_version")
        _check_str(self, "protocol")
        if self.protocol not in ("eventlog", "otlp"):
            raise ConfigError("protocol", f"{self.protocol!r} is not 'eventlog' or 'otlp'")
        for name in ("skip_auth", "gzip", "enabled", "strict", "write_ahead"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, f"expected True or False, got {getattr(self, name)!r}")
        if self.enabled or self.base_url:
            msgspec.structs.force_setattr(self, "base_url", _validate_base_url(self.base_url))
        msgspec.structs.force_setattr(self, "sampling", _validate_sampling(self.sampling))
        msgspec.structs.force_setattr(
            self, "proto_fields", _validate_proto_fields(self.proto_fields)
        )
        if not self.path.startswith("/") or any(c in self.path for c in "?# "):
            raise ConfigError("path", f"{self.path!r} must start with '/' and hold no query")
        if not _SESSION_ID_RE.fullmatch(self.session_id):
            raise ConfigError(
                "session_id", f"{self.session_id!r} must match [A-Za-z0-9_-]{{1,128}}"
            )
        if not _SERVICE_NAME_RE.fullmatch(self.service_name):
            raise ConfigError(
                "service_name", f"{self.service_name!r} must match [A-Za-z0-9._-]{{1,128}}"
            )
        if not _SERVICE_VERSION_RE.fullmatch(self.service_version):
            raise ConfigError(
                "service_version", f"{self.service_version!r} must match [A-Za-z0-9._+-]{{1,64}}"
            )
        storage = self.storage_dir
        if not isinstance(storage, str | os.PathLike):
            raise ConfigError("storage_dir", f"expected a path, got {type(storage).__name__}")
        storage = os.fspath(storage)
        if not isinstance(storage, str):
            raise ConfigError("storage_dir", "expected a text path, got bytes")
        storage = storage if storage else default_storage_dir(self.service_name)
        msgspec.structs.force_setattr(
            self, "storage_dir", os.path.abspath(os.path.expanduser(storage))
        )

        _check_duration(self, "scheduled_delay", positive=True)
        _check_duration(self, "export_timeout", positive=True)
        _check_duration(self, "batch_delay")
        _check_duration(self, "base_backoff")
        _check_duration(self, "max_backoff")
        _check_duration(self, "shutdown_timeout")
        _check_duration(self, "write_ahead_interval")
        _check_duration(self, "max_spool_age", positive=True)
        _check_int(self, "max_spool_bytes", minimum=1)
        if self.max_backoff < self.base_backoff:
            raise ConfigError("max_backoff", "must not be smaller than base_backoff")
        _check_int(self, "max_export_batch_size", minimum=1)
        _check_int(self, "max_queue_size", minimum=1)
        if self.max_queue_size < self.max_export_batch_size:
            raise ConfigError(
                "max_queue_size",
                f"{self.max_queue_size} is smaller than max_export_batch_size "
                f"({self.max_export_batch_size})",
            )
        if self.max_attempts is not None:
            _check_int(self, "max_attempts", minimum=1)
        jitter = self.backoff_jitter
        if not _is_real(jitter) or not 0.0 <= jitter < 1.0:
            raise ConfigError("backoff_jitter", f"{jitter!r} must be a number in [0, 1)")

    @property
    def endpoint(self) -> str:
        """The full URL events are posted to: ``base_url + path``.

        With ``protocol="otlp"`` and the default ``path``: ``base_url + "/v1/logs"``.
        """
        if self.protocol == "otlp" and self.path == DEFAULT_PATH:
            return self.base_url + "/v1/logs"
        return self.base_url + self.path


def _is_real(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_str(config: Config, name: str) -> None:
    value = getattr(config, name)
    if not isinstance(value, str):
        raise ConfigError(name, f"expected a string, got {type(value).__name__}")


def _check_duration(config: Config, name: str, *, positive: bool = False) -> None:
    value = getattr(config, name)
    if not _is_real(value) or not math.isfinite(value):
        raise ConfigError(name, f"{value!r} is not a finite number of seconds")
    if value < 0 or (positive and value == 0):
        bound = "greater than 0" if positive else "0 or more"
        raise ConfigError(name, f"{value!r} must be {bound} seconds")
    msgspec.structs.force_setattr(config, name, float(value))


def _check_int(config: Config, name: str, *, minimum: int) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(name, f"expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(name, f"{value} must be at least {minimum}")


def valid_rate(rate: object) -> bool:
    """True for a real number in [0, 1]."""
    return _is_real(rate) and 0.0 <= rate <= 1.0  # type: ignore[operator]


def _validate_sampling(sampling: object) -> dict[str, float]:
    if not isinstance(sampling, Mapping):
        raise ConfigError("sampling", f"expected a mapping of event name to rate, got {sampling!r}")
    checked: dict[str, float] = {}
    for name, rate in sampling.items():
        if not isinstance(name, str) or not name:
            raise ConfigError("sampling", f"event name {name!r} is not a non-empty string")
        if not valid_rate(rate):
            raise ConfigError("sampling", f"rate {rate!r} for {name!r} is not a number in [0, 1]")
        checked[name] = float(rate)
    return checked


def _validate_proto_fields(fields: object) -> tuple[str, ...]:
    if isinstance(fields, str) or not isinstance(fields, list | tuple):
        raise ConfigError("proto_fields", f"expected a tuple of field names, got {fields!r}")
    for field in fields:
        if not isinstance(field, str) or not _PROTO_FIELD_RE.fullmatch(field):
            raise ConfigError("proto_fields", f"{field!r} must match [a-z][a-z0-9_]{{0,63}}")
        if field in RESERVED_FIELDS:
            raise ConfigError("proto_fields", f"{field!r} would overwrite a core event field")
    return tuple(dict.fromkeys(fields))


def _validate_base_url(raw: str) -> str:
    if not raw:
        raise ConfigError("base_url", "is required: pass base_url= or set EVENTLOG_BASE_URL")
    try:
        parts = urllib.parse.urlsplit(raw)
        host = parts.hostname
        parts.port  # noqa: B018 -- urlsplit validates the port lazily, on access
    except ValueError as exc:
        raise ConfigError("base_url", f"{raw!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError("base_url", f"{raw!r} must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL would end up in logs; use the auth callable.
        raise ConfigError("base_url", "must not carry credentials; pass auth= instead")
    if parts.query or parts.fragment:
        raise ConfigError("base_url", f"{raw!r} must not have a query or fragment")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError("base_url", f"{raw!r} must use https unless the host is loopback")
    return raw.rstrip("/")
