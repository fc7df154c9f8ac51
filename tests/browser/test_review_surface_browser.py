"""Where reviewers and operators look, opened in headless Chromium (issue 16, "How it is checked").

One model trained and registered per session (``conftest.py``); each test opens one surface:
the MLflow model version page, the Prefect flow run page, and the card and Data Docs as files
with the network cut off. Screenshots go to each test's folder (and to EVENFLOW_SCREENSHOTS).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import Locator, Page, Response, expect

from evenflow import layout
from tests.browser.conftest import OfflineGuard, Server, TrainedModel

pytestmark = pytest.mark.browser

Screenshot = Callable[[Page, str], Path]

#: A gate verdict in words: "passed its gates", "Gate: FAILED", ...
VERDICT = re.compile(r"\b(passed|failed)\b", re.IGNORECASE)
#: Elements a Markdown verdict renders to (a heading or bold text), never a code block.
EMPHASIS = "h1, h2, h3, h4, h5, h6, strong, b"
#: The card's verdict: its verdict block, or a heading or bold text.
CARD_VERDICT = f".verdict, {EMPHASIS}"
#: The MLflow UI's rendering of a Markdown description (MLflow 3.17's note editor preview).
DESCRIPTION = '[data-testid="note-editor-preview-content"]'
#: Chromium's own look of an unstyled page.
DEFAULT_FONT = '"Times New Roman"'
TRANSPARENT = "rgba(0, 0, 0, 0)"
DEFAULT_COLOR = "rgb(0, 0, 0)"
#: Status marks of an HTML report: GX's icons and Bootstrap colours, or evenflow's own classes.
STATUS = (
    '[class*="success"], [class*="danger"], [class*="passed"], [class*="failed"], '
    '[class*="fa-check"], [class*="fa-times"], .ok, .bad, .fail'
)


def _verdict(scope: Page | Locator, where: str = EMPHASIS) -> Locator:
    return scope.locator(where).filter(has_text=VERDICT).first


def _close_assistant(page: Page) -> None:
    """Close MLflow's assistant side panel, which opens by default and covers a third of the page."""
    close = page.get_by_role("button", name="Close", exact=True)
    if close.count() == 1 and close.is_visible():
        close.click()


def _in_code(element: Locator) -> bool:
    return bool(element.evaluate("el => el.closest('pre, code') !== null"))


def _assert_offline(offline: OfflineGuard, what: str) -> None:
    assert offline.aborted == [], f"{what} asked the network for: {offline.aborted}"


# --- MLflow: the model version page -------------------------------------------------------------


def test_model_version_page_renders_the_verdict_and_links_the_card(
    page: Page,
    mlflow_server: Server,
    trained_model: TrainedModel,
    offline: OfflineGuard,
    screenshot: Screenshot,
) -> None:
    model = trained_model
    page.goto(f"{mlflow_server.url}/#/models/{model.name}/versions/{model.version}")

    description = page.locator(DESCRIPTION)
    verdict = _verdict(description)
    expect(verdict).to_be_visible(timeout=60_000)
    assert not _in_code(verdict), f"the verdict is code text: {verdict.inner_text()!r}"
    _close_assistant(page)
    screenshot(page, "model-version")
    card_link = description.locator(f'a[href*="{layout.CARD_HTML_FILE}"]').first
    expect(card_link).to_be_visible()
    href = card_link.get_attribute("href") or ""
    assert urlparse(urljoin(page.url, href)).scheme in {"http", "https"}, f"cannot follow {href!r}"
    _follow_card_link(page, card_link, model)
    # The UI is the wheel's own bundle: the pages rendered with every off-machine request refused.
    _assert_offline(offline, "the MLflow UI")


def _is_card_file(response: Response) -> bool:
    url = unquote(response.url)
    return layout.CARD_HTML in url and "artifacts/list" not in url


def _follow_card_link(page: Page, link: Locator, model: TrainedModel) -> None:
    """Click the link as a reviewer would (MLflow opens description links in a new tab).

    The card must come back as HTML from the server, and be on screen: as the page itself, or
    inside the UI's artifact viewer when the link is a route of the UI.
    """
    with page.context.expect_event("response", _is_card_file) as fetched:
        link.click()
    response = fetched.value
    assert response.status == 200, f"{response.url}: HTTP {response.status}"
    # The browser streamed the body into the viewer; the page's request context reads it again.
    served = page.request.get(response.url)
    body = served.text()
    assert served.status == 200 and "<html" in body and VERDICT.search(body), body[:500]
    shown = page.context.pages[-1]
    shown.wait_for_load_state()
    if urlparse(shown.url).fragment.startswith("/"):  # a UI route: the card sits in an iframe
        heading = shown.frame_locator("iframe").first.locator("h1")
    else:
        heading = shown.locator("h1")
    expect(heading).to_contain_text(model.name, timeout=30_000)


# --- Prefect: the flow run page ---------------------------------------------------------------


def _flow_run_artifacts(prefect_url: str, flow_run_id: str) -> list[dict[str, Any]]:
    payload = json.dumps({"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).encode()
    request = Request(
        f"{prefect_url}/api/artifacts/filter",
        data=payload,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urlopen(request, timeout=30) as response:  # the test's own local server
        artifacts: list[dict[str, Any]] = json.load(response)
    return artifacts


def test_flow_run_page_shows_each_stage_artifact(
    page: Page, prefect_server: Server, trained_model: TrainedModel, screenshot: Screenshot
) -> None:
    model = trained_model
    published = {a["key"]: a for a in _flow_run_artifacts(prefect_server.url, model.flow_run_id)}
    expected = [f"{model.name}-{what}" for what in ("validation", "metrics", "gate")]
    link_key = f"{model.name}-model-version"
    assert set(expected) | {link_key} <= set(published), sorted(published)
    # Prefect 3.8 stores a link artifact as Markdown: [text](url).
    link = str(published[link_key]["data"])
    assert re.search(
        rf"\]\(https?://[^)]*#/models/{model.name}/versions/{model.version}(\?[^)]*)?\)", link
    ), link

    # Prefect 3.8 serves its V1 UI here unless the browser chose V2: the tabs are plain buttons.
    page.goto(f"{prefect_server.url}/runs/flow-run/{model.flow_run_id}")
    page.get_by_text("Artifacts", exact=True).first.click()
    for key in [*expected, link_key]:
        expect(page.get_by_text(key, exact=True).first).to_be_visible(timeout=30_000)
    page.get_by_text(expected[0], exact=True).first.scroll_into_view_if_needed()
    screenshot(page, "flow-run-artifacts")


# --- the card and the Data Docs as files, offline ---------------------------------------------


def _styled(page: Page) -> dict[str, str]:
    """The computed look of the body and the first table header: defaults when no CSS applied."""
    return dict(
        page.evaluate(
            """() => {
              const th = document.querySelector('th');
              return {
                font: getComputedStyle(document.body).fontFamily,
                header: th ? getComputedStyle(th).backgroundColor : 'no table header',
              };
            }"""
        )
    )


def test_model_card_renders_offline_with_its_verdict_on_top(
    page: Page, trained_model: TrainedModel, offline: OfflineGuard, screenshot: Screenshot
) -> None:
    card = trained_model.artifact_dir / layout.CARD_HTML
    page.goto(card.as_uri())

    verdict = _verdict(page, CARD_VERDICT)
    expect(verdict).to_be_visible()
    box = verdict.bounding_box()
    assert box is not None and box["y"] < page.viewport_size["height"], (  # type: ignore[index]
        f"the verdict is not on the first screen: {box}"
    )
    contents = page.locator('a[href^="#"]')
    assert contents.count() >= 3, "the card has no contents list"
    look = _styled(page)
    assert not look["font"].startswith(DEFAULT_FONT), look
    assert look["header"] not in {TRANSPARENT, "no table header"}, look
    screenshot(page, "model-card")
    _assert_offline(offline, "the model card")


def _status_marks(page: Page) -> list[dict[str, str]]:
    """Each status element's colour, background and icon glyph (``::before``)."""
    marks: list[dict[str, str]] = page.eval_on_selector_all(
        STATUS,
        """els => els.map(el => ({
              cls: String(el.className),
              color: getComputedStyle(el).color,
              background: getComputedStyle(el).backgroundColor,
              glyph: getComputedStyle(el, '::before').content,
           }))""",
    )
    return marks


def test_data_docs_render_offline_with_styles_and_status_marks(
    page: Page, trained_model: TrainedModel, offline: OfflineGuard, screenshot: Screenshot
) -> None:
    docs = trained_model.artifact_dir / layout.VALIDATION_DIR
    [index] = [p for p in docs.rglob("index.html") if "static" not in p.parts]
    page.goto(index.as_uri())

    # GX's index lists results in a table its scripts build; a row opens its page when clicked.
    listed = page.locator('[data-href*="validations/"], a[href*="validations/"]').first
    expect(listed).to_be_visible()
    screenshot(page, "data-docs-index")
    listed.click()
    page.wait_for_load_state("load")
    assert "validations" in page.url, page.url
    marks = _status_marks(page)
    assert marks, "the validation page shows no status element"
    styled = [
        m
        for m in marks
        if m["color"] != DEFAULT_COLOR or m["background"] != TRANSPARENT or m["glyph"] != "none"
    ]
    assert styled, f"status elements without styles: {marks[:5]}"
    icons = [m for m in marks if "fa-" in m["cls"]]
    assert all(m["glyph"] not in {"none", "normal"} for m in icons), f"icons without glyph: {icons}"
    assert not _styled(page)["font"].startswith(DEFAULT_FONT), _styled(page)
    screenshot(page, "data-docs-validation")
    _assert_offline(offline, "the Data Docs")
