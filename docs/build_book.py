"""Build the lesson book: the lessons executed in quick mode, and the docs pages, as HTML.

    python docs/build_book.py                      every lesson (what `make book` runs)
    python docs/build_book.py --lessons 03 04      some lessons (tests/test_book.py)
    python docs/build_book.py --no-screenshots     without the browser

What it does, in build/book/ (or --out):

1. runs each lesson as a notebook in quick mode (NUMPY_VAE_QUICK=1), with the
   checks of `make notebooks` (lessons/_check.py): no error, a checklist with
   no FAILED claim, its figures saved.  An executed notebook is kept in
   notebooks/ and reused while the lesson, lessons/_common.py and the
   package's source are unchanged;
2. adds to each lesson page a note on how to run it locally and, at the end,
   the claim checklist of this run as a list;
3. stages src/: docs/index.md as the first page, the other docs/*.md pages
   (with docs/figures, docs/results), the lesson notebooks, and
   lessons/exercises/ when it exists;
4. runs Sphinx (myst-nb renders the notebooks; the configuration is
   docs/conf.py) into html/, with MathJax 3 copied from the npm package
   installed in build/mathjax/ (`make book` installs it; nothing comes from a
   CDN);
5. takes a screenshot of every lesson page with headless Chromium
   (/usr/bin/chromium, driven by the playwright package) into screenshots/.

Exit status 1 if a lesson failed its checks (the book is still built, so the
failure can be read in it), 2 if the build could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import hashlib
import http.server
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
LESSONS = ROOT / "lessons"
DEFAULT_OUT = ROOT / "build" / "book"
MATHJAX_PACKAGE = ROOT / "build" / "mathjax" / "node_modules" / "mathjax"
MATHJAX_ENTRY = "tex-mml-chtml.js"
CHROMIUM = os.environ.get("NUMPY_VAE_CHROMIUM", "/usr/bin/chromium")
CELL_TIMEOUT_S = 900

sys.path.insert(0, str(LESSONS))
import _check  # noqa: E402  (lessons/_check.py: how `make notebooks` runs and checks a lesson)


class BuildError(Exception):
    """The book cannot be built (a missing tool); the message says what to do."""


# --------------------------------------------------------------------------
# 1. The lessons, executed
# --------------------------------------------------------------------------

def _source_hash(lesson: Path) -> str:
    """What an executed notebook depends on: the lesson, its helpers, the package."""
    digest = hashlib.sha256()
    files = [lesson, LESSONS / "_common.py", *sorted((ROOT / "numpy_vae").rglob("*.py"))]
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def execute_lesson(lesson: Path, out: Path, reuse: bool = True):
    """The lesson as an executed notebook, and the problems its run had ([] if none).

    Reuses out/notebooks/NAME.ipynb when it was made from the same sources and
    its run had no problems.
    """
    import nbformat

    saved = out / "notebooks" / (lesson.stem + ".ipynb")
    source_hash = _source_hash(lesson)
    if reuse and saved.is_file():
        nb = nbformat.read(saved, as_version=4)
        meta = nb.metadata.get("numpy_vae_book", {})
        if meta.get("source_hash") == source_hash and not _check.problems(meta.get("text", "")):
            print(f"  {lesson.name}: unchanged, executed notebook reused ({meta.get('seconds', 0):.0f} s when run)")
            return nb, []
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    run = _check.run_notebook(lesson, quick=True, out_dir=figures, timeout=CELL_TIMEOUT_S, save_to=saved)
    issues = _check.problems(run.text, run.error)
    nb = nbformat.read(saved, as_version=4)
    nb.metadata["numpy_vae_book"] = {"source_hash": source_hash, "seconds": round(run.seconds, 1),
                                     "problems": issues, "text": run.text}
    nbformat.write(nb, saved)
    status = "ok" if not issues else "PROBLEMS: " + "; ".join(issues)
    print(f"  {lesson.name}: executed in {run.seconds:.0f} s, {status}", flush=True)
    return nb, issues


# --------------------------------------------------------------------------
# 2. What the book adds to a lesson page
# --------------------------------------------------------------------------

def run_locally_note(lesson: Path, seconds: float) -> str:
    """The admonition that says how to run this lesson on one's own machine."""
    rel = f"lessons/{lesson.name}"
    return "\n".join([
        ":::{admonition} Run this lesson yourself",
        ":class: tip",
        "",
        f"This page is `{rel}` executed in quick mode (`NUMPY_VAE_QUICK=1`, "
        f"{seconds:.0f} s when this book was built). From a clone of the repository:",
        "",
        "```bash",
        "make setup                                  # once: .venv with the package",
        f".venv/bin/python {rel} --quick   # quick mode, as on this page",
        f".venv/bin/python {rel}           # full mode: all of MNIST",
        "```",
        "",
        f"As a notebook: `.venv/bin/jupytext --to ipynb {rel}`, then run "
        "`%env NUMPY_VAE_QUICK=1` before its setup cell for quick mode.",
        ":::",
    ])


def _escape_markdown(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>$|{}])", r"\\\1", text)


def checklist_cell_source(text: str) -> str:
    """The claim checklist of this run as a Markdown list (from the printed checklist)."""
    found = _check.parse_output(text)
    held = sum(ok for ok, _ in found.claims)
    lines = ["## Claims checked by this run", "",
             f"{held} of {len(found.claims)} claims held when this page was built (quick mode).", ""]
    for ok, statement in found.claims:
        mark = "\u2714 ok:" if ok else "\u2718 **claim FAILED**:"
        lines.append(f"- {mark} {_escape_markdown(statement)}")
    if not found.checklist:
        lines.append("- \u2718 **claim FAILED**: the run printed no checklist (it did not reach `done()`)")
    return "\n".join(lines)


def book_page(nb, lesson: Path):
    """The notebook as the book shows it: the run-locally note after the title,
    the checklist at the end.  The executed notebook itself is not changed."""
    import nbformat

    page = copy.deepcopy(nb)
    meta = page.metadata.get("numpy_vae_book", {})
    cells = page.cells
    first = cells[0]
    if first.cell_type == "markdown":
        title, _, rest = first.source.partition("\n")
        first.source = title
        extra = [nbformat.v4.new_markdown_cell(run_locally_note(lesson, meta.get("seconds", 0)))]
        if rest.strip():
            extra.append(nbformat.v4.new_markdown_cell(rest))
        cells[1:1] = extra
    else:
        cells.insert(0, nbformat.v4.new_markdown_cell(run_locally_note(lesson, meta.get("seconds", 0))))
    cells.append(nbformat.v4.new_markdown_cell(checklist_cell_source(meta.get("text", ""))))
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs = _figures_inline(cell.outputs)
            # A notebook echoes a cell's last value (claim's True, train's
            # whole history); the lesson as a script shows only what it prints.
            cell.outputs = [o for o in cell.outputs if o.output_type != "execute_result"]
    return page


_FIGURE_REPR = re.compile(r"^<Figure size .*>$")


def _figures_inline(outputs: list) -> list:
    """The cell's outputs with each saved figure shown where it was announced.

    The kernel runs with MPLBACKEND=Agg (lessons/_check.py), so ``display(fig)``
    in lessons/_common.py yields only "<Figure size ...>" text; the PNG that
    ``savefig`` wrote, named by the ``[figure] PATH`` line, is put in its place.
    """
    import base64

    import nbformat

    shown = []
    for out in outputs:
        if out.output_type == "display_data" and set(out.get("data", {})) == {"text/plain"} \
                and _FIGURE_REPR.match(out.data["text/plain"].strip()):
            continue  # the figure is shown from its PNG below
        if out.output_type != "stream" or "[figure] " not in out.text:
            shown.append(out)
            continue
        chunk = []
        for line in out.text.splitlines(keepends=True):
            chunk.append(line)
            match = _check._FIGURE_LINE.match(line.rstrip("\n"))
            if match and Path(match.group(1).strip()).is_file():
                shown.append(nbformat.v4.new_output("stream", name=out.name, text="".join(chunk)))
                chunk = []
                png = base64.b64encode(Path(match.group(1).strip()).read_bytes()).decode()
                shown.append(nbformat.v4.new_output("display_data", data={
                    "image/png": png, "text/plain": f"<{Path(match.group(1).strip()).name}>"}))
        if chunk:
            shown.append(nbformat.v4.new_output("stream", name=out.name, text="".join(chunk)))
    return shown


# --------------------------------------------------------------------------
# 3. The staging folder
# --------------------------------------------------------------------------

def _copy_if_changed(src: Path, dst: Path):
    """Copy keeping the time stamp, so Sphinx rereads only what changed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.read_bytes() != src.read_bytes():
        shutil.copy2(src, dst)


def _write_if_changed(dst: Path, text: str):
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists() or dst.read_text() != text:
        dst.write_text(text)


def stage(out: Path, pages: dict) -> Path:
    """Fill out/src with the book's sources; pages: {lesson Path: notebook}.

    The staged tree mirrors the repository (docs/, lessons/), except that
    docs/index.md is the book's root page and a lesson NN_topic.py is the page
    lessons/NN_topic.ipynb.  Links in the Markdown pages are rewritten for the
    book by ``book_links``.
    """
    import nbformat

    src = out / "src"
    staged = {"docs/index.md": "index.md"}  # repository path -> path in the book
    staged.update({f"docs/{p.name}": f"docs/{p.name}" for p in sorted(DOCS.glob("*.md")) if p.name != "index.md"})
    for folder in ("docs/figures", "docs/results", "lessons/exercises"):
        for path in sorted((ROOT / folder).rglob("*")) if (ROOT / folder).is_dir() else []:
            if path.is_file() and "__pycache__" not in path.parts:
                rel = str(path.relative_to(ROOT))
                staged[rel] = rel
    staged.update({f"lessons/{lesson.name}": f"lessons/{lesson.stem}.ipynb" for lesson in pages})

    extra = {}  # images a page shows from elsewhere in the repository
    for repo_rel, book_rel in staged.items():
        if repo_rel.endswith(".md"):
            text, images = book_links((ROOT / repo_rel).read_text(), repo_rel, book_rel, staged)
            _write_if_changed(src / book_rel, text)
            extra.update(images)
        elif not repo_rel.startswith("lessons/") or "/exercises/" in repo_rel:
            _copy_if_changed(ROOT / repo_rel, src / book_rel)
    for lesson, nb in pages.items():
        _write_if_changed(src / staged[f"lessons/{lesson.name}"], nbformat.writes(book_page(nb, lesson)))
    for rel in extra:
        _copy_if_changed(ROOT / rel, src / rel)
    wanted = set(staged.values()) | set(extra)
    for path in sorted(src.rglob("*")) if src.is_dir() else []:  # pages no longer in the book
        if path.is_file() and str(path.relative_to(src)) not in wanted:
            path.unlink()
    return src


_MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def book_links(text: str, repo_rel: str, book_rel: str, staged: dict):
    """A Markdown page's links, made to work in the book.

    A page in the repository links to files by their repository paths.  In
    the book: a link to a page of the book (a docs page, a lesson script, an
    exercise) points at that page; an image elsewhere in the repository is
    copied into the book; a link to any other file of the repository (the
    README, a module of the package) becomes plain text naming the file,
    since the book does not hold it.  Links to the web and anchors stay, and
    so does a link to a file that does not exist: the build's warnings and
    the browser test report it.

    Returns the text and the set of repository paths of images to copy.
    """
    page_dir = (ROOT / repo_rel).parent
    book_dir = posixpath.dirname(book_rel)
    images = set()

    def rewrite(match):
        bang, label, target = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = (page_dir / path).resolve()
        try:
            rel = str(resolved.relative_to(ROOT))
        except ValueError:
            return match.group(0)
        if rel in staged:
            new = posixpath.relpath(staged[rel], book_dir or ".") + (f"#{anchor}" if anchor else "")
            return f"{bang}[{label}]({new})"
        if not resolved.exists():
            return match.group(0)
        if bang:
            images.add(rel)
            return f"![{label}]({posixpath.relpath(rel, book_dir or '.')})"
        name = f"`{rel}`"
        return label if label.strip("`") == rel else f"{label} ({name} in the repository)"

    return _MD_LINK.sub(rewrite, text), images


def stage_mathjax(out: Path) -> Path:
    """A static folder holding mathjax/ (MathJax 3's CHTML build and its fonts)."""
    es5 = MATHJAX_PACKAGE / "es5"
    if not (es5 / MATHJAX_ENTRY).is_file():
        raise BuildError(f"MathJax is not installed in {MATHJAX_PACKAGE.parent.parent}: run `make book`, "
                         f"or `npm install --prefix {MATHJAX_PACKAGE.parent.parent} mathjax@3`")
    static = out / "mathjax-static"
    target = static / "mathjax"
    if not (target / MATHJAX_ENTRY).is_file():
        shutil.rmtree(static, ignore_errors=True)
        # the component, and what it loads on demand (fonts, menu, a11y, speech rules)
        shutil.copytree(es5, target, ignore=shutil.ignore_patterns(
            "tex-chtml*.js", "tex-svg*.js", "tex-mml-svg.js", "mml-*.js", "node-main.js"))
        shutil.copy2(MATHJAX_PACKAGE / "LICENSE", target / "LICENSE")
    return static


def run_sphinx(src: Path, out: Path, fresh: bool = False, partial: bool = False) -> Path:
    html = out / "html"
    if fresh:
        shutil.rmtree(html, ignore_errors=True)
        shutil.rmtree(out / "doctrees", ignore_errors=True)
    env = dict(os.environ, NUMPY_VAE_BOOK_MATHJAX=str(stage_mathjax(out)),
               NUMPY_VAE_BOOK_PARTIAL="1" if partial else "0")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(DOCS),
           "-d", str(out / "doctrees"), str(src), str(html)]
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise BuildError(f"sphinx-build failed (exit status {proc.returncode}): {' '.join(cmd)}")
    return html


# --------------------------------------------------------------------------
# 5. A local web server and the screenshots
# --------------------------------------------------------------------------

@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` on 127.0.0.1 (a free port) while inside; yields the base URL."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def have_browser() -> str | None:
    """Why the browser cannot be used here, or None when it can."""
    if not Path(CHROMIUM).is_file():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[docs]')"
    return None


@contextlib.contextmanager
def browser():
    """Headless Debian Chromium, driven by playwright (never its own browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chrome = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chrome
        finally:
            chrome.close()


def wait_for_mathjax(page):
    """Wait until MathJax has typeset the page (at once on a page without it)."""
    page.evaluate("async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
                  " { await MathJax.startup.promise; } }")


def screenshots(html: Path, lessons: list[Path], folder: Path) -> list[Path]:
    """A full-page PNG of every lesson page, as Chromium shows it."""
    folder.mkdir(parents=True, exist_ok=True)
    shots = []
    with serve(html) as base, browser() as chrome:
        page = chrome.new_page(viewport={"width": 1280, "height": 900})
        for lesson in lessons:
            page.goto(base + f"lessons/{lesson.stem}.html", wait_until="load")
            wait_for_mathjax(page)
            shot = folder / f"{lesson.stem}.png"
            page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
    return shots


# --------------------------------------------------------------------------

def build(selection=(), out: Path = DEFAULT_OUT, take_screenshots: bool = True,
          reuse: bool = True, fresh: bool = False) -> int:
    start = time.time()
    lessons = _check.lesson_paths(selection)
    if not lessons:
        raise BuildError(f"no lesson matches {list(selection)}")
    out.mkdir(parents=True, exist_ok=True)
    print(f"book: {len(lessons)} lesson(s) in quick mode, into {out}", flush=True)
    pages, failed = {}, {}
    for lesson in lessons:
        nb, issues = execute_lesson(lesson, out, reuse=reuse)
        pages[lesson] = nb
        if issues:
            failed[lesson.name] = issues
    src = stage(out, pages)
    html = run_sphinx(src, out, fresh=fresh, partial=bool(selection))
    print(f"book: {html / 'index.html'}")
    if take_screenshots:
        why_not = have_browser()
        if why_not:
            print(f"book: no screenshots: {why_not}")
        else:
            shots = screenshots(html, lessons, out / "screenshots")
            print(f"book: {len(shots)} screenshot(s) in {out / 'screenshots'}")
    print(f"book: built in {time.time() - start:.0f} s")
    for name, issues in failed.items():
        print(f"book: {name} FAILED its checks: " + "; ".join(issues), file=sys.stderr)
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lessons", nargs="*", default=[], help="lesson numbers or name prefixes (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="build folder (default: build/book)")
    parser.add_argument("--no-screenshots", action="store_true", help="skip the browser screenshots")
    parser.add_argument("--rerun", action="store_true", help="execute every lesson again, even if unchanged")
    parser.add_argument("--fresh", action="store_true", help="rebuild every HTML page")
    args = parser.parse_args(argv)
    try:
        return build(args.lessons, args.out.resolve(), not args.no_screenshots, not args.rerun, args.fresh)
    except BuildError as err:
        print(f"book: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
