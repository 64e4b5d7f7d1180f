"""Run-sheet attachments: presigned upload, completion check, listing with download URLs, delete."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.api import shapes
from chalicelib.api.routing import caller, json_body, query_params, route
from chalicelib.api.shapes import documented
from chalicelib.domain import attachments

bp = Blueprint(__name__)


@route(bp, "/run-sheets/{id}/attachments", methods=("POST",), status=201, applied_once=True)
@documented(request=shapes.attachment_request(), answer=shapes.attachment_created())
def create_attachment(id: str) -> Any:
    """Declare a file for a run sheet; answers a presigned PUT (type and size are signed)"""
    return attachments.create(caller(), id, json_body(bp))


@route(bp, "/run-sheets/{id}/attachments")
@documented(answer=shapes.page_of(shapes.attachment_with_download()), query=shapes.page_query())
def list_attachments(id: str) -> Any:
    """List a run sheet's attachments; uploaded ones carry a short-lived downloadUrl"""
    return attachments.list_for_run_sheet(caller(), id, query_params(bp))


@route(bp, "/attachments/{id}/complete", methods=("POST",))
@documented(answer=shapes.attachment_with_download(), no_body=True)
def complete_attachment(id: str) -> Any:
    """Check the uploaded object against its declaration and mark the attachment uploaded"""
    return attachments.complete(caller(), id)


@route(bp, "/attachments/{id}", methods=("DELETE",))
def delete_attachment(id: str) -> None:
    """Delete an attachment: its object and its row"""
    attachments.delete(caller(), id)
