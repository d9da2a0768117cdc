"""The built book in a real browser: every page loads in headless Chromium and renders.

Per page (``scripts/site_check.py`` has the checks): no JavaScript console errors, every
``<img>`` loaded, every math element typeset by MathJax without a TeX error and no raw
TeX left in the text, every Mermaid diagram drawn as an SVG, saved widgets drawn, every
link to the site answered and its ``#anchor`` present, and nothing fetched from outside
the site (the book must work offline). Screenshots of key pages go to
``_build/screenshots/`` (``AIGC_LESSONS_SCREENSHOTS`` names another folder); the site
is ``_build/html`` or ``AIGC_LESSONS_SITE``.

Needs a built book (``_build/html``, or ``AIGC_LESSONS_SITE``) and Chromium with
ChromeDriver (``bash scripts/ensure_browser.sh`` installs the Debian packages). Without
them these tests skip with the reason; with ``AIGC_LESSONS_REQUIRE_BROWSER=1`` they fail
instead. The fixture tests prove that the checks catch broken math, images, diagrams,
links, scripts and off-site assets, on a mini-site in ``tests/fixtures/site``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from scripts import site_check

# Stage 2 of scripts/test.sh (after the book build): needs the built site and Chromium.
pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_SITE = Path(__file__).resolve().parent / "fixtures" / "site"
REQUIRE = os.environ.get("AIGC_LESSONS_REQUIRE_BROWSER") == "1"


def _unavailable(message: str):
    if REQUIRE:
        pytest.fail(f"{message} (AIGC_LESSONS_REQUIRE_BROWSER=1)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    try:
        session = site_check.start_browser()
    except site_check.BrowserUnavailable as error:
        _unavailable(f"no headless browser: {error}")
    yield session
    site_check.stop_browser(session)


@pytest.fixture(scope="module")
def built_site() -> Path:
    site = site_check.find_site()
    if not (site / "index.html").exists():
        _unavailable(f"no built book at {site}: build it first (`jupyter-book build .`)")
    return site


@pytest.fixture(scope="module")
def fixture_base(tmp_path_factory):
    """The broken mini-site served on localhost, with the book's vendored MathJax and Mermaid."""
    folder = tmp_path_factory.mktemp("fixture-site") / "site"
    shutil.copytree(FIXTURE_SITE, folder)
    shutil.copytree(ROOT / "book" / "_vendor", folder / "_vendor")
    with site_check.serve(folder) as base:
        yield base


def _offline() -> bool:
    return os.environ.get("AIGC_LESSONS_ASSETS") != "cdn"


def test_every_page_renders(built_site: Path, browser) -> None:
    reports: dict[str, site_check.PageReport] = {}
    link_cache: dict = {}
    with site_check.serve(built_site) as base:
        for page in site_check.site_pages(built_site):
            if site_check.is_redirect(page):
                continue
            name = page.relative_to(built_site).as_posix()
            reports[name] = site_check.check_page(browser, site_check.page_url(base, built_site, page),
                                                  offline=_offline(), link_cache=link_cache)
        folder = Path(os.environ.get("AIGC_LESSONS_SCREENSHOTS", built_site.parent / "screenshots"))
        saved = site_check.save_key_screenshots(browser, base, built_site, reports, folder, log=lambda line: None)
    assert reports, f"no pages found in {built_site}"
    problems = [f"{name}: {problem}" for name, report in reports.items() for problem in report.problems]
    summary = (f"{len(reports)} pages; math on {sum(bool(r.math) for r in reports.values())}, "
               f"diagrams on {sum(bool(r.mermaid) for r in reports.values())}")
    assert not problems, f"{summary}; {len(problems)} problem(s):\n" + "\n".join(problems[:60])
    assert any(path.name == "landing.png" for path in saved) and all(path.stat().st_size for path in saved), saved


def test_search_finds_pages(built_site: Path, browser) -> None:
    with site_check.serve(built_site) as base:
        results = site_check.search_results(browser, base, "generative")
    assert results, "the search page found nothing for 'generative' (is searchindex.js built and loading?)"


# ----------------------------------------------------------- the checks themselves

# Each fixture page breaks one thing; the check must say so in these words.
EXPECTED = {
    "broken_math.html": ["MathJax error", "not typeset by MathJax"],
    "math_not_typeset.html": ["not typeset by MathJax", "console error"],
    "raw_tex.html": ["raw TeX in the text"],
    "broken_image.html": ["image not loaded", "console error"],
    "broken_mermaid.html": ["Mermaid shows a syntax error", "console error"],
    "mermaid_not_drawn.html": ["Mermaid diagram not drawn", "console error"],
    "console_error.html": ["console error: ", "fixture: deliberate error"],
    "external.html": ["fetched from outside the site"],
    "broken_links.html": ["broken link 'no-such-page.html': the server answers 404",
                          "broken link 'good.html#no-such-anchor': no element with id 'no-such-anchor'",
                          "broken link '#nowhere': no element with id 'nowhere' on this page"],
}


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_browser_check_catches_a_broken_page(page: str, fixture_base: str, browser) -> None:
    report = site_check.check_page(browser, fixture_base + page, settle_ms=5000)
    text = "\n".join(report.problems)
    if page == "broken_links.html":  # exactly the three breaks: the good links on it must pass
        assert len(report.problems) == 3, text
    for words in EXPECTED[page]:
        assert words in text, f"{page}: the check did not report {words!r}; it reported:\n{text or '(nothing)'}"


def test_browser_check_passes_a_good_page(fixture_base: str, browser) -> None:
    report = site_check.check_page(browser, fixture_base + "good.html")
    assert not report.problems, "good.html should pass:\n" + "\n".join(report.problems)
    assert (report.math, report.mermaid, report.images) == (2, 1, 1), report
