"""Every lesson runs to the end in quick mode and writes the figures it promises.

Each lesson is run as a student would run it, ``python lessons/NN_topic.py
--quick``, in a fresh process, with its figures sent to a temporary folder
(``NUMPY_VAE_LESSONS_OUT``).  Quick mode trains on a few thousand MNIST
images (or synthetic stand-in digits when MNIST is not cached) and takes
seconds per lesson.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
LESSON_TIMEOUT_S = 300  # quick mode takes 5-30 s; this only stops a hung lesson

CONV_AVAILABLE = importlib.util.find_spec("numpy_vae.conv_vae") is not None

# The figures each lesson promises in its text (written to lessons/out/).
FIGURES = {
    "01_autoencoder.py": ["01_reconstructions.png", "01_latent_space.png", "01_random_codes.png"],
    "02_points_to_distributions.py": ["02_posteriors.png", "02_samples_from_q.png"],
    "03_reparameterization.py": ["03_wrong_formula_samples.png", "03_expected_gradient.png"],
    "04_kl_divergence.py": ["04_kl_monte_carlo.png", "04_kl_shape.png"],
    "05_elbo.py": ["05_elbo_estimates.png", "05_likelihood_balance.png"],
    "06_training_on_mnist.py": ["06_loss_curves.png", "06_reconstructions.png", "06_samples.png"],
    "07_latent_space_three_ways.py": ["07_latent_three_ways.png"],
    "08_generating.py": ["08_prior_samples.png", "08_manifold_2d.png", "08_interpolation.png",
                         "08_latent_arithmetic.png"],
    "09_denoising_and_compression.py": ["09_latent_dim_sweep.png", "09_denoising.png"],
    "10_beta_balance.py": ["10_beta_sweep.png", "10_warmup.png", "10_learned_variance.png"],
    "11_how_good_is_the_model.py": ["11_elbo_vs_iwae.png"],
    "12_faster_and_convolutional.py": ["12_backend_timings.png"]
                                      + (["12_conv_reconstructions.png"] if CONV_AVAILABLE else []),
    "14_asking_for_a_digit.py": ["14_digit_grid.png", "14_style_transfer.png"],
    "15_discrete_latents.py": ["15_nearest_codes.png", "15_reconstructions.png", "15_prior_samples.png"],
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def lesson_files():
    return sorted(p.name for p in LESSONS.glob("[0-9][0-9]_*.py"))


def test_every_lesson_file_has_its_figures_listed_here():
    assert lesson_files() == sorted(FIGURES)


def test_lessons_readme_lists_every_lesson():
    readme = (LESSONS / "README.md").read_text()
    missing = [name for name in lesson_files() if name not in readme]
    assert not missing, f"lessons/README.md does not mention {missing}"


@pytest.mark.parametrize("lesson", sorted(FIGURES))
def test_lesson_runs_in_quick_mode_and_writes_its_figures(lesson, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", NUMPY_VAE_QUICK="1", NUMPY_VAE_LESSONS_OUT=str(tmp_path))
    # One BLAS thread: on a small machine shared with other jobs, a
    # multi-threaded BLAS fighting for cores made steps up to 10x slower.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.pop("NUMPY_VAE_BACKEND", None)  # the lessons choose their own backends
    proc = subprocess.run([sys.executable, str(LESSONS / lesson), "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=LESSON_TIMEOUT_S)
    assert proc.returncode == 0, (f"{lesson} exited with {proc.returncode}\n"
                                  f"--- stdout (end) ---\n{proc.stdout[-3000:]}\n"
                                  f"--- stderr (end) ---\n{proc.stderr[-3000:]}")
    for name in FIGURES[lesson]:
        path = tmp_path / name
        assert path.exists(), f"{lesson} did not write {name}; it wrote {sorted(p.name for p in tmp_path.iterdir())}"
        assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{name} is not a PNG file"
