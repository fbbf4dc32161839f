"""OTLP/HTTP output: bodies the official protobuf classes accept, OTLP's status rules."""

from __future__ import annotations

import base64
import itertools
from typing import TYPE_CHECKING

import httpx
import pytest
import trio
import trio.testing
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

import eventlog
from eventlog._otlp import encode_request
from eventlog.testing import FrozenWallClock

if TYPE_CHECKING:
    from tests.conftest import MakeConfig

EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class OtlpServer:
    """A MockTransport handler that parses every body as ExportLogsServiceRequest."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, str, ExportLogsServiceRequest]] = []
        self.statuses: list[int] = []
        self.script: list[tuple[int, dict[str, str], bytes]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parsed = json_format.Parse(request.content, ExportLogsServiceRequest())
        self.requests.append((trio.current_time(), str(request.url), parsed))
        status, headers, body = self.script.pop(0) if self.script else (200, {}, b"{}")
        self.statuses.append(status)
        return httpx.Response(status, headers=headers, content=body)

    def delivered_names(self) -> list[str]:
        """eventName of every log record the server answered 2xx to."""
        return [
            record.event_name
            for (_, _, parsed), status in zip(self.requests, self.statuses, strict=True)
            if 200 <= status < 300
            for resource in parsed.resource_logs
            for scope in resource.scope_logs
            for record in scope.log_records
        ]


def attributes(record: object) -> dict[str, object]:
    """Attributes of a LogRecord (or Resource) as plain Python values."""
    out: dict[str, object] = {}
    for kv in record.attributes:  # type: ignore[attr-defined]
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


async def test_bodies_parse_as_export_logs_service_requests(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """Every POST to /v1/logs is a valid ExportLogsServiceRequest carrying each event."""
    server = OtlpServer()
    context = eventlog.EventContext(device_id="dev-1", account_uuid="acc-1", app={"plan": "pro"})
    async with eventlog.open_event_logger(
        make_config(protocol="otlp"),
        transport=httpx.MockTransport(server),
        clock=FrozenWallClock(epoch=EPOCH),
        context=context,
    ) as log:
        await trio.sleep(1.25)
        log.log_event("app_started", {"cold_start_ms": 41.5, "runs": 3, "first": True, "x": None})
        log.log_experiment("exp-1", 2, user_attributes={"plan": "pro"})
        await log.flush()
    [(_, url, parsed)] = server.requests
    assert url == "http://127.0.0.1:8787/v1/logs"
    [resource_logs] = parsed.resource_logs
    resource = attributes(resource_logs.resource)
    assert resource["service.name"] == "testapp"
    assert resource["service.version"] == "1.2.3"
    assert resource["telemetry.sdk.name"] == "eventlog"
    [scope_logs] = resource_logs.scope_logs
    assert scope_logs.scope.name == "eventlog"
    event, experiment = scope_logs.log_records
    assert event.event_name == event.body.string_value == "app_started"
    assert event.time_unix_nano == int(EPOCH) * 10**9 + 1_250_000_000
    assert event.severity_text == "INFO"
    attrs = attributes(event)
    assert attrs["metadata.cold_start_ms"] == 41.5
    assert attrs["metadata.runs"] == 3
    assert attrs["metadata.first"] is True
    assert attrs["metadata.x"] is None
    assert attrs["device_id"] == "dev-1"
    assert attrs["auth.account_uuid"] == "acc-1"
    assert attrs["app.plan"] == "pro"
    assert attrs["env.platform"]
    assert attrs["event_type"] == "InternalEvent"
    assert len(str(attrs["event_id"])) == 32
    assert experiment.event_name == "experiment"
    assert attributes(experiment)["experiment_id"] == "exp-1"
    assert attributes(experiment)["variation_id"] == 2
    assert log.stats.exported == 2


async def test_an_outage_and_recovery_lose_nothing(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """503s with Retry-After, then recovery: every event delivered once through OTLP."""
    server = OtlpServer()
    server.script = [(503, {"retry-after": "5"}, b"")] * 4
    async with eventlog.open_event_logger(
        make_config(protocol="otlp", max_attempts=None), transport=httpx.MockTransport(server)
    ) as log:
        for i in range(30):
            log.log_event(f"e{i}")
        await log.flush()
        await trio.sleep(60)
        stats = log.stats
    assert sorted(server.delivered_names()) == sorted(f"e{i}" for i in range(30))
    times = [t for t, _, _ in server.requests]
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)][:3] == [5.0, 5.0, 5.0]
    assert (stats.exported, stats.export_failures, stats.dropped_permanent) == (30, 4, 0)


@pytest.mark.parametrize(
    ("status", "retried"),
    [(429, True), (502, True), (504, True), (500, False), (400, False), (404, False)],
)
async def test_otlp_status_rules(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock, status: int, retried: bool
) -> None:
    """Only 429, 502, 503 and 504 are retried; other errors drop the chunk for good."""
    server = OtlpServer()
    server.script = [(status, {}, b"")]
    async with eventlog.open_event_logger(
        make_config(protocol="otlp"), transport=httpx.MockTransport(server)
    ) as log:
        log.log_event("a")
        await log.flush()
        await trio.sleep(5)
        stats = log.stats
    assert server.delivered_names() == (["a"] if retried else [])
    assert stats.dropped_permanent == (0 if retried else 1)


async def test_partial_success_counts_rejected_records(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A 200 with partialSuccess.rejectedLogRecords counts them as dropped, the rest exported."""
    server = OtlpServer()
    server.script = [
        (200, {}, b'{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old"}}')
    ]
    async with eventlog.open_event_logger(
        make_config(protocol="otlp"), transport=httpx.MockTransport(server)
    ) as log:
        for i in range(5):
            log.log_event(f"e{i}")
        await log.flush()
        stats = log.stats
    assert (stats.exported, stats.dropped_permanent, stats.export_failures) == (3, 2, 0)


async def test_gzip_and_explicit_path(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """gzip bodies decode to a valid request; an explicit path replaces /v1/logs."""
    import gzip

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        json_format.Parse(gzip.decompress(request.content), ExportLogsServiceRequest())
        return httpx.Response(200)

    async with eventlog.open_event_logger(
        make_config(protocol="otlp", gzip=True, path="/otlp/v1/logs"),
        transport=httpx.MockTransport(handler),
    ) as log:
        log.log_event("a", {"n": 1})
    assert str(seen[0].url) == "http://127.0.0.1:8787/otlp/v1/logs"
    assert seen[0].headers["content-encoding"] == "gzip"


def test_protocol_is_validated() -> None:
    """An unknown protocol is a ConfigError naming the field."""
    with pytest.raises(eventlog.ConfigError) as info:
        eventlog.Config(base_url="http://127.0.0.1:1", protocol="grpc")
    assert info.value.field == "protocol"


async def test_a_persisting_401_is_final_under_otlp(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """401 with auth is resent once without; a 401 again drops the chunk (OTLP rules)."""
    server = OtlpServer()
    server.script = [(401, {}, b""), (401, {}, b"")]
    async with eventlog.open_event_logger(
        make_config(protocol="otlp"),
        transport=httpx.MockTransport(server),
        auth=lambda: {"Authorization": "Bearer t"},
    ) as log:
        log.log_event("a")
        await log.flush()
        await trio.sleep(5)
        stats = log.stats
    assert server.statuses == [401, 401]
    assert (stats.dropped_permanent, stats.export_failures, stats.spooled) == (1, 0, 0)


async def test_configured_proto_fields_reach_otlp_attributes(
    make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A proto field the wire Structs do not know is still an attribute of the log record."""
    server = OtlpServer()
    async with eventlog.open_event_logger(
        make_config(protocol="otlp", proto_fields=("repo_name",)),
        transport=httpx.MockTransport(server),
    ) as log:
        log.log_event("a", {"_PROTO_repo_name": "eventlog"})
        await log.flush()
    [(_, _, parsed)] = server.requests
    [record] = parsed.resource_logs[0].scope_logs[0].log_records
    assert attributes(record)["repo_name"] == "eventlog"


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"partialSuccess":{"rejectedLogRecords":"many","errorMessage":"?"}}'],
    ids=["undecodable", "count-not-a-number"],
)
async def test_an_unreadable_partial_success_counts_everything_exported(
    body: bytes, make_config: MakeConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A 200 whose body cannot be read as a partial success rejected nothing: all exported."""
    server = OtlpServer()
    server.script = [(200, {}, body)]
    async with eventlog.open_event_logger(
        make_config(protocol="otlp"), transport=httpx.MockTransport(server)
    ) as log:
        for i in range(3):
            log.log_event(f"e{i}")
        await log.flush()
        stats = log.stats
    assert (stats.exported, stats.dropped_permanent, stats.export_failures) == (3, 0, 0)


def test_metadata_that_is_not_an_object_adds_no_attributes() -> None:
    """An envelope (spooled by another writer) whose metadata decodes to a list is still sent."""
    metadata = base64.b64encode(b"[1, 2]").decode()
    payload = (
        b'{"event_type":"InternalEvent","event_data":{"event_id":"x","event_name":"a",'
        b'"client_timestamp":"2026-01-01T00:00:00.000Z","additional_metadata":"%b"}}'
        % metadata.encode()
    )
    body = encode_request([payload], service_name="svc", service_version="1", now=EPOCH)
    parsed = json_format.Parse(body, ExportLogsServiceRequest())
    [record] = parsed.resource_logs[0].scope_logs[0].log_records
    assert record.event_name == "a"
    assert not any(key.startswith("metadata.") for key in attributes(record))
