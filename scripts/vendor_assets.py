"""Vendored JavaScript that lets the built book render without internet.

The book's pages need three JavaScript libraries in the reader's browser:
MathJax 3 (typesets the math), Mermaid (draws the diagrams) and the Jupyter
widgets HTML manager (draws the saved state of ipywidgets outputs). By default
Sphinx, sphinxcontrib-mermaid and myst-nb load them from CDNs, so a reader
offline sees raw TeX and diagram source. The book instead serves trimmed copies
from its own site (``_vendor/`` in the built HTML): ``book/_ext/aigc_site.py``
copies ``book/_vendor/`` into the site and points the extensions at it.

The copies are committed (6.8 MB) so that a clean clone builds an offline
site with no network and no Node.js. This script re-creates them from the npm
registry with ``npm pack`` (pinned versions below, npm checks each tarball's
integrity), keeps only the files the browser loads, and records the SHA-256 of
every kept file in ``book/_vendor/MANIFEST.json``.

Usage::

    python scripts/vendor_assets.py            # verify book/_vendor against the manifest (offline)
    python scripts/vendor_assets.py --update   # re-create book/_vendor from npm (needs npm and internet)

To upgrade a library, change its version in ``PACKAGES``, run the script with
``--update``, build the book and run ``tests/test_browser.py``.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "book" / "_vendor"
MANIFEST = VENDOR / "MANIFEST.json"

# folder under book/_vendor -> npm package, version, and the files kept (glob
# patterns relative to the package root, mapped to a folder relative to the target).
PACKAGES: dict[str, dict] = {
    "mathjax": {
        "package": "mathjax",
        "version": "3.2.2",
        "license": "Apache-2.0",
        # tex-chtml.js bundles the TeX input (with AMS), the CHTML output, the
        # menu and assistive MathML; the rest is loaded on demand from here.
        "keep": {
            "es5/tex-chtml.js": "",
            "es5/input/tex/extensions/*.js": "input/tex/extensions",
            "es5/output/chtml/fonts/woff-v2/*.woff": "output/chtml/fonts/woff-v2",
            "LICENSE": "",
        },
    },
    "mermaid": {
        "package": "mermaid",
        # The version sphinxcontrib-mermaid 2.1 loads from the CDN by default, so
        # that the local and the CDN builds draw the same diagrams.
        "version": "11.12.1",
        "license": "MIT",
        # The classic-script build (one file, every diagram type, sets
        # window.mermaid), not the ES-module build that sphinxcontrib-mermaid
        # imports by default: browsers refuse module scripts from file:// pages,
        # and the book must draw its diagrams when opened straight from disk.
        # book/_ext/aigc_site.py loads it with a <script> tag.
        "keep": {
            "dist/mermaid.min.js": "",
            "LICENSE": "",
        },
    },
    "jupyter-widgets": {
        "package": "@jupyter-widgets/html-manager",
        "version": "1.0.15",
        "license": "BSD-3-Clause",
        # The standalone embedder (no RequireJS): renders the standard
        # @jupyter-widgets/controls 2.x views from the saved widget state.
        # Its icon font is loaded only in the woff2 format by current browsers.
        "keep": {
            "dist/embed.js": "",
            "dist/embed.js.LICENSE.txt": "",
            "dist/*.woff2": "",
        },
    },
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def npm_pack(spec: str, destination: Path) -> Path:
    """Download one package tarball with ``npm pack`` (the npm client checks its integrity)."""
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is not installed; the committed book/_vendor works without it (see --check)")
    result = subprocess.run([npm, "pack", spec, "--pack-destination", str(destination), "--json"],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"npm pack {spec} failed:\n{result.stderr}")
    filename = json.loads(result.stdout)[0]["filename"]
    # Scoped packages are saved as scope-name-version.tgz.
    return destination / filename.replace("@", "").replace("/", "-")


def _matches(inner: str, pattern: str) -> bool:
    """``pattern``'s folder equals the file's folder and its last part matches the file name."""
    inner_path, pattern_path = PurePosixPath(inner), PurePosixPath(pattern)
    return inner_path.parent == pattern_path.parent and fnmatch.fnmatchcase(inner_path.name, pattern_path.name)


def extract_kept(tarball: Path, keep: dict[str, str], target: Path) -> list[str]:
    """Copy the files matching ``keep`` from an npm tarball (rooted at ``package/``) to ``target``."""
    kept, unmatched = [], set(keep)
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            if not member.isfile() or "/" not in member.name:
                continue
            inner = member.name.split("/", 1)[1]
            pattern = next((pattern for pattern in keep if _matches(inner, pattern)), None)
            if pattern is None:
                continue
            unmatched.discard(pattern)
            relative = (PurePosixPath(keep[pattern]) / PurePosixPath(inner).name).as_posix()
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            destination.write_bytes(source.read())
            kept.append(relative)
    if unmatched:
        raise SystemExit(f"{tarball.name}: no file matched {sorted(unmatched)}")
    return sorted(kept)


def vendor() -> dict:
    manifest: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in PACKAGES.items():
            target = VENDOR / name
            if target.exists():
                shutil.rmtree(target)
            tarball = npm_pack(f"{spec['package']}@{spec['version']}", Path(tmp))
            files = extract_kept(tarball, spec["keep"], target)
            manifest[name] = {
                "package": spec["package"],
                "version": spec["version"],
                "license": spec["license"],
                "files": {relative: sha256(target / relative) for relative in files},
            }
            size = sum((target / relative).stat().st_size for relative in files)
            print(f"{spec['package']}@{spec['version']}: {len(files)} files, {size / 1e6:.2f} MB -> {target.relative_to(ROOT)}")
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def check(vendor_dir: Path = VENDOR) -> list[str]:
    """Problems with the vendored copies (missing, changed or unlisted files); empty when all is well."""
    manifest_path = vendor_dir / "MANIFEST.json"
    if not manifest_path.exists():
        return [f"{manifest_path} is missing: run `python scripts/vendor_assets.py`"]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = []
    for name, spec in PACKAGES.items():
        entry = manifest.get(name)
        if entry is None or entry.get("version") != spec["version"]:
            problems.append(f"{name}: the manifest does not record {spec['package']}@{spec['version']}: "
                            "run `python scripts/vendor_assets.py`")
            continue
        listed = set(entry["files"])
        for relative, digest in entry["files"].items():
            path = vendor_dir / name / relative
            if not path.exists():
                problems.append(f"{name}/{relative} is missing")
            elif sha256(path) != digest:
                problems.append(f"{name}/{relative} differs from the manifest (edited by hand?)")
        for path in (vendor_dir / name).rglob("*"):
            if path.is_file() and path.relative_to(vendor_dir / name).as_posix() not in listed:
                problems.append(f"{name}/{path.relative_to(vendor_dir / name).as_posix()} is not in the manifest")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="verify book/_vendor against its manifest, offline (the default)")
    mode.add_argument("--update", action="store_true",
                      help="re-create book/_vendor from the npm registry (needs npm and internet)")
    args = parser.parse_args(argv)
    if args.update:
        vendor()
        return 0
    problems = check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("book/_vendor is incomplete: run `python scripts/vendor_assets.py --update` "
              "(or build with AIGC_LESSONS_ASSETS=cdn)", file=sys.stderr)
    else:
        print(f"book/_vendor matches {MANIFEST.relative_to(ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
