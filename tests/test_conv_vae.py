"""ConvVAE: the VAE contract, with convolutions inside."""

import json

import numpy as np
import pytest

from numpy_vae import ops
from numpy_vae.backend import Backend
from numpy_vae.conv_vae import ConvVAE
from numpy_vae.gradcheck import check_model
from numpy_vae.factory import build_model
from numpy_vae.models import VAE
from numpy_vae.optim import Adam

GRAD_TOL = 1e-6


def small(**kwargs):
    """A ConvVAE small enough for finite differences (float64)."""
    return ConvVAE(**{"channels": (2, 3), "latent_dim": 2, "dtype": "float64", **kwargs})


# --- gradients -------------------------------------------------------------------

@pytest.mark.parametrize("side, likelihood", [
    (28, "bernoulli"),          # the MNIST shapes: 28 -> 14 -> 7 -> 14 -> 28
    (9, "gaussian_learned"),    # odd side: output_padding 1 on the last layer; 2 output channels
])
def test_conv_vae_gradients_match_finite_differences(side, likelihood):
    # tanh, not relu: a finite difference that crosses a ReLU kink is not a
    # derivative, and with thousands of pre-activations some always lie within
    # the step h of zero.  ReLU's own backward pass is checked on its own.
    model = small(input_dim=side * side, likelihood=likelihood, activation="tanh", seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((2, side * side))
    eps = rng.standard_normal((2, 2))
    errors = check_model(model, x, eps, max_elements=20, seed=0)
    assert set(errors) == set(model.params)
    assert max(errors.values()) < GRAD_TOL, errors


# --- the contract it shares with VAE --------------------------------------------------

def test_parameter_names_and_shapes_are_the_documented_ones():
    model = ConvVAE(channels=(4, 8), latent_dim=5)
    assert {k: v.shape for k, v in model.params.items()} == {
        "encoder.0.W": (4, 1, 4, 4), "encoder.0.b": (4,),
        "encoder.1.W": (8, 4, 4, 4), "encoder.1.b": (8,),
        "mu.W": (8 * 7 * 7, 5), "mu.b": (5,),
        "logvar.W": (8 * 7 * 7, 5), "logvar.b": (5,),
        "decoder.0.W": (5, 8 * 7 * 7), "decoder.0.b": (8 * 7 * 7,),
        "decoder.1.W": (8, 4, 4, 4), "decoder.1.b": (4,),
        "decoder.2.W": (4, 1, 4, 4), "decoder.2.b": (1,),
    }
    assert all(p.dtype == np.float32 for p in model.params.values())


def test_gradients_have_the_keys_and_shapes_of_the_parameters():
    model = ConvVAE(channels=(4, 8), latent_dim=5)
    loss, grads, info = model.loss_and_grads(np.random.default_rng(0).random((3, 784)))
    assert grads.keys() == model.params.keys()
    assert all(grads[k].shape == p.shape and grads[k].dtype == np.float32
               for k, p in model.params.items())
    assert np.isfinite(loss) and set(info) >= {"loss", "recon", "kl", "beta"}


def test_config_is_json_and_build_model_rebuilds_the_same_model():
    model = ConvVAE(input_dim=144, latent_dim=3, channels=(5, 6), likelihood="gaussian",
                    activation="tanh", dtype="float64", seed=7)
    config = json.loads(json.dumps(model.config))
    assert config == {"model": "conv", "input_dim": 144, "latent_dim": 3, "channels": [5, 6],
                      "likelihood": "gaussian", "activation": "tanh", "dtype": "float64",
                      "seed": 7}
    rebuilt = build_model(config)
    assert isinstance(rebuilt, ConvVAE) and rebuilt.config == model.config
    for name, p in model.params.items():
        np.testing.assert_array_equal(rebuilt.params[name], p)


def test_hidden_dims_is_accepted_and_ignored():
    """The CLI passes the same keywords to every model."""
    a = ConvVAE(channels=(2, 3), hidden_dims=(400,), seed=1)
    b = ConvVAE(channels=(2, 3), seed=1)
    assert a.config == b.config and "hidden_dims" not in a.config
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_it_is_a_vae_and_its_methods_give_the_vae_shapes():
    model = small(latent_dim=3)
    x = np.random.default_rng(1).random((4, 784))
    eps = np.random.default_rng(2).standard_normal((4, 3))
    assert isinstance(model, VAE) and model.input_dim == 784 and model.latent_dim == 3
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, 3)
    assert model.decode(mu).shape == model.reconstruct(x).shape == (4, 784)
    assert model.sample(5).shape == (5, 784)
    probs = model.decode(mu)
    assert np.all((probs > 0) & (probs < 1))   # Bernoulli means
    recon, kl = model.terms(x, eps)
    assert recon.shape == kl.shape == (4,) and np.all(kl >= 0)
    loss, _, info = model.loss_and_grads(x, eps=eps)
    assert loss == pytest.approx(np.mean(recon + kl), rel=1e-12)
    assert model.loss(x, eps) == pytest.approx(loss, rel=1e-12)
    assert model.loss_and_grads(x, eps=eps, beta=0.5)[0] == pytest.approx(
        np.mean(recon + 0.5 * kl), rel=1e-12)


@pytest.mark.parametrize("side", [4, 5, 9, 13, 28])
def test_the_decoder_gives_back_images_of_the_input_size(side):
    model = small(input_dim=side * side)
    assert model.reconstruct(np.zeros((2, side * side))).shape == (2, side * side)


@pytest.mark.parametrize("input_dim", [783, 9, 10])
def test_input_dim_must_be_a_square_image_of_side_at_least_4(input_dim):
    with pytest.raises(ValueError, match="square images"):
        ConvVAE(input_dim=input_dim)


def test_inputs_of_the_wrong_width_are_rejected_in_the_users_terms():
    with pytest.raises(ValueError, match=r"\(batch, 784\)"):
        small().loss_and_grads(np.zeros((2, 28, 28)))


def test_twenty_adam_steps_lower_the_loss_on_a_fixed_batch():
    model = ConvVAE(channels=(4, 8), latent_dim=4, seed=0)
    opt = Adam(model.params, lr=3e-3, backend=model.backend)
    # two binary images, eight copies each: something the model can learn
    x = np.repeat((np.random.default_rng(3).random((2, 784)) > 0.7).astype(np.float32), 8, axis=0)
    eps = np.random.default_rng(4).standard_normal((16, 4)).astype(np.float32)
    first = float(model.loss(x, eps))
    for _ in range(20):
        _, grads, _ = model.loss_and_grads(x, eps=eps)
        opt.step(grads)
    assert float(model.loss(x, eps)) < first - 20   # measured: 513 -> 481 nats


def test_the_numba_col2im_gives_the_same_loss_and_gradients():
    """A backend named "numba" makes the conv layers use the Numba col2im (backends/numba_ops.py)."""
    pytest.importorskip("numba")
    # the backend's generator seeded as small(seed=3)'s: the same initial weights
    numba_named = Backend("numba", np, np.dtype("float64"), np.random.default_rng(3), ops, 3)
    a, b = small(seed=3), small(seed=3, backend=numba_named)
    x = np.random.default_rng(5).random((2, 784))
    eps = np.random.default_rng(6).standard_normal((2, 2))
    loss_a, grads_a, _ = a.loss_and_grads(x, eps=eps)
    loss_b, grads_b, _ = b.loss_and_grads(x, eps=eps)
    assert loss_b == pytest.approx(loss_a, rel=1e-13)
    for name in grads_a:
        np.testing.assert_allclose(grads_b[name], grads_a[name], rtol=1e-10, atol=1e-13)
