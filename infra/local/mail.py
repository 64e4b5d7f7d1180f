"""The mail the local emulator's SES sent, read through `GET /_aws/ses` (moto here, LocalStack alike).

`make mail` prints it; the smoke test and the tests take links out of it the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.request
from typing import Any

from infra.local.emulator import DEFAULT_PORT

_LINK = re.compile(r"https?://\S+")


def endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{DEFAULT_PORT}"


def messages(endpoint_url: str | None = None, to: str | None = None) -> list[dict[str, Any]]:
    """Every message sent (oldest first), or only those addressed to `to` (any case)."""
    with urllib.request.urlopen(f"{endpoint_url or endpoint()}/_aws/ses", timeout=10) as answer:  # noqa: S310
        listed: list[dict[str, Any]] = json.load(answer)["messages"]
    if to is None:
        return listed
    return [m for m in listed if to.lower() in (a.lower() for a in _recipients(m))]


def _recipients(message: dict[str, Any]) -> list[str]:
    return [address for addresses in message.get("Destination", {}).values() for address in addresses]


def text(message: dict[str, Any]) -> str:
    body = message.get("Body", {})
    return str(body.get("text_part") or body.get("html_part") or "")


def links(message: dict[str, Any]) -> list[str]:
    return _LINK.findall(text(message))


def latest_link(to: str, route: str, endpoint_url: str | None = None) -> str:
    """The link to web client route `route` (e.g. `#/accept-invite`) in the newest mail to `to`."""
    for message in reversed(messages(endpoint_url, to)):
        for link in links(message):
            if f"/{route}?" in link:
                return link
    raise LookupError(f"no mail to {to} holds a {route} link")


def token_of(link: str) -> str:
    from urllib.parse import parse_qs, unquote, urlsplit

    query = urlsplit(link).fragment.partition("?")[2]
    return unquote(parse_qs(query)["token"][0])


def show(message: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"--- {message.get('Timestamp', '')}  {message.get('Id', '')}",
            f"From:    {message.get('Source', '')}",
            f"To:      {', '.join(_recipients(message))}",
            f"Subject: {message.get('Subject', '')}",
            "",
            text(message).rstrip(),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m infra.local.mail [--to EMAIL] [--last N] [--json]`: the newest mail, last printed last."""
    parser = argparse.ArgumentParser(description="Print the mail the local SES sent (GET /_aws/ses).")
    parser.add_argument("--to", default=None, help="only mail to this address")
    parser.add_argument("--last", type=int, default=10, help="how many of the newest messages (default 10)")
    parser.add_argument("--json", action="store_true", help="print LocalStack's JSON instead")
    parser.add_argument("--endpoint", default=None, help="default: AWS_ENDPOINT_URL, else the local emulator")
    args = parser.parse_args(argv)
    url = args.endpoint or endpoint()
    try:
        found = messages(url, args.to)[-args.last :] if args.last > 0 else []
    except OSError as exc:
        print(f"mail: cannot read {url}/_aws/ses ({exc}); is the stack running (make setup)?", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"messages": found}, indent=2))
    elif not found:
        print(f"no mail{' to ' + args.to if args.to else ''} yet ({url}/_aws/ses)")
    for message in [] if args.json else found:
        print(show(message))
    return 0


if __name__ == "__main__":
    sys.exit(main())
