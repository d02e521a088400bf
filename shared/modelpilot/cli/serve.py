"""``modelpilot serve``: the local HTTP receiver of MLflow webhooks, on 127.0.0.1 by default; and
``modelpilot mlflow sync``, which writes ModelPilot's aliases to MLflow again after a failed write-back.

=======  ===================  ====================================================
method   path                 what
=======  ===================  ====================================================
POST     ``/mlflow/webhook``  an MLflow 3.x registry webhook (``entrypoints.mlflow``)
GET      ``/health``          ``{"status": "ok"}``
=======  ===================  ====================================================

The server runs each request through the same edge as the cloud triggers (signature, freshness, replay, one
dispatch path). It speaks plain HTTP: put it behind a TLS proxy before you expose it beyond the host.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.cli._common import EXIT, actor, add_command, make_bus, print_outcome, settings_from
from modelpilot.entrypoints.mlflow import MAX_BODY_BYTES, receive

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from modelpilot.service.messagebus import MessageBus

__all__ = ["WEBHOOK_PATH", "cmd_mlflow_sync", "cmd_serve", "register", "webhook_server"]

WEBHOOK_PATH = "/mlflow/webhook"
log = telemetry.get_logger("modelpilot.serve")


def webhook_server(
    bus: MessageBus,
    *,
    host: str,
    port: int,
    secret_name: str,
    observe: Callable[[dict[str, str], bytes, int, dict[str, Any]], None] | None = None,
) -> ThreadingHTTPServer:
    """Return a bound (not yet serving) HTTP server that hands MLflow webhooks to ``bus``.

    ``observe`` is told every webhook request and its answer (headers, raw body, status, reply).
    """
    lock = threading.Lock()  # one command at a time: the local stores are single files

    class Handler(BaseHTTPRequestHandler):
        server_version = "modelpilot"
        sys_version = ""

        def _reply(self, status: int, data: dict[str, Any]) -> None:
            body = json.dumps(data, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(200, {"status": "ok"})
            else:
                self._reply(404, {"status": "failed", "message": f"no route GET {self.path}"})

        def do_POST(self) -> None:
            if self.path != WEBHOOK_PATH:
                self._reply(404, {"status": "failed", "message": f"no route POST {self.path}; use {WEBHOOK_PATH}"})
                return
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                self._reply(411, {"status": "failed", "message": "Content-Length is required"})
                return
            if int(length) > MAX_BODY_BYTES:
                self._reply(413, {"status": "failed", "message": "the body is over 1 MiB"})
                return
            body = self.rfile.read(int(length))
            try:
                with lock:
                    status, reply = receive(bus, dict(self.headers.items()), body, secret_name=secret_name)
            except Exception as exc:  # transient (or unexpected): MLflow retries a 503
                log.warning("MLflow webhook failed, answered 503: %s: %s", type(exc).__name__, exc)
                status, reply = 503, {"status": "failed", "message": f"{type(exc).__name__}: try again"}
            self._reply(status, reply)
            if observe is not None:
                observe(dict(self.headers.items()), body, status, reply)

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

    return ThreadingHTTPServer((host, port), Handler)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    server = webhook_server(make_bus(args), host=args.host, port=args.port, secret_name=settings.mlflow_webhook_secret)
    host, port = server.server_address[:2]
    print(f"modelpilot: MLflow webhooks on http://{host!s}:{port}{WEBHOOK_PATH} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT["ok"]


def cmd_mlflow_sync(args: argparse.Namespace) -> int:
    from modelpilot.domain.commands import SyncMlflow

    outcome = make_bus(args).handle(SyncMlflow(model=args.model, actor=actor(args), environment=args.env))
    return print_outcome(args, outcome)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``modelpilot serve`` and ``modelpilot mlflow sync``."""
    group = sub.add_parser("mlflow", help="the MLflow registry: write ModelPilot's aliases back")
    inner = group.add_subparsers(dest="mlflow_command", required=True)
    sync = add_command(
        inner,
        "sync",
        cmd_mlflow_sync,
        "set the model's MLflow aliases to the versions ModelPilot holds (after a failed write-back)",
        "modelpilot mlflow sync churn --env prod",
        [common],
    )
    sync.add_argument("model")
    sync.add_argument("--env", help="one environment (default: every environment in mlflow.aliases)")
    p = add_command(
        sub,
        "serve",
        cmd_serve,
        "receive MLflow registry webhooks over HTTP (signature checked with the secret store's secret)",
        "modelpilot serve --port 8765   # MLflow webhook URL: http://127.0.0.1:8765/mlflow/webhook",
        [common],
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
