"""A Flask app whose factory starts the event logger; views log with eventlog.log_event.

Run it with any WSGI server, the collector's URL in the environment:

    EVENTLOG_BASE_URL=http://127.0.0.1:8787 flask --app examples.flask_app run
    EVENTLOG_BASE_URL=http://127.0.0.1:8787 gunicorn -w 4 'examples.flask_app:create_app()'

then ``curl -X POST 'http://127.0.0.1:5000/checkout?items=3'``.
"""

from __future__ import annotations

from flask import Flask, request

import eventlog


def create_app(config: eventlog.Config | None = None) -> Flask:
    """The application; ``config=None`` reads the ``EVENTLOG_*`` environment variables."""
    app = Flask(__name__)
    # One logger for the life of the process, started with the app: its thread,
    # HTTP connections and spool serve every request. The interpreter's exit
    # closes it, draining what is queued (bounded by shutdown_timeout).
    app.extensions["eventlog"] = eventlog.start_event_logger(config, close_at_exit=True)

    @app.post("/checkout")
    def checkout() -> dict[str, bool]:
        # Views run in the server's threads: eventlog.log_event reaches the
        # process's open logger from any of them, without blocking.
        items = request.args.get("items", 1, type=int)
        eventlog.log_event("checkout_completed", {"items": items})
        return {"ok": True}

    return app
