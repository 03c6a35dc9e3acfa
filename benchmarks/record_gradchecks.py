"""The gradient checks of docs/gradient-checks.md, run and kept as a results file.

    python benchmarks/record_gradchecks.py            # -> docs/results/gradchecks.json (a few seconds)

Each layer, node, likelihood and a small model of every kind is checked in
float64 against the fourth-order finite difference of numpy_vae/gradcheck.py
(the same checks as tests/test_gradcheck.py and its neighbours, on one
fixed seed), and the largest relative error is kept.  Then two planted bugs,
written here as wrong backward passes beside the right forward ones, show
what an error looks like: a missing factor 1/2 in the reparameterization
gradient, and a flipped sign in the KL's gradient.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402
from numpy_vae import VAE, get_backend  # noqa: E402
from numpy_vae import gradcheck as gc  # noqa: E402
from numpy_vae import layers as L  # noqa: E402
from numpy_vae.conv import Conv2D, ConvTranspose2D  # noqa: E402
from numpy_vae.conv_vae import ConvVAE  # noqa: E402
from numpy_vae.kl import GaussianKL  # noqa: E402
from numpy_vae.likelihoods import BernoulliLikelihood, GaussianLikelihood, LearnedGaussianLikelihood  # noqa: E402
from numpy_vae.reparameterize import Reparameterize  # noqa: E402


def layer_rows(bk, rng):
    x = rng.standard_normal((6, 5))
    rows = []
    for name, layer in (("Linear", L.Linear(5, 4, backend=bk)), ("ReLU", L.ReLU(backend=bk)),
                        ("LeakyReLU", L.LeakyReLU(backend=bk)), ("Tanh", L.Tanh(backend=bk)),
                        ("Sigmoid", L.Sigmoid(backend=bk)), ("Softplus", L.Softplus(backend=bk)),
                        ("Sequential (Linear, Tanh, Linear, Softplus)",
                         L.Sequential([L.Linear(5, 4, backend=bk), L.Tanh(backend=bk),
                                       L.Linear(4, 3, backend=bk), L.Softplus(backend=bk)], backend=bk))):
        rows.append((name, max(gc.check_layer(layer, x).values()), "input and every parameter"))
    for name, layer, shape in (("Conv2D (stride 2, padding 1)", Conv2D(2, 3, 3, stride=2, padding=1, backend=bk),
                                (2, 2, 7, 7)),
                               ("ConvTranspose2D (stride 2, padding 1)",
                                ConvTranspose2D(3, 2, 4, stride=2, padding=1, backend=bk), (2, 3, 4, 4))):
        rows.append((name, max(gc.check_layer(layer, rng.standard_normal(shape)).values()),
                     "input and every parameter"))
    return rows


def node_rows(bk, rng):
    mu, logvar = rng.standard_normal((4, 3)), 0.5 * rng.standard_normal((4, 3))
    eps = rng.standard_normal((4, 3))
    rep, kl = Reparameterize(backend=bk), GaussianKL(backend=bk)
    rows = [("Reparameterize node", max(gc.check_function(
                lambda mu, logvar: rep.forward(mu, logvar, eps),
                lambda dz: dict(zip(("mu", "logvar"), rep.backward(dz))), {"mu": mu, "logvar": logvar}).values()),
             "mu and logvar"),
            ("GaussianKL node", max(gc.check_function(
                kl.forward, lambda d: dict(zip(("mu", "logvar"), kl.backward(d))),
                {"mu": mu, "logvar": logvar}).values()), "mu and logvar")]
    x = rng.random((4, 6))
    for name, lik, width in (("Bernoulli likelihood", BernoulliLikelihood(backend=bk), 6),
                             ("Gaussian likelihood", GaussianLikelihood(backend=bk), 6),
                             ("Gaussian likelihood, learned variance", LearnedGaussianLikelihood(backend=bk), 12)):
        out = rng.standard_normal((4, width))
        err = gc.check_function(lambda out: lik.forward(out, x), lambda d: {"out": lik.backward(d)}, {"out": out})
        rows.append((name, err["out"], "the decoder's output"))
    return rows


def model_rows(rng):
    rows = []
    x = rng.random((5, 16))
    for likelihood in ("bernoulli", "gaussian", "gaussian_learned"):
        model = VAE(16, (8,), 3, likelihood=likelihood, activation="tanh", dtype="float64", seed=1)
        errors = gc.check_model(model, x, eps=rng.standard_normal((5, 3)))
        rows.append((f"whole VAE, {likelihood} (16-8-3, tanh)", max(errors.values()), "every parameter array"))
    model = ConvVAE(input_dim=64, latent_dim=3, channels=(2, 3), activation="tanh", dtype="float64", seed=1)
    errors = gc.check_model(model, rng.random((3, 64)), eps=rng.standard_normal((3, 3)))
    rows.append(("whole ConvVAE (8x8 images, 2 and 3 channels, tanh)", max(errors.values()), "every parameter array"))
    return rows


def planted_rows(rng):
    """Wrong backward passes beside right forward ones: what the check reports for a real bug."""
    mu, logvar, eps = (rng.standard_normal((4, 3)) for _ in range(3))
    std = np.exp(logvar / 2)

    def reparam_missing_half(dz):
        return {"mu": dz, "logvar": dz * eps * std}             # right: dz * eps * std / 2

    def kl_flipped_sign(dkl):
        return {"mu": -dkl[:, None] * mu, "logvar": -dkl[:, None] * 0.5 * np.expm1(logvar)}

    reparam = gc.check_function(lambda mu, logvar: mu + np.exp(logvar / 2) * eps, reparam_missing_half,
                                {"mu": mu, "logvar": logvar})
    kl = gc.check_function(lambda mu, logvar: 0.5 * (mu ** 2 + np.expm1(logvar) - logvar).sum(axis=1),
                           kl_flipped_sign, {"mu": mu, "logvar": logvar})
    return [("reparameterization gradient without its factor 1/2", reparam["logvar"]),
            ("KL gradient with its sign flipped", max(kl.values()))]


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(_provenance.RESULTS_DIR / "gradchecks.json"), metavar="FILE.json")
    args = parser.parse_args(argv)
    provenance = _provenance.start([__file__, *(sys.argv[1:] if argv is None else argv)])
    rng = np.random.default_rng(0)
    bk = get_backend("numpy", dtype="float64")
    rows = layer_rows(bk, rng) + node_rows(bk, rng) + model_rows(rng)
    planted = planted_rows(rng)
    for name, err, how in rows:
        print(f"{name:55s} {err:9.1e}  ({how})")
    for name, err in planted:
        print(f"planted: {name:46s} {err:9.2f}")
    _provenance.write(args.results, provenance,
                      {"stencil": f"fourth order, h = {gc.DEFAULT_H}",
                       "rows": [{"component": n, "max_rel_error": float(e), "how": h} for n, e, h in rows],
                       "planted": [{"bug": n, "max_rel_error": float(e)} for n, e in planted]},
                      description="largest relative error of every backward pass against float64 finite differences")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
