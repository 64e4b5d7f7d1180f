"""The WebSocket API's $connect, $default and $disconnect handlers and the minute room sweep, registered on the app."""

from __future__ import annotations

import json
from typing import Any

from chalice import Chalice, Response
from chalice.app import SQSEvent, WebsocketEvent

from chalicelib import resources
from chalicelib.config import ConfigError
from chalicelib.errors import PlatformError, http_status
from chalicelib.observability import logger


def _endpoint(event: WebsocketEvent) -> str:
    from chalicelib.realtime.push import management_url

    return management_url(event.domain_name, event.stage)


def register(app: Chalice) -> None:
    from chalicelib.realtime import sweep

    app.experimental_feature_flags.update(["WEBSOCKETS"])
    sweep.register(app)

    # The room publisher: a session's committed events, in queue order (one FIFO group per session).
    @app.on_sqs_message(queue=resources.ROOM_QUEUE.name, batch_size=10)
    def room_events(event: SQSEvent) -> dict[str, Any]:
        from chalicelib.realtime import publisher

        return publisher.handle(event.to_dict(), event.context)

    @app.on_ws_connect()
    def ws_connect(event: WebsocketEvent) -> Response:
        from chalicelib.realtime import rooms

        params = event.to_dict().get("queryStringParameters") or {}
        try:
            rooms.connect(event.connection_id, params.get("token"))
        except ConfigError as exc:
            logger().error(str(exc))
            return Response(body=json.dumps({"error": {"code": "misconfigured", "message": str(exc)}}), status_code=500)
        except PlatformError as exc:
            status = http_status(exc)
            return Response(body=json.dumps({"error": {"code": exc.code, "message": exc.message}}), status_code=status)
        return Response(body="", status_code=200)

    @app.on_ws_message()
    def ws_message(event: WebsocketEvent) -> None:
        from chalicelib.realtime.rooms import Room

        try:
            Room(event.connection_id, _endpoint(event)).handle(event.body)
        except Exception:
            logger().exception("websocket message failed", extra={"connection_id": event.connection_id})

    @app.on_ws_disconnect()
    def ws_disconnect(event: WebsocketEvent) -> None:
        from chalicelib.realtime.rooms import disconnect

        try:
            disconnect(event.connection_id, _endpoint(event))
        except Exception:
            logger().exception("websocket disconnect cleanup failed", extra={"connection_id": event.connection_id})
