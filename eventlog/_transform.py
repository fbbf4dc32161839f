"""From what the application logged to the bytes of a wire envelope (design §3).

``log_event`` only records ``(name, metadata, wall_time)``: the work of
validating and encoding happens here, off the caller's path, when the batch
is built.

The ``event_id`` is nevertheless fixed at emit: it is the logger's random
80-bit run prefix followed by the event's 48-bit position in the queue, which
``log_event`` determines by appending. The server deduplicates on it, and it is
encoded once, so every retry carries the same id.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final, final

import msgspec

from eventlog._events import InternalEvent, InternalEventData, ServiceInfo, format_timestamp

if TYPE_CHECKING:
    from eventlog._config import Config

__all__ = ["PROTO_PREFIX", "InvalidEventError", "RawEvent", "Transformer"]

PROTO_PREFIX: Final = "_PROTO_"
# design §3: the _PROTO_ names hoisted to top-level fields; every other _PROTO_ key is stripped.
_HOISTED: Final = ("skill_name", "plugin_name", "marketplace_name")
MAX_NAME_LENGTH: Final = 256
# Exact types whose values are valid as they are (float needs a finiteness check).
_PLAIN: Final = frozenset({int, bool, type(None)})

Scalar = int | float | bool | None
MetadataValue = int | float | bool | str | None
"""A metadata value as typed; strings are only accepted under ``_PROTO_`` keys."""
Metadata = Mapping[str, MetadataValue]
RawEvent = tuple[str, Metadata | None, float]
"""What ``log_event`` queues: name, metadata, wall time at emit."""


class InvalidEventError(ValueError):
    """An event's name or metadata breaks the rules of design §3."""


@final
class Transformer:
    """Turns raw events into encoded envelopes for one logger."""

    def __init__(self, config: Config) -> None:
        self._id_prefix = uuid.uuid4().hex[:20]
        self._session_id = config.session_id
        self._service = ServiceInfo(name=config.service_name, version=config.service_version)
        self._encoder = msgspec.json.Encoder()

    def event_id(self, sequence: int) -> str:
        """The id of the ``sequence``-th event this logger queued (32 hex digits)."""
        return f"{self._id_prefix}{sequence & 0xFFFFFFFFFFFF:012x}"

    def encode(self, raw: RawEvent, sequence: int) -> bytes:
        """Validate ``raw`` and return its envelope as JSON bytes.

        Raises:
            InvalidEventError: the name or a metadata entry is invalid.
        """
        name, metadata, wall = raw
        _check_name(name)
        hoisted: dict[str, str] = {}
        rest: dict[str, object] = {}
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise InvalidEventError(
                    f"metadata must be a mapping, not {type(metadata).__name__}"
                )
            entries: Iterable[tuple[object, object]] = metadata.items()
            for key, value in entries:
                # Fast path for the common entry: a plain str key and a scalar;
                # everything else takes the checks below, which name the problem.
                if (
                    type(key) is str
                    and (
                        type(value) in _PLAIN or (isinstance(value, float) and math.isfinite(value))
                    )
                    and not key.startswith(PROTO_PREFIX)
                ):
                    rest[key] = value
                    continue
                if not isinstance(key, str):
                    raise InvalidEventError(f"metadata key {key!r} is not a string")
                if key.startswith(PROTO_PREFIX):
                    field = key[len(PROTO_PREFIX) :]
                    if field in _HOISTED:
                        if not isinstance(value, str):
                            raise InvalidEventError(f"metadata {key!r} must be a string")
                        hoisted[field] = value
                    continue
                rest[key] = _check_value(key, value)
        data = InternalEventData(
            event_id=self.event_id(sequence),
            event_name=name,
            client_timestamp=format_timestamp(wall),
            session_id=self._session_id,
            service=self._service,
            skill_name=hoisted.get("skill_name"),
            plugin_name=hoisted.get("plugin_name"),
            marketplace_name=hoisted.get("marketplace_name"),
            additional_metadata=(
                base64.b64encode(self._encoder.encode(rest)).decode("ascii") if rest else None
            ),
        )
        return self._encoder.encode(InternalEvent(data))


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidEventError(f"event name {name!r} must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidEventError(
            f"event name {name[:40]!r} must be printable and at most {MAX_NAME_LENGTH} characters"
        )


def _check_value(key: str, value: object) -> Scalar:
    # bool is an int: accepted as itself. Strings leak code and paths (design §1).
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEventError(f"metadata {key!r}: {value!r} is not a finite number")
        return value
    raise InvalidEventError(
        f"metadata {key!r}: {type(value).__name__} values are not allowed "
        "(int, float, bool or None; strings only under _PROTO_ keys)"
    )
