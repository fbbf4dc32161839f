"""From what the application logged to the bytes of a wire envelope (docs/events.md).

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
import os
import re
import time
from binascii import b2a_base64
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, final

import msgspec

from eventlog._context import EventContext
from eventlog._events import (
    Auth,
    ExperimentEvent,
    ExperimentEventData,
    ServiceInfo,
    format_timestamp,
    second_bytes,
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
MAX_KEY_LENGTH: Final = 128
# Exact types whose values are valid as they are (float needs a finiteness check).
_PLAIN: Final = frozenset({int, bool, type(None)})
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_EMPTY_CONTEXT: Final = EventContext()
# Names and keys already checked, so a batch of familiar events skips the checks.
_KNOWN_NAMES: Final[set[str]] = set()
_KNOWN_KEYS: Final[set[str]] = set()
_CACHE_LIMIT: Final = 4096
# How much of a refused name or key a message or a log line shows.
_SHOWN: Final = 100
_MAX_JSON_DEPTH: Final = 32
# A context callable slower than this gets one WARNING: it runs on the event loop.
SLOW_CONTEXT_SECONDS: Final = 0.005

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


RawEvent = tuple[
    str, "dict[object, object] | None", float, float | ExperimentRequest | InvalidEventError | None
]
"""What ``log_event`` queues: the name, a copy of the metadata taken at the call, the
wall time at emit, and the extra: a sample rate, an experiment, or why the event
was refused at the call (counted when its batch is built)."""


def check_name(name: object, what: str = "event name") -> str:
    """``name`` if it is a valid event (or experiment) name, else InvalidEventError.

    A name is a non-empty ``str`` of at most 256 printable characters
    (``str.isprintable()`` also refuses lone surrogates, which cannot be
    encoded). Names seen before are recognised by a set lookup.
    """
    if name.__class__ is str and name in _KNOWN_NAMES:
        return name
    if not isinstance(name, str) or not name:
        raise InvalidEventError(f"{what} {_shorten(name)} must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidEventError(
            f"{what} {_shorten(name)} must be printable and at most {MAX_NAME_LENGTH} characters"
        )
    name = str.__str__(name)  # a str subclass becomes a plain str: msgspec encodes only those
    _remember(_KNOWN_NAMES, name)
    return name


def check_key(key: object) -> str:
    """``key`` if it is a valid metadata key, else InvalidEventError.

    The rules of names, with a shorter bound and no path separators: a key is
    a label, not a place to smuggle the paths and text that values may not
    carry.
    """
    if key.__class__ is str and key in _KNOWN_KEYS:
        return key
    if not isinstance(key, str) or not key:
        raise InvalidEventError(f"metadata key {_shorten(key)} must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH or not key.isprintable() or "/" in key or "\\" in key:
        raise InvalidEventError(
            f"metadata key {_shorten(key)} must be printable, at most {MAX_KEY_LENGTH} "
            "characters, without '/' or '\\'",
            _shorten_key(key),
        )
    key = str.__str__(key)
    if not key.startswith(PROTO_PREFIX):
        # _PROTO_ keys are never known: check_metadata's fast path takes only
        # known keys, and these need their own handling.
        _remember(_KNOWN_KEYS, key)
    return key


def copy_metadata(metadata: object) -> dict[object, object] | None:
    """A shallow copy of ``metadata``, taken at the call (design: the event is what
    was passed then, whatever happens to the mapping afterwards).

    Raises:
        InvalidEventError: ``metadata`` is not a mapping, or reading it raised.
    """
    if metadata is None:
        return None
    if metadata.__class__ is dict:
        return metadata.copy()
    if not isinstance(metadata, Mapping):
        raise InvalidEventError(f"metadata must be a mapping, not {type(metadata).__name__}")
    try:
        return dict(metadata.items())
    except Exception as exc:  # noqa: BLE001 -- a user Mapping may raise anything
        raise InvalidEventError(
            f"metadata could not be read: {type(exc).__name__} from its items()"
        ) from None


def check_metadata(
    metadata: object, proto_fields: frozenset[str]
) -> tuple[dict[str, str] | None, dict[str, Scalar] | None]:
    """Split valid metadata into ``(hoisted _PROTO_ fields, the rest)``, each None if empty.

    The one validation of metadata: strict mode runs it at the call, the batch
    builder when it encodes the event, so whatever strict mode accepts can be
    encoded. Values are normalised on the way (an ``int`` or ``float``
    subclass becomes the plain number, as msgspec only encodes those).

    Raises:
        InvalidEventError: naming the offending key.
    """
    if metadata is None:
        return None, None
    if metadata.__class__ is not dict:
        metadata = copy_metadata(metadata)
        if metadata is None:  # pragma: no cover -- copy_metadata(x) is None only for x None
            return None, None
    known = _KNOWN_KEYS
    if known.issuperset(metadata):
        # The common case, every key familiar (never a _PROTO_ one) and every
        # value a plain scalar, costs a set operation and a type test per
        # value, and the mapping (the copy log_event took) is used as it is.
        for value in metadata.values():
            cls = value.__class__
            if cls in _PLAIN:
                continue
            # x - x is 0.0 for a finite float, nan for nan and the infinities.
            if cls is float and value - value == 0.0:  # type: ignore[operator]  # a float
                continue
            break
        else:
            return None, metadata or None  # type: ignore[return-value]  # checked above
    hoisted: dict[str, str] | None = None
    rest: dict[str, Scalar] = {}
    for key, value in metadata.items():
        # The common entry, a known plain key and a plain scalar, costs a set
        # lookup and a type test; everything else takes the checks below.
        if key.__class__ is str and key in known:
            cls = value.__class__
            # x - x is 0.0 for a finite float, nan for nan and the infinities.
            if cls in _PLAIN or (cls is float and value - value == 0.0):  # type: ignore[operator]
                rest[key] = value  # type: ignore[assignment]  # a plain scalar, see above
                continue
        key = check_key(key)
        if key.startswith(PROTO_PREFIX):
            field = key[len(PROTO_PREFIX) :]
            if field in proto_fields:
                if hoisted is None:
                    hoisted = {}
                hoisted[field] = _check_proto_value(key, value)
            continue
        rest[key] = _check_value(key, value)
    return hoisted, rest or None


def _check_value(key: str, value: object) -> Scalar:
    # bool is an int: accepted as itself. Strings leak code and paths (design:
    # docs/events.md, metadata).
    if value is None or value.__class__ in _PLAIN:
        return value  # type: ignore[return-value]  # one of the plain types
    if isinstance(value, int):
        return int(value)  # an IntEnum or other int subclass: its number
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEventError(f"metadata {key!r}: {value!r} is not a finite number", key)
        return float(value)
    raise InvalidEventError(
        f"metadata {key!r}: {type(value).__name__} values are not allowed "
        "(int, float, bool or None; strings only under _PROTO_ keys)",
        key,
    )


def _check_proto_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidEventError(f"metadata {key!r} must be a string", key)
    if not value.isascii() and _SURROGATE.search(value):
        raise InvalidEventError(f"metadata {key!r} is not valid Unicode text", key)
    return str.__str__(value)


def _remember(cache: set[str], value: str) -> None:
    # Bounded: an application logging ever-new names or keys must not grow it forever.
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache.add(value)


def _shorten(value: object) -> str:
    """``repr`` of a refused name or key, cut to a length fit for a log line."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _shorten_key(key: str) -> str:
    return key if len(key) <= _SHOWN else key[:_SHOWN]


def _check_json(what: str, value: object, depth: int = 0) -> None:
    """Refuse what JSON cannot carry faithfully: non-finite floats (msgspec would
    write ``null``), non-str keys, and nesting deeper than a sane bound."""
    if depth > _MAX_JSON_DEPTH:
        raise InvalidEventError(f"{what} is nested more than {_MAX_JSON_DEPTH} levels deep")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEventError(f"{what} holds {value!r}, which JSON cannot represent")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEventError(f"{what} has a key that is not a string: {_shorten(key)}")
            _check_json(what, item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json(what, item, depth + 1)


def _unencodable_field(
    encode: Callable[[object], bytes], parts: tuple[msgspec.Struct, ...], exc: Exception
) -> str:
    """Which context field failed to encode, and how (never its value)."""
    for part in parts:
        for field in part.__struct_fields__:
            try:
                encode(getattr(part, field))
            except (TypeError, ValueError) as field_exc:
                return f"{field}: {type(field_exc).__name__}"
    return type(exc).__name__  # pragma: no cover -- the whole failed, so a part does


class _Common(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The fields every event of a batch shares before ``process``, encoded once."""

    session_id: str
    device_id: str | None = None
    email: str | None = None
    auth: Auth | None = None
    env: dict[str, str | int | float | bool] | None = None


class _CommonAfter(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The fields every event of a batch shares after ``process``, encoded once."""

    service: ServiceInfo
    app: dict[str, str | int | float | bool] | None = None


@final
class _Batch:
    """What the events of one batch share, read and encoded once.

    An event is spliced together in the field order of
    :class:`~eventlog._events.InternalEventData`::

        start + id, name, timestamp + head + uptime + middle
              + sample rate, hoisted fields, metadata + "}}"

    ``head`` runs from ``session_id`` to the open ``"uptime_s":``, ``middle``
    from the RSS to ``app``. A partial event has only ``head`` (the session
    id) and ``partial`` (its ``additional_metadata``) instead.
    """

    __slots__ = ("auth", "context", "error", "head", "middle", "partial")

    def __init__(
        self,
        context: EventContext,
        auth: Auth | None,
        *,
        head: bytes,
        middle: bytes = b"",
        partial: bytes = b"",
        error: str | None = None,
    ) -> None:
        self.context = context
        self.auth = auth
        self.head = head
        self.middle = middle
        self.partial = partial
        self.error = error


# The hoisted fields InternalEventData names, in its order; other configured
# ones follow additional_metadata.
_STRUCT_PROTO_FIELDS: Final = ("skill_name", "plugin_name", "marketplace_name")
_EVENT_START: Final = b'{"event_type":"InternalEvent","event_data":{"event_id":"'
_EVENT_IDENTITY: Final = _EVENT_START + b'%b%012x","event_name":%b,"client_timestamp":"%b.%03dZ"%b'
# id prefix, sequence, name, second, millisecond, head, uptime (ms precision), middle
_EVENT: Final = _EVENT_IDENTITY + b"%.3f%b"
_PARTIAL_EVENT: Final = _EVENT_IDENTITY
_EVENT_WITH_METADATA: Final = _EVENT + b',"additional_metadata":"%b"}}'
_EVENT_WITHOUT_METADATA: Final = _EVENT + b"}}"
_SEQUENCE_MASK: Final = 0xFFFFFFFFFFFF


@final
class Transformer:
    """Turns raw events into encoded envelopes for one logger.

    Per event, only what differs is encoded (id, name, timestamp, uptime,
    sample rate, hoisted fields, metadata); the fields a batch shares are
    encoded once by :meth:`begin_batch` and spliced in as bytes.
    """

    def __init__(
        self,
        config: Config,
        *,
        id_prefix: str,
        context: ContextSource | None,
        env: EnvFacts,
        process: ProcessFacts,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._id_prefix = id_prefix
        # Real time on purpose: what the context callable costs the event loop.
        self._timer = timer
        self._id_prefix_bytes = id_prefix.encode("ascii")
        self._session_id = config.session_id
        self._service = ServiceInfo(name=config.service_name, version=config.service_version)
        self.proto_fields = frozenset(config.proto_fields)
        self._context = _EMPTY_CONTEXT if context is None else context
        self._env = env
        self._process = process
        self._encoder = msgspec.json.Encoder()
        self._names: dict[object, bytes] = {}
        self._second = -1
        self._second_text = b""
        self._batch = self._new_batch(_EMPTY_CONTEXT, None)
        self._context_warned: set[str] = set()

    def event_id(self, sequence: int) -> str:
        """The id of the ``sequence``-th event this logger queued (32 hex digits)."""
        return f"{self._id_prefix}{sequence & 0xFFFFFFFFFFFF:012x}"

    def begin_batch(self) -> None:
        """Read the context and the process RSS once, and encode what the batch shares.

        A context that cannot be had (the callable raised or returned
        something else) or cannot be encoded (a lone surrogate in a string,
        say) does not cost the batch: its events go out as partial events
        carrying ``transform_error``.
        """
        context = self._context
        error: str | None = None
        if not isinstance(context, EventContext):
            started = self._timer()
            try:
                context = context()
                if not isinstance(context, EventContext):
                    raise TypeError(f"returned {type(context).__name__}, not EventContext")
            except Exception as exc:  # noqa: BLE001 -- enrichment failing must not lose events
                # Only the type: the message could carry personal data.
                error = f"context unavailable: {type(exc).__name__}"
                context = _EMPTY_CONTEXT
            elapsed = self._timer() - started
            if elapsed > SLOW_CONTEXT_SECONDS:
                self._warn_once(
                    "slow",
                    "eventlog: the context callable took %.0f ms; it runs on the event loop "
                    "once per batch, so keep it cheap (return a prepared EventContext)",
                    elapsed * 1000,
                )
        if error is not None:
            self._warn_once("failed", "eventlog: the context callable failed (%s)", error)
        self._batch = self._new_batch(context, error)

    def _new_batch(self, context: EventContext, error: str | None) -> _Batch:
        auth = (
            Auth(account_uuid=context.account_uuid, organization_uuid=context.organization_uuid)
            if context.account_uuid or context.organization_uuid
            else None
        )
        encode = self._encoder.encode
        if error is None:
            before = _Common(
                session_id=self._session_id,
                device_id=context.device_id,
                email=context.email,
                auth=auth,
                env=self._env,
            )
            after = _CommonAfter(service=self._service, app=context.app or None)
            try:
                head, tail = encode(before), encode(after)
            except (TypeError, ValueError) as exc:
                field = _unencodable_field(encode, (before, after), exc)
                error = f"context not encodable: {field}"
                self._warn_once("unencodable", "eventlog: %s; events sent without it", error)
            else:
                rss = self._process.rss_bytes()
                return _Batch(
                    context,
                    auth,
                    head=b',%b,"process":{"pid":%d,"uptime_s":' % (head[1:-1], os.getpid()),
                    middle=(b"" if rss is None else b',"rss_bytes":%d' % rss) + b"}," + tail[1:-1],
                )
        # A partial event (docs/events.md): the core fields, and why.
        head = encode(_Common(session_id=self._session_id))
        metadata = base64.b64encode(encode({"transform_error": error}))
        return _Batch(
            _EMPTY_CONTEXT,
            None,
            head=b"," + head[1:-1],
            partial=b',"additional_metadata":"%b"}}' % metadata,
            error=error,
        )

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        if kind not in self._context_warned:
            self._context_warned.add(kind)
            logger.warning(message, *args)

    def encode_chunk(
        self,
        raws: list[RawEvent],
        sequence: int,
        invalid: Callable[[RawEvent, Exception], None],
    ) -> list[bytes]:
        """The envelopes of a chunk of raw events, the ``sequence``-th onwards (0-based).

        One call per chunk keeps the per-event work to what differs between
        events: the common event (a familiar name, plain metadata, no sample
        rate) is encoded inline; any other goes through :meth:`encode`. An
        event that cannot be encoded is handed to ``invalid`` and skipped.
        """
        payloads: list[bytes] = []
        append = payloads.append
        batch = self._batch
        names = self._names
        known = _KNOWN_KEYS
        plain = _PLAIN
        encode = self._encoder.encode
        prefix = self._id_prefix_bytes
        head, middle = batch.head, batch.middle
        start = self._process.start
        second, second_text = self._second, self._second_text
        inline = batch.error is None
        for raw in raws:
            sequence += 1
            name, metadata, wall, extra = raw
            name_json = names.get(name)
            if inline and extra is None and name_json is not None:
                if metadata is None:
                    encoded: bytes | None = b""
                elif metadata.__class__ is not dict or not known.issuperset(metadata):
                    encoded = None
                else:
                    # check_metadata's fast path, inlined.
                    for value in metadata.values():
                        cls = value.__class__
                        if cls in plain or (cls is float and value - value == 0.0):  # type: ignore[operator]
                            continue
                        encoded = None
                        break
                    else:
                        encoded = b2a_base64(encode(metadata), newline=False) if metadata else b""
                if encoded is not None:
                    millis = round(wall * 1_000_000) // 1000
                    whole, fraction = divmod(millis, 1000)
                    if whole != second:
                        second, second_text = whole, second_bytes(whole)
                    uptime = wall - start
                    values = (
                        prefix,
                        sequence & _SEQUENCE_MASK,
                        name_json,
                        second_text,
                        fraction,
                        head,
                        uptime if uptime > 0.0 else 0.0,
                        middle,
                    )
                    if encoded:
                        append(_EVENT_WITH_METADATA % (*values, encoded))
                    else:
                        append(_EVENT_WITHOUT_METADATA % values)
                    continue
            self._second, self._second_text = second, second_text
            try:
                append(self.encode(raw, sequence))
            except Exception as exc:  # noqa: BLE001 -- counted by the caller, one event lost
                invalid(raw, exc)
            second, second_text = self._second, self._second_text
        self._second, self._second_text = second, second_text
        return payloads

    def encode(self, raw: RawEvent, sequence: int) -> bytes:
        """Validate ``raw`` and return its envelope as JSON bytes.

        Raises:
            InvalidEventError: the name or a metadata entry is invalid.
        """
        name, metadata, wall, extra = raw
        if extra is not None and extra.__class__ is not float:
            if isinstance(extra, ExperimentRequest):
                return self._encode_experiment(extra, wall, sequence)
            # Never false: a sample rate is a plain float (the sampling config
            # is stored as float()), so the extra here is one of these two.
            if isinstance(extra, InvalidEventError):  # pragma: no branch
                raise extra
        name_json = self._names.get(name)
        if name_json is None:
            name_json = self._name_json(name)
        hoisted, rest = check_metadata(metadata, self.proto_fields)
        batch = self._batch
        encode = self._encoder.encode
        # Truncated to the millisecond, the wall time first rounded to the
        # microsecond (see format_timestamp); the second is formatted once.
        millis = round(wall * 1_000_000) // 1000
        second, fraction = divmod(millis, 1000)
        if second != self._second:
            self._second = second
            self._second_text = second_bytes(second)
        if batch.error is not None:
            out = _PARTIAL_EVENT % (
                self._id_prefix_bytes,
                sequence & _SEQUENCE_MASK,
                name_json,
                self._second_text,
                fraction,
                batch.head,
            )
            if extra is not None:
                out += b',"sample_rate":%b' % encode(extra)
            return out + batch.partial
        uptime = wall - self._process.start
        out = _EVENT % (
            self._id_prefix_bytes,
            sequence & _SEQUENCE_MASK,
            name_json,
            self._second_text,
            fraction,
            batch.head,
            uptime if uptime > 0.0 else 0.0,
            batch.middle,
        )
        if extra is not None:
            out += b',"sample_rate":%b' % encode(extra)
        if hoisted:
            for field in _STRUCT_PROTO_FIELDS:
                value = hoisted.pop(field, None)
                if value is not None:
                    out += b',"%b":%b' % (field.encode("ascii"), encode(value))
        if rest:
            out += b',"additional_metadata":"%b"' % b2a_base64(encode(rest), newline=False)
        if hoisted:
            # Configured fields InternalEventData does not name, in the metadata's order.
            for field, value in hoisted.items():
                out += b',"%b":%b' % (field.encode("ascii"), encode(value))
        return out + b"}}"

    def _name_json(self, name: object) -> bytes:
        """Check ``name`` and remember its JSON, so a familiar name costs a lookup."""
        checked = check_name(name)
        encoded = self._encoder.encode(checked)
        if len(self._names) >= _CACHE_LIMIT:
            self._names.clear()
        self._names[checked] = encoded
        return encoded

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
        experiment_id = check_name(experiment_id, "experiment_id")
        if not isinstance(variation_id, int) or isinstance(variation_id, bool):
            raise InvalidEventError(f"variation_id {_shorten(variation_id)} must be an integer")
        return ExperimentRequest(
            experiment_id=experiment_id,
            variation_id=int(variation_id),
            user_attributes=self._json_field("user_attributes", user_attributes),
            experiment_metadata=self._json_field("experiment_metadata", experiment_metadata),
        )

    def _json_field(self, what: str, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise InvalidEventError(f"{what} must be a mapping, not {type(value).__name__}")
        try:
            _check_json(what, value)
            return self._encoder.encode(value).decode("utf-8")
        except InvalidEventError:
            raise
        except Exception as exc:  # noqa: BLE001 -- a user Mapping may raise anything
            # The type only: the message of an encoding error can quote the value.
            raise InvalidEventError(f"{what} is not JSON-encodable: {type(exc).__name__}") from None
