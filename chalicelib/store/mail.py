"""Email through SES (the emulator's SES locally): invitations and sign-up confirmations."""

from __future__ import annotations

from chalicelib.config import settings
from chalicelib.errors import DependencyDown, Invalid
from chalicelib.store.aws import client, translated_errors


def send(to: str, subject: str, text: str) -> str:
    """Send a plain-text message from MAIL_FROM to one address; returns SES's message id."""
    from botocore.exceptions import ClientError

    message = {"Subject": {"Data": subject, "Charset": "UTF-8"}, "Body": {"Text": {"Data": text, "Charset": "UTF-8"}}}
    with translated_errors("ses"):
        try:
            sent = client("ses").send_email(
                Source=settings().mail_from, Destination={"ToAddresses": [to]}, Message=message
            )
        except ClientError as exc:
            # A refused message (sender not verified, sandbox, quota) is the platform's problem, not the caller's.
            error = exc.response.get("Error", {})
            if error.get("Code") == "InvalidParameterValue" and to in str(error.get("Message")):
                raise Invalid(f"{to} is not an address email can be sent to", field="email") from exc
            raise DependencyDown(
                "Email (SES)", f"email could not be sent ({error.get('Code')}: {error.get('Message')}); try again later"
            ) from exc
    return str(sent["MessageId"])
