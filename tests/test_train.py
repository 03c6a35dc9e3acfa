"""The training loop (numpy_vae/train.py): seeded, resumable bit for bit,
honest metrics, and a real MNIST run that learns."""

import json

import numpy as np
import pytest

from numpy_vae import VAE
from numpy_vae.checkpoint import CheckpointError, save_checkpoint
from numpy_vae.data import DataUnavailableError, load_mnist
from numpy_vae.dataset import Dataset, load_dataset
from numpy_vae.idx import write_idx
from numpy_vae.runs import new_run_dir, read_metrics
from numpy_vae.train import Trainer, TrainingDiverged, TrainingInterrupted, TrainOptions, kl_weight

PIXELS = 64


def toy_data(n_train=300, n_test=100, seed=0):
    """Grey 8x8 'images': a bright bar whose position is the label, plus noise."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = rng.integers(0, 8, n)
        x = 0.3 * rng.random((n, 8, 8))
        x[np.arange(n), y, :] = 0.9
        return x.reshape(n, PIXELS).astype(np.float32), y.astype(np.uint8)

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return Dataset(x_train, y_train, x_test, y_test)


def toy_model(seed=0):
    return VAE(input_dim=PIXELS, hidden_dims=(32,), latent_dim=4, seed=seed)


def options(**changes):
    return TrainOptions(**{"epochs": 3, "batch_size": 32, "lr": 3e-3, "log_every": 3, **changes})


def assert_same_params(a, b):
    assert a.params.keys() == b.params.keys()
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)


def without_times(records):
    return [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in records]


# --------------------------------------------------------------------------
# The schedule
# --------------------------------------------------------------------------

def test_kl_weight_grows_linearly_from_zero_to_one_over_the_warmup():
    steps = 10  # per epoch
    assert [kl_weight(s, steps, 2) for s in (0, 5, 10, 15, 20, 35)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert kl_weight(0, steps, 0) == 1.0  # no warm-up: the ELBO from the first step


def test_warmup_weights_the_kl_term_of_the_training_loss():
    history = Trainer(toy_model(), options(epochs=2, kl_warmup=2), quiet=True).fit(toy_data())
    first = history[0]
    assert first["train_loss"] < first["train_nelbo"]        # beta < 1 during epoch 1
    assert first["train_nelbo"] == pytest.approx(first["train_recon"] + first["train_kl"])
    assert first["beta"] == pytest.approx(9 / 20)             # last step of epoch 1: 9 of 20 steps done


# --------------------------------------------------------------------------
# Seeds and resuming
# --------------------------------------------------------------------------

def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    data = toy_data()
    runs = []
    for seed in (0, 0, 1):
        model = toy_model(seed=0)  # same initial weights: only the data order and noise differ
        Trainer(model, options(epochs=1, seed=seed), quiet=True).fit(data)
        runs.append(model)
    assert_same_params(runs[0], runs[1])
    assert not np.array_equal(runs[0].params["mu.W"], runs[2].params["mu.W"])


def test_a_new_learning_rate_on_resume_is_the_rate_the_optimizer_uses(tmp_path):
    data = toy_data()
    Trainer(toy_model(), options(epochs=1), tmp_path / "run", quiet=True).fit(data)
    same = Trainer.from_checkpoint(tmp_path / "run", epochs=2, quiet=True)
    assert same.optimizer.lr == 3e-3
    same.release_run_folder()  # one trainer at a time in a run folder
    faster = Trainer.from_checkpoint(tmp_path / "run", epochs=2, quiet=True, lr=0.05)
    assert faster.options.lr == 0.05 and faster.optimizer.lr == 0.05
    before = faster.model.params["mu.W"].copy()
    faster.train_epoch(faster.model.backend.asarray(data.x_train[:32]))  # one Adam step
    # Adam's first steps move a weight by about lr (|m_hat / sqrt(v_hat)| <= 1, mostly near 1)
    assert np.abs(faster.model.params["mu.W"] - before).max() > 0.01


@pytest.mark.parametrize("binarize", ["none", "dynamic"])
def test_a_resumed_run_ends_with_exactly_the_parameters_of_an_uninterrupted_run(tmp_path, binarize):
    data = toy_data()
    data.binarize = binarize
    opts = options(epochs=3, kl_warmup=1.5, binarize=binarize)

    straight = toy_model()
    straight_history = Trainer(straight, opts, tmp_path / "straight", quiet=True).fit(data)

    Trainer(toy_model(), options(epochs=1, kl_warmup=1.5, binarize=binarize), tmp_path / "split",
            quiet=True).fit(data)
    resumed = Trainer.from_checkpoint(tmp_path / "split", epochs=3, quiet=True)
    assert resumed.epoch == 1
    resumed_history = resumed.fit(data)

    assert_same_params(resumed.model, straight)
    assert without_times(resumed_history) == without_times(straight_history)
    assert without_times(read_metrics(tmp_path / "split")) == without_times(straight_history)


def test_ctrl_c_mid_epoch_keeps_the_last_epoch_and_resuming_redoes_the_partial_one(tmp_path):
    data = toy_data()
    straight = toy_model()
    Trainer(straight, options(), tmp_path / "straight", quiet=True).fit(data)

    trainer = Trainer(toy_model(), options(), tmp_path / "run", quiet=True)
    real_step = trainer.optimizer.step

    def step_until_ctrl_c(grads):
        if trainer.step == 14:  # epoch 2 (10 steps per epoch), after 4 of its steps
            raise KeyboardInterrupt
        real_step(grads)

    trainer.optimizer.step = step_until_ctrl_c
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(data)
    stop = info.value
    assert (stop.epoch, stop.step, stop.saved_epoch) == (2, 4, 1)
    assert stop.checkpoint == tmp_path / "run" / "checkpoint.npz"
    assert len(read_metrics(tmp_path / "run")) == 1

    resumed = Trainer.from_checkpoint(tmp_path / "run", quiet=True)
    resumed.fit(data)
    assert_same_params(resumed.model, straight)


def test_ctrl_c_in_the_first_epoch_can_be_resumed_from_the_initial_checkpoint(tmp_path):
    trainer = Trainer(toy_model(), options(epochs=1), tmp_path / "run", quiet=True)
    trainer.optimizer.step = lambda grads: (_ for _ in ()).throw(KeyboardInterrupt)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(toy_data())
    assert info.value.saved_epoch == 0
    resumed = Trainer.from_checkpoint(tmp_path / "run", quiet=True)
    assert resumed.epoch == 0 and len(resumed.fit(toy_data())) == 1


def test_a_checkpoint_without_optimizer_state_cannot_be_resumed(tmp_path):
    save_checkpoint(tmp_path / "checkpoint.npz", toy_model(), None)
    with pytest.raises(CheckpointError, match="holds no optimizer state and no generator states"):
        Trainer.from_checkpoint(tmp_path)

def test_a_checkpoint_of_a_cupy_run_resumes_on_the_cpu_with_a_derived_seed(tmp_path, capsys):
    """A CuPy run saves its generator as (entropy, restarts), which NumPy's
    PCG64 cannot take: resumed on the CPU, the noise goes on from a seed
    derived from that state, the same one every time, and the run says so."""
    data = toy_data()
    trainer = Trainer(toy_model(), options(epochs=1), tmp_path / "run", quiet=True)
    cupy_state = {"bit_generator": "cupy XORWOW, reseeded from (entropy, restarts)",
                  "entropy": 12345, "restarts": 2}
    trainer.model.backend.get_rng_state = lambda: cupy_state  # as a CuPy backend saves it
    trainer.fit(data)

    finals = []
    for _ in range(2):
        resumed = Trainer.from_checkpoint(tmp_path / "run", epochs=2)
        assert "cannot continue the saved generator (cupy XORWOW" in capsys.readouterr().out
        resumed.quiet = True
        history = resumed.fit(data)
        assert np.isfinite(history[-1]["test_nelbo"])
        finals.append(resumed.model)
        trainer.save()  # back to the epoch-1 checkpoint with the CuPy state
    assert_same_params(finals[0], finals[1])


def test_resuming_drops_metrics_written_after_the_checkpoint(tmp_path):
    Trainer(toy_model(), options(epochs=2), tmp_path, quiet=True).fit(toy_data())
    with open(tmp_path / "metrics.jsonl", "a") as f:  # as if stopped between the two writes
        f.write(json.dumps({"epoch": 3, "test_nelbo": 1.0}) + "\n")
    trainer = Trainer.from_checkpoint(tmp_path, epochs=3, quiet=True)
    assert [r["epoch"] for r in trainer.history] == [1, 2]
    trainer.fit(toy_data())
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1, 2, 3]


# --------------------------------------------------------------------------
# Metrics and data
# --------------------------------------------------------------------------

def test_each_epoch_appends_train_and_test_terms_in_nats_per_image(tmp_path):
    history = Trainer(toy_model(), options(epochs=2, eval_iwae_k=5), tmp_path, quiet=True).fit(toy_data())
    records = read_metrics(tmp_path)
    assert records == history and [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert r["train_loss"] == pytest.approx(r["train_nelbo"])  # beta = 1 without warm-up
        assert r["test_nelbo"] == pytest.approx(r["test_recon"] + r["test_kl"])
        assert r["test_kl"] > 0 and r["iwae_k"] == 5
        assert r["test_iwae_nll"] <= r["test_nelbo"] + 1.0
    assert records[1]["test_nelbo"] < records[0]["test_nelbo"]  # it learns
    assert records[1]["step"] == 2 * 10


def test_dynamic_binarization_draws_fresh_zeros_and_ones_each_epoch():
    data = toy_data()
    data.binarize = "dynamic"
    model = toy_model()
    seen = []  # per epoch, the sum of all training pixels the model was given
    real = model.loss_and_grads

    def recording(x, eps=None, beta=1.0):
        assert set(np.unique(x)) <= {0.0, 1.0}
        seen.append(float(x.sum()))
        return real(x, eps, beta)

    model.loss_and_grads = recording
    Trainer(model, options(epochs=2), quiet=True).fit(data)
    epoch_sums = sum(seen[:10]), sum(seen[10:])
    assert epoch_sums[0] != epoch_sums[1]
    assert epoch_sums[0] == pytest.approx(data.x_train.sum(), rel=0.05)  # Bernoulli(x) has mean x


def test_a_diverging_loss_stops_training_with_a_hint():
    model = toy_model()
    real = model.loss_and_grads
    model.loss_and_grads = lambda x, eps=None, beta=1.0: (lambda r: (r[0] * np.nan, *r[1:]))(real(x, eps, beta))
    with pytest.raises(TrainingDiverged, match="the loss became nan at epoch 1 step 1; try a lower learning rate"):
        Trainer(model, options(), quiet=True).fit(toy_data())


def write_idx_folder(folder, n_train=40, n_test=30):
    rng = np.random.default_rng(0)
    folder.mkdir()
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    return folder


@pytest.mark.parametrize("mode", ["threshold", "dynamic"])
def test_the_test_set_is_binarized_once_the_same_way_every_time(tmp_path, mode):
    folder = write_idx_folder(tmp_path / "idx")
    first = load_dataset(folder, binarize_mode=mode, quiet=True)
    second = load_dataset(folder, binarize_mode=mode, quiet=True)
    np.testing.assert_array_equal(first.x_test, second.x_test)
    assert set(np.unique(first.x_test)) == {0.0, 1.0}
    # threshold binarizes the training set now; dynamic keeps grey levels to sample each epoch
    assert (set(np.unique(first.x_train)) == {0.0, 1.0}) == (mode == "threshold")


def test_subset_keeps_the_first_n_training_images_and_the_whole_test_set(tmp_path):
    folder = write_idx_folder(tmp_path / "idx")
    full = load_dataset(folder, quiet=True)
    part = load_dataset(folder, subset=7, quiet=True)
    np.testing.assert_array_equal(part.x_train, full.x_train[:7])
    np.testing.assert_array_equal(part.y_train, full.y_train[:7])
    assert len(part.x_test) == 30 and part.x_train.dtype == np.float32 and part.x_train.max() <= 1


def test_run_folders_started_in_the_same_second_are_distinct(tmp_path):
    config = toy_model().config
    first, second = new_run_dir(tmp_path, config), new_run_dir(tmp_path, config)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.endswith("-vae-64-32-4")


# --------------------------------------------------------------------------
# A real run
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_10k():
    try:
        load_mnist(quiet=True)  # the cached files, or a download
    except DataUnavailableError as err:
        pytest.skip(str(err))
    return load_dataset(subset=10_000, quiet=True)


@pytest.mark.slow
def test_one_epoch_on_10k_real_mnist_images_learns_what_no_broken_model_can(mnist_10k):
    # Test negative ELBO on the 10,000 MNIST test images (grey levels, Bernoulli decoder),
    # measured when this test was written:
    #   untrained 784-400-20 model:                                  549.1 nats
    #   best model that ignores z (each pixel's training mean):      206.0 nats
    #   this test, 1 epoch on 10k images, batch 32 (313 steps):      147.5 - 149.0 (seeds 0-2)
    # 175 leaves ~26 nats of margin on either side.
    history = Trainer(VAE(seed=0), TrainOptions(epochs=1, batch_size=32), quiet=True).fit(mnist_10k)
    assert history[0]["test_nelbo"] < 175
    assert history[0]["test_kl"] > 5  # it uses z: a collapsed posterior would have KL ~ 0



def test_options_saved_with_the_old_binarize_name_static_load_as_threshold():
    with pytest.warns(FutureWarning, match="now called 'threshold'"):
        opts = TrainOptions.from_dict({"binarize": "static", "epochs": 2})
    assert opts.binarize == "threshold" and opts.epochs == 2


def test_a_second_trainer_in_a_run_folder_in_use_stops_before_touching_it(tmp_path):
    from numpy_vae.runs import RunFolderBusyError
    Trainer(toy_model(), options(epochs=2), tmp_path / "run", quiet=True).fit(toy_data())
    first = Trainer.from_checkpoint(tmp_path / "run", quiet=True)
    (tmp_path / "run" / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3}\n')
    with pytest.raises(RunFolderBusyError, match="in use: another trainer of this process"):
        Trainer.from_checkpoint(tmp_path / "run", quiet=True)
    # the second did not rewind metrics.jsonl to the checkpoint's epoch 2
    assert [r["epoch"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3]
    first.release_run_folder()
    Trainer.from_checkpoint(tmp_path / "run", quiet=True)
    assert [r["epoch"] for r in read_metrics(tmp_path / "run")] == [1, 2]


def test_ctrl_c_just_after_a_checkpoint_replaced_the_old_one_names_the_new_one(tmp_path, monkeypatch):
    """Ctrl-C can land inside save(), after the new file is in place: the
    report must name the epoch on disk, not the one before it."""
    from numpy_vae import checkpoint_format
    from numpy_vae.checkpoint import load_checkpoint
    real_fsync, saves = checkpoint_format._fsync_folder, []

    def ctrl_c_after_the_second_rename(folder):  # saves: before epoch 1, after epoch 1
        real_fsync(folder)
        saves.append(folder)
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_format, "_fsync_folder", ctrl_c_after_the_second_rename)
    trainer = Trainer(toy_model(), options(epochs=3), tmp_path / "run", quiet=True)
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.fit(toy_data())
    assert load_checkpoint(tmp_path / "run").epoch == 1
    assert stop.value.saved_epoch == 1


def _blas_pool_threads():
    from threadpoolctl import threadpool_info
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_training_runs_with_the_chosen_blas_threads_and_gives_the_setting_back(capsys):
    trainer = Trainer(toy_model(), options(epochs=1), quiet=False, blas_threads=1)
    before = _blas_pool_threads()
    seen = []
    real_epoch = trainer.train_epoch

    def watched_epoch(x, y=None):
        seen.append(_blas_pool_threads())
        return real_epoch(x, y)
    trainer.train_epoch = watched_epoch
    trainer.fit(toy_data())
    assert seen == [[1] * len(before)]
    assert _blas_pool_threads() == before
    assert "1 BLAS threads (--blas-threads)" in capsys.readouterr().out


def test_auto_threads_take_the_cores_other_programs_leave_free(monkeypatch, capsys):
    from numpy_vae import threads
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: [0, 1])
    monkeypatch.setattr(threads, "busy_cores", lambda cpus: (1.0, "a stand-in probe"))
    trainer = Trainer(toy_model(), options(epochs=1), quiet=False)
    seen = []
    real_epoch = trainer.train_epoch
    trainer.train_epoch = lambda x, y=None: seen.append(_blas_pool_threads()) or real_epoch(x, y)
    trainer.fit(toy_data())
    assert seen == [[1] * len(_blas_pool_threads())]
    assert "1 BLAS thread of 2 cores (1.0 busy with other programs, a stand-in probe" in capsys.readouterr().out
