"""The exercises' checker: grades a reader's lessons/exercises/NN_*.py with finite differences.

Each exercise in lessons/exercises/ is a stub the reader fills in (a forward
pass, a backward pass, an optimizer step).  ``check(number, path)`` loads the
reader's file by its path (importlib: lessons/ need not be a package), runs
its functions in float64 on random shapes and values, and compares

- every backward pass with the finite-difference gradient of the reader's
  own forward pass (``numerical_gradient`` and ``relative_error`` of
  numpy_vae/gradcheck.py, the checker the package's own layers pass), and
- every forward pass with the package's implementation of the same formula
  (a forward pass can be wrong in a way its gradient does not see: the KL
  without its -1 has the KL's gradient);

plus the edge cases that break naive code: logits of +-1000, log weights
of -1000, variances of e^-25.  The random cases come from hypothesis
(derandomized, a bounded number of examples, shrunk to the smallest
failing shapes) when it is installed, else from a seeded NumPy generator.

A check reports pass, or fail with the relative error, the array that is
wrong, the shapes it failed on and a hint at the usual mistake; a function
that still raises NotImplementedError is "to do", not a failure.  The last
exercise, the capstone, assembles a VAE's loss from the reader's exercises
01-05, checks its gradient and trains it with the reader's Adam (exercise
06) on MNIST to a stated bound on the test negative ELBO.

The command line is ``numpy-vae exercise [N [FILE]]`` (numpy_vae/cli.py).
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import time
import traceback
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numpy_vae import ops
from numpy_vae.data import mnist_arrays
from numpy_vae.gradcheck import DEFAULT_H, numerical_gradient, relative_error
from numpy_vae.iwae import ImportanceSamples
from numpy_vae.quantize import nearest_codes

THRESHOLD = 1e-6          # finite differences: a right backward pass gives ~1e-9
FORWARD_THRESHOLD = 1e-9  # the same formula computed another way: ~1e-15
EXAMPLES = 15             # random cases per check (hypothesis examples)

# The capstone: a 784-H-20 VAE trained on MNIST's grey levels, batch 128, Adam.
# The bounds hold for the solutions with margin (lessons/exercises/README.md has the numbers).
CAPSTONE_FULL = dict(hidden=200, latent=20, train_images=60000, epochs=4, lr=1e-3,
                     test_images=10000, bound=125.0)
CAPSTONE_QUICK = dict(hidden=100, latent=20, train_images=12000, epochs=2, lr=3e-3,
                      test_images=1000, bound=170.0)
CAPSTONE_BATCH = 128


class ExerciseError(Exception):
    """A problem the reader can fix, said in one line (no such exercise, no such file)."""


class NotDone(Exception):
    """The reader's function still raises NotImplementedError."""


class _ReaderError(Exception):
    """The reader's code raised, or returned something of the wrong kind."""


@dataclass
class Verdict:
    """The outcome of one check: status "pass", "fail" or "todo"."""

    status: str
    label: str
    error: float | None = None
    where: str = ""
    hint: str = ""


@dataclass
class _Failure:
    error: float
    where: str
    hint: str


@dataclass
class Exercise:
    number: int
    slug: str
    title: str
    lesson: str
    checks: list


# --------------------------------------------------------------------------
# Loading the reader's file and calling it
# --------------------------------------------------------------------------

def load_file(path) -> types.ModuleType:
    """The reader's file as a module, loaded by path; ExerciseError if it does not run."""
    path = Path(path)
    if not path.is_file():
        raise ExerciseError(f"{path}: no such file")
    name = "numpy_vae_exercise_" + "".join(c if c.isalnum() else "_" for c in path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise ExerciseError(f"{path.name} does not run: SyntaxError at line {err.lineno}: "
                            f"{err.msg}") from None
    except Exception as err:  # the reader's top-level code
        raise ExerciseError(f"{path.name} does not run: {_describe(err, path)}") from None
    module.__file__ = str(path)
    return module


def _describe(err: BaseException, path) -> str:
    """'line 12 of 04_kl.py: ValueError: ...' (the deepest frame in the reader's file)."""
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if Path(frame.filename).resolve() == Path(path).resolve():
            line = frame.lineno
    text = f"{type(err).__name__}: {err}".strip()
    return f"line {line} of {Path(path).name}: {text}" if line else text


def _call(module, name, *args):
    """module.name(*args), NumPy warnings silenced (non-finite results are judged instead)."""
    function = getattr(module, name, None)
    if not callable(function):
        raise _ReaderError(f"{Path(module.__file__).name} defines no function {name}()")
    with np.errstate(all="ignore"):
        try:
            return function(*args)
        except NotImplementedError as err:
            raise NotDone(f"{name}(): {err}" if str(err) else f"{name}() is not written yet") from None
        except (NotDone, _ReaderError):
            raise
        except Exception as err:
            raise _ReaderError(f"{name}() raised {_describe(err, module.__file__)}") from None


def _parts(result, count, name):
    """A function's result as a tuple of ``count`` float arrays."""
    if count == 1:
        result = (result,)
    elif not isinstance(result, (tuple, list)) or len(result) != count:
        got = f"{len(result)} values" if isinstance(result, (tuple, list)) else "one value"
        raise _ReaderError(f"{name}() must return {count} arrays, returned {got}")
    out = []
    for value in result:
        if value is None:
            raise _ReaderError(f"{name}() returned None (a missing return?)")
        out.append(np.asarray(value, dtype=np.float64))
    return tuple(out) if count > 1 else out[0]


# --------------------------------------------------------------------------
# Comparing arrays, and the hint for a mismatch
# --------------------------------------------------------------------------

def _floor(f_value: float, h: float = DEFAULT_H) -> float:
    """The smallest gradient entry a finite difference resolves, as in
    gradcheck.check_model(tiny=None): 1e7 * machine eps * |f| / h."""
    return 1e7 * np.finfo(np.float64).eps * max(abs(f_value), 1.0) / h


def _observation(got, want) -> tuple[str, str]:
    """(tag, words) for what the mistake looks like: a constant ratio, an offset, ..."""
    if not np.all(np.isfinite(got)) and np.all(np.isfinite(want)):
        return "nonfinite", "yours has inf or nan entries where the right values are finite"
    if got.T.shape == want.shape and got.ndim == 2 and got.shape != want.shape:
        return "transposed", f"yours has the transposed shape {got.shape}"
    if got.shape != want.shape:
        return "shape", f"yours has shape {got.shape}, expected {want.shape}"
    if not np.all(np.isfinite(got)):
        return "nonfinite", "yours has inf or nan entries"
    norm = float(np.sum(want * want))
    if norm > 0 and not np.any(got):
        return "zero", "yours is 0 everywhere"
    if norm > 0:
        c = float(np.sum(got * want)) / norm
        # only a whole-number ratio or its inverse says something (a factor 2, 1/batch, -1);
        # for one element any ratio is "constant"
        whole = any(abs(r - round(r)) < 1e-6 for r in (c, 1 / c) if c != 0)
        if (whole and abs(c - 1) > 1e-6
                and np.allclose(got, c * want, rtol=1e-6, atol=1e-12 * math.sqrt(norm))):
            tag = {2.0: "x2", 0.5: "x0.5", -1.0: "neg"}.get(round(c, 6), "ratio")
            return tag, f"yours = {c:.4g} x the right values"
    if got.ndim >= 1 and got.size > 1:
        offset = got - want
        if np.allclose(offset, offset.flat[0], rtol=1e-6, atol=1e-9) and abs(offset.flat[0]) > 1e-9:
            return "offset", f"yours = the right values {offset.flat[0]:+.4g}"
    square = got.ndim == 2 and got.shape[0] == got.shape[1]
    if square and np.allclose(got, want.T, rtol=1e-6, atol=1e-12):
        return "transposed", "yours is the right matrix transposed"
    return "other", ""


def _judge(name, got, want, hints, case, tiny=1e-12, threshold=THRESHOLD):
    """(error, _Failure or None) for one array."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    tag, words = _observation(got, want)
    if tag in ("shape", "transposed") and got.shape != want.shape:
        error = math.inf
    elif tag == "nonfinite":
        error = math.inf
    else:
        error = relative_error(got, want, tiny)
    if error < threshold:
        return error, None
    hint = (hints.get(tag) or (hints.get("ratio") if tag in ("x2", "x0.5") else None)
            or hints.get("default", ""))
    where = f"{name} {case_text(case)}" + (f"; {words}" if words else "")
    return error, _Failure(error, where, hint)


def case_text(case: dict) -> str:
    """'on x (2, 3), W (3, 4)' from a case's arrays (and its note, if any)."""
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in case.items()
                       if isinstance(v, np.ndarray) and not k.startswith("_"))
    note = case.get("_note")
    return "on " + shapes + (f" ({note})" if note else "")


def _first_failure(results):
    worst, failure = 0.0, None
    for error, found in results:
        worst = max(worst, error if np.isfinite(error) else 0.0)
        if found is not None and failure is None:
            failure = found
    return worst, failure


def _fd(f, arrays: dict, names, kinks=False) -> dict:
    """Finite-difference gradients of the scalar f() for each named array (perturbed in place)."""
    return {name: numerical_gradient(f, arrays[name], mark_kinks=kinks) for name in names}


def _smooth(analytic, numeric):
    """Leave out the elements that numerical_gradient marked as kinks (NaN)."""
    keep = ~np.isnan(numeric)
    if analytic.shape != numeric.shape:
        return analytic, numeric
    return analytic[keep], numeric[keep]


# --------------------------------------------------------------------------
# Random cases: hypothesis if installed, else a seeded generator
# --------------------------------------------------------------------------

class _Found(Exception):
    pass


def _explore(draw_case, run, examples):
    """The first failing case's _Failure (shrunk by hypothesis), or None."""
    try:
        from hypothesis import HealthCheck, Phase, Verbosity, given, settings
        from hypothesis import strategies as st
    except ImportError:
        rng = np.random.default_rng(0)
        for _ in range(examples):
            failure = run(draw_case(lambda lo, hi: int(rng.integers(lo, hi + 1))))
            if failure:
                return failure
        return None
    found = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
              phases=(Phase.generate, Phase.shrink), report_multiple_bugs=False)
    @given(st.data())
    def search(data):
        failure = run(draw_case(lambda lo, hi: data.draw(st.integers(lo, hi))))
        if failure:
            found.append(failure)
            raise _Found

    try:
        search()
    except _Found:
        return found[-1]
    return None


def _seeded(draw):
    return np.random.default_rng(draw(0, 2**32 - 1))


def random_check(label, evaluate, draw_case=None, explicit=()):
    """A check run on ``explicit`` cases, then on random ones from ``draw_case``.

    evaluate(module, case) -> (worst error, _Failure or None).
    """
    def check(module, examples):
        worst = [0.0]
        count = [0]

        def run(case):
            count[0] += 1
            try:
                error, failure = evaluate(module, case)
            except _ReaderError as err:
                return _Failure(math.inf, f"{case_text(case)}: {err}", "")
            except (ValueError, TypeError, IndexError, KeyError) as err:  # what it returned
                return _Failure(math.inf, f"{case_text(case)}: your result could not be used: "
                                          f"{type(err).__name__}: {err}", "")
            worst[0] = max(worst[0], error)
            return failure

        failure = None
        for case in explicit:
            failure = run(case)
            if failure:
                break
        if failure is None and draw_case is not None and examples:
            failure = _explore(draw_case, run, examples)
        if failure:
            return Verdict("fail", label, failure.error, failure.where, failure.hint)
        return Verdict("pass", label, worst[0], f"{count[0]} cases")
    return check


# --------------------------------------------------------------------------
# The finite-difference check of a forward/backward pair
# --------------------------------------------------------------------------

def _gradient_check(module, forward, backward, inputs, wrt, hints, outputs=1,
                    backward_args=None, kinks=False, case=None):
    """Check ``backward`` against finite differences of ``forward``.

    forward(*inputs) returns ``outputs`` arrays; f = sum_j sum(out_j * r_j)
    for fixed random r_j, so backward gets dout_j = r_j.
    backward_args(r, inputs) -> the argument tuple for backward (default: *r, *inputs);
    it returns one gradient per name in ``wrt`` (in that order).
    """
    case = case if case is not None else inputs
    arrays = {k: np.array(v, dtype=np.float64) for k, v in _arrays(inputs).items()}
    names = list(arrays)
    first = _parts(_call(module, forward, *arrays.values()), outputs, forward)
    first = first if outputs > 1 else (first,)
    rng = np.random.default_rng(7)
    r = [rng.standard_normal(o.shape) for o in first]
    # rounding in f grows with its terms, not with f (they may cancel)
    scale = sum(float(np.sum(np.abs(o * ri))) for o, ri in zip(first, r))

    def f():
        out = _parts(_call(module, forward, *(arrays[n] for n in names)), outputs, forward)
        out = out if outputs > 1 else (out,)
        return sum(float(np.sum(o * ri)) for o, ri in zip(out, r))

    before = {k: v.copy() for k, v in arrays.items()}
    args = backward_args(r, arrays) if backward_args else (*r, *arrays.values())
    saved_r = [ri.copy() for ri in r]
    grads = _parts(_call(module, backward, *args), len(wrt), backward)
    grads = grads if len(wrt) > 1 else (grads,)
    changed = [k for k in names if not np.array_equal(arrays[k], before[k])]
    changed += [f"d{i}" for i, (a, b) in enumerate(zip(r, saved_r)) if not np.array_equal(a, b)]
    if changed:
        raise _ReaderError(f"{backward}() changed its input {changed[0]} in place; "
                           f"compute new arrays instead")
    tiny = _floor(scale)
    numeric = _fd(f, arrays, wrt, kinks)
    results = []
    for name, g in zip(wrt, grads):
        got, want = g, numeric[name]
        if kinks and got.shape == want.shape:
            got, want = _smooth(got, want)
        results.append(_judge("d" + name, got, want, hints.get(name, {}), case, tiny))
    return _first_failure(results)


def _arrays(case: dict) -> dict:
    """The case's input arrays, without its notes and settings (keys starting with _)."""
    return {k: v for k, v in case.items() if not k.startswith("_")}


def _forward_check(module, forward, inputs, reference, hints, outputs=1, names=None, tiny=1e-12):
    """The reader's forward pass against the package's values."""
    got = _parts(_call(module, forward, *_arrays(inputs).values()), outputs, forward)
    got = got if outputs > 1 else (got,)
    want = reference if outputs > 1 else (reference,)
    names = names or [forward]
    return _first_failure(_judge(n, g, w, hints.get(n, {}), inputs, tiny, FORWARD_THRESHOLD)
                          for n, g, w in zip(names, got, want))


# --------------------------------------------------------------------------
# The exercises
# --------------------------------------------------------------------------

def _two_d(draw, rows=(1, 5), cols=(1, 6)):
    return draw(*rows), draw(*cols)


# 01 Linear ------------------------------------------------------------------

def _linear_case(draw):
    rng = _seeded(draw)
    batch, n_in, n_out = draw(1, 5), draw(1, 5), draw(1, 5)
    return {"x": rng.standard_normal((batch, n_in)), "W": rng.standard_normal((n_in, n_out)),
            "b": rng.standard_normal(n_out)}


_LINEAR_CASE = {"x": np.arange(6.0).reshape(2, 3) / 5 - 0.4,
                "W": np.linspace(-1, 1, 12).reshape(3, 4), "b": np.array([0.1, -0.2, 0.3, 0.4])}
_LINEAR_HINTS = {
    "x": {"default": "y = x W: each x[n, i] reaches y[n, j] through W[i, j]; sum over j",
          "shape": "dx has the shape of x, (batch, n_in): which matrix product gives that shape?"},
    "W": {"default": "W[i, j] multiplies x[n, i] in every example n: sum over the batch",
          "transposed": "dW must have W's shape (n_in, n_out): check the order of the product "
                        "and which factor is transposed",
          "shape": "dW must have W's shape (n_in, n_out): check the order of the product"},
    "b": {"default": "b is added to every row of y: its gradient collects all of them",
          "ratio": "b is added to every example, so its gradient is a sum over the batch, not a mean",
          "shape": "db has b's shape (n_out,): reduce over the batch axis"},
}


def _linear_forward(module, case):
    want = case["x"] @ case["W"] + case["b"]
    return _forward_check(module, "linear_forward", case, want,
                          {"linear_forward": {"default": "y = x W + b, with W of shape (n_in, n_out)"}})


def _linear_backward(module, case):
    return _gradient_check(module, "linear_forward", "linear_backward", case, ["x", "W", "b"],
                           _LINEAR_HINTS, backward_args=lambda r, a: (r[0], a["x"], a["W"]))


# 02 Activations ---------------------------------------------------------------

def _activation_case(draw):
    rng = _seeded(draw)
    x = 2 * rng.standard_normal(_two_d(draw))
    x[np.abs(x) < 0.05] += 0.1  # no ReLU kink within the finite-difference step
    return {"x": x}


_ACT_CASE = {"x": np.array([[-2.0, -0.5, 0.3], [0.7, 1.5, -1.1]])}


def _activation_forward(module, case):
    x = case["x"]
    return _first_failure([
        _forward_check(module, "tanh_forward", case, np.tanh(x), {}),
        _forward_check(module, "relu_forward", case, np.maximum(x, 0),
                       {"relu_forward": {"default": "max(x, 0), elementwise"}})])


def _tanh_backward(module, case):
    hints = {"x": {"default": "d tanh(x)/dx = 1 - tanh(x)^2, and backward is given y = tanh(x), "
                              "not x",
                   "offset": "d tanh(x)/dx = 1 - tanh(x)^2: what multiplies dy?"}}
    return _gradient_check(module, "tanh_forward", "tanh_backward", case, ["x"], hints,
                           backward_args=lambda r, a: (r[0], np.tanh(a["x"])))


def _relu_backward(module, case):
    hints = {"x": {"default": "the gradient passes where x > 0 and stops elsewhere: it is dy "
                              "times a mask, not the mask alone"}}
    return _gradient_check(module, "relu_forward", "relu_backward", case, ["x"], hints,
                           backward_args=lambda r, a: (r[0], a["x"]), kinks=True)


# 03 Reparameterization --------------------------------------------------------

def _gauss_case(draw, low=-3.0, high=3.0):
    rng = _seeded(draw)
    shape = _two_d(draw)
    return {"mu": rng.standard_normal(shape), "logvar": rng.uniform(low, high, shape),
            "eps": rng.standard_normal(shape)}


_GAUSS_CASE = {"mu": np.array([[0.5, -1.0, 0.2], [1.5, 0.0, -0.3]]),
               "logvar": np.array([[0.4, -1.2, 2.0], [-0.5, 1.0, 0.0]]),
               "eps": np.array([[1.1, -0.4, 0.8], [-1.3, 0.6, 0.9]])}
_TINY_VAR_CASE = {"mu": np.array([[0.3, -0.7]]), "logvar": np.array([[-30.0, -25.0]]),
                  "eps": np.array([[0.9, -1.4]]), "_note": "tiny variances, logvar = -30, -25"}


def _reparam_forward(module, case):
    mu, logvar, eps = case["mu"], case["logvar"], case["eps"]
    want = mu + np.exp(0.5 * logvar) * eps
    hints = {"reparameterize": {"default": "sigma = exp(logvar / 2): logvar is log sigma^2, so "
                                           "exp(logvar) is the variance, not the standard deviation"}}
    return _forward_check(module, "reparameterize", case, want, hints)


def _reparam_backward(module, case):
    hints = {"mu": {"default": "z = mu + sigma * eps: dz/dmu = 1"},
             "logvar": {"default": "dz/dlogvar = eps * d exp(logvar / 2)/dlogvar: "
                                   "the chain rule through logvar / 2",
                        "x2": "yours is twice the finite difference: d exp(logvar / 2)/dlogvar "
                              "keeps the inner derivative of logvar / 2"}}
    return _gradient_check(module, "reparameterize", "reparameterize_backward", case,
                           ["mu", "logvar"], hints, case=case,
                           backward_args=lambda r, a: (r[0], a["mu"], a["logvar"], a["eps"]))


def _drop(case, *keys):
    return {k: v for k, v in case.items() if k not in keys}


# 04 KL ----------------------------------------------------------------------------

_KL_ZERO_CASE = {"mu": np.zeros((2, 3)), "logvar": np.zeros((2, 3)), "_note": "q = prior"}


def _kl_reference(mu, logvar):
    return 0.5 * np.sum(mu * mu + np.expm1(logvar) - logvar, axis=1)


def _kl_forward(module, case):
    case = _drop(case, "eps")
    hints = {"gaussian_kl": {
        "default": "KL = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)), one number per "
                   "example (sum over the latent axis)",
        "offset": "the KL of q to the prior is 0 when q is the prior (mu = 0, logvar = 0); "
                  "a constant term of the formula is missing or has the wrong sign",
        "ratio": "one KL per example is a sum over its latent coordinates, not a mean; "
                 "and check the 1/2",
        "shape": "one number per example: reduce over the latent axis (axis 1) only"}}
    want = _kl_reference(case["mu"], case["logvar"])
    return _forward_check(module, "gaussian_kl", case, want, hints,
                          tiny=1e-6 * (1 + float(np.abs(case["logvar"]).max())))


def _kl_backward(module, case):
    case = _drop(case, "eps")
    hints = {"mu": {"default": "dKL/dmu_j = d(mu_j^2 / 2)/dmu_j, scaled by dkl of its example"},
             "logvar": {"default": "differentiate -1/2 (1 + logvar - exp(logvar)) term by term: "
                                   "the 1 vanishes, the logvar does not",
                        "x2": "yours is twice the finite difference: the -1/2 in front of the sum"}}
    return _gradient_check(module, "gaussian_kl", "gaussian_kl_backward", case, ["mu", "logvar"],
                           hints, backward_args=lambda r, a: (r[0], a["mu"], a["logvar"]))


# 05 Bernoulli NLL --------------------------------------------------------------------

def _bernoulli_case(draw):
    rng = _seeded(draw)
    shape = _two_d(draw)
    return {"logits": 3 * rng.standard_normal(shape), "x": rng.random(shape)}


_BERNOULLI_CASE = {"logits": np.array([[-2.0, 0.5, 3.0, -0.1], [1.0, -4.0, 0.0, 2.5]]),
                   "x": np.array([[0.0, 1.0, 0.8, 0.3], [1.0, 0.0, 0.5, 0.9]])}
_EXTREME_LOGITS = {"logits": np.array([[1000.0, -1000.0, 1000.0, -1000.0, 1000.0, -30.0, 40.0]]),
                   "x": np.array([[1.0, 0.0, 0.0, 1.0, 0.3, 0.0, 1.0]]),
                   "_note": "logits +-1000, -30, 40"}
_BERNOULLI_UNSTABLE = ("log(sigmoid(l)) or log(1 - sigmoid(l)) fails at |l| = 1000: sigmoid rounds "
                       "to exactly 0 or 1, exp(1000) overflows, and log(0) = -inf; write the NLL "
                       "in terms of the logit itself, with nothing that can overflow")
_BERNOULLI_FORWARD_HINTS = {"bernoulli_nll": {
    "default": "nll = -sum_d [x_d log p_d + (1 - x_d) log(1 - p_d)] with p = sigmoid(l)",
    "ratio": "the NLL of an image is a sum over its pixels, not a mean",
    "shape": "one number per image: reduce over the pixel axis (axis 1)",
    "nonfinite": _BERNOULLI_UNSTABLE}}
_BERNOULLI_BACKWARD_HINTS = {"logits": {
    "default": "d softplus(l)/dl = sigmoid(l); then the x l term",
    "neg": "yours has the wrong sign: the NLL grows with l where x = 0",
    "nonfinite": "sigmoid(l) = 1 / (1 + exp(-l)) overflows in exp(-l) at l = -1000; "
                 "find a form with no exp() of a large number"}}


def _bernoulli_forward(module, case):
    want = ops.bernoulli_nll(case["logits"], case["x"])
    return _forward_check(module, "bernoulli_nll", case, want, _BERNOULLI_FORWARD_HINTS)


def _bernoulli_backward(module, case):
    return _gradient_check(module, "bernoulli_nll", "bernoulli_nll_backward", case, ["logits"],
                           _BERNOULLI_BACKWARD_HINTS,
                           backward_args=lambda r, a: (r[0], a["logits"], a["x"]))


def _bernoulli_extreme(module, case):
    logits, x = case["logits"], case["x"]
    want_nll = ops.bernoulli_nll(logits, x)
    dnll = np.ones(logits.shape[0])
    want_grad = np.exp(-np.logaddexp(0, -logits)) - x
    got = _parts(_call(module, "bernoulli_nll_backward", dnll, logits, x), 1, "bernoulli_nll_backward")
    return _first_failure([
        _forward_check(module, "bernoulli_nll", case, want_nll, _BERNOULLI_FORWARD_HINTS),
        _judge("dlogits", got, want_grad, _BERNOULLI_BACKWARD_HINTS["logits"], case,
               threshold=FORWARD_THRESHOLD)])


# 06 Adam --------------------------------------------------------------------

_ADAM_SETTINGS = [(1e-3, 0.9, 0.999, 1e-8), (1e-2, 0.5, 0.99, 1e-4), (0.1, 0.0, 0.9, 1e-8)]


def _adam_case(draw):
    rng = _seeded(draw)
    shape = _two_d(draw, (1, 3), (1, 4))
    steps = draw(1, 4)
    lr, b1, b2, eps = _ADAM_SETTINGS[draw(0, len(_ADAM_SETTINGS) - 1)]
    return {"param": rng.standard_normal(shape),
            "grads": rng.standard_normal((steps, *shape)) * 10.0 ** rng.uniform(-3, 1, (steps, *shape)),
            "_settings": (lr, b1, b2, eps), "_note": f"lr {lr:g}, betas ({b1:g}, {b2:g}), eps {eps:g}"}


_ADAM_CASE = {"param": np.array([[0.5, -1.0, 2.0]]),
              "grads": np.array([[[0.3, -0.02, 4.0]], [[0.1, 0.05, -3.0]], [[-0.2, 0.0, 1.0]]]),
              "_settings": (1e-3, 0.9, 0.999, 1e-8), "_note": "lr 0.001, betas (0.9, 0.999)"}
_ADAM_HINTS = {
    "update": {"default": "m and v start at 0, so early on they are biased towards 0: divide "
                          "each by (1 - beta^t), with t counted from 1; the step is "
                          "lr * m_hat / (sqrt(v_hat) + eps)",
               "nonfinite": "t counts from 1: with t = 0 the correction divides by 1 - beta^0 = 0"},
    "m": {"default": "m <- beta1 m + (1 - beta1) g: a running mean of the gradient"},
    "v": {"default": "v <- beta2 v + (1 - beta2) g^2: a running mean of the squared gradient"},
}


def _adam(module, case):
    lr, b1, b2, eps = case["_settings"]
    param = case["param"].copy()
    m, v = np.zeros_like(param), np.zeros_like(param)
    ref_p, ref_m, ref_v = param.copy(), m.copy(), v.copy()
    results = []
    for t, g in enumerate(case["grads"], start=1):
        old = param.copy()
        out = _call(module, "adam_step", param.copy(), g.copy(), m.copy(), v.copy(), t,
                    lr, b1, b2, eps)
        param, m, v = _parts(out, 3, "adam_step")
        before = ref_p.copy()
        ops.adam_update(ref_p, g.copy(), ref_m, ref_v, lr, b1, b2, eps, t)
        step = {"_note": f"step t = {t} of {len(case['grads'])}, {case['_note']}",
                "param": case["param"]}
        results = [_judge("the update (param after - before)", param - old, ref_p - before,
                          _ADAM_HINTS["update"], step, tiny=1e-300, threshold=FORWARD_THRESHOLD * 1e3),
                   _judge("m", m, ref_m, _ADAM_HINTS["m"], step, 1e-300, FORWARD_THRESHOLD),
                   _judge("v", v, ref_v, _ADAM_HINTS["v"], step, 1e-300, FORWARD_THRESHOLD)]
        worst, failure = _first_failure(results)
        if failure:
            return worst, failure
        param, m, v = ref_p.copy(), ref_m.copy(), ref_v.copy()  # the next step from the right state
    return _first_failure(results)


# 07 Learned Gaussian -------------------------------------------------------------

def _learned_gaussian_case(draw):
    rng = _seeded(draw)
    shape = _two_d(draw)
    return {"mean": rng.standard_normal(shape), "logvar": rng.uniform(-3, 3, shape),
            "x": rng.random(shape)}


_LG_CASE = {"mean": np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.8]]),
            "logvar": np.array([[-1.0, 0.5, 2.0], [-2.5, 0.0, 1.0]]),
            "x": np.array([[0.0, 1.0, 0.4], [0.5, 0.1, 0.9]])}
_LG_TINY = {"mean": np.array([[0.1, 0.5, 0.7]]), "logvar": np.array([[-25.0, -20.0, -12.0]]),
            "x": np.array([[0.1 + 3e-6, 0.5 - 4e-5, 0.7 + 1e-3]]), "_note": "tiny variances e^-25"}


def _lg_reference(mean, logvar, x):
    diff = x - mean
    return 0.5 * np.sum(diff * diff * np.exp(-logvar) + logvar + math.log(2 * math.pi), axis=1)


_LG_FORWARD_HINTS = {"gaussian_nll": {
    "default": "nll = 1/2 sum_d [(x_d - m_d)^2 / sigma_d^2 + log sigma_d^2 + log(2 pi)] with "
               "log sigma^2 = logvar: divide by the variance, exp(logvar)",
    "offset": "a constant is missing: the density's normaliser 1/sqrt(2 pi sigma^2) gives "
              "log(2 pi) as well as logvar",
    "ratio": "the NLL of an image is a sum over its pixels, not a mean; and check the 1/2",
    "nonfinite": "(x - m)^2 / exp(logvar) at logvar = -25: compute it with exp(-logvar)"}}


def _lg_forward(module, case):
    want = _lg_reference(case["mean"], case["logvar"], case["x"])
    return _forward_check(module, "gaussian_nll", case, want, _LG_FORWARD_HINTS,
                          tiny=1e-9 * (1 + float(np.abs(want).max())))


def _lg_backward(module, case):
    hints = {"mean": {"default": "d/dm of (x - m)^2 exp(-s) / 2: mind the sign of d(x - m)/dm",
                      "neg": "yours has the wrong sign: d(x - m)/dm = -1"},
             "logvar": {"default": "d/ds of [(x - m)^2 exp(-s) + s] / 2: two terms, each with "
                                   "the 1/2",
                        "x2": "yours is twice the finite difference: the 1/2 in front of the sum"}}
    return _gradient_check(module, "gaussian_nll", "gaussian_nll_backward", case,
                           ["mean", "logvar"], hints,
                           backward_args=lambda r, a: (r[0], a["mean"], a["logvar"], a["x"]))


# 08 Log-mean-exp -------------------------------------------------------------------

def _lme_case(draw):
    rng = _seeded(draw)
    k, batch = draw(1, 6), draw(1, 4)
    return {"a": rng.standard_normal((k, batch)) * 3 - 100 * draw(0, 2)}


_LME_CASE = {"a": np.array([[-1.0, -95.0, 2.0], [0.5, -98.0, 2.0], [-3.0, -99.0, 1.5]])}
_LME_EXTREME = {"a": np.array([[-1000.0, 1000.0], [-1001.5, 999.0], [-1003.0, 1000.5],
                               [-1000.2, 1002.0]]), "_note": "log weights near -1000 and +1000"}
_LME_HINTS = {
    "bound": {"default": "bound = log of the mean (not the sum) over the k samples (axis 0) "
                         "of exp(a)",
              "offset": "log (1/k) sum exp(a): the mean over the k samples, not the sum "
                        "(log k apart)",
              "nonfinite": "exp(-1000) is 0 in float64 and exp(1000) is inf: take the "
                           "largest a_i out of the sum before exponentiating",
              "shape": "one bound per example: reduce over the k samples (axis 0)"},
    "weights": {"default": "the weights are exp(a_i) normalised over the k samples of each "
                           "example (axis 0): each column sums to 1",
                "nonfinite": "exp(a) under- or overflows at |a| = 1000: normalise exp(a_i - m) "
                             "with the same shift m as the bound"},
    "a": {"default": "dL/da_i = exp(a_i) / sum_l exp(a_l): the normalised weights, over the "
                     "samples of one example (axis 0)"},
}


def _lme_forward(module, case):
    want_bound, want_weights = ops.log_mean_exp_weights(case["a"])
    return _forward_check(module, "log_mean_exp", case, (want_bound, want_weights),
                          {"bound": _LME_HINTS["bound"], "weights": _LME_HINTS["weights"]},
                          outputs=2, names=["bound", "weights"],
                          tiny=1e-12 * (1 + float(np.abs(case["a"]).max())))


def _lme_backward(module, case):
    a = np.array(case["a"])

    def forward(a_):
        return _parts(_call(module, "log_mean_exp", a_), 2, "log_mean_exp")[0]

    shim = types.SimpleNamespace(__file__=module.__file__, forward=forward,
                                 backward=lambda dbound, a_: _call(
                                     module, "log_mean_exp_backward", dbound,
                                     _parts(_call(module, "log_mean_exp", a_), 2, "log_mean_exp")[1]))
    return _gradient_check(shim, "forward", "backward", {"a": a}, ["a"], _LME_HINTS,
                           backward_args=lambda r, arrays: (r[0], arrays["a"]), case=case)


# 09 Importance samples ----------------------------------------------------------------

def _is_case(draw):
    rng = _seeded(draw)
    k, batch, latent = draw(1, 4), draw(1, 3), draw(1, 4)
    return {"mu": rng.standard_normal((batch, latent)),
            "logvar": rng.uniform(-3, 2, (batch, latent)),
            "eps": rng.standard_normal((k, batch, latent))}


_IS_CASE = {"mu": np.array([[0.5, -1.0], [0.2, 0.7]]), "logvar": np.array([[0.3, -1.0], [1.2, -0.4]]),
            "eps": np.array([[[1.0, -0.3], [0.4, 0.8]], [[-0.6, 1.4], [0.1, -1.2]],
                             [[0.9, 0.2], [-1.5, 0.5]]])}
_IS_TINY = {"mu": np.array([[0.5, -0.2]]), "logvar": np.array([[-30.0, -22.0]]),
            "eps": np.array([[[1.0, -0.3]], [[-0.6, 1.4]]]), "_note": "tiny variances"}


def _is_forward(module, case):
    node = ImportanceSamples("numpy")
    want = node.forward(case["mu"], case["logvar"], case["eps"])
    hints = {"z": {"default": "z_i = mu + exp(logvar / 2) * eps_i for each of the k samples "
                              "(broadcast mu over axis 0)"},
             "log_ratio": {"default": "log p(z) - log q(z | x) = -1/2 sum_j (z_j^2 - eps_j^2 - "
                                      "logvar_j): the log(2 pi) cancel, (z - mu) / sigma = eps",
                           "shape": "one ratio per sample and example: (k, batch), summed over "
                                    "the latent axis"}}
    return _forward_check(module, "importance_samples", case, want, hints, outputs=2,
                          names=["z", "log_ratio"], tiny=1e-9)


def _is_backward(module, case):
    hints = {"mu": {"default": "mu reaches the loss through every z_i, and z_i also through "
                               "the prior term -z_i^2 / 2: sum over the k samples"},
             "logvar": {"default": "logvar reaches the loss three ways: through z_i (as in "
                                   "exercise 03), through the prior term via z_i, and directly "
                                   "through the +logvar / 2 of log q"}}
    return _gradient_check(module, "importance_samples", "importance_samples_backward", case,
                           ["mu", "logvar"], hints, outputs=2,
                           backward_args=lambda r, a: (r[0], r[1], a["mu"], a["logvar"], a["eps"]))


# 10 Conv2D ---------------------------------------------------------------------------

def _conv_case(draw):
    rng = _seeded(draw)
    n, c, o = draw(1, 3), draw(1, 3), draw(1, 3)
    k, stride, padding = draw(1, 3), draw(1, 2), draw(0, 1)
    size = draw(k, k + 4)
    return {"x": rng.standard_normal((n, c, size, size)), "W": rng.standard_normal((o, c, k, k)),
            "b": rng.standard_normal(o), "_conv": (stride, padding),
            "_note": f"stride {stride}, padding {padding}"}


_CONV_CASE = {"x": np.linspace(-1, 1, 2 * 2 * 5 * 5).reshape(2, 2, 5, 5) ** 3,
              "W": np.sin(np.arange(3 * 2 * 3 * 3.0)).reshape(3, 2, 3, 3),
              "b": np.array([0.1, -0.2, 0.3]), "_conv": (2, 1), "_note": "stride 2, padding 1"}
_CONV_HINTS = {
    "x": {"default": "dx is col2im of the column gradient W2^T dy2, with dy written as the "
                     "matrix (O, N*Ho*Wo): channel axis first, then examples and pixels; "
                     "(N, O, Ho, Wo) reshaped straight to (O, -1) mixes examples with channels",
          "shape": "dx has x's shape: col2im, not im2col, goes from columns back to the image"},
    "W": {"default": "dW = dy2 @ cols^T, reshaped to W's shape, with dy2 (O, N*Ho*Wo) ordered "
                     "like the columns (channel axis first)",
          "shape": "dW must have W's shape (O, C, kh, kw): reshape the (O, C*kh*kw) product"},
    "b": {"default": "b[o] is added at every pixel of every example: sum over all of them",
          "shape": "db has b's shape (O,): sum over the batch and both pixel axes"},
}


def _conv_reference(x, W, b, stride, padding):
    from numpy_vae.conv import Conv2D
    layer = Conv2D(W.shape[1], W.shape[0], W.shape[2:], stride, padding, backend="numpy")
    layer.params["W"], layer.params["b"] = W, b
    return np.array(layer.forward(x))


def _conv_forward(module, case):
    stride, padding = case["_conv"]
    x, W, b = case["x"], case["W"], case["b"]
    got = _parts(_call(module, "conv2d_forward", x, W, b, stride, padding), 1, "conv2d_forward")
    hints = {"default": "conv2d_forward was given: compare yours with the stub's"}
    return _judge("conv2d_forward", got, _conv_reference(x, W, b, stride, padding), hints, case,
                  threshold=FORWARD_THRESHOLD)


def _conv_backward(module, case):
    stride, padding = case["_conv"]
    inputs = {k: case[k] for k in ("x", "W", "b")}
    shim = types.SimpleNamespace(
        __file__=module.__file__,
        forward=lambda x, W, b: _call(module, "conv2d_forward", x, W, b, stride, padding),
        backward=lambda dy, x, W: _call(module, "conv2d_backward", dy, x, W, stride, padding))
    return _gradient_check(shim, "forward", "backward", inputs, ["x", "W", "b"], _CONV_HINTS,
                           backward_args=lambda r, a: (r[0], a["x"], a["W"]), case=case)


# 11 VQ straight-through -----------------------------------------------------------

def _vq_case(draw):
    rng = _seeded(draw)
    batch, slots, d, k = draw(1, 3), draw(1, 4), draw(1, 3), draw(1, 4)
    return {"z_e": rng.standard_normal((batch, slots, d)), "codebook": rng.standard_normal((k, d)),
            "_weights": (rng.uniform(0.2, 1.0, batch), rng.uniform(0.05, 0.5, batch))}


_VQ_CASE = {"z_e": np.array([[[0.9, 0.1], [1.1, -0.2], [-1.0, 0.5]],
                             [[0.8, 0.3], [-0.9, 0.7], [0.2, -1.1]]]),
            "codebook": np.array([[1.0, 0.0], [-1.0, 0.6], [0.0, -1.0]]),
            "_weights": (np.array([0.5, 0.5]), np.array([0.125, 0.125])),
            "_note": "codes 0 and 1 each chosen by several slots"}
_VQ_HINTS = {
    "z_e": {"default": "z_q is treated as the identity on the way back: dz_q passes to z_e "
                       "unchanged, plus the commitment term's own gradient, d||u||^2/du = 2u",
            "shape": "dz_e has z_e's shape (batch, D, d)"},
    "codebook": {"default": "the codebook gets the codebook term's gradient only (the decoder's "
                            "dz_q goes to z_e, never to the codes), summed over every slot that "
                            "chose the code: indexing with repeated codes and += adds only once",
                 "shape": "dcodebook has the codebook's shape (K, d)"},
}


def _vq_reference(z_e, codebook):
    batch, slots, d = z_e.shape
    codes = nearest_codes(z_e.reshape(-1, d), codebook, np).reshape(batch, slots)
    z_q = codebook[codes]
    return z_q, codes, ((z_e - z_q) ** 2).sum(axis=(1, 2))


def _vq_forward(module, case):
    z_q, codes, sq = _vq_reference(case["z_e"], case["codebook"])
    out = _call(module, "vq_forward", case["z_e"], case["codebook"])
    got = _parts(out, 3, "vq_forward")
    hints = {"default": "vq_forward was given: compare yours with the stub's"}
    return _first_failure([_judge(n, g, w, hints, case, threshold=FORWARD_THRESHOLD)
                           for n, g, w in zip(("z_q", "codes", "sq"), got, (z_q, codes, sq))])


def _vq_backward(module, case):
    """Finite differences of the straight-through surrogate, codes held fixed:

        S(z_e, e) = sum(dz_q * z_e)                                (z_q = z_e + sg[z_q - z_e])
                  + sum_n dsq_code[n] ||sg[z_e[n]] - e[codes[n]]||^2    (codebook term)
                  + sum_n dsq_commit[n] ||z_e[n] - sg[z_q[n]]||^2       (commitment term)
    """
    z_e0, e0 = np.array(case["z_e"]), np.array(case["codebook"])
    w_code, w_commit = case["_weights"]
    z_q0, codes, _ = _vq_reference(z_e0, e0)
    dz_q = np.random.default_rng(11).standard_normal(z_e0.shape)
    arrays = {"z_e": z_e0.copy(), "codebook": e0.copy()}

    def surrogate_z():
        z = arrays["z_e"]
        return float(np.sum(dz_q * z) + np.sum(w_commit * ((z - z_q0) ** 2).sum(axis=(1, 2))))

    def surrogate_e():
        e = arrays["codebook"]
        return float(np.sum(w_code * ((z_e0 - e[codes]) ** 2).sum(axis=(1, 2))))

    got = _parts(_call(module, "vq_backward", dz_q.copy(), w_code.copy(), w_commit.copy(),
                       z_e0.copy(), e0.copy(), codes.copy()), 2, "vq_backward")
    numeric_z = numerical_gradient(surrogate_z, arrays["z_e"])
    numeric_e = numerical_gradient(surrogate_e, arrays["codebook"])
    return _first_failure([
        _judge("dz_e", got[0], numeric_z, _VQ_HINTS["z_e"], case, _floor(surrogate_z())),
        _judge("dcodebook", got[1], numeric_e, _VQ_HINTS["codebook"], case, _floor(surrogate_e()))])


# 12 Capstone -------------------------------------------------------------------------

PIECES = {"01_linear": ("linear_forward", "linear_backward"),
          "02_activations": ("relu_forward", "relu_backward"),
          "03_reparameterize": ("reparameterize", "reparameterize_backward"),
          "04_kl": ("gaussian_kl", "gaussian_kl_backward"),
          "05_bernoulli_nll": ("bernoulli_nll", "bernoulli_nll_backward"),
          "06_adam": ("adam_step",)}


def load_pieces(folder) -> types.SimpleNamespace:
    """The functions of exercises 01-06 from the files in ``folder``, as one namespace."""
    pieces = {}
    for slug, names in PIECES.items():
        path = Path(folder) / f"{slug}.py"
        if not path.is_file():
            raise ExerciseError(f"the capstone uses your exercises 01-06 from the files beside it; "
                                f"{path} is missing")
        module = load_file(path)
        for name in names:
            function = getattr(module, name, None)
            if not callable(function):
                raise ExerciseError(f"{path.name} defines no function {name}()")
            pieces[name] = _finish_first(function, path.name)
    return types.SimpleNamespace(__file__=str(path), **pieces)


def _finish_first(function, file_name):
    """``function``, with its NotImplementedError said as 'finish FILE first'."""
    def piece(*args):
        try:
            return function(*args)
        except NotImplementedError:
            raise NotDone(f"the capstone calls {function.__name__}() of {file_name}, which is "
                          f"not written yet: finish that exercise first") from None
    piece.__name__ = function.__name__
    return piece


def init_params(input_dim, hidden, latent, rng, dtype=np.float64) -> dict:
    """The capstone VAE's arrays, Uniform(-k, k) with k = 1/sqrt(fan_in) (as nn.Linear):

    encoder  W1 (D, H), b1 (H,)   then  W2 (H, 2L), b2 (2L,)  -> [mu | logvar]
    decoder  W3 (L, H), b3 (H,)   then  W4 (H, D),  b4 (D,)   -> logits
    """
    shapes = {"W1": (input_dim, hidden), "W2": (hidden, 2 * latent),
              "W3": (latent, hidden), "W4": (hidden, input_dim)}
    params = {}
    for i, (name, shape) in enumerate(shapes.items(), start=1):
        k = 1 / math.sqrt(shape[0])
        params[name] = rng.uniform(-k, k, shape).astype(dtype)
        params[f"b{i}"] = rng.uniform(-k, k, shape[1]).astype(dtype)
    return params


def negative_elbo(params, x, eps) -> np.ndarray:
    """The checker's own forward pass: -ELBO per example (batch,), for the capstone's layout."""
    latent = eps.shape[1]
    h = np.maximum(x @ params["W1"] + params["b1"], 0)
    enc = h @ params["W2"] + params["b2"]
    mu, logvar = enc[:, :latent], enc[:, latent:]
    z = mu + np.exp(0.5 * logvar) * eps
    logits = np.maximum(z @ params["W3"] + params["b3"], 0) @ params["W4"] + params["b4"]
    return ops.bernoulli_nll(logits, x) + _kl_reference(mu, logvar)


def _capstone_case(seed=0, batch=5, input_dim=9, hidden=6, latent=3):
    rng = np.random.default_rng(seed)
    params = init_params(input_dim, hidden, latent, rng)
    params = {k: v * 2 for k, v in params.items()}  # larger weights: fewer dead ReLUs
    return {"x": rng.random((batch, input_dim)), "eps": rng.standard_normal((batch, latent)),
            "_params": params}


def _capstone_loss(module, pieces, case):
    params = {k: v.copy() for k, v in case["_params"].items()}
    out = _call(module, "loss_and_grads", params, case["x"], case["eps"], pieces)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise _ReaderError("loss_and_grads() must return (loss, grads)")
    want = float(np.mean(negative_elbo(case["_params"], case["x"], case["eps"])))
    hints = {"default": "loss = mean over the batch of (Bernoulli NLL + KL), one sampled z per "
                        "image",
             "ratio": "the loss is the mean over the batch; a sum where the mean belongs "
                      "(or the reverse) scales it by the batch size"}
    return _judge("loss", np.asarray(float(out[0])), np.asarray(want), hints, case,
                  threshold=FORWARD_THRESHOLD)


def _capstone_gradients(module, pieces, case):
    params = {k: v.copy() for k, v in case["_params"].items()}
    x, eps = case["x"], case["eps"]

    def f():
        return float(_call(module, "loss_and_grads", params, x, eps, pieces)[0])

    loss, grads = _call(module, "loss_and_grads", params, x, eps, pieces)
    if not isinstance(grads, dict) or set(grads) != set(params):
        have = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
        raise _ReaderError(f"grads must be a dict with the keys {sorted(params)}, got {have}")
    grads = {k: np.array(v, dtype=np.float64) for k, v in grads.items()}
    tiny = _floor(float(loss))
    hints = {"default": "follow the forward pass backwards, one piece at a time: mu and logvar "
                        "get gradient from both z and the KL (add the two), and every "
                        "per-example term is weighted 1/batch by the mean",
             "ratio": "the gradient of a mean over the batch carries 1/batch"}
    results = []
    for name in ("W4", "b4", "W3", "b3", "W2", "b2", "W1", "b1"):
        numeric = numerical_gradient(f, params[name], mark_kinks=True)
        got, want = _smooth(grads[name], numeric)
        results.append(_judge("d" + name, got, want, hints, case, tiny))
    return _first_failure(results)


def _with_pieces(evaluate):
    def run(module, case):
        return evaluate(module, load_pieces(Path(module.__file__).parent), case)
    return run


def train_capstone(module, pieces, *, hidden, latent, train_images, epochs, test_images,
                   lr=1e-3, seed=0, data=None, say=print):
    """Train the capstone VAE with the reader's loss_and_grads and adam_step; returns the
    test negative ELBO (nats per image, one z per image) and the seconds spent training."""
    x_train, _, x_test, _ = data if data is not None else mnist_arrays(quiet=True)
    x_train, x_test = x_train[:train_images], x_test[:test_images]
    rng = np.random.default_rng(seed)
    # float32 for speed (the gradient checks above ran in float64); what the reader's
    # functions return in float64 is cast back, so every step starts in float32
    params = init_params(x_train.shape[1], hidden, latent, rng, dtype=np.float32)
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    t, start = 0, time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(x_train))
        total = 0.0
        for first in range(0, len(order), CAPSTONE_BATCH):
            x = x_train[order[first:first + CAPSTONE_BATCH]]
            eps = rng.standard_normal((len(x), latent), dtype=np.float32)
            loss, grads = _call(module, "loss_and_grads", params, x, eps, pieces)
            if not np.isfinite(loss):
                raise _ReaderError(f"the loss became {loss} at step {t + 1} (epoch {epoch})")
            t += 1
            for name in params:
                out = _call(pieces, "adam_step", params[name], grads[name], m[name], v[name],
                            t, lr)
                params[name], m[name], v[name] = (a.astype(np.float32, copy=False)
                                                  for a in _parts32(out, "adam_step"))
            total += float(loss) * len(x)
        say(f"  epoch {epoch}/{epochs}: train loss {total / len(x_train):.2f} nats/image "
            f"({time.perf_counter() - start:.0f} s)")
    seconds = time.perf_counter() - start
    params = {k: p.astype(np.float64) for k, p in params.items()}
    x_test = x_test.astype(np.float64)
    eval_rng = np.random.default_rng(seed + 1)
    losses = [negative_elbo(params, x_test[i:i + 1000],
                            eval_rng.standard_normal((len(x_test[i:i + 1000]), latent)))
              for i in range(0, len(x_test), 1000)]
    return float(np.mean(np.concatenate(losses))), seconds


def _parts32(result, name):
    """adam_step's (param, m, v), without the float64 copies _parts would make."""
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise _ReaderError(f"{name}() must return (param, m, v)")
    return tuple(np.asarray(a) for a in result)


def _training_label(settings):
    return (f"training on MNIST ({settings['train_images']:,} images x {settings['epochs']} "
            f"epochs, 784-{settings['hidden']}-{settings['latent']}): test -ELBO <= "
            f"{settings['bound']:g} nats")


def _training_check(quick, seed, say):
    settings = CAPSTONE_QUICK if quick else CAPSTONE_FULL
    label = _training_label(settings)

    def check(module, examples):
        pieces = load_pieces(Path(module.__file__).parent)
        options = {k: v for k, v in settings.items() if k != "bound"}
        say(f"  ....  {label}: training with your loss_and_grads and adam_step")
        try:
            nelbo, seconds = train_capstone(module, pieces, seed=seed, say=say, **options)
        except _ReaderError as err:
            return Verdict("fail", label, math.inf, str(err),
                           "a loss that grows without bound: check the signs of the updates "
                           "and of the gradients")
        where = (f"test -ELBO {nelbo:.2f} nats on {settings['test_images']:,} test images "
                 f"after {seconds:.0f} s of training")
        if nelbo <= settings["bound"]:
            return Verdict("pass", label, None, where)
        return Verdict("fail", label, None, where,
                       "the gradients pass but the model learns too little: is every parameter "
                       "updated, with its own m and v, and is t counted from 1?")
    return check


def _capstone_checks(quick=False, seed=0, say=print, train=True):
    checks = [("loss: the negative ELBO, the mean over the batch",
               random_check("", _with_pieces(_capstone_loss),
                            explicit=[_capstone_case(0), _capstone_case(1, batch=3)])),
              ("gradients of all 8 arrays against finite differences",
               random_check("", _with_pieces(_capstone_gradients),
                            explicit=[_capstone_case(2), _capstone_case(3, batch=2, hidden=4)]))]
    if train:
        checks.append((_training_label(CAPSTONE_QUICK if quick else CAPSTONE_FULL),
                       _training_check(quick, seed, say)))
    return checks


# --------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------

def _checks(*items):
    return [(label, random_check(label, evaluate, draw, explicit))
            for label, evaluate, draw, explicit in items]


def exercises(quick=False, seed=0, say=print, train=True) -> list:
    """Every exercise with its checks (a check: (label, function(module, examples) -> Verdict))."""
    gauss_cases = [_GAUSS_CASE, _TINY_VAR_CASE]
    return [
        Exercise(1, "01_linear", "Linear layer: forward and backward", "01", _checks(
            ("forward: y = x W + b", _linear_forward, _linear_case, [_LINEAR_CASE]),
            ("backward: dx, dW, db against finite differences", _linear_backward, _linear_case,
             [_LINEAR_CASE]))),
        Exercise(2, "02_activations", "tanh and ReLU: forward and backward", "01", _checks(
            ("forward: tanh and ReLU", _activation_forward, _activation_case, [_ACT_CASE]),
            ("tanh backward against finite differences", _tanh_backward, _activation_case, [_ACT_CASE]),
            ("ReLU backward against finite differences", _relu_backward, _activation_case,
             [_ACT_CASE]))),
        Exercise(3, "03_reparameterize", "The reparameterization node: forward and backward", "03",
                 _checks(
            ("forward: z = mu + sigma * eps", _reparam_forward, _gauss_case, gauss_cases),
            ("backward: dmu, dlogvar against finite differences (also at logvar = -30)",
             _reparam_backward, _gauss_case, gauss_cases))),
        Exercise(4, "04_kl", "The KL to N(0, I) and its gradient", "04", _checks(
            ("forward: the KL matches the closed form (0 when q is the prior)", _kl_forward,
             _gauss_case, [_KL_ZERO_CASE, *gauss_cases]),
            ("backward: dmu, dlogvar against finite differences (also at logvar = -30)",
             _kl_backward, _gauss_case, gauss_cases))),
        Exercise(5, "05_bernoulli_nll", "Bernoulli NLL from logits, stable at |logit| = 1000", "05",
                 _checks(
            ("forward: the NLL per image", _bernoulli_forward, _bernoulli_case, [_BERNOULLI_CASE]),
            ("backward: dlogits against finite differences", _bernoulli_backward, _bernoulli_case,
             [_BERNOULLI_CASE]),
            ("extreme logits: NLL and gradient finite and exact at +-1000", _bernoulli_extreme,
             None, [_EXTREME_LOGITS]))),
        Exercise(6, "06_adam", "Adam with bias correction", "06", _checks(
            ("four steps against the package's Adam (numpy_vae/optim.py)", _adam, _adam_case,
             [_ADAM_CASE]))),
        Exercise(7, "07_learned_gaussian", "Gaussian likelihood with a learned variance", "10",
                 _checks(
            ("forward: the NLL per image", _lg_forward, _learned_gaussian_case, [_LG_CASE, _LG_TINY]),
            ("backward: dmean, dlogvar against finite differences (also at logvar = -25)",
             _lg_backward, _learned_gaussian_case, [_LG_CASE, _LG_TINY]))),
        Exercise(8, "08_log_mean_exp", "Log-mean-exp and the IWAE's normalised weights", "11", _checks(
            ("forward: the bound and the weights", _lme_forward, _lme_case, [_LME_CASE]),
            ("backward: da against finite differences", _lme_backward, _lme_case, [_LME_CASE]),
            ("log weights of -1000 and +1000: finite and exact", _lme_forward, None,
             [_LME_EXTREME]))),
        Exercise(9, "09_importance_samples", "IWAE samples and their log prior/posterior ratio",
                 "13", _checks(
            ("forward: z and the log ratio", _is_forward, _is_case, [_IS_CASE, _IS_TINY]),
            ("backward: dmu, dlogvar against finite differences", _is_backward, _is_case,
             [_IS_CASE, _IS_TINY]))),
        Exercise(10, "10_conv2d", "Conv2D backward through im2col", "12", _checks(
            ("forward (given): matches numpy_vae.conv.Conv2D", _conv_forward, _conv_case, [_CONV_CASE]),
            ("backward: dx, dW, db against finite differences", _conv_backward, _conv_case,
             [_CONV_CASE]))),
        Exercise(11, "11_vq_straight_through", "The VQ straight-through backward", "15", _checks(
            ("forward (given): nearest codes", _vq_forward, _vq_case, [_VQ_CASE]),
            ("backward: dz_e and dcodebook against the straight-through surrogate",
             _vq_backward, _vq_case, [_VQ_CASE]))),
        Exercise(12, "12_capstone", "Capstone: a VAE from your pieces, trained on MNIST", "06",
                 _capstone_checks(quick, seed, say, train)),
    ]


def find(number, **options) -> Exercise:
    for exercise in exercises(**options):
        if exercise.number == number:
            return exercise
    raise ExerciseError(f"no exercise {number}; there are exercises 1 to {len(exercises(train=False))} "
                        f"(run 'numpy-vae exercise' for the list)")


def default_folder() -> Path:
    """lessons/exercises of the current folder, else of the source checkout this package is in."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        folder = root / "lessons" / "exercises"
        if folder.is_dir():
            return folder
    raise ExerciseError("no lessons/exercises folder here: run this from the repository's root "
                        "folder, or give the file: numpy-vae exercise N FILE")


# --------------------------------------------------------------------------
# Running and reporting
# --------------------------------------------------------------------------

def run_checks(exercise: Exercise, path, examples=EXAMPLES, on_verdict=None) -> list:
    """Every check of ``exercise`` on the reader's file: a list of Verdicts
    (each also handed to ``on_verdict`` as soon as it is known)."""
    module = load_file(path)
    verdicts = []
    for label, check in exercise.checks:
        try:
            verdict = check(module, examples)
            verdict.label = label
        except NotDone as err:
            verdict = Verdict("todo", label, where=str(err))
        except (_ReaderError, ExerciseError) as err:
            verdict = Verdict("fail", label, math.inf, str(err))
        verdicts.append(verdict)
        if on_verdict is not None:
            on_verdict(verdict)
        if verdict.status == "todo" and exercise.number == 12:
            break  # the capstone's later checks need the earlier ones
    return verdicts


def _line(verdict: Verdict) -> list:
    if verdict.status == "pass":
        about = [verdict.where] if verdict.where else []
        if verdict.error is not None:
            about.append(f"largest relative error {verdict.error:.1e}")
        return [f"  pass  {verdict.label}" + (f"  ({', '.join(about)})" if about else "")]
    if verdict.status == "todo":
        return [f"  todo  {verdict.label}", f"        to do: {verdict.where}"]
    error = "" if verdict.error is None else (
        "  relative error inf" if math.isinf(verdict.error) else f"  relative error {verdict.error:.1e}")
    lines = [f"  FAIL  {verdict.label}{error}"]
    if verdict.where:
        lines.append(f"        {verdict.where}")
    if verdict.hint:
        lines.append(f"        hint: {verdict.hint}")
    return lines


def _shown(path: Path) -> str:
    """The path relative to the current folder when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def status(verdicts) -> str:
    """'done', 'not yet done' (some functions still raise NotImplementedError, none fails)
    or 'k of n checks fail'."""
    failed = sum(v.status == "fail" for v in verdicts)
    if failed:
        return f"{failed} of {len(verdicts)} checks fail"
    if any(v.status == "todo" for v in verdicts):
        passed = sum(v.status == "pass" for v in verdicts)
        return "not yet done" + (f" ({passed} of {len(verdicts)} checks pass)" if passed else "")
    return "done"


def report(number, path=None, quick=False, seed=0, say=print) -> int:
    """Check exercise ``number`` in ``path`` (default: lessons/exercises/NN_*.py) and print
    one verdict per check; returns 0 if every check passes, else 1."""
    exercise = find(number, quick=quick, seed=seed, say=say)
    path = Path(path) if path is not None else default_folder() / f"{exercise.slug}.py"
    if not path.is_file():
        raise ExerciseError(f"{path}: no such file")
    say(f"exercise {exercise.number}: {exercise.title} (lesson {exercise.lesson})  [{_shown(path)}]")
    def show(verdict):
        for line in _line(verdict):
            say(line)

    verdicts = run_checks(exercise, path, on_verdict=show)
    result = status(verdicts)
    if result == "done":
        say(f"exercise {exercise.number} done: all {len(verdicts)} checks pass")
        return 0
    if result.startswith("not yet done"):
        say(f"exercise {exercise.number}: {result}: fill in the functions that raise "
            f"NotImplementedError in {_shown(path)}")
    else:
        say(f"exercise {exercise.number}: {result}")
    return 1


def progress(folder=None, say=print) -> int:
    """One line per exercise: its lesson, title and the reader's status."""
    folder = Path(folder) if folder is not None else default_folder()
    say(f"exercises in {_shown(folder)}  (numpy-vae exercise N checks exercise N)")
    listed = exercises(train=False, say=say)
    done = 0
    for exercise in listed:
        try:
            verdicts = run_checks(exercise, folder / f"{exercise.slug}.py", examples=3)
        except ExerciseError as err:
            result = f"error: {err}"
        else:
            result = status(verdicts)
            if result == "done":
                done += 1
                if exercise.number == 12:
                    result = "loss and gradients pass; run it to train on MNIST"
        say(f"  {exercise.number:2d}  lesson {exercise.lesson}  {exercise.title:<52s}  {result}")
    say(f"{done} of {len(listed)} done")
    return 0


__all__ = ["ExerciseError", "Verdict", "Exercise", "exercises", "find", "report", "progress",
           "run_checks", "load_file", "load_pieces", "train_capstone", "negative_elbo",
           "init_params", "default_folder", "CAPSTONE_FULL", "CAPSTONE_QUICK"]
