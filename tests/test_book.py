"""The lesson book, built for two lessons and read in a real browser.

docs/build_book.py builds the book as ``make book`` does, for lessons 03 and
04 only (quick mode, no screenshots), and Debian's Chromium (/usr/bin/chromium,
headless, driven by the playwright package) opens the first page and the two
lesson pages from a local web server.  On every page:

* every image loaded (``naturalWidth > 0``), and a lesson page has figures;
* a lesson page shows its claim checklist, with no FAILED line, and how to
  run the lesson locally;
* every math element was typeset by MathJax (the first page has the ELBO);
* no console error and no failed request; nothing fetched from outside the
  book (a CDN): such requests are aborted and reported;
* every link inside the book resolves, anchors included;

and the other pages of the book (docs/*.md, exercises, search) pass the same
checks but the lesson ones.

The checks are shown to fail on planted faults (a broken image, a FAILED
claim, MathJax missing, a dead link, a console error, a CDN script) in a copy
of the built book.  Skipped, with the reason, where Chromium, the book's
Python tools or MathJax (``make mathjax``, npm) are missing; ``.ci/run``
installs Chromium so CI always runs it.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import build_book  # noqa: E402  (docs/build_book.py: what `make book` runs)

LESSONS = ["03", "04"]
PAGES = ["index.html", "lessons/03_reparameterization.html", "lessons/04_kl_divergence.html"]


def _why_skip() -> str | None:
    missing = [m for m in ("sphinx", "myst_nb", "furo", "playwright", "jupytext", "nbclient")
               if importlib.util.find_spec(m) is None]
    if missing:
        return f"the book's Python tools are missing ({', '.join(missing)}): pip install -e '.[docs]'"
    why = build_book.have_browser()
    if why:
        return why
    if not (build_book.MATHJAX_PACKAGE / "es5" / build_book.MATHJAX_ENTRY).is_file():
        return f"MathJax is not installed in {build_book.MATHJAX_PACKAGE} (make mathjax; needs npm)"
    return None


pytestmark = pytest.mark.slow
needs_browser = pytest.mark.skipif(_why_skip() is not None, reason=str(_why_skip()))


def test_the_learning_path_lists_every_lesson():
    """docs/index.md, the book's first page, links to every lesson in order."""
    index = (ROOT / "docs" / "index.md").read_text()
    names = [p.stem for p in build_book._check.lesson_paths()]
    positions = [index.find(f"<lessons/{name}>`") for name in names]
    missing = [name for name, at in zip(names, positions) if at < 0]
    assert not missing, f"docs/index.md does not link to {missing}"
    assert positions == sorted(positions), "the learning path lists the lessons out of order"


# --------------------------------------------------------------------------
# What a page in the browser must show
# --------------------------------------------------------------------------

def page_problems(chrome, base: str, path: str) -> list[str]:
    """Everything wrong with one page of the book as Chromium shows it ([] if nothing)."""
    issues = []
    page = chrome.new_page()

    def outside(route):
        issues.append(f"request outside the book (aborted): {route.request.url}")
        route.abort()

    page.route(lambda url: not url.startswith(base), outside)
    page.on("console", lambda msg: msg.type == "error" and issues.append(f"console error: {msg.text}"))
    page.on("pageerror", lambda err: issues.append(f"page error: {err}"))
    page.on("response", lambda r: r.status >= 400 and issues.append(f"HTTP {r.status}: {r.url}"))
    page.on("requestfailed", lambda r: r.url.startswith(base) and issues.append(f"request failed: {r.url}"))
    try:
        page.goto(base + path, wait_until="load")
        build_book.wait_for_mathjax(page)
        page.wait_for_load_state("networkidle")
        issues += _image_problems(page, path)
        issues += _math_problems(page)
        if _is_lesson_page(path):
            issues += _lesson_problems(page)
        issues += _link_problems(page, base, base + path)
    finally:
        page.close()
    return issues


def _is_lesson_page(path) -> bool:
    """lessons/NN_topic.html, not other pages under lessons/ (the exercises' list)."""
    return re.fullmatch(r"lessons/\d\d_[^/]+\.html", path) is not None


def _image_problems(page, path) -> list[str]:
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])")
    issues = [f"image not loaded: {src}" for src, complete, width in images if not (complete and width > 0)]
    if _is_lesson_page(path) and not any("_images/" in (src or "") for src, _, _ in images):
        issues.append("a lesson page without a figure")
    return issues


def _math_problems(page) -> list[str]:
    """Sphinx marks math as .math (inline and display); MathJax 3 puts an
    mjx-container inside each one it typesets."""
    total = page.eval_on_selector_all(".math", "els => els.length")
    typeset = page.eval_on_selector_all(".math", "els => els.filter(e => e.querySelector('mjx-container')).length")
    if typeset < total:
        return [f"math not rendered: {total - typeset} of {total} math elements have no MathJax output"]
    return []


def _lesson_problems(page) -> list[str]:
    text = page.inner_text("article")
    issues = []
    if "claims checked by this run" not in text.lower():
        issues.append("no claim checklist on the lesson page")
    issues += [f"FAILED line: {line.strip()}" for line in text.splitlines() if "FAILED" in line]
    if "Run this lesson yourself" not in text:
        issues.append("the page does not say how to run the lesson locally")
    return issues


def _link_problems(page, base: str, url: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    issues, pages = [], {}
    for href in hrefs:
        target, anchor = urldefrag(urljoin(url, href))
        if not target.startswith(base):
            continue  # links to the web (the theme's credits) are not followed
        if target not in pages:
            try:
                with urllib.request.urlopen(target, timeout=10) as response:
                    pages[target] = response.read().decode("utf-8", "replace")
            except urllib.error.URLError as err:
                pages[target] = None
                issues.append(f"dead link {href!r}: {err}")
        html = pages[target]
        if html is not None and anchor and f'id="{anchor}"' not in html:
            issues.append(f"dead anchor {href!r}: no id={anchor!r} on {target}")
    return issues


# --------------------------------------------------------------------------
# The book for two lessons, and a browser
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The book's html/ folder, and the build's exit status (1: a lesson failed its checks)."""
    out = tmp_path_factory.mktemp("book")
    status = build_book.build(LESSONS, out, take_screenshots=False)
    return out / "html", status


@pytest.fixture(scope="module")
def book(built):
    return built[0]


@pytest.fixture(scope="module")
def chrome():
    with build_book.browser() as browser:
        yield browser


@needs_browser
def test_the_lessons_pass_their_checks_while_the_book_is_built(built):
    assert built[1] == 0, "a lesson failed its checks while building the book (see the output above)"


@needs_browser
def test_the_book_has_the_first_page_and_the_two_lessons(book):
    for path in PAGES:
        assert (book / path).is_file(), path
    assert not (book / "lessons" / "05_elbo.html").exists()  # the build took only the lessons asked for


@needs_browser
@pytest.mark.parametrize("path", PAGES)
def test_a_page_passes_the_browser_checks(book, chrome, path):
    with build_book.serve(book) as base:
        issues = page_problems(chrome, base, path)
    assert issues == [], "\n".join(issues)


@needs_browser
def test_every_other_page_of_the_book_passes_the_browser_checks(book, chrome):
    """The docs pages, exercises, the search page and the index, whatever pages exist."""
    others = sorted(str(p.relative_to(book)) for p in book.rglob("*.html")
                    if not str(p.relative_to(book)).startswith("_") and str(p.relative_to(book)) not in PAGES)
    assert "search.html" in others
    with build_book.serve(book) as base:
        issues = [f"{path}: {issue}" for path in others for issue in page_problems(chrome, base, path)]
    assert issues == [], "\n".join(issues)


@needs_browser
def test_the_first_page_leads_to_the_lessons_and_has_rendered_math(book, chrome):
    with build_book.serve(book) as base:
        page = chrome.new_page()
        page.goto(base + "index.html", wait_until="load")
        build_book.wait_for_mathjax(page)
        assert page.eval_on_selector_all("mjx-container", "els => els.length") >= 1
        hrefs = page.eval_on_selector_all("article a[href]", "els => els.map(e => e.getAttribute('href'))")
        page.close()
    for lesson in PAGES[1:]:
        assert lesson in hrefs, f"the learning path does not link to {lesson}: {hrefs}"


# --------------------------------------------------------------------------
# The checks catch planted faults
# --------------------------------------------------------------------------

LESSON_PAGE = "lessons/03_reparameterization.html"

PLANTED = {
    "broken image": (LESSON_PAGE, lambda html: html.replace('src="../_images/', 'src="../_images/missing-', 1),
                     "image not loaded"),
    "FAILED claim": (LESSON_PAGE, lambda html: html.replace(
        "</article>", "<p>claim FAILED: a planted claim</p></article>", 1), "FAILED line"),
    "no checklist": (LESSON_PAGE, lambda html: html.replace("laims checked by this run", "laims", 1000),
                     "no claim checklist"),
    "math not typeset": ("index.html", lambda html: html.replace("mathjax/tex-mml-chtml.js", "mathjax/none.js"),
                         "math not rendered"),
    "dead link": ("index.html", lambda html: html.replace(
        "</article>", '<a href="lessons/99_missing.html">x</a></article>', 1), "dead link"),
    "dead anchor": ("index.html", lambda html: html.replace(
        "</article>", '<a href="lessons/03_reparameterization.html#no-such-section">x</a></article>', 1),
                    "dead anchor"),
    "console error": ("index.html", lambda html: html.replace(
        "</body>", "<script>console.error('planted')</script></body>", 1), "console error"),
    "a CDN script": ("index.html", lambda html: html.replace(
        "</head>", '<script src="https://cdn.example.invalid/mathjax.js"></script></head>', 1),
                     "request outside the book"),
}


@pytest.fixture(scope="module")
def planted_copy(book, tmp_path_factory):
    copy = tmp_path_factory.mktemp("planted") / "html"
    shutil.copytree(book, copy)
    return copy


@needs_browser
@pytest.mark.parametrize("fault", PLANTED)
def test_the_browser_checks_catch_a_planted_fault(planted_copy, chrome, fault):
    path, plant, expected = PLANTED[fault]
    page_file = planted_copy / path
    original = page_file.read_text()
    planted = plant(original)
    assert planted != original, f"the fault {fault!r} could not be planted: the page changed shape"
    page_file.write_text(planted)
    try:
        with build_book.serve(planted_copy) as base:
            issues = page_problems(chrome, base, path)
    finally:
        page_file.write_text(original)
    assert any(issue.startswith(expected) for issue in issues), f"{fault}: not caught; found {issues}"
