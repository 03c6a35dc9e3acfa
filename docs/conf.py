"""Sphinx configuration of the lesson book (``make book``; docs/build_book.py).

The book is built from a staging folder that docs/build_book.py fills: this
folder's pages, and the lessons executed in quick mode as notebooks.  Nothing
is fetched while building or reading it: the theme (furo) ships its files,
and MathJax 3 is a local copy (the npm package, installed by ``make book``
into build/mathjax/), never a CDN.
"""

import os
from pathlib import Path

project = "numpy-vae"
author = "the numpy-vae authors"
copyright = "2026, the numpy-vae authors"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# The notebooks arrive executed (docs/build_book.py runs them with the same
# checks as `make notebooks`); Sphinx only renders them.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
# An empty glob (exercises, reference pages not written yet) only warns.
suppress_warnings = ["myst.header"]
# A book of some lessons (--lessons 03 04) links to the others' missing pages.
if os.environ.get("NUMPY_VAE_BOOK_PARTIAL") == "1":
    suppress_warnings.append("ref.doc")

html_theme = "furo"
html_title = "numpy-vae: the lessons"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_show_sourcelink = False

# MathJax 3 from the local copy that docs/build_book.py puts in the static
# path (a relative mathjax_path is served from _static/).
_mathjax_static = os.environ.get("NUMPY_VAE_BOOK_MATHJAX")
if _mathjax_static and Path(_mathjax_static).is_dir():
    html_static_path.append(_mathjax_static)
mathjax_path = "mathjax/tex-mml-chtml.js"
