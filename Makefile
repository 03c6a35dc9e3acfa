# numpy-vae: the two commands of the README's quick start, and a few more.
#
#   make train   set up .venv (NumPy, tqdm, matplotlib: no numba) and train the MLP VAE
#                on MNIST (the main job; the default backend is NumPy)
#   make test    set up .venv with the test tools and numba, and run the whole suite
#                (needs the network the first time: packages, and MNIST if data/ lacks it;
#                takes minutes, see the README)
#
# Extra arguments: make train ARGS="--epochs 2"   make test PYTEST_ARGS="-k kl"

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: setup train test gradcheck bench lessons lessons-robust notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One stamp per set of extras, so `make train` needs neither the test tools
# nor numba (a missing numba wheel must not break the quick start), and a
# change to setup.cfg reinstalls.
$(VENV)/.installed-run: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[plot]"
	touch $@

$(VENV)/.installed-dev: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed-dev

train: $(VENV)/.installed-run
	$(BIN)/numpy-vae train $(ARGS)

test: $(VENV)/.installed-dev
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

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis lessons/out lessons/notebooks
