"""The timing-import queue handler: one import per message, partial batch failures reported."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib import resources

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from chalice import Chalice
    from chalice.app import SQSEvent


def handle_record(record: SQSRecord) -> None:
    """Run the import a message names; raising leaves the message for another delivery."""
    from chalicelib.observability import logger
    from chalicelib.timing import imports, queue

    names = queue.message(record.body)
    if names is None:
        logger().error(
            "timing import message is not {importId, accountId}; dropped", extra={"message_id": record.message_id}
        )
        return
    attempt = int(record.attributes.approximate_receive_count or 1)
    imports.run(*names, attempt=attempt)


def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(
        process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
    )


def register(app: Chalice) -> None:
    @app.on_sqs_message(queue=resources.TIMING_IMPORT_QUEUE.name, batch_size=1, name="timing_import_worker")
    def timing_import_worker(event: SQSEvent) -> dict[str, Any]:
        return handle_batch(event.to_dict(), event.context)
