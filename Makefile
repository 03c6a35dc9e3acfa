# numpy-vae: the two commands of the README's quick start, and a few more.
#
#   make train   set up .venv (NumPy, tqdm, matplotlib: no numba) and train the MLP VAE
#                on MNIST (the main job; the default backend is NumPy)
#   make test    set up .venv with the test tools, numba and the book's tools, and run
#                the whole suite (needs the network the first time: packages, MathJax,
#                and MNIST if data/ lacks it; takes minutes, see the README; the
#                browser test needs Debian's chromium, and is skipped without it)
#   make book    the lessons, executed in quick mode, and docs/ as an HTML book in
#                build/book/html/ (with a screenshot of each lesson page)
#
# Extra arguments: make train ARGS="--epochs 2"   make test PYTEST_ARGS="-k kl"

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: setup train test gradcheck bench lessons lessons-robust notebooks book mathjax clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per set of extras, so `make train` needs neither the test tools
# nor numba (a missing numba wheel must not break the quick start), and a
# change to pyproject.toml reinstalls.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed-dev

train: $(VENV)/.installed-run
	$(BIN)/numpy-vae train $(ARGS)

# MathJax 3 for the book, from the npm package into a git-ignored folder: the
# book's pages load it from there, never from a CDN.
MATHJAX := build/mathjax/node_modules/mathjax/es5/tex-mml-chtml.js
$(MATHJAX):
	npm install --no-audit --no-fund --silent --prefix build/mathjax mathjax@3

mathjax: $(MATHJAX)

# The suite's book test needs MathJax; without npm it is skipped (and says so).
test: $(VENV)/.installed-dev
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory mathjax; \
	 else echo "make test: no npm, so no MathJax: tests/test_book.py will be skipped"; fi
	@echo "make test: the whole suite, including real MNIST training: several minutes (see README)"
	$(BIN)/python -m pytest $(PYTEST_ARGS)

gradcheck: $(VENV)/.installed-run
	$(BIN)/numpy-vae gradcheck $(ARGS)

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_backends.py $(ARGS)

# Every lesson in full mode, its claims checked (lessons/_check.py); fails if
# a lesson fails or a claim does not hold.  make lessons ARGS="--quick 03 04"
lessons: $(VENV)/.installed-dev
	$(BIN)/python lessons/_check.py $(ARGS)

# Every lesson in quick mode under seeds 0, 1, 2 times the OpenBLAS kernels
# Haswell, Sandybridge and Prescott (other CPUs' rounding): per claim, in how
# many of the 9 variants it held.  Fails unless every claim holds in all 9.
# make lessons-robust ARGS="10 11"   make lessons-robust ARGS="--seeds 3,4 --jobs 1"
lessons-robust: $(VENV)/.installed-dev
	$(BIN)/python lessons/_check.py --quick --robust --out lessons/out/robust $(ARGS)

# The lessons executed as notebooks (jupytext + nbclient), saved in
# lessons/notebooks/ (git-ignored), with the same checks.  ARGS as above.
notebooks: $(VENV)/.installed-dev
	$(BIN)/python lessons/_check.py --notebooks $(ARGS)

# The lesson book: every lesson in quick mode (executed notebooks are reused
# while unchanged), the docs pages, screenshots.  make book ARGS="--lessons 03 04"
book: $(VENV)/.installed-dev $(MATHJAX)
	$(BIN)/python docs/build_book.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis lessons/out lessons/notebooks
