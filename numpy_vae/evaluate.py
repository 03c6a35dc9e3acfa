"""How good is a trained VAE?  Two numbers in nats per image, lower is better,
and a count of the latent units it uses.

1. The negative ELBO, the training loss with beta = 1:

       -ELBO(x) = E_q[-log p(x | z)] + KL(q(z | x) || p(z)),    z ~ q(z | x)

   estimated with one z per image, *sampled*: z = mu + sigma * eps.  Using
   z = mu instead would give a different number, not the ELBO.  Averaged
   over 10,000 test images, one sample each is plenty.

2. The importance-weighted bound (IWAE; Burda, Grosse & Salakhutdinov, 2016)
   on -log p(x).  Since p(x) = E_q[p(x, z) / q(z | x)], for K samples
   z_1..z_K ~ q(z | x) Jensen's inequality gives

       log p(x) >= L_K(x) = E[ log (1/K) sum_k w_k ],
       w_k = p(x | z_k) p(z_k) / q(z_k | x).

   L_1 is the ELBO, L_K never decreases with K, and L_K -> log p(x) as
   K -> infinity.  So -L_K with K = 5000 is a tight upper bound on the
   model's negative log-likelihood -log p(x), the number papers report.

   With z = mu + sigma * eps and diagonal Gaussians, the log weight is

       log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x)
               = -nll(x, z_k) - 1/2 sum_j (z_kj^2 - eps_kj^2 - logvar_j)

   (the log(2 pi) terms of p and q cancel).  The weights are about e^-100,
   so their mean is taken in log space with the log-sum-exp trick:

       log (1/K) sum_k w_k = m + log sum_k exp(log w_k - m) - log K,   m = max_k log w_k

   Every exp() is then at most 1: no overflow, no underflow of the largest term.

3. Active units (Burda et al., 2015, section 5.2): latent unit u is
   active when what the encoder says about it changes with the image,

       A_u = Var_x( E_q(z|x)[z_u] ) = Var_x( mu_u(x) ) > 0.01,

   the variance taken over the test images.  An inactive unit has
   q(z_u | x) ~ p(z_u) for every x: it costs no KL and carries nothing.

Memory: K = 5000 samples for 10,000 images are 50 million decoder passes;
they are done ``max_rows`` decoder rows at a time (a few images, or one
image and part of its K samples), and the log-sum-exp is kept as a running
(max, sum) pair so that chunks of one image's samples can be combined:

       m' = max(m, max(a)),   s' = s exp(m - m') + sum exp(a - m')

The noise is drawn image by image, sample by sample, whatever the chunks,
so ``max_rows`` changes the memory used and not the numbers.

Both estimates draw their noise from their own generator (``seed``), not
from the model's, so evaluating never changes what training does next, and
two evaluations of the same model give the same numbers.
"""

from __future__ import annotations

import math
import time

import numpy as np
from tqdm import tqdm

from numpy_vae.backend import get_backend

# Decoder rows at a time, unless the model says less (``model.IWAE_MAX_ROWS``):
# the MLP VAE's rows are ~25 MB per (8192, 784) float32 array; the conv VAE's
# carry ConvTranspose intermediates, measured 0.163 MB per row at its peak
# (1335 MB at 8192 rows, 167 MB at 1024; benchmarks/bench_iwae_memory.py),
# so it takes 1024 by default.
DEFAULT_MAX_ROWS = 8192


def negative_elbo(model, x, *, batch_size: int = 1000, seed: int = 0, y=None) -> dict:
    """The negative ELBO of ``x``, one sampled z per image, in nats per image.

    x : (N, input_dim) array (NumPy or the model's backend)
    y : (N,) labels, for a conditional VAE: then it is the negative
        conditional ELBO, a bound on -log p(x | y)
    Returns {"nelbo": ..., "recon": ..., "kl": ...} (floats, means over the N
    images, nelbo = recon + kl).
    """
    _check_data(x)
    if getattr(model, "conditional", False) and y is None:
        raise ValueError("a conditional VAE is evaluated with the labels: pass y")
    noise = _noise_source(model, seed)
    xp = model.backend.xp
    recon_sum = xp.zeros((), dtype=np.float64)
    kl_sum = xp.zeros((), dtype=np.float64)
    for start in range(0, len(x), batch_size):
        xb = model.backend.asarray(x[start:start + batch_size])
        eps = noise.standard_normal((len(xb), model.latent_dim))
        if y is None:
            recon, kl = model.terms(xb, eps)
        else:
            recon, kl = model.terms(xb, y[start:start + batch_size], eps)
        recon_sum += recon.sum(dtype=np.float64)
        kl_sum += kl.sum(dtype=np.float64)
    recon_mean, kl_mean = float(recon_sum) / len(x), float(kl_sum) / len(x)
    return {"nelbo": recon_mean + kl_mean, "recon": recon_mean, "kl": kl_mean}


ACTIVE_UNIT_THRESHOLD = 0.01


def active_units(model, x, *, threshold: float = ACTIVE_UNIT_THRESHOLD,
                 batch_size: int = 1000) -> dict:
    """Burda et al.'s active units: how many u have Var_x(mu_u(x)) > threshold.

    x : (N, input_dim), N >= 2.  mu_u(x) = E_q(z|x)[z_u] is the encoder's mean.
    Returns {"active_units": int, "unit_variances": NumPy (latent_dim,) float64}
    (the variance over the N images, divided by N).
    """
    _check_data(x)
    model.require("active_units")
    if len(x) < 2:
        raise ValueError("active units need the variance over at least 2 images")
    bk = model.backend
    means = [bk.to_numpy(model.encode(bk.asarray(x[start:start + batch_size]))[0])
             for start in range(0, len(x), batch_size)]
    variances = np.concatenate(means).astype(np.float64).var(axis=0)
    return {"active_units": int((variances > threshold).sum()), "unit_variances": variances}


def log_weights(model, x, eps):
    """log w for K samples per image:  x (B, D), eps (B, K, latent) -> (B, K).

        z_k     = mu + exp(logvar / 2) * eps_k
        log w_k = -nll(x, z_k) - 1/2 sum_j (z_kj^2 - eps_kj^2 - logvar_j)
    """
    xp = model.backend.xp
    B, K, L = eps.shape
    mu, logvar = model.encode(x)
    z = mu[:, None, :] + xp.exp(0.5 * logvar)[:, None, :] * eps            # (B, K, L)
    # each image is repeated K times, once beside each of its samples
    nll = _decoder_nll(model, z.reshape(B * K, L), xp.repeat(x, K, axis=0))
    log_pz_minus_log_qz = -0.5 * (z * z - eps * eps - logvar[:, None, :]).sum(axis=2)
    return -nll.reshape(B, K) + log_pz_minus_log_qz


def log_weights_batched(model, x, eps):
    """log_weights, computed for speed: the same (B, K) numbers to rounding.

    The decoder's matrix products run in the model's dtype (float32) on all
    B * K rows at once; the Bernoulli likelihood computes each pixel's term
    in that dtype and sums each row in float64 without repeating x K times
    (``ops.bernoulli_nll_samples`` and its Numba and CuPy twins; the Numba
    one in a single pass), the Gaussian ones sum their rows in the model's
    dtype, and the prior/posterior ratio is summed in float64.  ``log_weights`` above is the readable reference
    that tests/test_evaluate.py holds this to.
    """
    xp = model.backend.xp
    B, K, L = eps.shape
    mu, logvar = model.encode(x)
    z = mu[:, None, :] + xp.exp(0.5 * logvar)[:, None, :] * eps            # (B, K, L)
    out = model.decoder.forward(z.reshape(B * K, L))
    nll = model.likelihood.nll_samples(out.reshape(B, K, out.shape[1]), x)  # (B, K) float64
    log_pz_minus_log_qz = -0.5 * (z * z - eps * eps - logvar[:, None, :]).sum(axis=2, dtype=np.float64)
    return log_pz_minus_log_qz - nll


def _decoder_nll(model, z, x):
    """-log p(x | z) per row:  z (rows, latent), x (rows, D) -> (rows,)."""
    return model.likelihood.nll(model.decoder.forward(z), x)


def iwae_log_likelihood(model, x, k: int = 5000, *, seed: int = 0,
                        max_rows: int | None = None, progress: bool = False,
                        fast: bool = True) -> np.ndarray:
    """The IWAE lower bound L_K(x) on log p(x) for each image, in nats.

    x : (N, input_dim)
    Returns a NumPy float64 array (N,).  Each L_K is one draw of the
    estimator (its expectation is the bound); it is the mean over images
    that is reported.  Work and memory: N * k decoder passes, done
    ``max_rows`` at a time, whatever k and N are (None: the model's
    ``IWAE_MAX_ROWS``, else DEFAULT_MAX_ROWS).  ``fast=False`` uses the
    reference ``log_weights`` instead of ``log_weights_batched``.
    """
    _check_data(x)
    model.require("iwae_bound")  # UnsupportedError (a ValueError) for a CVAE or a VQ-VAE
    if k < 1:
        raise ValueError(f"the number of importance samples k must be at least 1, got {k}")
    if max_rows is None:
        max_rows = getattr(model, "IWAE_MAX_ROWS", DEFAULT_MAX_ROWS)
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    noise = _noise_source(model, seed)
    bk, xp = model.backend, model.backend.xp
    samples_per_chunk = min(k, max_rows)
    images_per_batch = max(1, max_rows // samples_per_chunk)
    results = []
    with tqdm(total=len(x), desc=f"IWAE K={k}", unit="img", disable=not progress,
              leave=False) as bar:
        for start in range(0, len(x), images_per_batch):
            xb = bk.asarray(x[start:start + images_per_batch])
            # running log-sum-exp over this batch's k samples: max m and sum s
            m = xp.full((len(xb),), -np.inf, dtype=np.float64)
            s = xp.zeros((len(xb),), dtype=np.float64)
            for done in range(0, k, samples_per_chunk):
                chunk = min(samples_per_chunk, k - done)
                eps = noise.standard_normal((len(xb), chunk, model.latent_dim))
                a = (log_weights_batched if fast else log_weights)(model, xb, eps).astype(np.float64)
                m_new = xp.maximum(m, a.max(axis=1))
                s = s * xp.exp(m - m_new) + xp.exp(a - m_new[:, None]).sum(axis=1)
                m = m_new
            results.append(m + xp.log(s) - math.log(k))
            bar.update(len(xb))
    return bk.to_numpy(xp.concatenate(results))


def iwae_nll(model, x, k: int = 5000, **kwargs) -> float:
    """-mean over images of L_K(x): an upper bound on -log p(x), nats per image."""
    return -float(np.mean(iwae_log_likelihood(model, x, k, **kwargs)))


def evaluate_model(model, x, *, iwae_k: int = 0, batch_size: int = 1000, seed: int = 0,
                   max_rows: int | None = None, progress: bool = False, y=None) -> dict:
    """Negative ELBO (and, if iwae_k > 0, the IWAE bound) of ``x`` with their times.

    y : (N,) labels, for a conditional VAE (its negative conditional ELBO).
    Returns {"nelbo", "recon", "kl", "nelbo_time_s"} and, for iwae_k > 0,
    {"iwae_nll", "iwae_k", "iwae_time_s"}; all per image, in nats and seconds.
    A model without the IWAE bound (``model.supports("iwae_bound")``) raises
    UnsupportedError for iwae_k > 0 before any work.
    """
    if iwae_k > 0:
        model.require("iwae_bound")
    start = time.perf_counter()
    result = negative_elbo(model, x, batch_size=batch_size, seed=seed, y=y)
    result["nelbo_time_s"] = time.perf_counter() - start
    if iwae_k > 0:
        start = time.perf_counter()
        result["iwae_nll"] = iwae_nll(model, x, iwae_k, seed=seed, max_rows=max_rows,
                                      progress=progress)
        result["iwae_k"] = int(iwae_k)
        result["iwae_time_s"] = time.perf_counter() - start
    return result


def protocol(likelihood: str, binarize: str, test_binarize_seed: int,
             conditional: bool = False) -> dict:
    """What an evaluation's numbers are, in words, for the run's likelihood and binarization.

    conditional: the model is a conditional VAE, whose bound is on
    -log p(x | y): never comparable with published -log p(x).
    Returns {"protocol": a short key, "comparable": bool (can be set beside
    published MNIST log-likelihoods), "note": one or two sentences}.
    """
    if conditional:
        return {"protocol": "conditional", "comparable": False,
                "note": "a conditional VAE: its numbers bound -log p(x | y), the image given its "
                        "label, another quantity than the -log p(x) that papers report: not "
                        "comparable with their numbers"}
    if likelihood == "bernoulli" and binarize == "dynamic":
        return {"protocol": "binarized-mnist", "comparable": True,
                "note": f"binarized MNIST: the test set drawn once as Bernoulli(pixel) with seed "
                        f"{test_binarize_seed} (the same for every run), training images drawn afresh "
                        f"each epoch, as in Burda et al. (2015): a bound on -log p(x) in nats, "
                        f"comparable with published numbers for this protocol"}
    if likelihood == "bernoulli" and binarize == "static":
        return {"protocol": "thresholded-mnist", "comparable": False,
                "note": "MNIST thresholded at 0.5 (train and test): a bound on -log p(x) of those 0/1 "
                        "images, which are easier than the Bernoulli-sampled ones papers use: "
                        "not comparable with their numbers"}
    if likelihood == "bernoulli":
        return {"protocol": "grey-level-bernoulli", "comparable": False,
                "note": "a Bernoulli likelihood on grey-level pixels is not a normalised distribution "
                        "over these images: the number is a bound on a grey-level objective, not a "
                        "log-likelihood, and cannot be set beside papers (train with --binarize "
                        "dynamic for that)"}
    return {"protocol": "continuous-density", "comparable": False,
            "note": "a density of the grey levels k/255, with no dequantization: nats (and bits per "
                    "dimension, nats / (784 ln 2)) of a density, not a log-probability of the 8-bit "
                    "images, so not comparable with dequantized results in papers"}


def _noise_source(model, seed):
    """A fresh backend of the model's kind whose generator is seeded with ``seed``.

    It draws eps on the model's device, in the model's dtype, without
    touching the model's own generator.
    """
    return get_backend(model.backend.name, dtype=str(model.backend.dtype), seed=seed)


def _check_data(x):
    if len(x) == 0:
        raise ValueError("cannot evaluate on an empty data set")


__all__ = ["protocol", "active_units", "ACTIVE_UNIT_THRESHOLD", "negative_elbo", "log_weights",
           "log_weights_batched", "iwae_log_likelihood", "iwae_nll", "evaluate_model"]
