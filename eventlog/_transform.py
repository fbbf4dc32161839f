"""From what the application logged to the bytes of a wire envelope (design §3).

``log_event`` only records ``(name, metadata, wall_time, extra)``: validating,
enriching and encoding happen here, off the caller's path, when the batch is
built. ``extra`` is ``None``, the sample rate of a sampled event, or an
:class:`ExperimentRequest` for ``log_experiment``.

The ``event_id`` is nevertheless fixed at emit: it is the logger's random
80-bit run prefix followed by the event's 48-bit position in the queue, which
``log_event`` determines by appending. The server deduplicates on it, and it is
encoded once, so every retry carries the same id.

Enrichment: the environment facts are detected once per logger, the context
(``EventContext`` or a callable returning one) and the process RSS once per
batch, the uptime per event. If the context callable fails, each event of the
batch still goes out, as a partial event whose ``additional_metadata`` carries
``{"transform_error": ...}`` (the original's behaviour when core metadata is
missing).
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, final

import msgspec

from eventlog._context import EventContext
from eventlog._events import (
    Auth,
    ExperimentEvent,
    ExperimentEventData,
    InternalEvent,
    InternalEventData,
    ServiceInfo,
    format_timestamp,
)
from eventlog._exceptions import InvalidEventError

if TYPE_CHECKING:
    from eventlog._config import Config
    from eventlog._context import ContextSource
    from eventlog._environment import EnvFacts, ProcessFacts

__all__ = [
    "PROTO_PREFIX",
    "ExperimentRequest",
    "Metadata",
    "RawEvent",
    "Transformer",
    "check_metadata",
    "check_name",
]

logger = logging.getLogger("eventlog")

PROTO_PREFIX: Final = "_PROTO_"
MAX_NAME_LENGTH: Final = 256
# Exact types whose values are valid as they are (float needs a finiteness check).
_PLAIN: Final = frozenset({int, bool, type(None)})
# The hoisted fields the wire Struct knows; any other configured one is spliced in.
_STRUCT_PROTO_FIELDS: Final = frozenset({"skill_name", "plugin_name", "marketplace_name"})
_EMPTY_CONTEXT: Final = EventContext()

Scalar = int | float | bool | None
MetadataValue = int | float | bool | str | None
"""A metadata value as typed; strings are only accepted under ``_PROTO_`` keys."""
Metadata = Mapping[str, MetadataValue]


class ExperimentRequest(msgspec.Struct, frozen=True):
    """What ``log_experiment`` queues, already validated and JSON-encoded."""

    experiment_id: str
    variation_id: int
    user_attributes: str | None
    experiment_metadata: str | None


RawEvent = tuple[str, Metadata | None, float, float | ExperimentRequest | InvalidEventError | None]
"""What ``log_event`` queues: name, metadata, wall time at emit, and the extra: a
sample rate, an experiment, or why an experiment was refused at the call."""


def check_name(name: object, what: str = "event name") -> str:
    """``name`` if it is a valid event (or experiment) name, else InvalidEventError."""
    if not isinstance(name, str) or not name:
        raise InvalidEventError(f"{what} {name!r} must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidEventError(
            f"{what} {name[:40]!r} must be printable and at most {MAX_NAME_LENGTH} characters"
        )
    return name


def check_metadata(
    metadata: object, proto_fields: frozenset[str]
) -> tuple[dict[str, str], dict[str, object]]:
    """Split valid metadata into ``(hoisted _PROTO_ fields, the rest)``.

    Raises:
        InvalidEventError: naming the offending key.
    """
    hoisted: dict[str, str] = {}
    rest: dict[str, object] = {}
    if metadata is None:
        return hoisted, rest
    if not isinstance(metadata, Mapping):
        raise InvalidEventError(f"metadata must be a mapping, not {type(metadata).__name__}")
    entries: Iterable[tuple[object, object]] = metadata.items()
    for key, value in entries:
        # Fast path for the common entry: a plain str key and a scalar; everything
        # else takes the checks below, which name the problem.
        if (
            type(key) is str
            and (type(value) in _PLAIN or (isinstance(value, float) and math.isfinite(value)))
            and not key.startswith(PROTO_PREFIX)
        ):
            rest[key] = value
            continue
        if not isinstance(key, str):
            raise InvalidEventError(f"metadata key {key!r} is not a string")
        if key.startswith(PROTO_PREFIX):
            field = key[len(PROTO_PREFIX) :]
            if field in proto_fields:
                if not isinstance(value, str):
                    raise InvalidEventError(f"metadata {key!r} must be a string", key)
                hoisted[field] = value
            continue
        rest[key] = _check_value(key, value)
    return hoisted, rest


def _check_value(key: str, value: object) -> Scalar:
    # bool is an int: accepted as itself. Strings leak code and paths (design §1).
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEventError(f"metadata {key!r}: {value!r} is not a finite number", key)
        return value
    raise InvalidEventError(
        f"metadata {key!r}: {type(value).__name__} values are not allowed "
        "(int, float, bool or None; strings only under _PROTO_ keys)",
        key,
    )


@final
class _Batch:
    """Facts shared by the events of one batch."""

    __slots__ = ("app", "auth", "context", "error", "rss")

    def __init__(self, context: EventContext, error: str | None, rss: int | None) -> None:
        self.context = context
        self.error = error
        self.rss = rss
        self.app = dict(context.app) if context.app else None
        self.auth = (
            Auth(account_uuid=context.account_uuid, organization_uuid=context.organization_uuid)
            if context.account_uuid or context.organization_uuid
            else None
        )


@final
class Transformer:
    """Turns raw events into encoded envelopes for one logger."""

    def __init__(
        self,
        config: Config,
        *,
        id_prefix: str,
        context: ContextSource | None,
        env: EnvFacts,
        process: ProcessFacts,
    ) -> None:
        self._id_prefix = id_prefix
        self._session_id = config.session_id
        self._service = ServiceInfo(name=config.service_name, version=config.service_version)
        self.proto_fields = frozenset(config.proto_fields)
        self._context = _EMPTY_CONTEXT if context is None else context
        self._env = env
        self._process = process
        self._encoder = msgspec.json.Encoder()
        self._batch = _Batch(_EMPTY_CONTEXT, None, None)
        self._context_error_logged = False

    def event_id(self, sequence: int) -> str:
        """The id of the ``sequence``-th event this logger queued (32 hex digits)."""
        return f"{self._id_prefix}{sequence & 0xFFFFFFFFFFFF:012x}"

    def begin_batch(self) -> None:
        """Read the context and the process RSS once for the batch about to be built."""
        context = self._context
        error: str | None = None
        if not isinstance(context, EventContext):
            try:
                context = context()
                if not isinstance(context, EventContext):
                    raise TypeError(f"returned {type(context).__name__}, not EventContext")
            except Exception as exc:  # noqa: BLE001 -- enrichment failing must not lose events
                # Only the type: the message could carry personal data.
                error = f"context unavailable: {type(exc).__name__}"
                context = _EMPTY_CONTEXT
                if not self._context_error_logged:
                    self._context_error_logged = True
                    logger.warning("eventlog: the context callable failed (%s)", error)
        self._batch = _Batch(context, error, self._process.rss_bytes())

    def encode(self, raw: RawEvent, sequence: int) -> bytes:
        """Validate ``raw`` and return its envelope as JSON bytes.

        Raises:
            InvalidEventError: the name or a metadata entry is invalid.
        """
        name, metadata, wall, extra = raw
        if isinstance(extra, ExperimentRequest):
            return self._encode_experiment(extra, wall, sequence)
        if isinstance(extra, InvalidEventError):
            raise extra
        check_name(name)
        hoisted, rest = check_metadata(metadata, self.proto_fields)
        batch = self._batch
        event_id = self.event_id(sequence)
        timestamp = format_timestamp(wall)
        if batch.error is not None:
            return self._encoder.encode(
                InternalEvent(
                    InternalEventData(
                        event_id=event_id,
                        event_name=name,
                        client_timestamp=timestamp,
                        session_id=self._session_id,
                        sample_rate=extra,
                        additional_metadata=self._b64({"transform_error": batch.error}),
                    )
                )
            )
        context = batch.context
        data = InternalEventData(
            event_id=event_id,
            event_name=name,
            client_timestamp=timestamp,
            session_id=self._session_id,
            device_id=context.device_id,
            email=context.email,
            auth=batch.auth,
            env=self._env,
            process=self._process.info(wall, batch.rss),
            service=self._service,
            app=batch.app,
            sample_rate=extra,
            skill_name=hoisted.pop("skill_name", None),
            plugin_name=hoisted.pop("plugin_name", None),
            marketplace_name=hoisted.pop("marketplace_name", None),
            additional_metadata=self._b64(rest) if rest else None,
        )
        if not hoisted:
            return self._encoder.encode(InternalEvent(data))
        # Configured proto fields the Struct does not know: splice them into
        # event_data (names are validated identifiers, values JSON-encoded).
        encoded = self._encoder.encode(data)
        body = encoded[:-1] + b"," + self._encoder.encode(hoisted)[1:]
        return b'{"event_type":"InternalEvent","event_data":' + body + b"}"

    def _encode_experiment(self, request: ExperimentRequest, wall: float, sequence: int) -> bytes:
        context = self._batch.context
        return self._encoder.encode(
            ExperimentEvent(
                ExperimentEventData(
                    event_id=self.event_id(sequence),
                    timestamp=format_timestamp(wall),
                    experiment_id=request.experiment_id,
                    variation_id=request.variation_id,
                    environment="production",
                    user_attributes=request.user_attributes,
                    experiment_metadata=request.experiment_metadata,
                    device_id=context.device_id,
                    session_id=self._session_id,
                    auth=self._batch.auth,
                )
            )
        )

    def _b64(self, value: object) -> str:
        return base64.b64encode(self._encoder.encode(value)).decode("ascii")

    def experiment(
        self,
        experiment_id: object,
        variation_id: object,
        user_attributes: object,
        experiment_metadata: object,
    ) -> ExperimentRequest:
        """Validate and encode what ``log_experiment`` was given.

        Raises:
            InvalidEventError: a field is invalid or not JSON-encodable.
        """
        check_name(experiment_id, "experiment_id")
        if not isinstance(variation_id, int) or isinstance(variation_id, bool):
            raise InvalidEventError(f"variation_id {variation_id!r} must be an integer")
        return ExperimentRequest(
            experiment_id=experiment_id,  # type: ignore[arg-type]  # checked by check_name
            variation_id=variation_id,
            user_attributes=self._json_field("user_attributes", user_attributes),
            experiment_metadata=self._json_field("experiment_metadata", experiment_metadata),
        )

    def _json_field(self, what: str, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise InvalidEventError(f"{what} must be a mapping, not {type(value).__name__}")
        try:
            return self._encoder.encode(value).decode("utf-8")
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidEventError(f"{what} is not JSON-encodable: {exc}") from None
