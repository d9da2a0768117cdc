"""Sphinx extension for the AIGC Lessons site: offline assets and small page fixes.

Loaded from ``_config.yml`` (``sphinx.local_extensions``). It

* serves MathJax, Mermaid and the Jupyter widgets manager from the site itself
  (``_vendor/`` in the built HTML, copied from ``book/_vendor/``) so that the
  book renders with no internet; the copies and their versions are described in
  ``scripts/vendor_assets.py``;
* loads that Mermaid as a classic script, so that diagrams are drawn when the
  book is opened straight from disk (``file://``): sphinxcontrib-mermaid imports
  Mermaid as an ES module, and browsers refuse module scripts from ``file://``
  pages. The extension's own page script (rendering, full-screen button, dark
  mode) is kept; only its ``import`` line becomes ``window.mermaid``, set by the
  classic build loaded just before it;
* switches to the public CDNs instead when ``aigc_assets: cdn`` is set in the
  Sphinx config or ``AIGC_LESSONS_ASSETS=cdn`` in the environment (the
  environment wins), for a public site that prefers shared CDN caches;
* sets code (cells, their outputs and code blocks) in a smaller monospace size, so
  that a line of ``CODE_COLUMNS`` (88) characters fits a code cell of a 1280 px
  wide window without a horizontal scrollbar (the theme's 14 px shows 77 there);
  ``tests/test_code_width.py`` keeps every code line within that width and
  ``tests/test_browser.py`` checks that such a line does not scroll;
* removes the duplicate search button that pydata-sphinx-theme 0.17 adds in a
  top bar above sphinx-book-theme's layout;
* sets the JupyterHub launch button from ``AIGC_LESSONS_JUPYTERHUB_URL`` (a
  teacher's own hub) when that variable is set;
* drops duplicate inline ``<script>`` bodies (sphinx-thebe registers its config
  script twice under Jupyter Book, which is a JavaScript error on every page);
* keeps the landing page's map of the book in step with ``_toc.yml``: a map entry
  (a list item ``- {doc}`/book/...`: ...``) whose page is not in the table of
  contents yet is left out of the rendered page (with an info line in the build
  log), so that chapters written in parallel appear on the map when their
  ``_toc.yml`` line is uncommented, and the strict build never links to a page
  that does not exist.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ConfigError, ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

VENDOR_SOURCE = Path(__file__).resolve().parent.parent / "_vendor"
VENDOR_URL = "_vendor"  # folder in the built site
# Sphinx and sphinxcontrib-mermaid resolve a relative asset path against
# ``_static/``; ``../`` climbs back to the site root, where ``_vendor`` lives.
FROM_STATIC = f"../{VENDOR_URL}"

MATHJAX_LOCAL = f"{FROM_STATIC}/mathjax/tex-chtml.js"
MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-chtml.js"
# The classic (non-module) build: a <script> tag that works from file:// too.
MERMAID_CLASSIC = f"{VENDOR_URL}/mermaid/mermaid.min.js"  # relative to the site root
MERMAID_VERSION = "11.12.1"  # the vendored version; the CDN mode loads the same one
WIDGETS_LOCAL = {f"{FROM_STATIC}/jupyter-widgets/embed.js": {}}
WIDGETS_CDN = {"https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.15/dist/embed.js":
               {"crossorigin": "anonymous"}}
REQUIRED_FILES = ("mathjax/tex-chtml.js", "mermaid/mermaid.min.js", "jupyter-widgets/embed.js")
# The first statement of sphinxcontrib-mermaid's page script (its default.js.j2).
MERMAID_IMPORT = re.compile(r'\A\s*import mermaid from "[^"]*";')


def assets_mode(app: Sphinx) -> str:
    mode = os.environ.get("AIGC_LESSONS_ASSETS") or app.config.aigc_assets
    if mode not in ("local", "cdn"):
        raise ConfigError(f"aigc_assets / AIGC_LESSONS_ASSETS must be 'local' or 'cdn', not {mode!r}")
    return mode


def configure(app: Sphinx, config) -> None:
    """Point MathJax, Mermaid and the widgets manager at local copies or at the CDN."""
    mode = assets_mode(app)
    if mode == "local":
        missing = [name for name in REQUIRED_FILES if not (VENDOR_SOURCE / name).exists()]
        if missing:
            raise ExtensionError(f"vendored assets missing under {VENDOR_SOURCE}: {missing}; "
                                 "run `python scripts/vendor_assets.py --update` (or build with AIGC_LESSONS_ASSETS=cdn)")
        config.mathjax_path = MATHJAX_LOCAL
        # Non-empty so that sphinxcontrib-mermaid names no CDN; its import of this URL
        # is replaced by load_mermaid_classic.
        config.mermaid_use_local = f"{FROM_STATIC}/mermaid/mermaid.min.js"
        config.nb_ipywidgets_js = dict(WIDGETS_LOCAL)
    else:
        config.mathjax_path = MATHJAX_CDN
        config.mermaid_use_local = ""
        config.mermaid_version = MERMAID_VERSION
        config.nb_ipywidgets_js = dict(WIDGETS_CDN)
    options = dict(config.html_theme_options or {})
    # pydata-sphinx-theme 0.17 puts a second search button in an otherwise empty top bar
    # above sphinx-book-theme's layout; the sidebar already has the search field.
    options.setdefault("navbar_persistent", [])
    hub = os.environ.get("AIGC_LESSONS_JUPYTERHUB_URL")
    if hub:
        options["launch_buttons"] = {**options.get("launch_buttons", {}), "jupyterhub_url": hub}
    config.html_theme_options = options
    logger.info(f"[aigc_site] assets: {mode}")


# Measured in headless Chromium (1280 x 1000 window, sphinx-book-theme 1.3, DejaVu Sans
# Mono, the widest common monospace face): a code cell's text box is 652 px wide, and at
# the theme's 14 px (8.43 px per character) it shows 77 columns; at 12 px (7.22 px per
# character, padding 0.75rem) it shows 91, so an 88-column line fits. Mermaid blocks
# (pre.mermaid) keep their size.
CODE_COLUMNS = 88
SITE_CSS_NAME = "aigc-site.css"
SITE_CSS = f"""/* Written by book/_ext/aigc_site.py: {CODE_COLUMNS} columns of code fit a 1280 px window. */
.bd-article pre:not(.mermaid) {{
  font-size: 0.75rem;
  padding: 0.75rem;
}}
"""


def write_site_css(app: Sphinx) -> None:
    """Write the site's own style sheet into ``_static`` (registered with ``add_css_file`` in ``setup``)."""
    if app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    (static / SITE_CSS_NAME).write_text(SITE_CSS, encoding="utf-8")


def copy_vendor(app: Sphinx) -> None:
    """Copy ``book/_vendor`` to ``<site>/_vendor`` before pages are written (so that asset checksums work)."""
    if app.builder.format != "html" or assets_mode(app) != "local":
        return
    target = Path(app.outdir) / VENDOR_URL
    shutil.copytree(VENDOR_SOURCE, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("MANIFEST.json", "README.md"))


def load_mermaid_classic(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Load the vendored Mermaid with a classic ``<script>`` instead of sphinxcontrib-mermaid's ES import.

    A module script may not import a ``file://`` URL (the page's origin is opaque), so
    with the import the book's diagrams stay raw text when it is opened from disk. The
    classic build sets ``window.mermaid``; it is loaded with ``defer`` just before the
    extension's page script, which stays an (inline) module and so runs after it, in
    document order. Only for local assets: a CDN import works from ``file://`` pages.
    """
    if assets_mode(app) != "local":
        return
    from sphinx.builders.html._assets import _JavaScript

    scripts = context.get("script_files")
    if not scripts:
        return
    result, replaced = [], 0
    for script in scripts:
        attributes = dict(getattr(script, "attributes", {}))
        body = attributes.get("body") or ""
        if getattr(script, "filename", None) or attributes.get("type") != "module" or "mermaid" not in body:
            result.append(script)
            continue
        if not MERMAID_IMPORT.match(body):
            raise ExtensionError(f"{pagename}: sphinxcontrib-mermaid's page script no longer starts with "
                                 "`import mermaid from \"...\";`: adapt load_mermaid_classic in book/_ext/aigc_site.py")
        attributes["body"] = MERMAID_IMPORT.sub("const mermaid = window.mermaid;", body, count=1)
        result.append(_JavaScript(MERMAID_CLASSIC, priority=script.priority, defer="defer"))
        result.append(_JavaScript(None, priority=script.priority, **attributes))
        replaced += 1
    if replaced:
        scripts[:] = result


def drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Keep the first of several identical inline scripts (same body, no src)."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        filename = getattr(script, "filename", script)
        body = getattr(script, "attributes", {}).get("body") if not filename else None
        if body:
            if body in seen:
                continue
            seen.add(body)
        kept.append(script)
    context["script_files"] = kept


MAP_ITEM = re.compile(r"^- \{doc\}`/?(?P<doc>[^`<>]+?)`")


def prune_map(text: str, exists) -> tuple[str, list[str]]:
    """Drop map items (``- {doc}`/page`...`` and their indented lines) whose page does not exist.

    A group title (a bold line such as ``**Part I**`` directly above map items) left with
    no items goes too. Returns the new text and the pages left out.
    """
    lines = text.splitlines(keepends=True)
    kept: list[tuple[str, bool]] = []  # (line, is a group title)
    left_out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = MAP_ITEM.match(line)
        if match is None:
            stripped = line.strip()
            title = (len(stripped) > 4 and stripped.startswith("**") and stripped.endswith("**")
                     and index + 1 < len(lines) and MAP_ITEM.match(lines[index + 1]) is not None)
            kept.append((line, title))
            index += 1
            continue
        item = [line]
        index += 1
        while index < len(lines) and lines[index].startswith("  ") and lines[index].strip():
            item.append(lines[index])
            index += 1
        if exists(match.group("doc")):
            kept += [(part, False) for part in item]
        else:
            left_out.append(match.group("doc"))
    result = [line for position, (line, title) in enumerate(kept)
              if not title or (position + 1 < len(kept) and MAP_ITEM.match(kept[position + 1][0]))]
    return "".join(result), left_out


def prune_landing_map(app: Sphinx, docname: str, source: list[str]) -> None:
    """Leave pages that are not in ``_toc.yml`` (yet) out of the landing page's map."""
    if docname != app.config.root_doc:
        return
    found = app.env.found_docs
    source[0], left_out = prune_map(source[0], lambda doc: doc.strip("/") in found)
    if left_out:
        logger.info(f"[aigc_site] landing page map: not in _toc.yml yet, left out: {', '.join(left_out)}")


def reread_landing_page(app: Sphinx, env, added: set, changed: set, removed: set) -> list[str]:
    """Rebuild the landing page whenever a page joins or leaves the book (its map depends on them)."""
    return [app.config.root_doc] if added or removed else []


def setup(app: Sphinx) -> dict:
    app.add_config_value("aigc_assets", "local", "html", [str])
    # After sphinx.ext.mathjax, sphinxcontrib.mermaid and myst_nb have registered their defaults.
    app.connect("config-inited", configure, priority=900)
    app.connect("builder-inited", copy_vendor)
    app.connect("builder-inited", write_site_css)
    app.add_css_file(SITE_CSS_NAME)
    # After sphinxcontrib-mermaid has added its page script (default priority 500).
    app.connect("html-page-context", load_mermaid_classic, priority=850)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    app.connect("source-read", prune_landing_map)
    app.connect("env-get-outdated", reread_landing_page)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
