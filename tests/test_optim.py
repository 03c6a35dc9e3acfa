"""Specification of the optimizers (numpy_vae/optim.py).

Adam is compared with a line-by-line transcription of Algorithm 1 of the
Adam paper, SGD with its hand formula; clipping, checkpointing and a short
training run complete the picture.
"""

import copy
import math

import numpy as np
import pytest

from numpy_vae import SGD, VAE, Adam, clip_by_global_norm
from numpy_vae.optim import global_norm


def _params(rng):
    return {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}


def _gradient_sequence(rng, steps, scale=1.0):
    """Gradients that change from step to step, as in training."""
    return [{"W": scale * rng.standard_normal((4, 3)), "b": scale * rng.standard_normal(3)}
            for _ in range(steps)]


def _copy(arrays):
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


# --------------------------------------------------------------------------
# Adam
# --------------------------------------------------------------------------

def adam_algorithm_1(theta, gradients, alpha, beta1, beta2, epsilon):
    """Kingma & Ba (2015), Algorithm 1, transcribed for one array, in float64."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    trajectory = []
    for t, g in enumerate(gradients, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        theta = theta - alpha * m_hat / (np.sqrt(v_hat) + epsilon)
        trajectory.append(theta)
    return trajectory


# epsilon=1e-8 is the paper's; 1e-2 with gradients of size 1e-2 makes the
# placement of epsilon (outside the square root, after bias correction) matter
@pytest.mark.parametrize("lr,betas,eps,grad_scale", [(1e-3, (0.9, 0.999), 1e-8, 1.0),
                                                      (0.05, (0.8, 0.99), 1e-2, 1e-2),
                                                      (0.1, (0.0, 0.5), 1e-8, 3.0)])
def test_adam_matches_algorithm_1_of_the_paper(lr, betas, eps, grad_scale, rng):
    params = _params(rng)
    start = _copy(params)
    gradients = _gradient_sequence(rng, 6, grad_scale)
    opt = Adam(params, lr=lr, betas=betas, eps=eps)

    for t, g in enumerate(gradients):
        opt.step(_copy(g))
        for name in params:
            expected = adam_algorithm_1(start[name], [gi[name] for gi in gradients[:t + 1]],
                                        lr, *betas, eps)[-1]
            np.testing.assert_allclose(params[name], expected, rtol=1e-12, atol=1e-15)
    assert opt.t == 6


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_moments_of_a_rarely_active_input_decay_to_zero_without_subnormal_values(dtype):
    """A weight whose gradient is nonzero once and then 0 (a border pixel):
    its m decays by beta1 each step.  Flushed to zero, it never holds a
    subnormal number, on which x86 arithmetic is tens of times slower."""
    tiny = np.finfo(dtype).tiny
    params = {"W": np.zeros(3, dtype)}
    opt = Adam(params, lr=1e-3)
    steps = int(math.log(tiny / 1e-4) / math.log(0.9)) + 200  # past the subnormal range of m
    subnormal_steps = 0
    for t in range(steps):
        g = np.array([1e-3, 1.0, 0.0], dtype) if t == 0 else np.zeros(3, dtype)
        opt.step({"W": g})
        m, v = opt.m["W"], opt.v["W"]
        subnormal_steps += bool(((m != 0) & (np.abs(m) < tiny)).any()
                                or ((v != 0) & (v < tiny)).any())
    assert subnormal_steps == 0
    assert opt.m["W"][0] == 0 and opt.m["W"][1] == 0  # decayed all the way, to exactly 0
    assert opt.v["W"][0] > 0  # v decays 100x slower and is still a normal number


def test_adam_first_step_moves_every_weight_by_lr_against_the_gradient_sign(rng):
    # the bias correction makes m_hat / sqrt(v_hat) = g / |g| at t = 1
    params = _params(rng)
    before = _copy(params)
    g = _gradient_sequence(rng, 1)[0]
    Adam(params, lr=0.01).step(_copy(g))
    for name in params:
        np.testing.assert_allclose(params[name] - before[name], -0.01 * np.sign(g[name]), rtol=1e-6)


def test_adam_updates_the_model_arrays_in_place(rng):
    params = _params(rng)
    W = params["W"]
    Adam(params).step(_gradient_sequence(rng, 1)[0])
    assert params["W"] is W


def test_adam_keeps_float32_in_float32(rng):
    params = {k: v.astype(np.float32) for k, v in _params(rng).items()}
    opt = Adam(params, lr=1e-3)
    opt.step({k: np.ones_like(v) for k, v in params.items()})
    assert all(p.dtype == np.float32 for p in params.values())
    assert all(m.dtype == np.float32 for m in opt.m.values())


# --------------------------------------------------------------------------
# SGD
# --------------------------------------------------------------------------

def test_sgd_with_momentum_matches_the_hand_formula(rng):
    params = _params(rng)
    expected = _copy(params)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    opt = SGD(params, lr=0.1, momentum=0.9)
    for g in _gradient_sequence(rng, 5):
        opt.step(_copy(g))
        for name in params:
            velocity[name] = 0.9 * velocity[name] + g[name]
            expected[name] = expected[name] - 0.1 * velocity[name]
            np.testing.assert_allclose(params[name], expected[name], rtol=1e-13)


def test_sgd_without_momentum_is_plain_gradient_descent(rng):
    params = _params(rng)
    expected = _copy(params)
    opt = SGD(params, lr=0.05, momentum=0.0)
    for g in _gradient_sequence(rng, 4):
        opt.step(_copy(g))
        for name in params:
            expected[name] = expected[name] - 0.05 * g[name]
            np.testing.assert_allclose(params[name], expected[name], rtol=1e-14)


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.0), lambda p: SGD(p, momentum=1.0),
                                  lambda p: Adam(p, lr=-1e-3), lambda p: Adam(p, betas=(0.9, 1.0)),
                                  lambda p: Adam(p, clip_norm=0.0)])
def test_bad_hyperparameters_are_refused(make, rng):
    with pytest.raises(ValueError):
        make(_params(rng))


def test_step_refuses_gradients_for_other_parameters(rng):
    opt = SGD(_params(rng))
    with pytest.raises(KeyError, match="c"):
        opt.step({"W": np.zeros((4, 3)), "b": np.zeros(3), "c": np.zeros(1)})


# --------------------------------------------------------------------------
# Clipping by the global norm
# --------------------------------------------------------------------------

def test_clipping_scales_a_large_gradient_to_exactly_max_norm(rng):
    grads = {"W": 10 * rng.standard_normal((4, 3)), "b": 10 * rng.standard_normal(3)}
    original = _copy(grads)
    norm_before = math.sqrt(sum(float((g ** 2).sum()) for g in original.values()))

    returned = clip_by_global_norm(grads, max_norm=2.0)

    assert returned == pytest.approx(norm_before, rel=1e-14)
    assert global_norm(grads) == pytest.approx(2.0, rel=1e-12)
    # one factor for every array: the direction of the whole update is kept
    scale = grads["W"].ravel()[0] / original["W"].ravel()[0]
    for name in grads:
        np.testing.assert_allclose(grads[name], scale * original[name], rtol=1e-14)


def test_clipping_leaves_a_small_gradient_untouched(rng):
    grads = {"W": 0.01 * rng.standard_normal((4, 3)), "b": 0.01 * rng.standard_normal(3)}
    original = _copy(grads)
    clip_by_global_norm(grads, max_norm=2.0)
    for name in grads:
        np.testing.assert_array_equal(grads[name], original[name])


def test_optimizer_clips_before_its_update_and_records_the_norm(rng):
    params = _params(rng)
    expected = _copy(params)
    g = {"W": np.full((4, 3), 3.0), "b": np.full(3, 4.0)}           # norm sqrt(12*9 + 3*16) = sqrt(156)
    opt = SGD(params, lr=1.0, momentum=0.0, clip_norm=1.0)
    opt.step(_copy(g))
    assert opt.last_grad_norm == pytest.approx(math.sqrt(156))
    for name in params:
        np.testing.assert_allclose(params[name], expected[name] - g[name] / math.sqrt(156), rtol=1e-10)


# --------------------------------------------------------------------------
# Checkpoints: state_dict / load_state_dict
# --------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda p: Adam(p, lr=0.01), lambda p: SGD(p, lr=0.01, momentum=0.9)],
                         ids=["adam", "sgd"])
def test_state_dict_round_trip_continues_the_same_trajectory(make, rng):
    gradients = _gradient_sequence(rng, 6)
    params = _params(rng)
    opt = make(params)
    for g in gradients[:3]:
        opt.step(_copy(g))
    checkpoint = {"params": _copy(params), "optimizer": opt.state_dict()}

    for g in gradients[3:]:                      # the original run goes on...
        opt.step(_copy(g))

    resumed_params = _copy(checkpoint["params"])  # ...and a resumed one catches up
    resumed = make(resumed_params)
    resumed.load_state_dict(checkpoint["optimizer"])
    assert resumed.t == 3
    for g in gradients[3:]:
        resumed.step(_copy(g))

    for name in params:
        np.testing.assert_array_equal(resumed_params[name], params[name])


def test_state_dict_names_its_entries_by_slot_and_parameter(rng):
    state = Adam(_params(rng)).state_dict()
    assert set(state) == {"t", "m.W", "m.b", "v.W", "v.b"}
    assert set(SGD(_params(rng)).state_dict()) == {"t", "velocity.W", "velocity.b"}


def test_load_state_dict_refuses_a_state_that_does_not_fit(rng):
    opt = Adam(_params(rng))
    state = copy.deepcopy(opt.state_dict())
    state["m.W"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"m\.W.*\(3, 4\).*\(4, 3\)"):
        opt.load_state_dict(state)
    del state["m.W"]
    with pytest.raises(KeyError, match="m.W"):
        opt.load_state_dict(state)


# --------------------------------------------------------------------------
# Training: the gradient, the optimizer and the model together
# --------------------------------------------------------------------------

def _four_pattern_dataset(rng, n=128, D=16, flip=0.05):
    """n binary images of D pixels: one of four fixed patterns, 5% of pixels flipped."""
    patterns = rng.random((4, D)) < 0.5
    x = patterns[rng.integers(0, 4, size=n)]
    x = np.where(rng.random((n, D)) < flip, ~x, x)
    return x.astype(np.float64)


def test_a_few_hundred_adam_steps_lower_the_loss_substantially(rng):
    x = _four_pattern_dataset(rng)
    model = VAE(16, (32,), 2, likelihood="bernoulli", activation="tanh", dtype="float64", seed=0)
    eval_eps = rng.standard_normal((len(x), 2))          # the same noise before and after
    before = model.loss(x, eps=eval_eps)

    opt = Adam(model.params, lr=1e-2)
    for _ in range(300):
        _, grads, _ = model.loss_and_grads(x)
        opt.step(grads)
    after = model.loss(x, eps=eval_eps)

    # 16 coin flips cost 16 log 2 = 11.1 nats; four patterns with 5% of the
    # pixels flipped need about log 4 + 16 H(0.05) = 1.4 + 3.2 = 4.6 nats.
    # A wrong sign anywhere (KL, likelihood) sends the loss up instead.
    assert before > 10.5
    assert after < 0.6 * before


def test_adam_flushes_every_few_steps_and_a_subnormal_from_a_tiny_gradient_lasts_less_than_that():
    """The cheaper flush (ops.FLUSH_EVERY): a gradient so small that (1 - beta1) g
    is subnormal makes m subnormal at once; it is gone by the next flush step."""
    from numpy_vae.ops import FLUSH_EVERY
    tiny = np.finfo(np.float32).tiny
    params = {"W": np.zeros(2, np.float32)}
    opt = Adam(params, lr=1e-3)
    subnormal_run = longest = 0
    for t in range(3 * FLUSH_EVERY):
        g = np.array([5 * tiny, 0.0], np.float32) if t == 3 else np.zeros(2, np.float32)
        opt.step({"W": g})
        m = opt.m["W"]
        subnormal_run = subnormal_run + 1 if ((m != 0) & (np.abs(m) < tiny)).any() else 0
        longest = max(longest, subnormal_run)
    assert 1 <= longest < FLUSH_EVERY
    assert not opt.m["W"].any()
