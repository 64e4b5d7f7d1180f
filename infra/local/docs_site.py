"""Builds the docs site (docs/*.md -> HTML pages with a shared navigation) for :6167 and S3."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title} · Race Platform docs</title><link rel="stylesheet" href="style.css"></head>
<body><nav aria-label="Documentation"><a class="brand" href="index.html">Race Platform</a>{nav}</nav>
<main>{body}</main></body></html>
"""

_STYLE = """
:root { color-scheme: dark; --bg:#0e1116; --panel:#161b22; --text:#e6edf3; --muted:#8b949e; --accent:#f0883e; }
body { margin:0; display:flex; min-height:100vh; background:var(--bg); color:var(--text);
       font:15px/1.6 system-ui, -apple-system, "Segoe UI", sans-serif; }
nav { width:230px; padding:20px; background:var(--panel); border-right:1px solid #30363d; flex-shrink:0; }
nav a { display:block; color:var(--muted); text-decoration:none; padding:4px 0; }
nav a:hover, nav a[aria-current] { color:var(--text); }
nav .brand { color:var(--accent); font-weight:700; margin-bottom:12px; }
main { max-width:920px; padding:24px 40px 80px; }
a { color:#58a6ff; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size:13px; }
pre { background:var(--panel); padding:12px 14px; border-radius:6px; overflow:auto; border:1px solid #30363d; }
code { background:#1f2630; padding:1px 4px; border-radius:4px; }
pre code { background:none; padding:0; }
table { border-collapse:collapse; margin:12px 0; font-size:14px; }
th, td { border:1px solid #30363d; padding:6px 10px; text-align:left; vertical-align:top; }
th { background:var(--panel); }
h1, h2, h3 { line-height:1.25; } h1 { color:var(--accent); }
"""


def _title(text: str, fallback: str) -> str:
    found = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return found.group(1).strip() if found else fallback


def api_reference() -> str:
    """docs/api-reference as Markdown, generated from the app's own OpenAPI document."""
    from app import app
    from chalicelib.api.openapi import document

    spec = document(app.routes)
    lines = [
        "# API reference",
        "",
        "Generated from `GET /openapi.json` when the docs are built. Every route answers errors in the "
        "shape described in [the API guide](api.md). The [interactive reference](reference/index.html) shows "
        "each body and answer with an example and sends requests; [samples](samples.md) show sign-in, a lap "
        "batch and a room subscription in curl, Python and JavaScript.",
        "",
        "| Method | Path | What | Auth |",
        "|---|---|---|---|",
    ]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            auth = "public" if operation.get("security") == [] else "JWT or API key"
            summary = operation["summary"].replace("|", "\\|")
            lines.append(f"| {method.upper()} | `{path}` | {summary} | {auth} |")
    return "\n".join(lines) + "\n"


def build(out: Path, docs: Path = DOCS, api_url: str | None = None, reference: bool = True) -> list[Path]:
    """Render every docs/*.md into `out`; links to x.md become x.html. Returns the pages written.

    reference: also the interactive reference (Swagger UI from npm, served from `out`), whose requests
    go to `api_url` (default: the origin serving the docs).
    """
    import markdown

    from infra.local import docs_reference

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "style.css").write_text(_STYLE)
    if (docs / "images").is_dir():  # screenshots the pages show (docs/using-the-client.md)
        shutil.copytree(docs / "images", out / "images")
    generated = out / "_generated"
    generated.mkdir()
    (generated / "api-reference.md").write_text(api_reference())
    (generated / "webhook-events.md").write_text(docs_reference.event_catalog())
    if reference:
        docs_reference.write_interactive(out / "reference", api_url)
    sources = sorted([*docs.glob("*.md"), *generated.glob("*.md")], key=lambda p: (p.stem != "index", p.stem))
    titles = {p.stem: _title(p.read_text(), p.stem) for p in sources}
    written = []
    for source in sources:
        nav = "".join(
            f'<a href="{stem}.html"{" aria-current=page" if stem == source.stem else ""}>{html.escape(title)}</a>'
            for stem, title in titles.items()
        )
        nav += '<a href="reference/index.html">Try the API</a>' if reference else ""
        text = re.sub(r"\]\(([\w-]+)\.md(#[\w-]+)?\)", r"](\1.html\2)", source.read_text())
        body = markdown.markdown(text, extensions=["tables", "fenced_code", "toc"])
        page = out / f"{source.stem}.html"
        page.write_text(_PAGE.format(title=html.escape(titles[source.stem]), nav=nav, body=body))
        written.append(page)
    shutil.rmtree(generated)
    return written
