"""A Starlette app whose lifespan owns the event logger; handlers log with eventlog.log_event.

Run it under uvicorn or hypercorn, the collector's URL in the environment:

    EVENTLOG_BASE_URL=http://127.0.0.1:8787 uvicorn examples.starlette_app:app
    EVENTLOG_BASE_URL=http://127.0.0.1:8787 hypercorn examples.starlette_app:app

then ``curl -X POST 'http://127.0.0.1:8000/checkout?items=3'``. FastAPI takes
the same ``lifespan=`` argument: ``FastAPI(lifespan=lifespan)``.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import eventlog

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request


def create_app(config: eventlog.Config | None = None) -> Starlette:
    """The application; ``config=None`` reads the ``EVENTLOG_*`` environment variables."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One logger for the life of the server process. Leaving the block when
        # the server shuts down drains what is queued (bounded by shutdown_timeout).
        async with eventlog.open_event_logger(config):
            yield

    async def checkout(request: Request) -> JSONResponse:
        # The server runs each request in a task of its own, outside the lifespan's
        # block: eventlog.log_event reaches the process's open logger all the same.
        items = int(request.query_params.get("items", "1"))
        eventlog.log_event("checkout_completed", {"items": items})
        return JSONResponse({"ok": True})

    def export(request: Request) -> JSONResponse:
        # A plain function: Starlette runs it in a worker thread, which reaches
        # the logger the same way.
        eventlog.log_event("report_exported", {"rows": 100})
        return JSONResponse({"ok": True})

    routes = [
        Route("/checkout", checkout, methods=["POST"]),
        Route("/export", export, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


app = create_app()
