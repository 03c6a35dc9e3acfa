"""Specification of the backend seam (numpy_vae/backend.py).

A backend is the array module, the default dtype and the random generator
that every layer shares.  These tests pin down how one is chosen (by name,
by $NUMPY_VAE_BACKEND, or handed in ready-made) and how its generator state
travels through a checkpoint.
"""

import json

import numpy as np
import pytest

from numpy_vae import Backend, available_backends, get_backend
from numpy_vae.backend import ENV_VAR


@pytest.fixture(autouse=True)
def _no_backend_from_the_environment(monkeypatch):
    # These tests are about how the name is resolved, so a developer's own
    # NUMPY_VAE_BACKEND must not leak into them.
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_numpy_backend_bundles_numpy_a_dtype_and_a_generator():
    bk = get_backend("numpy")

    assert bk.name == "numpy"
    assert bk.xp is np
    assert bk.dtype == np.float32                      # the documented default
    assert isinstance(bk.rng, np.random.Generator)
    assert get_backend("numpy", dtype="float64").dtype == np.float64


def test_no_name_means_numpy():
    assert get_backend().name == "numpy"
    assert get_backend(None).name == "numpy"


def test_environment_variable_chooses_the_backend(monkeypatch):
    # An unknown name in the variable must surface: proof that it is read.
    monkeypatch.setenv(ENV_VAR, "abacus")
    with pytest.raises(ValueError, match="abacus"):
        get_backend()

    monkeypatch.setenv(ENV_VAR, "  NumPy ")            # case and spaces forgiven
    assert get_backend().name == "numpy"


def test_explicit_name_wins_over_the_environment_variable(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "abacus")
    assert get_backend("numpy").name == "numpy"


def test_a_backend_instance_is_used_as_given():
    bk = get_backend("numpy", dtype="float64", seed=3)
    assert get_backend(bk) is bk


def test_unknown_backend_name_lists_the_choices():
    with pytest.raises(ValueError) as info:
        get_backend("tensorflow")
    message = str(info.value)
    assert "tensorflow" in message
    for choice in ("numpy", "numba", "cupy"):
        assert choice in message


@pytest.mark.parametrize("dtype", ["float16", "int32", "complex128", "banana"])
def test_unsupported_dtype_is_a_value_error_naming_the_choices(dtype):
    with pytest.raises(ValueError) as info:
        get_backend("numpy", dtype=dtype)
    assert "float32" in str(info.value) and "float64" in str(info.value)


def test_numpy_is_always_available():
    names = available_backends()
    assert names[0] == "numpy"
    assert set(names) <= {"numpy", "numba", "cupy"}


def test_draws_come_in_the_backend_dtype():
    for dtype in ("float32", "float64"):
        bk = get_backend("numpy", dtype=dtype)
        assert bk.standard_normal((3, 2)).dtype == dtype
        assert bk.random((4,)).dtype == dtype
        assert bk.asarray([1, 2]).dtype == dtype


def test_same_seed_gives_the_same_draws_and_another_seed_does_not():
    a = get_backend("numpy", seed=7).standard_normal((100,))
    b = get_backend("numpy", seed=7).standard_normal((100,))
    c = get_backend("numpy", seed=8).standard_normal((100,))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_rng_state_round_trip_reproduces_the_draws():
    bk = get_backend("numpy", seed=0)
    bk.standard_normal((10,))                          # move away from the seed
    state = bk.get_rng_state()
    first = bk.standard_normal((5, 3))

    # through JSON, as a checkpoint would store it
    bk.set_rng_state(json.loads(json.dumps(state)))
    again = bk.standard_normal((5, 3))

    np.testing.assert_array_equal(first, again)


def test_rng_state_is_a_snapshot_not_a_live_view():
    bk = get_backend("numpy", seed=0)
    state = bk.get_rng_state()
    expected = bk.random((4,))
    bk.random((100,))                                  # draws after the snapshot
    bk.set_rng_state(state)
    np.testing.assert_array_equal(bk.random((4,)), expected)


CUPY_STATE = {"bit_generator": "cupy XORWOW, reseeded from (entropy, restarts)",
              "entropy": 12345, "restarts": 2}


@pytest.mark.parametrize("name", ["numpy", "numba"])
def test_a_cpu_backend_accepts_pcg64_states_and_refuses_a_cupy_one(name):
    if name == "numba":
        pytest.importorskip("numba", reason='numba is not installed: pip install "numpy-vae[numba]"')
    bk = get_backend(name, seed=0)
    assert bk.accepts_rng_state(get_backend("numpy", seed=1).get_rng_state())
    assert not bk.accepts_rng_state(CUPY_STATE)
    assert not bk.accepts_rng_state(None)


def test_reseed_starts_the_stream_of_that_seed():
    bk = get_backend("numpy", seed=0)
    bk.reseed(99)
    np.testing.assert_array_equal(bk.standard_normal((5,)), get_backend("numpy", seed=99).standard_normal((5,)))


def test_to_numpy_and_asarray_round_trip():
    bk = get_backend("numpy", dtype="float64")
    a = bk.asarray([[1.5, -2.0]])
    assert isinstance(bk.to_numpy(a), np.ndarray)
    np.testing.assert_array_equal(bk.to_numpy(a), [[1.5, -2.0]])
    assert bk.asarray([1, 2], dtype=np.float32).dtype == np.float32


def test_backend_is_a_plain_dataclass_with_a_readable_repr():
    bk = get_backend("numpy", dtype="float64", seed=5)
    assert isinstance(bk, Backend)
    assert bk.seed == 5
    assert "numpy" in repr(bk) and "float64" in repr(bk)
