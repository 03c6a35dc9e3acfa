"""Specification of the models (numpy_vae/models.py): VAE and Autoencoder.

Two halves.  First, the whole training step's gradient agrees with finite
differences, for every likelihood, several activations and betas, and the
checker notices the classic mistakes when they are planted into a model.
Second, the public API behaves exactly as the module docstring promises:
parameter names, shapes, dtypes, determinism, and clear errors.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_vae import VAE, Autoencoder, build_model, gradcheck
from numpy_vae.layers import LeakyReLU, ReLU
from numpy_vae.models import ENCODER_LOGVAR_RANGE

# Small sizes keep the loss O(10) nats, so rounding stays small, and a full
# check (every element of every parameter array) takes a fraction of a second.
INPUT, HIDDEN, LATENT, BATCH = 12, (9, 7), 3, 5
BOUND = 1e-6
H = 1e-5        # see gradient_errors for why not the default step


def small_model(likelihood="bernoulli", activation="tanh", cls=VAE, hidden=HIDDEN,
                dtype="float64", seed=0):
    return cls(INPUT, hidden, LATENT, likelihood=likelihood, activation=activation,
               dtype=dtype, seed=seed)


def small_batch(likelihood, rng, batch=BATCH):
    """Binary pixels for the Bernoulli, grey levels in [0, 1] for the Gaussians."""
    x = rng.random((batch, INPUT))
    return (x < 0.5).astype(np.float64) if likelihood == "bernoulli" else x


def gradient_errors(model, x, eps=None, beta=1.0, only=None):
    """Max relative error of ``loss_and_grads`` per parameter array (or those named in ``only``).

    Each element is compared with the issue's formula

        err = |a - n| / max(|a| + |n|, tiny)

    against a central difference with step H = 1e-5: small enough that no
    perturbation carries a ReLU pre-activation across 0 (see
    ``distance_to_kinks``), where the default step of 3e-4 sometimes would.

    ``tiny`` is the finite difference's rounding floor rather than 1e-12.
    Each evaluation of the loss f is only known to a few units in its last
    place, ~eps * |f|; the difference quotient divides that by h, so every
    numeric entry carries an absolute error of order eps * |f| / h (~3e-10
    here), whatever the code does.  An entry of size 1e-4, common where a
    path through the network nearly cancels (or runs through the 0.01 slope
    of a LeakyReLU), then shows a relative error above 1e-6 from rounding
    alone: with tiny = 1e-12 the cases below reach 6e-5.  With
        tiny = 10 * eps * |f| / (h * BOUND)          (~3e-3 here)
    entries below tiny are held to an absolute error of BOUND * tiny (~3e-9,
    ten times the rounding floor) instead: a real bug on them still shows,
    as it does on the large entries, where the formula is the plain
    relative error.
    """
    x = np.asarray(x, dtype=np.float64)

    def f():
        return float(model.loss_and_grads(x, eps=eps, beta=beta)[0])

    _, grads, _ = model.loss_and_grads(x, eps=eps, beta=beta)
    analytic = {name: np.array(g) for name, g in grads.items()}
    tiny = 10 * np.finfo(np.float64).eps * abs(f()) / (H * BOUND)
    return {name: gradcheck.relative_error(analytic[name], gradcheck.numerical_gradient(f, p, H), tiny)
            for name, p in model.params.items() if only is None or name in only}


def distance_to_kinks(model):
    """The smallest |pre-activation| a ReLU or LeakyReLU saw in the last forward pass."""
    kinked = [layer for layer in (*model.encoder.layers, *model.decoder.layers)
              if isinstance(layer, (ReLU, LeakyReLU))]
    return min((float(np.abs(layer._x).min()) for layer in kinked), default=math.inf)


# --------------------------------------------------------------------------
# The whole VAE against finite differences
# --------------------------------------------------------------------------

VAE_CASES = [  # every likelihood, every activation, beta = 1 and beta != 1
    ("bernoulli", "relu", 1.0),
    ("bernoulli", "tanh", 0.5),
    ("gaussian", "softplus", 1.0),
    ("gaussian", "leaky_relu", 2.0),
    ("gaussian_learned", "sigmoid", 1.0),
    ("gaussian_learned", "tanh", 0.25),
    ("gaussian_learned", "relu", 4.0),
]


@pytest.mark.parametrize("likelihood,activation,beta", VAE_CASES)
def test_vae_gradient_matches_finite_differences(likelihood, activation, beta, rng):
    model = small_model(likelihood, activation)
    x = small_batch(likelihood, rng)
    eps = rng.standard_normal((BATCH, LATENT))

    errors = gradient_errors(model, x, eps=eps, beta=beta)

    assert distance_to_kinks(model) > 1e-4   # each perturbation moves pre-activations by ~1e-5
    assert list(errors) == list(model.params)
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


@pytest.mark.parametrize("hidden", [(), (9,)], ids=["no-hidden-layer", "one-hidden-layer"])
def test_vae_gradient_matches_finite_differences_for_other_depths(hidden, rng):
    model = small_model("gaussian", "softplus", hidden=hidden)
    errors = gradient_errors(model, small_batch("gaussian", rng), eps=rng.standard_normal((BATCH, LATENT)))
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


@pytest.mark.parametrize("likelihood,activation", [("bernoulli", "relu"), ("gaussian", "tanh"),
                                                   ("gaussian_learned", "softplus")])
def test_autoencoder_gradient_matches_finite_differences(likelihood, activation, rng):
    model = small_model(likelihood, activation, cls=Autoencoder)
    errors = gradient_errors(model, small_batch(likelihood, rng))
    assert distance_to_kinks(model) > 1e-4
    assert max(errors.values()) < BOUND, gradcheck.format_table(errors)


# --- the checker notices bugs planted into a model's nodes -----------------

def _plant_std_exp_logvar(node):
    """sigma = exp(logvar) in the forward pass; the backward pass stays the documented one."""
    forward = node.forward

    def buggy(mu, logvar, eps=None):
        _, kl = forward(mu, logvar, eps)
        node._std = np.exp(logvar)
        return mu + node._std * node.eps, kl
    node.forward = buggy


def _plant_eps_drawn_twice(node):
    """z uses one eps, backward another: differentiates a z that was never used."""
    forward = node.forward

    def buggy(mu, logvar, eps=None):
        z, kl = forward(mu, logvar, eps)
        node.eps = node.backend.standard_normal(mu.shape)
        return z, kl
    node.forward = buggy


def _plant_missing_half(node):
    """dlogvar = dz * eps * sigma + ..., the path through z without its 1/2."""
    def buggy(dz, dkl):
        dkl = dkl[:, None]
        return (dz + dkl * node._mu,
                dz * node.eps * node._std + dkl * 0.5 * node._var_minus_1)
    node.backward = buggy


def _plant_flipped_kl_sign(node):
    """The path through the KL term with the wrong sign."""
    backward = node.backward
    node.backward = lambda dz, dkl: backward(dz, -dkl)


@pytest.mark.parametrize("plant", [
    _plant_std_exp_logvar, _plant_eps_drawn_twice, _plant_missing_half, _plant_flipped_kl_sign,
], ids=["std=exp(logvar)", "eps-drawn-twice", "dlogvar-missing-half", "kl-sign-flipped"])
def test_gradient_check_catches_a_bug_planted_in_the_model(plant, rng):
    model = small_model("bernoulli", "tanh")
    x, eps = small_batch("bernoulli", rng), rng.standard_normal((BATCH, LATENT))
    logvar_head = ["logvar.W", "logvar.b"]      # every planted bug is on the logvar path
    assert max(gradient_errors(model, x, eps, only=logvar_head).values()) < BOUND   # healthy first

    plant(model.reparameterize_kl)   # the training step's reparameterization + KL node
    errors = gradient_errors(model, x, eps, only=logvar_head)

    assert errors["logvar.W"] > 1e-2, gradcheck.format_table(errors)


def test_gradient_check_without_fixed_eps_measures_noise(rng):
    # every loss evaluation draws a new z: the difference quotient is noise / h
    model = small_model("bernoulli", "tanh")
    errors = gradient_errors(model, small_batch("bernoulli", rng), eps=None, only=["decoder.2.b"])
    assert errors["decoder.2.b"] > 1e-2


# --------------------------------------------------------------------------
# The parameter contract
# --------------------------------------------------------------------------

def test_parameter_names_and_shapes_for_one_hidden_layer_of_400():
    model = VAE(784, (400,), 20)
    shapes = {name: p.shape for name, p in model.params.items()}
    assert list(shapes.items()) == [
        ("encoder.0.W", (784, 400)), ("encoder.0.b", (400,)),
        ("mu.W", (400, 20)), ("mu.b", (20,)),
        ("logvar.W", (400, 20)), ("logvar.b", (20,)),
        ("decoder.0.W", (20, 400)), ("decoder.0.b", (400,)),
        ("decoder.1.W", (400, 784)), ("decoder.1.b", (784,)),
    ]
    assert model.num_params == 652_824            # the PyTorch example's VAE, to the parameter


def test_parameter_names_and_shapes_for_two_hidden_layers():
    model = VAE(30, (64, 32), 4, likelihood="gaussian_learned")
    shapes = {name: p.shape for name, p in model.params.items()}
    assert list(shapes.items()) == [
        ("encoder.0.W", (30, 64)), ("encoder.0.b", (64,)),
        ("encoder.1.W", (64, 32)), ("encoder.1.b", (32,)),
        ("mu.W", (32, 4)), ("mu.b", (4,)),
        ("logvar.W", (32, 4)), ("logvar.b", (4,)),
        ("decoder.0.W", (4, 32)), ("decoder.0.b", (32,)),
        ("decoder.1.W", (32, 64)), ("decoder.1.b", (64,)),
        ("decoder.2.W", (64, 60)), ("decoder.2.b", (60,)),   # means, then log-variances
    ]


def test_autoencoder_parameter_names():
    model = Autoencoder(30, (64, 32), 4)
    assert list(model.params) == ["encoder.0.W", "encoder.0.b", "encoder.1.W", "encoder.1.b",
                                  "code.W", "code.b",
                                  "decoder.0.W", "decoder.0.b", "decoder.1.W", "decoder.1.b",
                                  "decoder.2.W", "decoder.2.b"]
    assert model.params["code.W"].shape == (32, 4)


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_grads_have_the_keys_order_shapes_and_dtypes_of_params(cls, dtype, rng):
    model = small_model("bernoulli", "relu", cls=cls, dtype=dtype)
    _, grads, _ = model.loss_and_grads(small_batch("bernoulli", rng))
    assert list(grads) == list(model.params)
    for name, p in model.params.items():
        assert grads[name].shape == p.shape, name
        assert grads[name].dtype == p.dtype == dtype, name


def test_params_are_the_layers_own_arrays():
    # an optimizer updating model.params in place must change what forward uses
    model = small_model()
    assert model.params["mu.W"] is model.mu_head.params["W"]
    assert model.params["decoder.1.b"] is model.decoder[2].params["b"]


# --------------------------------------------------------------------------
# Determinism and noise
# --------------------------------------------------------------------------

def test_same_seed_gives_the_same_initial_weights_and_another_does_not():
    a, b, c = VAE(20, (8,), 2, seed=3), VAE(20, (8,), 2, seed=3), VAE(20, (8,), 2, seed=4)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert not np.array_equal(a.params["encoder.0.W"], c.params["encoder.0.W"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_passing_eps_makes_loss_and_grads_deterministic(dtype, rng):
    model = small_model("gaussian", "tanh", dtype=dtype)
    x, eps = small_batch("gaussian", rng), rng.standard_normal((BATCH, LATENT))
    loss1, grads1, _ = model.loss_and_grads(x, eps=eps)
    grads1 = {k: g.copy() for k, g in grads1.items()}
    loss2, grads2, _ = model.loss_and_grads(x, eps=eps)
    assert loss1 == loss2
    for name in grads1:
        np.testing.assert_array_equal(grads1[name], grads2[name])


def test_without_eps_each_call_draws_fresh_noise(rng):
    model = small_model("gaussian", "tanh")
    x = small_batch("gaussian", rng)
    first, _, _ = model.loss_and_grads(x)
    second, _, _ = model.loss_and_grads(x)
    assert first != second
    assert model.loss(x) != model.loss(x)


def test_eps_zero_decodes_the_posterior_mean(rng):
    model = small_model("gaussian", "tanh")
    x = small_batch("gaussian", rng)
    recon, _ = model.terms(x, eps=np.zeros((BATCH, LATENT)))
    mu, _ = model.encode(x)
    expected = model.likelihood.nll(model.decoder.forward(mu), x)
    np.testing.assert_allclose(recon, expected, rtol=1e-14)


# --------------------------------------------------------------------------
# The loss and what info reports
# --------------------------------------------------------------------------

@pytest.mark.parametrize("beta", [1.0, 0.3, 4.0])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_loss_is_recon_plus_beta_times_kl(likelihood, beta, rng):
    model = small_model(likelihood, "softplus")
    x, eps = small_batch(likelihood, rng), rng.standard_normal((BATCH, LATENT))
    loss, _, info = model.loss_and_grads(x, eps=eps, beta=beta)
    assert info["beta"] == beta
    assert loss == info["loss"]
    assert loss == pytest.approx(info["recon"] + beta * info["kl"], rel=1e-14)
    assert info["kl"] >= 0


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_loss_without_gradients_equals_the_training_loss(likelihood, rng):
    model = small_model(likelihood, "tanh")
    x, eps = small_batch(likelihood, rng), rng.standard_normal((BATCH, LATENT))
    loss, _, info = model.loss_and_grads(x, eps=eps, beta=0.7)
    assert model.loss(x, eps=eps, beta=0.7) == pytest.approx(loss, rel=1e-13)
    recon, kl = model.terms(x, eps=eps)
    assert recon.shape == kl.shape == (BATCH,)
    assert recon.mean() == pytest.approx(info["recon"], rel=1e-13)
    assert kl.mean() == pytest.approx(info["kl"], rel=1e-13)


def test_loss_is_the_batch_mean_of_per_example_losses(rng):
    # splitting a batch must not change the per-example numbers
    model = small_model("bernoulli", "tanh")
    x, eps = small_batch("bernoulli", rng), rng.standard_normal((BATCH, LATENT))
    whole = model.loss(x, eps=eps)
    parts = [model.loss(x[i:i + 1], eps=eps[i:i + 1]) for i in range(BATCH)]
    assert whole == pytest.approx(np.mean(parts), rel=1e-13)


def test_autoencoder_loss_is_its_reconstruction_nll(rng):
    model = small_model("bernoulli", "relu", cls=Autoencoder)
    x = small_batch("bernoulli", rng)
    loss, _, info = model.loss_and_grads(x, eps=rng.standard_normal((BATCH, LATENT)), beta=5.0)
    nll = model.likelihood.nll(model.decoder.forward(model.encode(x)), x).mean()
    assert loss == pytest.approx(nll, rel=1e-14)
    assert info["recon"] == loss and info["kl"] == 0
    assert model.loss(x) == pytest.approx(loss, rel=1e-14)
    assert model.loss_and_grads(x, beta=0.1)[0] == loss          # eps and beta are ignored


# --------------------------------------------------------------------------
# Using a model: encode, decode, sample, reconstruct
# --------------------------------------------------------------------------

def test_encode_returns_mu_and_logvar_with_latent_width(rng):
    model = small_model()
    mu, logvar = model.encode(small_batch("bernoulli", rng))
    assert mu.shape == logvar.shape == (BATCH, LATENT)
    assert not np.array_equal(mu, logvar)


def test_encoded_logvar_stays_in_its_clamp_for_any_input():
    model = small_model("gaussian", "softplus")
    _, logvar = model.encode(np.full((2, INPUT), 1e6) * [[1], [-1]])
    assert np.all((logvar >= ENCODER_LOGVAR_RANGE[0]) & (logvar <= ENCODER_LOGVAR_RANGE[1]))
    assert logvar.min() == ENCODER_LOGVAR_RANGE[0] and logvar.max() == ENCODER_LOGVAR_RANGE[1]   # both ends reached


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_decode_gives_bernoulli_probabilities_in_0_1(dtype, rng):
    model = small_model("bernoulli", "relu", dtype=dtype)
    z = np.concatenate([rng.standard_normal((4, LATENT)), np.full((2, LATENT), 1e4),
                        np.full((2, LATENT), -1e4)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = model.decode(z)
    assert p.shape == (8, INPUT) and p.dtype == dtype
    assert np.all((p >= 0) & (p <= 1))


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_sample_and_reconstruct_shapes(likelihood, rng):
    model = small_model(likelihood)
    assert model.sample(7).shape == (7, INPUT)
    x = small_batch(likelihood, rng)
    assert model.reconstruct(x).shape == (BATCH, INPUT)
    np.testing.assert_array_equal(model.reconstruct(x), model.decode(model.encode(x)[0]))
    assert model.decode(np.zeros(LATENT)).shape == (1, INPUT)     # one z, unbatched


def test_a_single_unbatched_example_is_a_batch_of_one(rng):
    model = small_model()
    x = small_batch("bernoulli", rng)
    eps = rng.standard_normal((1, LATENT))
    assert model.loss(x[0], eps=eps) == pytest.approx(model.loss(x[:1], eps=eps), rel=1e-15)


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 17), input_dim=st.integers(1, 20),
       hidden=st.lists(st.integers(1, 16), max_size=3), latent=st.integers(1, 6),
       likelihood=st.sampled_from(["bernoulli", "gaussian", "gaussian_learned"]),
       cls=st.sampled_from([VAE, Autoencoder]))
def test_output_shapes_for_any_batch_and_widths(batch, input_dim, hidden, latent, likelihood, cls):
    model = cls(input_dim, tuple(hidden), latent, likelihood=likelihood, activation="tanh", seed=1)
    x = np.random.default_rng(0).random((batch, input_dim))

    loss, grads, _ = model.loss_and_grads(x)

    assert np.shape(loss) == () and np.isfinite(loss)
    assert {k: g.shape for k, g in grads.items()} == {k: p.shape for k, p in model.params.items()}
    code = model.encode(x)[0] if cls is VAE else model.encode(x)
    assert code.shape == (batch, latent)
    assert model.reconstruct(x).shape == (batch, input_dim)
    assert model.sample(batch).shape == (batch, input_dim)


# --------------------------------------------------------------------------
# float32 stays float32
# --------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [VAE, Autoencoder])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_float32_model_keeps_float32_everywhere(cls, likelihood, rng):
    model = small_model(likelihood, "relu", cls=cls, dtype="float32")
    x = small_batch(likelihood, rng)                      # float64 data is converted, not upcast to
    loss, grads, info = model.loss_and_grads(x, eps=rng.standard_normal((BATCH, LATENT)), beta=0.5)
    assert loss.dtype == np.float32
    assert info["recon"].dtype == info["kl"].dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(p.dtype == np.float32 for p in model.params.values())
    assert model.loss(x).dtype == np.float32
    assert model.reconstruct(x).dtype == np.float32
    assert model.sample(3).dtype == np.float32
    encoded = model.encode(x)
    for a in (encoded if cls is VAE else (encoded,)):
        assert a.dtype == np.float32


def test_float32_training_step_survives_extreme_inputs():
    model = VAE(INPUT, HIDDEN, LATENT, likelihood="gaussian", activation="relu", dtype="float32")
    x = np.full((BATCH, INPUT), 1e3, dtype=np.float32)
    # unclamped, the logvar head would ask for exp(logvar) with logvar > 88: inf in float32
    assert np.abs(model.logvar_head.forward(model.encoder.forward(x))).max() > 88
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss, grads, _ = model.loss_and_grads(x)
    assert np.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grads.values())


# --------------------------------------------------------------------------
# Bad inputs speak the user's language
# --------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_input_of_the_wrong_width_is_refused(cls):
    model = small_model(cls=cls)
    with pytest.raises(ValueError, match=r"\(batch, 12\).*\(3, 10\)"):
        model.loss_and_grads(np.zeros((3, 10)))
    with pytest.raises(ValueError, match=r"\(batch, 12\)"):
        model.encode(np.zeros((2, 3, 12)))


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_empty_batch_is_refused(cls):
    with pytest.raises(ValueError, match="empty batch"):
        small_model(cls=cls).loss_and_grads(np.zeros((0, INPUT)))


def test_z_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        small_model().decode(np.zeros((2, 4)))


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_sample_of_nothing_is_refused(cls):
    with pytest.raises(ValueError, match="at least 1"):
        cls(INPUT, HIDDEN, LATENT).sample(0)


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_an_unknown_activation_is_refused_even_without_hidden_layers(cls):
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        cls(INPUT, (), LATENT, activation="swish")


@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_unknown_likelihood_and_activation_names_list_the_choices(cls):
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'.*bernoulli"):
        cls(INPUT, HIDDEN, LATENT, likelihood="poisson")
    with pytest.raises(ValueError, match="unknown activation 'swish'.*relu"):
        cls(INPUT, HIDDEN, LATENT, activation="swish")


@pytest.mark.parametrize("sizes", [(0, (8,), 2), (12, (8,), 0), (12, (8, 0), 2), (-3, (8,), 2)])
@pytest.mark.parametrize("cls", [VAE, Autoencoder])
def test_non_positive_sizes_are_refused(cls, sizes):
    with pytest.raises(ValueError, match="sizes must be positive"):
        cls(*sizes)


@pytest.mark.parametrize("dtype", ["float16", "int64", "double-ish", None])
def test_unsupported_dtype_is_refused(dtype):
    with pytest.raises(ValueError, match="float32, float64"):
        VAE(INPUT, HIDDEN, LATENT, dtype=dtype)


def test_build_model_rebuilds_the_same_model_from_its_config():
    for model in (VAE(INPUT, HIDDEN, LATENT, likelihood="gaussian", activation="tanh", seed=5),
                  Autoencoder(INPUT, (9,), LATENT, seed=2)):
        again = build_model(model.config)
        assert type(again) is type(model) and again.config == model.config
        for name in model.params:
            np.testing.assert_array_equal(again.params[name], model.params[name])
    with pytest.raises(ValueError, match="unknown model kind"):
        build_model({"model": "gan"})


@pytest.mark.parametrize("env_value", ["abacus", "cupy"])
def test_an_explicit_backend_is_never_overridden_by_the_environment(monkeypatch, env_value, rng):
    """$NUMPY_VAE_BACKEND is read only where no backend is named: with
    backend="numpy" nothing may build a backend from the environment (an
    unknown name would raise; "cupy" would build a GPU backend)."""
    from numpy_vae import backend as backend_module
    from numpy_vae.conv_vae import ConvVAE
    from numpy_vae.optim import Adam

    monkeypatch.setenv(backend_module.ENV_VAR, env_value)
    built = []
    real = dict(backend_module._MAKERS)
    for name, maker in real.items():
        monkeypatch.setitem(backend_module._MAKERS, name,
                            lambda dtype, seed, _name=name, _maker=maker: built.append(_name) or _maker(dtype, seed))
    x = (rng.random((2, 784)) < 0.5).astype(np.float32)
    for model in (VAE(784, (8,), 2, backend="numpy"), Autoencoder(784, (8,), 2, backend="numpy"),
                  ConvVAE(channels=(2, 3), latent_dim=2, backend="numpy"),
                  build_model({"model": "vae", "input_dim": 784, "hidden_dims": [8], "latent_dim": 2},
                              backend="numpy"),
                  VAE(784, (8,), 2, likelihood="gaussian_learned", activation="leaky_relu",
                      backend="numpy")):
        assert model.backend.name == "numpy"
        _, grads, _ = model.loss_and_grads(x)
        Adam(model.params, backend=model.backend).step(grads)
    assert set(built) == {"numpy"}, f"backends built from the environment: {built}"
