"""Finite-difference gradient checking: the proof that a backward pass is right.

For a scalar function f and one input element x_i, the central difference

    n_i = (f(x + h e_i) - f(x - h e_i)) / (2 h)

approximates df/dx_i with an error of order h^2, plus rounding of order
machine_eps * |f| / h.  The two pull h in opposite directions, and in
float64 the classic form bottoms out near 1e-6 relative error for small
gradient entries.  So by default we use the fourth-order central difference

    n_i = (8 (f(x + h e_i) - f(x - h e_i)) - (f(x + 2h e_i) - f(x - 2h e_i))) / (12 h)

whose error is of order h^4: with h = 3e-4 both errors stay near 1e-9 and a
correct analytic gradient a_i matches to 7-9 digits.  We compare with the
relative error

    err_i = |a_i - n_i| / max(|a_i| + |n_i|, tiny)

and report the maximum over the elements of each array.  A correct backward
pass gives below 1e-6 (typically 1e-8); a wrong one (a flipped sign, a missing factor 1/2)
gives errors of order 0.1 to 1.

Everything here works on NumPy float64 arrays; build the model or layer
with ``dtype="float64"`` before checking it.
"""

from __future__ import annotations

import numpy as np

DEFAULT_H = 3e-4
ORDER = 4
TINY = 1e-12


def relative_error(analytic, numeric, tiny: float = TINY) -> float:
    """max_i |a_i - n_i| / max(|a_i| + |n_i|, tiny); 0.0 for empty arrays."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"shapes differ: analytic {a.shape}, numeric {n.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), tiny)))


def numerical_gradient(f, x, h: float = DEFAULT_H, indices=None, order: int = ORDER,
                       mark_kinks: bool = False):
    """Central-difference gradient of the scalar ``f()`` with respect to ``x``.

    ``x`` is perturbed in place (and restored), so ``f`` must read it: pass a
    closure over the arrays of a layer or model.  ``indices`` (flat indices)
    limits the check to some elements; the others are left 0 in the result.

    order=2: n = (f(x + h) - f(x - h)) / (2 h)                       error ~ h^2
    order=4: n = (-f(x + 2h) + 8 f(x + h) - 8 f(x - h) + f(x - 2h)) / (12 h)
                                                                     error ~ h^4
    The fourth-order stencil cancels the h^2 term of the Taylor series, so
    the same accuracy comes with a larger h, and a larger h divides the
    rounding error of f by more.

    ``mark_kinks=True`` (order 4 only) also computes the estimate with step
    h / 2, which reuses f(x +- h) and costs two more evaluations.  Where f is
    smooth the two agree to ~1e-9; where a ReLU kink lies within 2h of x they
    disagree, and neither is a derivative: such elements are returned as NaN
    so that the comparison can leave them out.  A wrong backward pass cannot
    hide there: both estimates measure the forward function only.
    """
    if order not in (2, 4):
        raise ValueError(f"order must be 2 or 4, got {order}")
    if x.dtype != np.float64:
        raise TypeError(f"gradient checks need float64 arrays, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array it can perturb in place")
    grad = np.zeros(x.shape, dtype=np.float64)  # on the host, also for a GPU array x
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)  # views of x and grad
    def f_at(i, value):
        flat_x[i] = value
        return float(f())

    if mark_kinks and order != 4:
        raise ValueError("mark_kinks needs order=4")
    for i in (range(x.size) if indices is None else indices):
        old = float(flat_x[i])  # a copy: on CuPy, flat_x[i] is a 0-d view of x
        if order == 2:
            flat_g[i] = (f_at(i, old + h) - f_at(i, old - h)) / (2 * h)
        else:
            # grouped as differences so an f that ignores x gives exactly 0
            near = f_at(i, old + h) - f_at(i, old - h)
            far = f_at(i, old + 2 * h) - f_at(i, old - 2 * h)
            flat_g[i] = (8 * near - far) / (12 * h)
            if mark_kinks:
                closer = f_at(i, old + h / 2) - f_at(i, old - h / 2)
                half_step = (8 * closer - near) / (6 * h)
                f0 = f_at(i, old)
                tolerance = 1e-6 * (abs(flat_g[i]) + abs(half_step)) + 100 * _resolution(f0, h)
                if abs(flat_g[i] - half_step) > tolerance:
                    flat_g[i] = np.nan
        flat_x[i] = old
    return grad


def _resolution(f_value: float, h: float) -> float:
    """The rounding error of a difference quotient: ~ machine epsilon * |f| / h."""
    return np.finfo(np.float64).eps * max(abs(f_value), 1.0) / h


def _pick(size, max_elements, rng):
    if max_elements is None or size <= max_elements:
        return None
    return rng.choice(size, max_elements, replace=False)


class CheckResult(dict):
    """{name: max relative error}, plus ``skipped``: {name: elements left out
    because a kink lay within the finite-difference step} and ``tiny``."""

    skipped: dict
    tiny: float


def _compare(analytic, numeric, idx, tiny=TINY):
    """(max relative error, number of NaN-marked elements left out)."""
    a = np.asarray(analytic).reshape(-1)
    n = numeric.reshape(-1)
    if idx is not None:
        a, n = a[idx], n[idx]
    smooth = ~np.isnan(n)
    return relative_error(a[smooth], n[smooth], tiny), int((~smooth).sum())


def check_layer(layer, x, h: float = DEFAULT_H, seed: int = 0, max_elements=None) -> dict:
    """Check a layer's backward pass: input gradient and every parameter gradient.

    The scalar is f = sum(forward(x) * r) for a fixed random r, so dy = r:
    a random upstream gradient exercises every output.  Returns
    {"x": err, "W": err, ...} (max relative errors).
    """
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    r = rng.standard_normal(layer.forward(x).shape)

    def f():
        return np.sum(layer.forward(x) * r)

    layer.forward(x)
    dx = layer.backward(r)
    analytic = {name: np.array(g) for name, g in layer.grads.items()}
    errors = {}
    if dx is not None:
        idx = _pick(x.size, max_elements, rng)
        errors["x"] = _compare(dx, numerical_gradient(f, x, h, idx), idx)[0]
    for name, p in layer.params.items():
        idx = _pick(p.size, max_elements, rng)
        errors[name] = _compare(analytic[name], numerical_gradient(f, p, h, idx), idx)[0]
    return errors


def check_function(forward, backward, inputs: dict, h: float = DEFAULT_H, seed: int = 0) -> dict:
    """Check a function of several arrays against its hand-written gradient.

    forward(**inputs) -> output array (any shape);
    backward(dout) -> dict name -> gradient, for the names in ``inputs``,
    using whatever forward cached.  The scalar checked is sum(forward * r).
    """
    rng = np.random.default_rng(seed)
    inputs = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    r = rng.standard_normal(np.shape(forward(**inputs)))

    def f():
        return np.sum(forward(**inputs) * r)

    forward(**inputs)
    analytic = {k: np.array(v) for k, v in backward(r).items()}
    return {k: relative_error(analytic[k], numerical_gradient(f, inputs[k], h)) for k in inputs}


def check_model(model, x, eps=None, beta: float = 1.0, h: float = DEFAULT_H,
                max_elements=None, seed: int = 0, skip_kinks: bool = False,
                tiny: float | None = TINY, objective: str = "elbo", k: int = 1,
                y=None) -> CheckResult:
    """Check ``model.loss_and_grads`` for every parameter array.

    ``eps`` (batch, latent_dim) fixes the VAE's noise: without it every loss
    evaluation would draw a new z and the difference quotient would be noise.
    ``objective="iwae"`` with ``k`` samples checks the importance-weighted
    objective instead; its eps is (k, batch, latent_dim).
    ``max_elements`` checks that many random elements per array (all if None).
    ``skip_kinks`` leaves out elements where a ReLU kink lies within the
    step (see ``numerical_gradient``); use it for ReLU models of real size.
    ``tiny=None`` sets the floor of the relative error from what the finite
    difference can resolve at this loss value: 1e7 * eps |f| / h, ten times
    the size at which rounding alone (eps |f| / h) would reach 1e-6
    (about 4e-3 for the 784-400-20 model, whose loss is ~550).  Entries
    smaller than the floor must then agree to 1e-6 * floor in absolute terms.
    ``y`` (batch,) labels, for a conditional model (``loss_and_grads(x, y, ...)``).

    A model whose step returns, for some parameters, the derivative of
    another function than its loss (the VQ-VAE's straight-through estimator
    and codebook term) says which with ``gradient_targets(x)``: {name:
    f()}; those parameters are checked against the finite differences of
    their f, the others against the loss.
    Returns {param name: max relative error} with ``.skipped`` counts.
    """
    if model.backend.dtype != np.float64:
        raise TypeError("build the model with dtype='float64' for a gradient check")
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    if eps is not None:
        eps = np.asarray(eps, dtype=np.float64)

    options = {} if objective == "elbo" and k == 1 else {"objective": objective, "k": k}
    data = (x,) if y is None else (x, np.asarray(y))

    def f():
        return model.loss_and_grads(*data, eps=eps, beta=beta, **options)[0]

    loss, grads, _ = model.loss_and_grads(*data, eps=eps, beta=beta, **options)
    grads = {k: model.backend.to_numpy(v).copy() for k, v in grads.items()}  # the next call overwrites them
    if tiny is None:
        tiny = 1e7 * _resolution(float(loss), h)
    errors = CheckResult()
    errors.skipped, errors.tiny = {}, tiny
    targets = model.gradient_targets(x) if hasattr(model, "gradient_targets") else {}
    for name, p in model.params.items():
        idx = _pick(p.size, max_elements, rng)
        numeric = numerical_gradient(targets.get(name, f), p, h, idx, mark_kinks=skip_kinks)
        errors[name], errors.skipped[name] = _compare(grads[name], numeric, idx, tiny)
    return errors


def format_table(errors: dict, threshold: float | None = None, title: str = "component") -> str:
    """A plain-text table of max relative errors, one row per entry."""
    width = max([len(title)] + [len(k) for k in errors])
    lines = [f"{title:<{width}}  max rel. error" + ("  ok" if threshold else "")]
    for name, err in errors.items():
        row = f"{name:<{width}}  {err:14.2e}"
        if threshold:
            row += "  " + ("yes" if err < threshold else "NO")
        lines.append(row)
    return "\n".join(lines)
