"""The docs site's interactive reference (Swagger UI, installed from npm, served from the site itself)
loads /openapi.json, and a request sent from it reaches the API and shows the answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local import npm_tools
from infra.local.ports import free_port
from tests.integration.conftest import Stack

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def docs_url(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from infra.local import static
    from infra.local.docs_site import build

    try:
        npm_tools.install()
    except npm_tools.RegistryUnreachable as exc:
        pytest.skip(f"Swagger UI comes from the npm registry, which is unreachable: {exc}")
    site = tmp_path_factory.mktemp("docs-site")
    build(site, api_url=stack.api_url)
    server = static.start_in_thread(site, "127.0.0.1", free_port())
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_reference_sends_a_request_and_shows_the_answer(browser: Any, docs_url: str, artifacts: Path) -> None:
    page = browser.new_page()
    requests_seen: list[str] = []
    page.on("request", lambda request: requests_seen.append(request.url))
    try:
        page.goto(docs_url + "/index.html")
        page.click("text=Try the API")
        page.wait_for_selector("#operations-meta-getHealth", timeout=30_000)
        assert page.locator(".opblock-tag-section").count() >= 15  # one section per tag
        page.click("#operations-meta-getHealth .opblock-summary")
        try_out = page.locator("#operations-meta-getHealth .try-out__btn")
        if try_out.count() and "Try it out" in try_out.inner_text():  # tryItOutEnabled: already open ("Cancel")
            try_out.click()
        page.click("#operations-meta-getHealth .execute")
        status = page.wait_for_selector(
            "#operations-meta-getHealth .live-responses-table tr.response .response-col_status"
        )
        assert status.inner_text().strip() == "200"
        body = page.locator("#operations-meta-getHealth .live-responses-table .microlight").first.inner_text()
        assert '"status"' in body and '"ok"' in body
    except Exception:
        page.screenshot(path=str(artifacts / "docs-reference.png"), full_page=True)
        raise
    finally:
        page.close()
    assert not [url for url in requests_seen if not url.startswith(("http://127.0.0.1", "data:"))], requests_seen
