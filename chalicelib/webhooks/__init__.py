"""Outgoing webhooks: subscriptions, the outbox, signing, the SQS worker and the minute sweep.

`register(app)` adds the routes (the `chalicelib.api.webhooks` blueprint) and the two event handlers
to the Chalice app. docs/webhooks.md is the integrator's reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib import resources

if TYPE_CHECKING:
    from chalice import Chalice
    from chalice.app import CloudWatchEvent, SQSEvent


def register(app: Chalice) -> None:
    """The /webhooks routes, the SQS worker (batches of 10, partial batch failures) and the sweep (every minute)."""
    from chalice import Rate

    from chalicelib.api import webhooks as api

    app.register_blueprint(api.bp)

    @app.on_sqs_message(queue=resources.WEBHOOK_QUEUE.name, batch_size=10)
    def webhook_deliveries(event: SQSEvent) -> dict[str, Any]:
        from chalicelib.webhooks import worker

        return worker.handle(event.to_dict(), event.context)

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def webhook_sweep(event: CloudWatchEvent) -> None:
        from chalicelib.webhooks import sweep

        sweep.run()
