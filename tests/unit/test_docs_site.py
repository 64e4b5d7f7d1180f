"""The docs site builds from docs/*.md, links between pages work, and nothing points outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.local.docs_site import DOCS, build

pytestmark = pytest.mark.unit


def test_every_page_builds_and_internal_links_resolve(tmp_path: Path) -> None:
    pages = build(tmp_path)
    assert {p.stem for p in pages} == {p.stem for p in DOCS.glob("*.md")} | {"api-reference"}
    assert "/laps" in (tmp_path / "api-reference.html").read_text()
    for page in pages:
        text = page.read_text()
        assert "<table" in text or "<p>" in text
        for target in re.findall(r'href="([\w-]+\.html)', text):
            assert (tmp_path / target).exists(), f"{page.name} links to missing {target}"
        assert "http://fonts" not in text and "cdn" not in text.lower()
