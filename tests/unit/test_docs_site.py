"""The docs site builds from docs/*.md, links between pages work, and nothing points outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.local.docs_site import DOCS, build

pytestmark = pytest.mark.unit


def test_every_page_builds_and_internal_links_resolve(tmp_path: Path) -> None:
    pages = build(tmp_path, reference=False)  # the interactive reference needs npm: tests/browser
    assert {p.stem for p in pages} == {p.stem for p in DOCS.glob("*.md")} | {"api-reference", "webhook-events"}
    assert "/laps" in (tmp_path / "api-reference.html").read_text()
    for page in pages:
        text = page.read_text()
        assert "<table" in text or "<p>" in text
        for target in re.findall(r'href="([\w-]+\.html)', text):
            assert (tmp_path / target).exists(), f"{page.name} links to missing {target}"
        for image in re.findall(r'<img[^>]* src="([^"]+)"', text):
            assert (tmp_path / image).is_file(), f"{page.name} shows missing {image}"
        assert "http://fonts" not in text and "cdn" not in text.lower()


def test_the_event_catalog_lists_every_event_type_with_an_example(tmp_path: Path) -> None:
    from chalicelib.api.webhook_events import catalog

    build(tmp_path, reference=False)
    page = (tmp_path / "webhook-events.html").read_text()
    for event in catalog():
        assert f'id="{event.type.replace(".", "")}"' in page, event.type
        assert f"&quot;type&quot;: &quot;{event.type}&quot;" in page, f"{event.type} has no example payload"
    for header in ("webhook-id", "webhook-timestamp", "webhook-signature", "X-Race-Signature"):
        assert header in page
