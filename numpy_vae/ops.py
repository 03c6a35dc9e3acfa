"""Reference kernels: the table of hot-path work a backend may swap for twins, in plain NumPy.

These small functions are where a training step spends the time that is not
matrix products.  They are the *reference*: the Numba and CuPy backends ship
twins with the same names and signatures (``numpy_vae/backends/``), and the
parity tests hold each twin to the function here.  Layers call them through
``backend.ops`` so that swapping the backend swaps the kernels and nothing
else.

Everything is written with ufuncs and array methods, so the same code also
runs on CuPy arrays.  ``*_backward`` functions take the upstream gradient
``dy`` first and return the gradient for the input, the chain rule written
out: ``dx = dy * dy/dx``.

``col2im`` (the backward pass of a convolution, a scatter-add) is derived
and written in numpy_vae/im2col.py beside its adjoint ``im2col``; it is in
this table because the Numba backend has a faster twin of it.
"""

import math

import numpy as np

from numpy_vae.im2col import col2im  # the convolution's scatter-add, derived in im2col.py

__all__ = [
    "relu", "relu_backward",
    "leaky_relu", "leaky_relu_backward",
    "tanh", "tanh_backward",
    "sigmoid", "sigmoid_backward",
    "softplus", "softplus_backward",
    "add_bias", "bias_grad",
    "reparameterize_kl", "reparameterize_kl_backward",
    "bernoulli_nll", "bernoulli_nll_and_grad", "bernoulli_nll_samples",
    "log_mean_exp_weights",
    "adam_update", "sgd_momentum_update",
    "finite_check",
    "col2im",
]


# --- activations -----------------------------------------------------------

def relu(x):
    """y = max(x, 0)."""
    return np.maximum(x, 0)


def relu_backward(dy, x):
    """dx = dy * [x > 0]   (the kink at 0 gets gradient 0)."""
    return dy * (x > 0)


def leaky_relu(x, slope):
    """y = x if x > 0 else slope * x."""
    return np.where(x > 0, x, x * slope)


def leaky_relu_backward(dy, x, slope):
    """dx = dy if x > 0 else slope * dy."""
    return np.where(x > 0, dy, dy * slope)


def tanh(x):
    """y = tanh(x)."""
    return np.tanh(x)


def tanh_backward(dy, y):
    """dx = dy * (1 - y^2), written with the output y = tanh(x)."""
    return dy * (1 - y * y)


def sigmoid(x):
    """y = 1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2.

    The tanh form never overflows: exp(-x) would overflow for x < -88 in
    float32 and raise a warning, tanh just saturates at -1.
    """
    return 0.5 * (1 + np.tanh(0.5 * x))


def sigmoid_backward(dy, y):
    """dx = dy * y * (1 - y), written with the output y = sigmoid(x)."""
    return dy * y * (1 - y)


def softplus(x):
    """y = log(1 + exp(x)), computed as max(x, 0) + log1p(exp(-|x|)) (no overflow)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def softplus_backward(dy, x):
    """dx = dy * sigmoid(x)   (softplus' derivative is the sigmoid)."""
    return dy * sigmoid(x)


# --- bias ------------------------------------------------------------------

def add_bias(y, b):
    """y + b, broadcasting b: (out,) over the batch; may reuse y's memory."""
    y += b
    return y


def bias_grad(dy):
    """db = sum over the batch of dy:  (batch, out) -> (out,)."""
    return dy.sum(axis=0)


# --- reparameterization + KL, one step -------------------------------------

def reparameterize_kl(mu, logvar, eps):
    """The Reparameterize and GaussianKL nodes in one step (forward).

        std         = exp(logvar / 2)
        var_minus_1 = exp(logvar) - 1                         (as expm1, see kl.py)
        z           = mu + std * eps
        kl          = 1/2 * sum_j (mu_j^2 + var_minus_1_j - logvar_j)

    mu, logvar, eps: (batch, latent) -> z: (batch, latent), kl: (batch,),
    and the cache the backward pass needs: std, var_minus_1: (batch, latent).
    z is numpy_vae/reparameterize.py's sample, kl numpy_vae/kl.py's
    divergence, each computed as those nodes compute it.
    """
    std = np.exp(0.5 * logvar)
    var_minus_1 = np.expm1(logvar)
    z = mu + std * eps
    kl = 0.5 * (mu * mu + var_minus_1 - logvar).sum(axis=1)
    return z, kl, std, var_minus_1


def reparameterize_kl_backward(dz, dkl, mu, eps, std, var_minus_1):
    """Gradients of reparameterize_kl: the sum of the paths through z and kl.

        dmu     = dz                  + dkl * mu
        dlogvar = dz * eps * std / 2  + dkl * (exp(logvar) - 1) / 2

    dz: (batch, latent), dkl: (batch,), one number per example, broadcast over
    its row; mu, eps, std, var_minus_1: (batch, latent) from the forward pass.
    Returns dmu, dlogvar: (batch, latent).
    """
    dkl = dkl[:, None]
    dmu = dz + dkl * mu
    dlogvar = dz * eps * std * 0.5 + dkl * 0.5 * var_minus_1
    return dmu, dlogvar


# --- Bernoulli likelihood on logits ---------------------------------------

def bernoulli_nll(logits, x):
    """-log p(x | logits) summed over pixels:  (batch, D), (batch, D) -> (batch,).

    With p = sigmoid(l) the binary cross-entropy is
        -[x log p + (1 - x) log(1 - p)] = softplus(l) - x * l
                                        = max(l, 0) - x * l + log(1 + exp(-|l|)),
    the last form finite for every l: exp(-|l|) is in (0, 1], never overflows.
    The same operations as in bernoulli_nll_and_grad, without the gradient,
    which evaluation (the IWAE bound: millions of decoder rows) never needs.
    """
    return (np.maximum(logits, 0) - x * logits + np.log(1 + np.exp(-np.abs(logits)))).sum(axis=1)


def bernoulli_nll_and_grad(logits, x):
    """The NLL above and its gradient in one pass: (batch,), (batch, D).

        d nll / d l = sigmoid(l) - x

    Both share e = exp(-|l|):  log(1 + exp(-|l|)) = log(1 + e), and
    sigmoid(l) = 1 / (1 + e) for l >= 0, e / (1 + e) for l < 0.
    (log(1 + e) rather than log1p(e): e <= 1, so the only loss is an absolute
    error below 1e-16 * D when e is tiny, and log is several times faster.)
    """
    e = np.exp(-np.abs(logits))
    one_plus_e = 1 + e
    nll = (np.maximum(logits, 0) - x * logits + np.log(one_plus_e)).sum(axis=1)
    grad = np.where(logits >= 0, 1, e) / one_plus_e - x
    return nll, grad


# --- the importance-weighted bound -------------------------------------------

def log_mean_exp_weights(a):
    """log (1/k) sum_i exp(a_i) and the normalised weights, over axis 0.

    a: (k, batch) log weights -> bound: (batch,), weights: (k, batch).

        m       = max_i a_i
        bound   = m + log sum_i exp(a_i - m) - log k
        weights = exp(a_i - m) / sum_l exp(a_l - m)       (each column sums to 1)

    Every exp() is at most 1 (the log-sum-exp trick; numpy_vae/iwae.py
    derives why the weights are the gradient of the bound).
    """
    m = a.max(axis=0)
    shifted = np.exp(a - m)
    total = shifted.sum(axis=0)
    bound = m + np.log(total) - math.log(a.shape[0])
    return bound, shifted / total


def bernoulli_nll_samples(logits, x):
    """bernoulli_nll for K decoded samples of each image, summed in float64.

    logits: (B, K, D), the decoder's output for K samples z of each image;
    x: (B, D), the images.  Returns (B, K) float64:

        nll[b, k] = sum_d softplus(logits[b, k, d]) - x[b, d] * logits[b, k, d]

    the NLL of image b under sample k, without repeating x K times (what the
    IWAE evaluation needs: numpy_vae/evaluate.py).  Each term is computed in
    the array's dtype and each row summed in float64 (``sum(dtype=float64)``:
    a float32 sum of 784 terms of ~1e2 nats would be off by up to ~1e-3),
    for the log-sum-exp over the K samples.  The Numba and CuPy twins sum in
    float64 too.
    """
    terms = np.maximum(logits, 0)
    terms += np.log(1 + np.exp(-np.abs(logits)))
    terms -= logits * x[:, None, :]
    return terms.sum(axis=2, dtype=np.float64)


# --- optimizer updates (in place) -----------------------------------------

def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """One Adam step on ``param`` in place (Kingma & Ba, 2015, Algorithm 1).

        m     <- beta1 * m + (1 - beta1) * g
        v     <- beta2 * v + (1 - beta2) * g^2
        m_hat  = m / (1 - beta1^t),   v_hat = v / (1 - beta2^t)
        param <- param - lr * m_hat / (sqrt(v_hat) + eps)

    ``step`` is t, counted from 1.  ``m`` and ``v`` are updated in place.
    The last line is computed in the equivalent form
        param <- param - step_size * m / (sqrt(v) + eps_hat),
        step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t),  eps_hat = eps * sqrt(1 - beta2^t),
    (multiply the fraction through by sqrt(1 - beta2^t)) which folds the two
    bias corrections into scalars instead of two extra passes over the arrays.
    The last line's quotient is formed in the buffer of the denominator
    (``out=``): two fewer arrays of the parameter's size per call, 15-20%
    less time for NumPy (benchmarks/NOTES.md).

    Flush to zero: the moments of a weight whose input is almost always 0
    (a pixel near the border) get a gradient now and then and decay by beta1
    or beta2 at every other step, so without a flush they spend hundreds of
    steps as subnormals (below 1.2e-38 in float32), on which x86 arithmetic
    is tens of times slower: a quarter of the first layer's m was subnormal
    after three epochs of the default model, and its epochs grew from 5.1 s
    to 8.6 s (benchmarks/NOTES.md).  Flushing at every step took two extra
    passes over every moment (~10% of a NumPy epoch), so it is done every
    FLUSH_EVERY steps, with thresholds that look ahead (``flush_thresholds``):
    at steps t = FLUSH_EVERY, 2 FLUSH_EVERY, ... entries of m below
    tiny / beta1^FLUSH_EVERY and of v below tiny / beta2^FLUSH_EVERY are set to
    0, so an entry that only decays cannot become subnormal before the next
    flush, and one made subnormal by the arithmetic of a tiny gradient stays
    so for fewer than FLUSH_EVERY steps.  The parameters do not notice: such
    a moment would move its weight by less than lr * 6.5e-38 / eps_hat.  The
    Numba and CuPy twins apply the same rule, so the three agree bit for bit.
    """
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * (grad * grad)
    if step % FLUSH_EVERY == 0:
        m_below, v_below = flush_thresholds(m.dtype, beta1, beta2, step)
        _flush_below(m, m_below)
        _flush_below(v, v_below)
    root_bc2 = math.sqrt(1 - beta2 ** step)
    step_size = lr * root_bc2 / (1 - beta1 ** step)
    update = np.sqrt(v)
    update += eps * root_bc2
    np.divide(m, update, out=update)     # m / (sqrt(v) + eps_hat)
    update *= step_size
    param -= update


FLUSH_EVERY = 16        # steps between flushes of Adam's moments (adam_update)
_MAX_LOOKAHEAD = 1024   # the thresholds stay within 2^10 of the smallest normal number


def flush_thresholds(dtype, beta1, beta2, step):
    """(m_below, v_below): Adam's flush thresholds at ``step``; (0, 0) between flushes.

    At a flush step, tiny / beta^FLUSH_EVERY for each moment (tiny: the
    dtype's smallest normal number), at most 1024 tiny: what decays by beta
    per step from above it stays normal until the next flush.
    """
    if step % FLUSH_EVERY:
        return 0.0, 0.0
    tiny = float(np.finfo(dtype).tiny)

    def below(beta):
        decay = beta ** FLUSH_EVERY
        return tiny * (_MAX_LOOKAHEAD if decay * _MAX_LOOKAHEAD <= 1 else 1 / decay)

    return below(beta1), below(beta2)


def _flush_below(a, threshold):
    """Set the entries of ``a`` with |a| < threshold to 0, in place."""
    a[np.abs(a) < threshold] = 0


def sgd_momentum_update(param, grad, velocity, lr, momentum):
    """One SGD step with (heavy-ball) momentum, in place.

        velocity <- momentum * velocity + g
        param    <- param - lr * velocity
    """
    velocity *= momentum
    velocity += grad
    param -= lr * velocity


# --- watching training for divergence ---------------------------------------

def finite_check(x):
    """0 if every element of x is finite, NaN if one is inf or NaN.

    x: any shape.  Returns a float64 number: a NumPy scalar here, a 0-d
    array left on the device in the GPU twin, so that the trainer can
    collect one per gradient every step and read them all back at its
    logging points without waiting for the GPU at every step.

    Every element is finite exactly when the largest and the smallest are:
    max(x) is NaN if any element is NaN and +inf if one is +inf, min(x) is
    -inf if one is -inf.  The GPU twin computes the same number as the sum
    of x * 0 (inf * 0 and NaN * 0 are NaN), in one pass; here two of
    NumPy's vectorised reductions are faster and need no temporary array.
    """
    largest, smallest = float(x.max()), float(x.min())
    return np.float64(0.0 if math.isfinite(largest) and math.isfinite(smallest) else math.nan)
