"""Check the built book (``_build/html``) the way a reader sees it.

Two checks, used by ``tests/test_links.py`` and ``tests/test_browser.py`` and
runnable by hand:

* ``links``: a static pass over every HTML file. Every internal ``href`` and
  ``src`` must name a file of the site, and every ``#fragment`` an ``id`` on the
  target page. Also lists scripts and stylesheets loaded from outside the site
  (a site built for offline reading must have none).
* ``browser``: loads every page in headless Chromium (Selenium with Debian's
  ``chromium`` and ``chromium-driver``) the way the README tells readers to
  open the book: straight from disk (``file://`` URLs), or with ``--http``
  served on ``127.0.0.1`` as a web host would. Per page: no JavaScript console
  errors, every ``<img>`` loaded, every math element typeset by MathJax without
  a TeX error, no raw TeX left in the text, every Mermaid diagram drawn as an
  SVG without a syntax error, saved widgets drawn, no code block that scrolls
  sideways although its lines fit ``CODE_COLUMNS``, every link to the site
  answered (the file exists, or the server answers) with its ``#fragment``
  present (on the rendered page for in-page links), and (offline mode) nothing
  fetched from outside the site. Optionally saves screenshots of key pages.

Usage::

    python scripts/site_check.py links [_build/html]
    python scripts/site_check.py browser [_build/html] [--http] [--screenshots _build/screenshots]

A third, opt-in check needs internet and is not part of the test suite:

* ``external``: every link to another site answers (Sphinx's ``linkcheck``
  builder on a throw-away build with notebooks not executed)::

    python scripts/site_check.py external
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import html.parser
import http.server
import os
import posixpath
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SITE = ROOT / "_build" / "html"
# Folders of the site that hold assets, not pages.
ASSET_DIRS = {"_static", "_sources", "_images", "_vendor", "_screenshots", "jupyter_execute", "_downloads"}

# Console messages that are not errors of the book, each with the reason it is allowed.
# Keep this list short: a message belongs here only when it cannot be fixed in the book.
CONSOLE_ALLOW: list[tuple[str, str]] = []

# The longest code line (in monospace columns) the book allows: tests/test_code_width.py
# enforces it in the notebooks, and the site's style sheet (book/_ext/aigc_site.py, which
# has the measurements) makes a line of this length fit a code cell of a 1280 px window.
CODE_COLUMNS = 88


# --------------------------------------------------------------------------- site


def find_site() -> Path:
    """The built site: ``$AIGC_LESSONS_SITE`` or ``_build/html`` in the repository."""
    return Path(os.environ.get("AIGC_LESSONS_SITE", DEFAULT_SITE)).resolve()


def site_pages(site: Path) -> list[Path]:
    """Every HTML page of the site (not the assets), sorted."""
    pages = []
    for path in sorted(site.rglob("*.html")):
        relative = path.relative_to(site)
        if relative.parts[0] in ASSET_DIRS:
            continue
        pages.append(path)
    return pages


def is_redirect(path: Path) -> bool:
    head = path.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


# --------------------------------------------------------------------------- static links


class _PageParser(html.parser.HTMLParser):
    """Collects ids and the URLs a page links to or loads."""

    LINK_ATTRIBUTES = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src",
                       "iframe": "src", "embed": "src", "video": "src", "audio": "src"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute value, rel)
        self.refresh: str | None = None
        self._in_module_script = False
        self.module_imports: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for key in ("id", "name") if tag == "a" else ("id",):
            if values.get(key):
                self.ids.add(values[key])
        attribute = self.LINK_ATTRIBUTES.get(tag)
        if attribute and values.get(attribute):
            self.links.append((tag, values[attribute], values.get("rel", "")))
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            match = re.search(r"url=(.+)", values.get("content", ""), re.IGNORECASE)
            if match:
                self.refresh = match.group(1).strip().strip("'\"")
        self._in_module_script = tag == "script" and values.get("type") == "module" and not values.get("src")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_module_script = False

    def handle_data(self, data: str) -> None:
        if self._in_module_script:
            self.module_imports += re.findall(r"""(?:import|from)\s*["'](\.{1,2}/[^"']+)["']""", data)


@dataclass
class _Parsed:
    ids: set[str]
    links: list[tuple[str, str, str]]
    refresh: str | None
    module_imports: list[str]


@functools.lru_cache(maxsize=4096)
def _parse(path: Path, mtime: float) -> _Parsed:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return _Parsed(parser.ids, parser.links, parser.refresh, parser.module_imports)


def parse_page(path: Path) -> _Parsed:
    return _parse(path, path.stat().st_mtime)


def _is_external(url: str) -> bool:
    scheme = urlsplit(url).scheme
    # a data: URL is embedded in the page itself (the music chapter's audio), so it loads nothing
    return (bool(scheme) and scheme != "data") or url.startswith("//")


def _resolve(site: Path, page: Path, url: str) -> tuple[Path, str]:
    """The file an internal URL of ``page`` names, and its fragment."""
    parts = urlsplit(url)
    base = page.parent.relative_to(site).as_posix()
    joined = posixpath.normpath(posixpath.join(base, unquote(parts.path))) if parts.path else page.relative_to(site).as_posix()
    target = site / joined
    if parts.path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def check_links(site: Path) -> list[str]:
    """Broken internal links, missing files and missing anchors, as ``page: problem`` lines."""
    problems: list[str] = []
    for page in site_pages(site):
        parsed = parse_page(page)
        name = page.relative_to(site).as_posix()
        urls = [(tag, url) for tag, url, _ in parsed.links]
        urls += [("script type=module import", url) for url in parsed.module_imports]
        if parsed.refresh:
            urls.append(("meta refresh", parsed.refresh))
        for tag, url in urls:
            if _is_external(url) or url.startswith(("mailto:", "javascript:", "data:", "tel:")):
                continue
            if url in ("#", ""):
                continue
            target, fragment = _resolve(site, page, url)
            try:
                target.relative_to(site)
            except ValueError:
                problems.append(f"{name}: <{tag}> {url!r} points outside the site")
                continue
            if not target.is_file():
                problems.append(f"{name}: <{tag}> {url!r}: {target.relative_to(site).as_posix()} does not exist")
                continue
            if fragment and target.suffix == ".html" and fragment not in parse_page(target).ids:
                problems.append(f"{name}: <{tag}> {url!r}: no element with id {fragment!r} "
                                f"in {target.relative_to(site).as_posix()}")
    return problems


def external_assets(site: Path) -> list[str]:
    """Scripts, stylesheets and images that pages load from outside the site (links to read are fine)."""
    found = []
    for page in site_pages(site):
        for tag, url, rel in parse_page(page).links:
            loads = tag in ("script", "img", "iframe", "embed", "source", "video", "audio") or (
                tag == "link" and any(word in rel.split() for word in ("stylesheet", "icon", "preload", "modulepreload")))
            if loads and _is_external(url):
                found.append(f"{page.relative_to(site).as_posix()}: <{tag}> loads {url}")
    return found


# --------------------------------------------------------------------------- serving


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".mjs": "text/javascript", ".js": "text/javascript", ".svg": "image/svg+xml",
                      ".woff": "font/woff", ".woff2": "font/woff2", ".json": "application/json",
                      ".ipynb": "application/x-ipynb+json"}

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def file_base(site: Path) -> str:
    """The ``file://`` URL of the site's folder, with a trailing slash (pages are opened from disk)."""
    return site.resolve().as_uri() + "/"


@contextlib.contextmanager
def opened(site: Path, how: str = "file") -> Iterator[str]:
    """The base URL of ``site`` opened as a reader does: ``"file"`` (from disk, what the README
    tells readers) or ``"http"`` (served on 127.0.0.1, as a web host would)."""
    if how == "file":
        yield file_base(site)
    elif how == "http":
        with serve(site) as base:
            yield base
    else:
        raise ValueError(f"how must be 'file' or 'http', not {how!r}")


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- browser


class BrowserUnavailable(RuntimeError):
    """No Chromium and ChromeDriver pair (or Selenium) was found; the message says what is missing."""


def find_browser() -> tuple[str, str]:
    """Paths of Chromium and ChromeDriver (``$AIGC_LESSONS_CHROMIUM`` / ``$AIGC_LESSONS_CHROMEDRIVER`` win)."""
    try:
        import selenium  # noqa: F401
    except ImportError as error:
        raise BrowserUnavailable(f"selenium is not installed ({error}); `pip install -e .[test]`") from None
    browser = os.environ.get("AIGC_LESSONS_CHROMIUM") or next(
        (found for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
         if (found := shutil.which(name))), None)
    driver = os.environ.get("AIGC_LESSONS_CHROMEDRIVER") or shutil.which("chromedriver")
    missing = [what for what, path in (("chromium", browser), ("chromedriver", driver))
               if not path or not os.access(path, os.X_OK)]
    if missing:
        raise BrowserUnavailable(f"not found: {', '.join(missing)}; run `bash scripts/ensure_browser.sh` "
                                 "(Debian packages chromium and chromium-driver)")
    return str(browser), str(driver)


def start_browser(width: int = 1280, height: int = 1000):
    """A headless Chromium driven by Selenium, with the console log enabled; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = find_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-quic", "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                     "--force-device-scale-factor=1", f"--window-size={width},{height}"):
        options.add_argument(argument)
    profile = tempfile.mkdtemp(prefix="aigc-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    except Exception as error:  # the driver gives many exception types for a browser that will not start
        shutil.rmtree(profile, ignore_errors=True)
        raise BrowserUnavailable(f"Chromium did not start: {str(error).strip().splitlines()[0]}") from error
    session.set_page_load_timeout(60)
    session.set_script_timeout(60)
    session._aigc_profile = profile  # removed by stop_browser
    return session


def stop_browser(session) -> None:
    profile = getattr(session, "_aigc_profile", None)
    with contextlib.suppress(Exception):
        session.quit()
    if profile:
        shutil.rmtree(profile, ignore_errors=True)


# Waits (inside the page) until MathJax, Mermaid, images, widgets and fonts have settled.
_SETTLE_JS = r"""
const done = arguments[arguments.length - 1];
const timeoutMs = arguments[0];
const start = Date.now();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
(async () => {
  for (const img of document.images) { img.loading = "eager"; }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) {}
  }
  const pending = () => {
    // Diagrams in hidden parts of the page (closed dropdowns) are drawn only when shown.
    const mermaidLeft = [...document.querySelectorAll(".mermaid:not([data-mermaid-deferred])")].filter(
      (el) => !el.querySelector("svg") && el.getAttribute("data-mermaid-render-failed") !== "true").length;
    const imagesLeft = [...document.images].filter((img) => !img.complete).length;
    return mermaidLeft + imagesLeft;
  };
  while (pending() > 0 && Date.now() - start < timeoutMs) { await sleep(100); }
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) {}
  }
  try { await document.fonts.ready; } catch (e) {}
  await sleep(200);
  done(Date.now() - start);
})();
"""

# Collects what the checks need from the rendered page.
_INSPECT_JS = r"""
// The URL prefix of the site (its root folder for file:// pages, whose origin is opaque).
const origin = arguments[0];
const codeColumns = arguments[1];
const text = (el) => (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 80);
const result = {};
result.images = [...document.images].map((img) => ({
  src: img.currentSrc || img.src, complete: img.complete, width: img.naturalWidth}));
const maths = [...document.querySelectorAll(".math")];
result.math = maths.length;
result.mathUntypeset = maths.filter((el) => !el.querySelector("mjx-container")).map(text);
result.mathErrors = [...document.querySelectorAll("mjx-container [data-mjx-error], mjx-merror")].map(
  (el) => el.getAttribute("data-mjx-error") || text(el));
result.mjx = document.querySelectorAll("mjx-container").length;
// Raw TeX in text MathJax never saw (outside code, scripts and typeset math).
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
  acceptNode: (node) => node.parentElement.closest(
    "pre, code, script, style, textarea, mjx-container, .highlight, .mermaid, .math")
    ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT});
result.rawTex = [];
while (walker.nextNode()) {
  const value = walker.currentNode.nodeValue;
  if (/\\\(|\\\[|\\begin\{|\$\$|\\frac\{|\\mathbb\{/.test(value)) { result.rawTex.push(value.trim().slice(0, 80)); }
}
const mermaids = [...document.querySelectorAll(".mermaid:not([data-mermaid-deferred])")];
result.mermaid = mermaids.length;
const source = (el) => (el.getAttribute("data-original-code") || "").trim().replace(/\s+/g, " ").slice(0, 80);
result.mermaidUndrawn = mermaids.filter((el) => !el.querySelector("svg")).map(text);
result.mermaidErrors = mermaids.map((el, index) => ({index: index + 1, code: source(el), error:
  el.querySelector("svg[aria-roledescription='error']") !== null || /Syntax error in text/.test(el.textContent)}))
  .filter((entry) => entry.error).map((entry) => `diagram ${entry.index}` + (entry.code ? `: ${entry.code}` : ""));
const views = [...document.querySelectorAll("script[type='application/vnd.jupyter.widget-view+json']")];
let state = {};
const stateTag = document.querySelector("script[type='application/vnd.jupyter.widget-state+json']");
if (stateTag) { try { state = JSON.parse(stateTag.textContent).state || {}; } catch (e) { state = {}; } }
result.widgetViews = views.filter((tag) => {
  try { return JSON.parse(tag.textContent).model_id in state; } catch (e) { return false; } }).length;
result.widgetsDrawn = document.querySelectorAll(".jupyter-widgets.widget-inline-hbox, .jupyter-widgets.widget-container, .jupyter-widgets.widget-hbox, .jupyter-widgets.widget-vbox, .widget-subarea > .jupyter-widgets, .jupyter-widgets-view, div.jupyter-widgets").length;
result.external = performance.getEntriesByType("resource").map((entry) => entry.name).filter(
  (name) => !name.startsWith(origin) && !name.startsWith("data:") && !name.startsWith("blob:"));
// Links to pages of the site (after scripts ran), and every id of the rendered page.
result.links = [...document.querySelectorAll("a[href]")].filter(
  (a) => a.href.startsWith(origin) && !a.getAttribute("href").startsWith("javascript:")).map(
  (a) => ({href: a.href, raw: a.getAttribute("href")}));
result.ids = [...document.querySelectorAll("[id]")].map((el) => el.id).concat(
  [...document.querySelectorAll("a[name]")].map((el) => el.getAttribute("name")));
// Code that scrolls sideways: every preformatted block but diagrams, with its longest line.
result.codeScrolls = [...document.querySelectorAll("pre:not(.mermaid)")].filter(
  (pre) => pre.scrollWidth > pre.clientWidth + 1).map((pre) => {
    const lines = (pre.textContent || "").replace(/\n$/, "").split("\n");
    const widths = lines.map((line) => [...line].length);
    const longest = Math.max(0, ...widths);
    return {longest, line: lines[widths.indexOf(longest)].trim().slice(0, 60),
            shown: pre.clientWidth, needed: pre.scrollWidth};
  });
result.title = document.title;
return result;
"""


def _fetch_target(url: str, cache: dict[str, tuple[int, set[str] | None]]) -> tuple[int, set[str] | None]:
    """HTTP status of a page of the site (200, 404, or 0: no answer) and, for HTML, its ids (cached).

    A ``file://`` URL is read from disk: 200 for a file, 404 when it is missing or names a
    folder (a browser shows a folder as a file listing, not its ``index.html``).
    """
    import urllib.error
    import urllib.request

    if url not in cache and urlsplit(url).scheme == "file":
        from urllib.request import url2pathname

        path = Path(url2pathname(urlsplit(url).path))
        if not path.is_file():
            cache[url] = (404, None)
        elif path.suffix in (".html", ".htm"):
            cache[url] = (200, parse_page(path).ids)
        else:
            cache[url] = (200, None)
    if url not in cache:
        try:
            with urllib.request.urlopen(url, timeout=15) as response:
                body = response.read()
                ids = None
                if "html" in response.headers.get("Content-Type", ""):
                    parser = _PageParser()
                    parser.feed(body.decode("utf-8", errors="replace"))
                    ids = parser.ids
                cache[url] = (response.status, ids)
        except urllib.error.HTTPError as error:
            cache[url] = (error.code, None)
        except OSError as error:  # refused, timed out
            cache[url] = (0, None)
    return cache[url]


def link_problems(page: dict, current_url: str, cache: dict | None = None) -> list[str]:
    """Broken links of a rendered page: targets the server does not have, fragments with no element."""
    cache = {} if cache is None else cache
    problems, seen = [], set()
    current = urlsplit(current_url)._replace(fragment="", query="").geturl()
    for link in page.get("links", []):
        href, raw = link["href"], link["raw"]
        if href in seen:
            continue
        seen.add(href)
        parts = urlsplit(href)
        target = parts._replace(fragment="", query="").geturl()
        fragment = unquote(parts.fragment)
        if target == current:
            if fragment and fragment not in page["ids"]:
                problems.append(f"broken link {raw!r}: no element with id {fragment!r} on this page")
            continue
        status, ids = _fetch_target(target, cache)
        if status != 200 and parts.scheme == "file":
            from urllib.request import url2pathname

            what = "a folder, not a page" if Path(url2pathname(parts.path)).is_dir() else "no such file"
            problems.append(f"broken link {raw!r}: {what} on disk: {unquote(parts.path)}")
        elif status != 200:
            problems.append(f"broken link {raw!r}: the server answers {status or 'nothing'} for {parts.path}")
        elif fragment and ids is not None and fragment not in ids:
            problems.append(f"broken link {raw!r}: no element with id {fragment!r} in {parts.path}")
    return problems


@dataclass
class PageReport:
    url: str
    problems: list[str] = field(default_factory=list)
    math: int = 0
    mermaid: int = 0
    images: int = 0
    figures: int = 0  # images of the book's content (in _images/), not the logo or button icons
    widgets: int = 0
    code_too_wide: int = 0  # code blocks that scroll because a line is longer than CODE_COLUMNS
    seconds: float = 0.0


def _allowed(message: str, allow: list[tuple[str, str]]) -> bool:
    return any(re.search(pattern, message) for pattern, _reason in allow)


def _default_site_base(url: str) -> str:
    """The site's URL prefix when the caller names none: the origin, or a file page's folder."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return f"file://{posixpath.dirname(parts.path)}/"
    return f"{parts.scheme}://{parts.netloc}/"


def check_page(session, url: str, *, offline: bool = True, allow: list[tuple[str, str]] | None = None,
               settle_ms: int = 20000, link_cache: dict | None = None, base: str | None = None,
               code_columns: int = CODE_COLUMNS) -> PageReport:
    """Load one page and return what is wrong with it (an empty ``problems`` list when it renders).

    ``link_cache`` (a dict kept across the pages of one site) saves fetching a link target twice.
    ``base`` is the site's URL (``http://host:port/`` or the ``file://`` URL of its folder):
    links under it are checked and resources from elsewhere are reported (default: the origin,
    or the page's folder for a ``file://`` page).
    """
    allow = CONSOLE_ALLOW if allow is None else allow
    report = PageReport(url)
    started = time.perf_counter()
    session.get_log("browser")  # drop what earlier pages logged
    session.get(url)
    session.execute_async_script(_SETTLE_JS, settle_ms)
    page = session.execute_script(_INSPECT_JS, base or _default_site_base(url), code_columns)
    report.seconds = time.perf_counter() - started
    report.math, report.mermaid, report.images = page["math"], page["mermaid"], len(page["images"])
    report.widgets = page["widgetViews"]
    report.figures = sum("/_images/" in image["src"] for image in page["images"])
    for entry in session.get_log("browser"):
        if entry.get("level") == "SEVERE" and not _allowed(entry.get("message", ""), allow):
            report.problems.append(f"console error: {entry['message'][:300]}")
    for image in page["images"]:
        if not image["complete"] or image["width"] == 0:
            report.problems.append(f"image not loaded: {image['src']}")
    if page["mathUntypeset"]:
        report.problems.append(f"{len(page['mathUntypeset'])} of {page['math']} math elements not typeset "
                               f"by MathJax, first: {page['mathUntypeset'][0]!r}")
    for error in page["mathErrors"]:
        report.problems.append(f"MathJax error: {error}")
    for raw in page["rawTex"][:5]:
        report.problems.append(f"raw TeX in the text: {raw!r}")
    for source in page["mermaidUndrawn"]:
        report.problems.append(f"Mermaid diagram not drawn: {source!r}")
    for diagram in page["mermaidErrors"]:
        report.problems.append(f"Mermaid shows a syntax error instead of the diagram ({diagram})")
    if page["widgetViews"] and not page["widgetsDrawn"]:
        report.problems.append(f"{page['widgetViews']} saved widget(s) not drawn by the widgets manager")
    for block in page["codeScrolls"]:
        if block["longest"] <= code_columns:
            report.problems.append(
                f"code scrolls sideways although its longest line has {block['longest']} <= {code_columns} "
                f"columns ({block['needed']} px needed, {block['shown']} px shown): {block['line']!r}")
        else:
            report.code_too_wide += 1
    report.problems += link_problems(page, url, link_cache)
    if offline:
        for name in sorted(set(page["external"]))[:5]:
            report.problems.append(f"fetched from outside the site (breaks offline reading): {name}")
    return report


def screenshot(session, url: str, path: Path, *, height: int = 1000,
               element: str | tuple[str, ...] | None = None) -> Path | None:
    """Save a PNG of ``url``: the top of the page, or the first visible element matching the CSS selector
    ``element`` (several selectors: the first that matches a visible element); ``None`` and no file
    when no such element is visible."""
    from selenium.webdriver.common.by import By

    path.parent.mkdir(parents=True, exist_ok=True)
    session.set_window_size(1280, height)
    if session.current_url != url:
        session.get(url)
        session.execute_async_script(_SETTLE_JS, 20000)
    # The theme restores the sidebar's scroll position from earlier pages; start at its top.
    session.execute_script(
        "document.querySelectorAll('.bd-sidebar-primary, .bd-sidebar-primary *').forEach((el) => { el.scrollTop = 0; });")
    if element:
        # The first element a reader can see (a finished progress bar, for one, is hidden).
        found = []
        for selector in (element,) if isinstance(element, str) else element:
            found = [candidate for candidate in session.find_elements(By.CSS_SELECTOR, selector)
                     if candidate.is_displayed() and candidate.size["width"] > 0 and candidate.size["height"] > 0]
            if found:
                break
        if found:
            session.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[0])
            time.sleep(0.3)
            found[0].screenshot(str(path))
            return path
        return None
    session.execute_script("window.scrollTo(0, 0);")
    time.sleep(0.2)
    session.save_screenshot(str(path))
    return path


def page_url(base: str, site: Path, page: Path) -> str:
    return base + page.relative_to(site).as_posix()


def check_site(site: Path, *, screenshots: Path | None = None, offline: bool = True,
               how: str = "file", log=print) -> dict[str, PageReport]:
    """Check every page of ``site`` in Chromium, opened from disk (``how="file"``) or served
    (``"http"``); optionally save screenshots of key pages."""
    session = start_browser()
    reports: dict[str, PageReport] = {}
    try:
        with opened(site, how) as base:
            link_cache: dict = {}
            for page in site_pages(site):
                if is_redirect(page):
                    continue
                name = page.relative_to(site).as_posix()
                report = check_page(session, page_url(base, site, page), offline=offline, link_cache=link_cache,
                                    base=base)
                reports[name] = report
                log(f"{name}: {report.seconds:.1f} s, math {report.math}, diagrams {report.mermaid}, "
                    f"images {report.images} ({report.figures} in the content), widgets {report.widgets}"
                    + (f", {report.code_too_wide} code block(s) wider than {CODE_COLUMNS} columns"
                       if report.code_too_wide else "")
                    + (f", {len(report.problems)} problem(s)" if report.problems else ""))
            if screenshots is not None:
                save_key_screenshots(session, base, site, reports, screenshots, log=log)
    finally:
        stop_browser(session)
    return reports


def save_key_screenshots(session, base: str, site: Path, reports: dict[str, PageReport], folder: Path,
                         log=print) -> list[Path]:
    """Screenshots of the landing page, search, and the first pages with math, a diagram, images and widgets."""
    if folder.exists():
        shutil.rmtree(folder)
    wanted: list[tuple[str, str, str | tuple[str, ...] | None]] = []  # (file name, page, element)
    names = list(reports)
    landing = next((name for name in names if name.endswith("intro.html")), names[0] if names else None)
    if landing:
        wanted.append(("landing.png", landing, None))
    for label, attribute, element in (("math", "math", ("div.math", ".math")), ("diagram", "mermaid", ".mermaid"),
                                      ("widgets", "widgets", ".jupyter-widgets")):
        # The page with the most of them (the first such page on a tie).
        page = max((name for name in names if getattr(reports[name], attribute)),
                   key=lambda name: getattr(reports[name], attribute), default=None)
        if page:
            if all(page != shot for _, shot, whole in wanted if whole is None):  # one top-of-page shot per page
                wanted.append((f"{label}-page.png", page, None))
            wanted.append((f"{label}-element.png", page, element))
    image_page = max((name for name in names if reports[name].figures), key=lambda name: reports[name].figures,
                     default=None)
    if image_page:
        # A numbered figure with its caption, else the first image of a notebook output.
        wanted.append(("figure.png", image_page, ("figure:has(img[src*='_images'])", "img[src*='_images']")))
    saved = []
    for filename, page, element in wanted:
        path = screenshot(session, base + page, folder / filename, element=element)
        if path is not None:
            saved.append(path)
            log(f"screenshot {path} ({page})")
    # A chapter's launch menu open (Binder, Colab, and a JupyterHub when configured).
    notebook_page = next((name for name in names
                          if "dropdown-launch-buttons" in (site / name).read_text(encoding="utf-8", errors="replace")), None)
    if notebook_page:
        from selenium.webdriver.common.by import By

        session.get(base + notebook_page)
        session.execute_async_script(_SETTLE_JS, 20000)
        buttons = session.find_elements(By.CSS_SELECTOR, ".dropdown-launch-buttons button")
        if buttons and buttons[0].is_displayed():
            buttons[0].click()
            time.sleep(0.5)
            saved.append(screenshot(session, session.current_url, folder / "launch-buttons.png"))
            log(f"screenshot {saved[-1]} ({notebook_page})")
    session.get(base + "search.html?q=generative")
    session.execute_async_script(_SETTLE_JS, 5000)
    time.sleep(1.0)
    saved.append(screenshot(session, session.current_url, folder / "search.png"))
    return saved


def search_results(session, base: str, query: str, timeout: float = 20.0) -> list[str]:
    """The titles of the pages Sphinx's search page lists for ``query``."""
    from selenium.webdriver.common.by import By

    session.get(f"{base}search.html?q={query}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = session.find_elements(By.CSS_SELECTOR, "#search-results ul.search li a, ul.search li a")
        status = session.find_elements(By.CSS_SELECTOR, "#search-results p.search-summary, p.search-summary")
        if found or (status and status[0].text.strip()):
            return [element.text for element in found]
        time.sleep(0.2)
    return []


# --------------------------------------------------------------------------- external links


def check_external(root: Path = ROOT, timeout: int = 1800, log=print) -> list[str]:
    """Links to other sites that do not answer (needs internet): Sphinx's ``linkcheck`` builder.

    Builds a throw-away copy of the book's link targets (notebooks not executed, output in a
    temporary folder, so ``_build/html`` is left alone) and returns the ``broken`` and
    ``timeout`` results as ``page:line: url: reason`` lines. Sphinx's ``linkcheck_*``
    settings in ``_config.yml`` (``linkcheck_ignore`` for hosts that refuse robots) apply.
    """
    import json
    import subprocess

    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    # Jupyter Book resolves these paths against the config file's folder, which is now elsewhere.
    absolute = lambda path: str((root / path).resolve())  # noqa: E731
    extensions = config.get("sphinx", {}).get("local_extensions") or {}
    config.get("sphinx", {})["local_extensions"] = {name: absolute(path) for name, path in extensions.items()}
    config["bibtex_bibfiles"] = [absolute(path) for path in config.get("bibtex_bibfiles", [])]
    if config.get("logo"):
        config["logo"] = absolute(config["logo"])
    if config.get("html", {}).get("favicon"):
        config["html"]["favicon"] = absolute(config["html"]["favicon"])
    executable = Path(sys.executable).parent / "jupyter-book"
    with tempfile.TemporaryDirectory(prefix="aigc-linkcheck-") as tmp:
        config_path = Path(tmp) / "_config.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        command = [str(executable) if executable.exists() else "jupyter-book", "build", str(root),
                   "--builder", "linkcheck", "--config", str(config_path), "--path-output", tmp]
        log("running " + " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=root)
        report = next(Path(tmp).rglob("output.json"), None)
        if report is None:
            return [f"linkcheck did not run (exit {result.returncode}):\n{(result.stdout + result.stderr)[-3000:]}"]
        problems = []
        for line in report.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            if entry.get("status") in ("broken", "timeout"):
                problems.append(f"{entry['filename']}:{entry.get('lineno', '?')}: {entry['uri']}: "
                                f"{entry['status']} ({str(entry.get('info', '')).strip()[:200]})")
        return problems


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the built book's links (static) or rendering (Chromium).")
    parser.add_argument("check", choices=["links", "browser", "external"],
                        help="links: internal links and anchors (static); browser: every page in Chromium; "
                             "external: links to other sites (needs internet; opt-in)")
    parser.add_argument("site", nargs="?", type=Path, default=None, help="built site (default: _build/html)")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for screenshots of key pages")
    parser.add_argument("--cdn", action="store_true", help="the site was built with AIGC_LESSONS_ASSETS=cdn")
    parser.add_argument("--http", action="store_true",
                        help="browser: serve the site on 127.0.0.1 instead of opening its files from disk")
    args = parser.parse_args(argv)
    if args.check == "external":
        problems = check_external()
        for problem in problems:
            print(problem)
        print(f"{len(problems)} broken external link(s)")
        return 1 if problems else 0
    site = (args.site or find_site()).resolve()
    if not (site / "index.html").exists():
        print(f"no built site at {site}: build the book first", file=sys.stderr)
        return 2
    if args.check == "links":
        problems = check_links(site) + ([] if args.cdn else external_assets(site))
    else:
        reports = check_site(site, screenshots=args.screenshots, offline=not args.cdn,
                             how="http" if args.http else "file")
        problems = [f"{name}: {problem}" for name, report in reports.items() for problem in report.problems]
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) in {site}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
