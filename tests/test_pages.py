"""The rendered book, opened in headless Chromium: every page has its title, every image it shows exists
and is non-empty, chapters that glue figures show them, and maths is typeset offline (MathJax from the
build). Writes a screenshot of each page to book/_build/screenshots/ for a person to look at.

Needs a built book (`toxlab book --level smoke`, which `make test` runs first) and Debian's `chromium`
(.ci/run installs it). Outside CI a missing book or browser skips these tests; in CI it fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from toxlab.book.builder import BOOK as SOURCE_BOOK

#: The built book to check: $TOXLAB_BOOK_DIR (as `make test` builds it), else book/.
BOOK = Path(os.environ.get("TOXLAB_BOOK_DIR", SOURCE_BOOK)).resolve()
HTML = BOOK / "_build" / "html"
SCREENSHOTS = BOOK / "_build" / "screenshots"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _require(condition: bool, why: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def _pages() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    entries = toc.get("chapters", []) + [entry for part in toc.get("parts", []) for entry in part.get("chapters", [])]
    return [toc["root"]] + [entry["file"] for entry in entries]  # the smoke book lists chapters, the book parts


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.h1, self.title, self.mathjax, self._in = [], [], "", 0, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        if tag == "mjx-container":
            self.mathjax += 1
        self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, text):
        if self._in == "h1":
            self.h1.append(text.strip())
        elif self._in == "title":
            self.title += text


def _chromium(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([shutil.which("chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def rendered():
    _require((HTML / "index.html").exists(), f"no built book in {HTML}; run `toxlab book --level smoke`")
    _require(shutil.which("chromium") is not None, "Debian's chromium is not installed")
    pages = {}
    for name in _pages():
        dom = _chromium("--virtual-time-budget=8000", "--dump-dom", (HTML / f"{name}.html").as_uri())
        assert dom.returncode == 0, dom.stderr[-500:]
        parser = _Page()
        parser.feed(dom.stdout)
        pages[name] = parser
    return pages


def test_every_page_has_its_title(rendered):
    for name, page in rendered.items():
        assert page.title.strip(), name
        assert any(page.h1), f"{name} has no heading"


def test_every_image_exists_and_is_not_empty(rendered):
    for name, page in rendered.items():
        base = (HTML / f"{name}.html").parent
        for src in page.images:
            url = urlparse(src)
            if url.scheme == "data":
                continue
            assert url.scheme in ("", "file"), f"{name} loads an image from the network: {src}"
            path = Path(unquote(url.path)) if url.scheme == "file" else (base / unquote(url.path)).resolve()
            assert path.is_file() and path.stat().st_size > 1000, f"{name}: image {src} missing or empty"


def test_chapters_that_glue_figures_show_them():
    import nbformat
    for name in _pages()[1:]:
        if not (BOOK / f"{name}.ipynb").exists():  # a markdown page (the gpu level's)
            continue
        notebook = nbformat.read(BOOK / f"{name}.ipynb", as_version=4)
        expected = sum(cell.source.count("{glue:figure}") for cell in notebook.cells if cell.cell_type == "markdown")
        if expected:
            html = (HTML / f"{name}.html").read_text()
            assert html.count("<img") >= expected, f"{name}: {expected} glued figures, fewer images"


def test_maths_is_typeset_offline(rendered):
    chapter = (HTML / "chapters" / "01_background.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in chapter and "cdn.jsdelivr" not in chapter
    assert (HTML / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert rendered["chapters/01_background"].mathjax > 0, "MathJax did not typeset the background chapter"


def test_screenshots(rendered):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in rendered:
        out = SCREENSHOTS / f"{name.replace('/', '_')}.png"
        result = _chromium(f"--screenshot={out}", "--window-size=1280,2400", "--virtual-time-budget=8000",
                           (HTML / f"{name}.html").as_uri())
        assert result.returncode == 0 and out.stat().st_size > 10_000, name
