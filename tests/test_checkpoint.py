"""Checkpoints (numpy_vae/checkpoint.py): what is saved comes back exactly,
writing is atomic, and nothing is ever unpickled."""

import json

import numpy as np
import pytest

from numpy_vae import VAE, Adam
from numpy_vae.checkpoint import (CheckpointError, build_optimizer, load_checkpoint, load_model,
                                  load_params, save_checkpoint)


def small_vae(**kwargs):
    return VAE(**{"input_dim": 16, "hidden_dims": (8,), "latent_dim": 3, **kwargs})


def trained_a_little(steps=3):
    """A model and its Adam optimizer after a few steps: nonzero moments."""
    model = small_vae(seed=1)
    opt = Adam(model.params, lr=1e-2, backend=model.backend)
    x = np.random.default_rng(0).random((5, 16), dtype=np.float32)
    for _ in range(steps):
        opt.step(model.loss_and_grads(x)[1])
    return model, opt


def test_round_trip_restores_every_array_bit_for_bit(tmp_path):
    model, opt = trained_a_little()
    data_rng = np.random.default_rng(7)
    data_rng.random(3)
    rng_states = {"model": model.backend.get_rng_state(), "data": data_rng.bit_generator.state}
    options = {"batch_size": 5, "lr": 0.01, "data_dir": None}
    path = save_checkpoint(tmp_path / "ck.npz", model, opt, epoch=4, rng_states=rng_states,
                           options=options)

    ck = load_checkpoint(path)

    assert ck.config == model.config
    assert ck.epoch == 4
    assert ck.options == options
    assert ck.rng_states == rng_states  # PCG64's 128-bit integers survive JSON
    assert ck.params.keys() == model.params.keys()
    for name, p in model.params.items():
        assert ck.params[name].dtype == p.dtype
        np.testing.assert_array_equal(ck.params[name], p)
    assert ck.optimizer["name"] == "adam" and ck.optimizer["t"] == 3
    for key, a in opt.state_dict().items():
        if key != "t":
            np.testing.assert_array_equal(ck.optimizer["state"][key], a)


def test_restored_optimizer_and_model_take_the_same_next_step(tmp_path):
    model, opt = trained_a_little()
    save_checkpoint(tmp_path / "ck.npz", model, opt, rng_states={"model": model.backend.get_rng_state()})
    restored, ck = load_model(tmp_path / "ck.npz")
    restored.backend.set_rng_state(ck.rng_states["model"])
    restored_opt = build_optimizer(ck.optimizer, restored.params, restored.backend)

    x = np.random.default_rng(1).random((5, 16), dtype=np.float32)
    opt.step(model.loss_and_grads(x)[1])                 # eps drawn from each model's generator
    restored_opt.step(restored.loss_and_grads(x)[1])

    for name in model.params:
        np.testing.assert_array_equal(restored.params[name], model.params[name])


def test_a_run_folder_means_the_checkpoint_inside_it(tmp_path):
    model, opt = trained_a_little()
    save_checkpoint(tmp_path / "checkpoint.npz", model, opt, epoch=2)
    assert load_checkpoint(tmp_path).epoch == 2


def test_the_file_holds_only_numbers_and_one_json_string(tmp_path):
    model, opt = trained_a_little()
    path = save_checkpoint(tmp_path / "ck.npz", model, opt, rng_states={"data": {"a": 1}})
    with np.load(path, allow_pickle=False) as npz:  # would raise on any object array
        arrays = {name: npz[name] for name in npz.files}
    meta = arrays.pop("meta")
    assert meta.shape == () and meta.dtype.kind == "U"
    assert json.loads(str(meta))["config"] == model.config
    assert all(a.dtype.kind == "f" for a in arrays.values())


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    model, opt = trained_a_little()
    path = save_checkpoint(tmp_path / "ck.npz", model, opt, epoch=1)
    before = path.read_bytes()

    def interrupted_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, opt, epoch=2)

    assert path.read_bytes() == before
    assert load_checkpoint(path).epoch == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]


def test_loading_into_another_architecture_names_the_mismatch(tmp_path):
    save_checkpoint(tmp_path / "ck.npz", VAE(hidden_dims=(400,)), None)
    other = VAE(hidden_dims=(256,))
    with pytest.raises(CheckpointError, match=r"checkpoint has encoder\.0\.W of shape \(784, 400\), "
                                              r"this model expects \(784, 256\)"):
        load_params(other, load_checkpoint(tmp_path / "ck.npz").params)


def test_loading_into_a_model_with_other_layers_names_the_missing_ones(tmp_path):
    save_checkpoint(tmp_path / "ck.npz", small_vae(), None)
    deeper = small_vae(hidden_dims=(8, 8))
    with pytest.raises(CheckpointError, match=r"lacks encoder\.1\.W, encoder\.1\.b"):
        load_params(deeper, load_checkpoint(tmp_path / "ck.npz").params)


def test_a_rejected_checkpoint_leaves_the_model_untouched(tmp_path):
    save_checkpoint(tmp_path / "ck.npz", small_vae(latent_dim=4, seed=1), None)
    model = small_vae(latent_dim=3, seed=2)
    before = {k: v.copy() for k, v in model.params.items()}
    with pytest.raises(CheckpointError):
        load_params(model, load_checkpoint(tmp_path / "ck.npz").params)
    for name, p in model.params.items():
        np.testing.assert_array_equal(p, before[name])


def _object_array_npz(path, marker):
    """An .npz whose array would, if unpickled, create the file `marker`."""

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(path, meta=np.array("{}"), evil=np.array([Exploit()], dtype=object))


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "npy", "truncated", "object_array",
                                  "foreign_npz", "meta_not_json"])
def test_unusable_files_raise_a_clear_error_and_never_unpickle(tmp_path, kind):
    path, marker = tmp_path / "ck.npz", tmp_path / "unpickled"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello, not a checkpoint\n")
    elif kind == "npy":
        np.save(tmp_path / "a.npy", np.ones(3))
        (tmp_path / "a.npy").rename(path)
    elif kind == "truncated":
        model, opt = trained_a_little()
        save_checkpoint(path, model, opt)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "object_array":
        _object_array_npz(path, marker)
    elif kind == "foreign_npz":
        np.savez(path, weights=np.ones(3))
    elif kind == "meta_not_json":
        np.savez(path, meta=np.array("{not json"))

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)

    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert not marker.exists()
    expected = {"missing": "no checkpoint", "empty": "empty", "text": "not an .npz",
                "npy": "not an .npz", "truncated": "truncated or corrupt", "object_array": "object arrays",
                "foreign_npz": "not a numpy-vae checkpoint", "meta_not_json": "not valid JSON"}
    assert expected[kind] in message
