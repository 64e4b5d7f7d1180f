"""The docs site's generated parts: the webhook event catalog page and the interactive API reference.

Both come from the document /openapi.json serves (its `paths` and `webhooks`), so they cannot drift
from the API. The reference is Swagger UI from the npm registry (tools/npm/package.json), copied into
the site so that it runs offline.
"""

from __future__ import annotations

import html
import json
import shutil
import sys
from pathlib import Path
from typing import Any

_SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")

_INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Try the API · Race Platform docs</title><link rel="stylesheet" href="swagger-ui.css">
<link rel="icon" href="favicon-32x32.png"></head>
<body><p style="font:14px system-ui;margin:12px 20px"><a href="../index.html">&larr; Race Platform docs</a>
 · Sign in with <code>POST /auth/login</code>, then <b>Authorize</b> with the token to call the rest.</p>
<div id="reference"></div><script src="swagger-ui-bundle.js"></script><script src="init.js"></script></body></html>
"""

_INIT = """window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#reference",
  deepLinking: true,
  tryItOutEnabled: true,
  persistAuthorization: false, // a token pasted here is not kept in the browser
  displayOperationId: true,
  defaultModelsExpandDepth: 0,
});
"""


def _spec(api_url: str | None) -> dict[str, Any]:
    from app import app
    from chalicelib.api.openapi import document

    spec = document(app.routes)
    if api_url:
        spec["servers"] = [{"url": api_url, "description": "The API of this stack"}]
    return spec


def write_interactive(folder: Path, api_url: str | None) -> None:
    """Swagger UI, its initialiser and the document into `folder` (reference/ of the site)."""
    from infra.local import npm_tools

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "openapi.json").write_text(json.dumps(_spec(api_url)))
    try:
        dist = npm_tools.install() / "swagger-ui-dist"
    except RuntimeError as exc:  # no npm, or its registry unreachable: the rest of the site still builds
        print(f"docs: the interactive reference is left out: {exc}", file=sys.stderr)
        note = f"<p>The interactive reference needs npm and its registry at build time ({html.escape(str(exc))}).</p>"
        (folder / "index.html").write_text(note + '<p><a href="openapi.json">openapi.json</a></p>')
        return
    for name in _SWAGGER_FILES:
        shutil.copyfile(dist / name, folder / name)
    (folder / "init.js").write_text(_INIT)
    (folder / "index.html").write_text(_INDEX)


def _fence(value: Any) -> str:
    return "```json\n" + json.dumps(value, indent=2) + "\n```"


def event_catalog() -> str:
    """webhook-events.md: every event type, when it fires, an example payload; the headers and signatures."""
    from chalicelib.api.webhook_events import HEADERS

    spec = _spec(None)
    lines = [
        "# Webhook events",
        "",
        "Every event type a subscription can receive, generated from the `webhooks` section of "
        "`GET /openapi.json` (itself built from the resources the domain records). Each delivery is a "
        "`POST` of the JSON payload below with these headers; see [Webhooks](webhooks.md) for subscribing, "
        "retries and replay, and `examples/webhook-receivers/` for receivers in Python and JavaScript.",
        "",
        "## Headers",
        "",
        "| Header | Value |",
        "|---|---|",
        "| `Content-Type` | `application/json` |",
        *[f"| `{name}` | {text} |" for name, text, _ in HEADERS],
        "",
        "## Verifying both signatures",
        "",
        "1. Read the **raw body** bytes; do not parse and re-serialise before checking.",
        "2. Standard Webhooks: HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{raw body}`, keyed with the "
        "base64-decoded part of your secret after `whsec_`; base64 it and compare, in constant time, with each "
        "`v1,` value of `webhook-signature` (space-separated). Refuse a `webhook-timestamp` more than 5 minutes "
        "from your clock.",
        "3. Legacy: `sha256=` + hex HMAC-SHA256 of the raw body keyed with the whole secret string (`whsec_...` "
        "as UTF-8); compare with each comma-separated value of `X-Race-Signature`. It does not sign the "
        "timestamp: prefer the Standard Webhooks check.",
        "4. Drop a `webhook-id` you have already processed (at least once: a retry or replay repeats it), answer "
        "2xx at once, and do the work afterwards.",
        "",
        "[Verifying a delivery](webhooks.md#verifying-a-delivery) has the code in Python and JavaScript.",
        "",
        "## Event types",
        "",
        "| Type | Sent when |",
        "|---|---|",
    ]
    for name, item in spec["webhooks"].items():
        lines.append(f"| [`{name}`](#{name.replace('.', '')}) | {item['post']['description']} |")
    for name, item in spec["webhooks"].items():
        body = item["post"]["requestBody"]["content"]["application/json"]
        lines += ["", f"### {name}", "", item["post"]["description"], "", _fence(body["example"])]
    return "\n".join(lines) + "\n"
