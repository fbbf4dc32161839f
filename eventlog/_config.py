"""Configuration: a frozen, validated :class:`Config`.

msgspec does not type-check ``__init__``, so every field is checked in
``__post_init__`` and a bad value raises :class:`ConfigError` naming the field.
Environment variables provide defaults through default factories, so
``Config()`` alone is a complete configuration on a configured machine. The
factories only read the variables; ``__post_init__`` parses them, and only when
the configuration is enabled: a disabled one checks nothing but ``enabled``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Final, TypeVar, cast

import msgspec

from eventlog._exceptions import ConfigError

__all__ = [
    "DEFAULT_MAX_CONCURRENT_EXPORTS",
    "DEFAULT_PATH",
    "DEFAULT_PROTO_FIELDS",
    "SERVICE_NAME_PATTERN",
    "Config",
    "is_service_name",
    "valid_rate",
]

DEFAULT_PATH: Final = "/api/event_logging/batch"
# Measured (docs/configuration.md, max_concurrent_exports): enough to keep a
# server 50 ms away busy at 10k events/s, few enough not to flood it.
DEFAULT_MAX_CONCURRENT_EXPORTS: Final = 4

# The session id becomes part of spool file names.
_SESSION_ID_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
# The service name travels in headers and the storage path.
SERVICE_NAME_PATTERN: Final = r"[A-Za-z0-9._-]{1,128}"
_SERVICE_NAME_RE: Final = re.compile(SERVICE_NAME_PATTERN)
_SERVICE_VERSION_RE: Final = re.compile(r"[A-Za-z0-9._+-]{1,64}")
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})


_T = TypeVar("_T")


class _FromEnv:
    """An environment variable's text, standing in for a field's value.

    Default factories run before ``__post_init__`` knows whether the logger is
    enabled, and a disabled logger must not fail on a setting it never uses:
    so the factories only read the text, and ``__post_init__`` parses it (or
    drops it for the field's built-in default, when disabled).
    """

    __slots__ = ("default", "expected", "parse", "raw", "variable")

    def __init__(
        self,
        variable: str,
        raw: str,
        default: object,
        parse: Callable[[str], object],
        expected: str,
    ) -> None:
        self.variable = variable
        self.raw = raw
        self.default = default
        self.parse = parse
        self.expected = expected

    def __repr__(self) -> str:
        return f"<{self.variable} from the environment>"


def _from_env(
    variable: str,
    default: _T,
    parse: Callable[[str], _T],
    expected: str,
    *,
    blank_is_unset: bool = True,
) -> _T:
    raw = os.environ.get(variable)
    if raw is None or not (raw.strip() if blank_is_unset else raw):
        return default
    # Typed as the field: __post_init__ replaces it before anyone else sees it.
    return cast("_T", _FromEnv(variable, raw, default, parse, expected))


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})
_BOOLEAN: Final = "a boolean (1/0, true/false, yes/no, on/off)"


def _parse_flag(raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(word)


def _parse_disabled(raw: str) -> bool:
    return not _parse_flag(raw)


def _parse_millis(raw: str) -> float:
    return float(raw) / 1000.0


def _env_base_url() -> str:
    # Not stripped: surrounding whitespace is refused by name, never hidden.
    return _from_env("EVENTLOG_BASE_URL", "", str, "a URL", blank_is_unset=False)


def _env_scheduled_delay() -> float:
    return _from_env("OTEL_LOGS_EXPORT_INTERVAL", 10.0, _parse_millis, "a number of milliseconds")


def _env_max_retry_after() -> float:
    return _from_env("EVENTLOG_MAX_RETRY_AFTER", 300.0, float, "a number of seconds")


def _env_max_concurrent_exports() -> int:
    return _from_env(
        "EVENTLOG_MAX_CONCURRENT_EXPORTS",
        DEFAULT_MAX_CONCURRENT_EXPORTS,
        int,
        "a whole number of requests",
    )


def _env_enabled() -> bool:
    # DO_NOT_TRACK is a community convention: honour any truthy value, ignore the
    # rest. When it disables, EVENTLOG_DISABLED is not even read.
    if os.environ.get("DO_NOT_TRACK", "").strip().lower() in _TRUE:
        return False
    return _from_env("EVENTLOG_DISABLED", True, _parse_disabled, _BOOLEAN)


def _env_strict() -> bool:
    return _from_env("EVENTLOG_STRICT", False, _parse_flag, _BOOLEAN)


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


def is_service_name(text: str) -> bool:
    """True if ``text`` is a valid ``Config.service_name`` (:data:`SERVICE_NAME_PATTERN`)."""
    return _SERVICE_NAME_RE.fullmatch(text) is not None


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``.

    A trailing dot (``localhost.``) and the short numeric forms the system
    resolver accepts (``127.1``, ``2130706433``, ``0x7f.1``) count too.
    """
    host = host.lower()
    if host.removesuffix(".") in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        address = _inet_aton(host)
        return address is not None and address.is_loopback


# One part of a numeric IPv4 host as inet_aton(3) reads it: hex, octal or decimal.
_INET_PART: Final = re.compile(r"0x(?P<hex>[0-9a-f]+)|(?P<oct>0[0-7]*)|(?P<dec>[1-9][0-9]*)")


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The address of a numeric host in the forms of inet_aton(3), else None.

    The resolver connects ``http://127.1`` to 127.0.0.1, so the https rule must
    read it the same way; anything it would not read as an address is a name.
    """
    numbers: list[int] = []
    for part in host.split("."):
        match = _INET_PART.fullmatch(part)
        if match is None:
            return None
        if match["hex"] is not None:
            numbers.append(int(match["hex"], 16))
        elif match["oct"] is not None:
            numbers.append(int(match["oct"], 8))
        else:
            numbers.append(int(match["dec"]))
    *head, last = numbers
    if len(numbers) > 4 or any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value << 8 | n
    return ipaddress.IPv4Address(value << 8 * (4 - len(head)) | last)


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a logger needs to know, validated at construction.

    Every field has a default; environment variables supply some of them
    (``EVENTLOG_BASE_URL``, ``EVENTLOG_HOME``, ``OTEL_LOGS_EXPORT_INTERVAL``,
    ``EVENTLOG_MAX_RETRY_AFTER``, ``EVENTLOG_STRICT``). An explicit argument
    always wins over the environment. Durations are seconds.

    A disabled configuration (``enabled`` false) checks only ``enabled``: the
    other fields keep the values given, unchecked, and the environment
    variables above are not parsed (their fields keep the built-in defaults).

    Raises:
        ConfigError: a field has a bad value; ``exc.field`` names it.

    Examples:
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
    ``https`` is required unless the host is loopback; whitespace, control
    characters, a malformed host and port 0 are refused."""

    path: str = DEFAULT_PATH
    """Path of the batch endpoint, appended to ``base_url``."""

    storage_dir: str = ""
    """Directory of the spool. Empty: see :func:`default_storage_dir`.
    An absolute, expanded path after construction (when enabled)."""

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
    """Queued events that trigger an export at once; also the POST chunk size,
    and the unit of work encoded in one step on the event loop."""

    max_queue_size: int = 8192
    """Events held in memory; past it ``log_event`` drops and counts."""

    export_timeout: float = 10.0
    """Deadline for one POST, enforced by the logger through its clock."""

    batch_delay: float = 0.1
    """Pause between the chunks of a spool drain (a backlog of retries); live
    events are never held back by it."""

    base_backoff: float = 0.5
    """Backoff after ``n`` consecutive failures is ``min(base_backoff * n**2, max_backoff)``."""

    max_backoff: float = 30.0
    """Upper bound of the backoff delay before jitter (a server's ``Retry-After``
    may ask for more: see ``max_retry_after``)."""

    max_retry_after: float = msgspec.field(default_factory=_env_max_retry_after)
    """Cap on a server's ``Retry-After``, which is otherwise honoured in full as the
    floor of the next delay, even above ``max_backoff``; 300.0, or
    ``EVENTLOG_MAX_RETRY_AFTER`` (seconds) when set."""

    backoff_jitter: float = 0.2
    """Each delay is scaled by a factor drawn from ``[1 - j, 1 + j]``; 0 gives the
    exact schedule."""

    max_concurrent_exports: int = msgspec.field(default_factory=_env_max_concurrent_exports)
    """POSTs in flight at once; 1 sends strictly one at a time. 4, or
    ``EVENTLOG_MAX_CONCURRENT_EXPORTS`` when set."""

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
        enabled: object = self.enabled  # a _FromEnv until parsed
        if isinstance(enabled, _FromEnv):
            msgspec.structs.force_setattr(self, "enabled", _parse_env("enabled", enabled))
        if not isinstance(self.enabled, bool):
            raise ConfigError("enabled", f"expected True or False, got {self.enabled!r}")
        if not self.enabled:
            # A disabled logger uses nothing but `enabled`, so nothing else may fail
            # it: environment values are not parsed (the built-in default stands in)
            # and given values are kept unchecked.
            for name in self.__struct_fields__:
                value = getattr(self, name)
                if isinstance(value, _FromEnv):
                    msgspec.structs.force_setattr(self, name, value.default)
            return
        sources: dict[str, str] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, _FromEnv):
                msgspec.structs.force_setattr(self, name, _parse_env(name, value))
                sources[name] = value.variable
        try:
            self._validate()
        except ConfigError as exc:
            variable = sources.get(exc.field)
            if variable is None:
                raise
            raise ConfigError(exc.field, f"{exc.message} (from {variable})") from None

    def _validate(self) -> None:
        _check_str(self, "base_url")
        _check_str(self, "path")
        _check_str(self, "session_id")
        _check_str(self, "service_name")
        _check_str(self, "service_version")
        _check_str(self, "protocol")
        if self.protocol not in ("eventlog", "otlp"):
            raise ConfigError("protocol", f"{self.protocol!r} is not 'eventlog' or 'otlp'")
        for name in ("skip_auth", "gzip", "strict", "write_ahead"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, f"expected True or False, got {getattr(self, name)!r}")
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
        _check_duration(self, "max_retry_after")
        _check_int(self, "max_spool_bytes", minimum=1)
        if self.max_backoff < self.base_backoff:
            raise ConfigError("max_backoff", "must not be smaller than base_backoff")
        _check_int(self, "max_export_batch_size", minimum=1)
        _check_int(self, "max_queue_size", minimum=1)
        _check_int(self, "max_concurrent_exports", minimum=1)
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


def _parse_env(name: str, value: _FromEnv) -> object:
    try:
        return value.parse(value.raw)
    except ValueError:
        raise ConfigError(name, f"{value.variable}={value.raw!r} is not {value.expected}") from None


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


# What may not appear in a host name (the WHATWG URL standard's forbidden domain
# code points; whitespace and control characters are refused before).
_FORBIDDEN_IN_HOST: Final = frozenset("#%/:<>?@[\\]^|")


def _validate_base_url(raw: str) -> str:
    # No message echoes the URL until credentials are ruled out.
    if not raw:
        raise ConfigError("base_url", "is required: pass base_url= or set EVENTLOG_BASE_URL")
    if raw != raw.strip():
        # urlsplit would drop it silently and httpx would refuse every request.
        raise ConfigError("base_url", "has leading or trailing whitespace")
    for char in raw:
        if char.isspace():
            raise ConfigError("base_url", f"contains whitespace ({char!r})")
        if not char.isprintable():
            raise ConfigError("base_url", f"contains the non-printable character {char!r}")
    if "@" in re.split(r"[/?#]", raw.partition("//")[2], maxsplit=1)[0]:
        # Credentials in the URL would end up in logs; use the auth callable.
        raise ConfigError("base_url", "must not carry credentials; pass auth= instead")
    # An "@" elsewhere may still be a password to a reader's eye (or to a parser
    # that splits differently): such a URL is described, not shown.
    shown = "the URL" if "@" in raw else repr(raw)
    try:
        parts = urllib.parse.urlsplit(raw)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise ConfigError("base_url", f"{shown} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError("base_url", f"{shown} must be an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise ConfigError("base_url", f"{shown} must not have a query or fragment")
    if not _valid_host(parts.netloc, host):
        raise ConfigError("base_url", f"{shown} has a malformed host")
    if port == 0:
        raise ConfigError("base_url", f"{shown} has port 0")
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ConfigError("base_url", f"{shown} must use https unless the host is loopback")
    return raw.rstrip("/")


def _valid_host(netloc: str, host: str) -> bool:
    if netloc.startswith("["):
        # urlsplit takes what follows "]" as the port without checking it.
        if not re.fullmatch(r"\[[^\[\]]+\](?::[0-9]*)?", netloc):
            return False
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    if any(char in _FORBIDDEN_IN_HOST for char in host):
        return False
    # One trailing dot is a fully qualified name; an empty label anywhere else is
    # no name at all.
    return all(host.removesuffix(".").split("."))
