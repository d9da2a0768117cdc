"""Static checks of the built book (``_build/html``): internal links, anchors, offline assets, buttons.

The book must be built first (the test runner does it; by hand: ``jupyter-book build .``).
The tests that read the built site are marked ``browser`` so that ``scripts/test.sh`` runs
them in stage 2, after the build; the checks of the checker itself (fixture site, vendored
copies) need no build and run with the unit tests.
Without a built site these tests skip, or fail when ``AIGC_LESSONS_REQUIRE_SITE=1`` or
``AIGC_LESSONS_REQUIRE_BROWSER=1`` is set. ``AIGC_LESSONS_SITE`` names another built site.
External links are checked by the opt-in ``linkcheck`` job (see the README), not here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from scripts import site_check, vendor_assets
from tests.book_build import copy_fixture_site

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_SITE = Path(__file__).resolve().parent / "fixtures" / "site"


def _require_site() -> bool:
    return any(os.environ.get(name) == "1" for name in ("AIGC_LESSONS_REQUIRE_SITE", "AIGC_LESSONS_REQUIRE_BROWSER"))


@pytest.fixture(scope="module")
def built_site() -> Path:
    site = site_check.find_site()
    if not (site / "index.html").exists():
        message = f"no built book at {site}: build it first (`jupyter-book build .`)"
        if _require_site():
            pytest.fail(message)
        pytest.skip(message)
    return site


def _cdn_build() -> bool:
    return os.environ.get("AIGC_LESSONS_ASSETS") == "cdn"


@pytest.mark.browser
def test_internal_links_and_anchors_resolve(built_site: Path) -> None:
    problems = site_check.check_links(built_site)
    assert not problems, f"{len(problems)} broken internal link(s) or anchor(s):\n" + "\n".join(problems[:50])


@pytest.mark.browser
def test_pages_load_nothing_from_outside_the_site(built_site: Path) -> None:
    if _cdn_build():
        pytest.skip("AIGC_LESSONS_ASSETS=cdn: this build loads MathJax and Mermaid from CDNs on purpose")
    found = site_check.external_assets(built_site)
    assert not found, ("pages load scripts, styles or images from outside the site, so the book breaks "
                       "offline:\n" + "\n".join(found[:30]))


@pytest.mark.browser
def test_vendored_assets_are_in_the_site(built_site: Path) -> None:
    if _cdn_build():
        pytest.skip("AIGC_LESSONS_ASSETS=cdn")
    for name in ("mathjax/tex-chtml.js", "mermaid/mermaid.min.js", "jupyter-widgets/embed.js"):
        assert (built_site / "_vendor" / name).is_file(), (
            f"_vendor/{name} missing from the built site: is the aigc_site extension in _config.yml?")


def _notebook_pages(site: Path) -> list[tuple[Path, str]]:
    """Pages built from a notebook, with their source path (``book/x/y.ipynb``)."""
    pages = []
    for page in site_check.site_pages(site):
        source = page.relative_to(site).with_suffix(".ipynb").as_posix()
        if (site / "_sources" / source).is_file():
            pages.append((page, source))
    return pages


@pytest.mark.browser
def test_notebook_pages_offer_download_and_launch_buttons(built_site: Path) -> None:
    pages = _notebook_pages(built_site)
    if not pages:
        pytest.skip("the built book has no notebook pages")
    problems = []
    for page, source in pages:
        text = page.read_text(encoding="utf-8")
        name = page.relative_to(built_site).as_posix()
        expected = {
            "download of the notebook": re.escape(f"_sources/{source}") + '"',
            "Binder launch button": re.escape("https://mybinder.org/v2/gh/") + r"[^\"]*" + re.escape(source),
            "Colab launch button": re.escape("https://colab.research.google.com/github/") + r"[^\"]*" + re.escape(source),
            "repository button": r'href="https://github\.com/[^"/]+/[^"/]+"',
        }
        for what, pattern in expected.items():
            if not re.search(pattern, text):
                problems.append(f"{name}: no {what}")
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_every_page_has_the_favicon_and_logo(built_site: Path) -> None:
    problems = []
    for page in site_check.site_pages(built_site):
        if site_check.is_redirect(page):
            continue
        links = site_check.parse_page(page).links
        if not any(tag == "link" and "icon" in rel.split() for tag, _, rel in links):
            problems.append(f"{page.relative_to(built_site)}: no favicon")
        if not any(tag == "img" and "logo" in url for tag, url, _ in links):
            problems.append(f"{page.relative_to(built_site)}: no logo")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.browser
def test_figures_and_equations_are_numbered_and_references_show_the_number(built_site: Path) -> None:
    """Captioned figures carry "Fig. n", labelled equations "(n)", and a reference to either shows its number."""
    problems, figures, equations = [], 0, 0
    reference = re.compile(r'<a class="reference internal" href="[^"]*#((?:equation-|fig-)[^"]*)"[^>]*>(.*?)</a>', re.S)
    for page in site_check.site_pages(built_site):
        text = page.read_text(encoding="utf-8")
        name = page.relative_to(built_site).as_posix()
        for caption in re.findall(r"<figcaption>(.*?)</figcaption>", text, re.S):
            figures += 1
            if 'class="caption-number"' not in caption:
                problems.append(f"{name}: a figure caption without a number: {re.sub('<[^>]+>', '', caption).strip()[:60]!r}")
        equations += len(re.findall(r'<span class="eqno">\(\d+', text))
        for target, label in reference.findall(text):
            shown = re.sub(r"<[^>]+>", "", label).strip()
            if not re.search(r"\d", shown):
                problems.append(f"{name}: the reference to #{target} shows {shown!r}, not a number")
    assert not problems, "\n".join(problems[:30])
    print(f"{figures} captioned figures, {equations} numbered equations")


# ----------------------------------------------------------- the checks themselves


def test_link_check_reports_every_break_in_the_fixture(tmp_path: Path) -> None:
    site = copy_fixture_site(tmp_path / "site")
    expected = [
        "broken_image.html: <img> 'img/missing.png': img/missing.png does not exist",
        "broken_links.html: <a> 'no-such-page.html': no-such-page.html does not exist",
        "broken_links.html: <a> 'good.html#no-such-anchor': no element with id 'no-such-anchor' in good.html",
        "broken_links.html: <a> '#nowhere': no element with id 'nowhere' in broken_links.html",
        "math_not_typeset.html: <script> '_vendor/mathjax/no-such-file.js': _vendor/mathjax/no-such-file.js does not exist",
        "mermaid_not_drawn.html: <script> '_vendor/mermaid/no-such-file.js': "
        "_vendor/mermaid/no-such-file.js does not exist",
    ]
    assert site_check.check_links(site) == expected


def test_offline_check_reports_assets_from_elsewhere() -> None:
    assert site_check.external_assets(FIXTURE_SITE) == [
        "external.html: <img> loads http://127.0.0.2:9/elsewhere.png"]


def test_vendored_assets_match_their_manifest() -> None:
    problems = vendor_assets.check()
    assert not problems, "book/_vendor differs from book/_vendor/MANIFEST.json:\n" + "\n".join(problems)


# ----------------------------------------------------------- the landing page's map


def _aigc_site():
    import importlib.util

    spec = importlib.util.spec_from_file_location("aigc_site", ROOT / "book" / "_ext" / "aigc_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_map_leaves_out_pages_not_in_the_book_with_their_empty_groups() -> None:
    text = ("Intro {doc}`/book/missing` stays: it is not a map item.\n\n**A bold paragraph**\nstays.\n\n"
            "**Part I**\n- {doc}`/book/a`: first,\n  continued.\n- {doc}`/book/missing`: gone,\n  also gone.\n\n"
            "**Part II**\n- {doc}`/book/gone`: gone.\n\n"
            "**Part III**\n- {doc}`book/b`: kept.\n")
    pruned, left_out = _aigc_site().prune_map(text, lambda doc: doc.strip("/") in {"book/a", "book/b"})
    assert left_out == ["book/missing", "book/gone"]
    assert pruned == ("Intro {doc}`/book/missing` stays: it is not a map item.\n\n**A bold paragraph**\nstays.\n\n"
                      "**Part I**\n- {doc}`/book/a`: first,\n  continued.\n\n"
                      "\n"
                      "**Part III**\n- {doc}`book/b`: kept.\n")


def test_landing_page_links_only_to_planned_pages() -> None:
    """A map item may name a page not written yet (it is left out), but only one that _toc.yml plans."""
    from tests.book_build import toc_entries

    toc_text = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    planned = set(re.findall(r"file:\s*(\S+)", toc_text))  # listed or commented out
    listed = set(toc_entries())
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    module = _aigc_site()
    problems = []
    for line in intro.splitlines():
        match = module.MAP_ITEM.match(line)
        if match and match.group("doc").strip("/") not in planned:
            problems.append(f"map item for {match.group('doc')!r}, which _toc.yml does not plan (a typo?)")
    # Links outside the map are never left out, so they must name pages the book has now.
    outside = "\n".join(line for line in intro.splitlines()
                        if not module.MAP_ITEM.match(line) and not line.startswith("%"))
    for target in re.findall(r"\{doc\}`([^`]+)`", outside):
        target = re.sub(r".*<(.+)>", r"\1", target)
        doc = target.lstrip("/") if target.startswith("/") else f"book/{target}"
        if doc not in listed:
            problems.append(f"link to {target!r} outside the map: {doc} is not in _toc.yml")
    assert not problems, "\n".join(problems)
