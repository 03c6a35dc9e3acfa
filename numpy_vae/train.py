"""Training a VAE: mini-batch gradient descent on the negative ELBO.

One epoch, as ``Trainer.train_epoch`` runs it:

    x     = binarize(x_train, mode, data_rng)     "dynamic": fresh 0/1 images each epoch
    optimizer.lr = learning_rate(schedule, lr, epoch)   constant, or a recipe's (recipes.py)
    order = data_rng.permutation(N)               seeded shuffling
    for each mini-batch of B indices in order:
        beta = min(1, step / (warmup_epochs * steps_per_epoch))   KL warm-up (1 without)
        loss, grads, info = model.loss_and_grads(x[batch], beta=beta,
                                                 objective=objective, k=k)   "elbo" or "iwae"
        optimizer.step(grads)                     Adam by default

and then ``Trainer.fit`` measures the test negative ELBO and the active
units (evaluate.py), appends one JSON line to ``metrics.jsonl`` and writes ``checkpoint.npz``.

Two random generators, both saved in every checkpoint:
- the model's (``model.backend.rng``, seeded with ``seed``): initial weights
  and the eps of every training step;
- the data generator (``data_rng``, seeded with ``[seed, 1]``, a stream of
  its own): the order of the examples and the dynamic binarization.
With both restored, a resumed run repeats exactly the steps the
uninterrupted run would have taken: the same parameters, bit for bit.
A run resumed on another backend continues too (checkpoints hold NumPy
arrays), but a CuPy run's generator and NumPy's are of different kinds:
between the two, the model's noise goes on from a seed derived from the
saved state, and the run says so.

Ctrl-C: a checkpoint is written before the first epoch and after every
epoch, so the last one on disk is always the end of a completed epoch.  On
Ctrl-C training stops and ``TrainingInterrupted`` reports where it stopped
and which checkpoint to resume from; the partial epoch is not saved, and
resuming repeats it from its start (exactly).  Nothing in memory is saved:
Ctrl-C may land in the middle of an optimizer update, leaving parameters
half-updated, and the checkpoint on disk is never touched by that.

Other models.  What a model supports it says itself (``model.supports``,
numpy_vae/models.py): options it cannot honour (the IWAE objective, KL
warm-up, the IWAE bound after each epoch) are refused when the Trainer is
made, before any work.  A conditional VAE (``model.conditional``) gets each batch's
labels: ``loss_and_grads(x[batch], y[batch], beta=beta)``, and is
evaluated with the test labels.  A model with an ``after_step`` method (the
VQ-VAE: its EMA codebook update and dead-code restarts) has it called after
every optimizer step; one with ``usage`` (the VQ-VAE) adds its codebook
perplexity and dead codes over the epoch's steps to the epoch's metrics,
and one with ``fit_prior`` refits its prior over codes on the epoch's
training images before the checkpoint, so that every checkpoint samples.

Losses stay on the backend's device during an epoch; they are read
(``float()``, which waits for a GPU) only every ``log_every`` steps and at
the end of the epoch.

Divergence: every step records, on the device, its loss and, for each
gradient, max(g) - min(g) in float64: NaN reaches both, +inf the max, -inf
the min, so it is non-finite exactly when an element of g is.  Every ``log_every`` steps and at the end of the epoch
these records are read; the first non-finite one stops training with
``TrainingDiverged``, naming the epoch, the step and the quantity ("the
loss", "the gradient of encoder.0.W").  The parameters are checked too
before each checkpoint, so a checkpoint never holds NaN: the last good one
stays on disk.

Writing the run folder (numpy_vae/runs.py: a read-only disk, a full disk,
a path through a file) fails with ``RunFolderError``, one line naming what
could not be written, before the first epoch or at the save that failed.
The data comes from numpy_vae/dataset.py (``load_dataset``).  While a
trainer works in its run folder it holds the folder's lock
(``claim_run_folder``): a second process resuming the same run stops with
``RunFolderBusyError`` before it touches anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from numpy_vae import threads
from numpy_vae._memory import keep_freed_memory
from numpy_vae.checkpoint import (CHECKPOINT_NAME, CheckpointError, build_optimizer, load_checkpoint,
                                  load_model, save_checkpoint)
from numpy_vae.data import BINARIZE_MODES, binarize, binarize_mode
from numpy_vae.dataset import Dataset, load_dataset  # noqa: F401  (load_dataset: also importable from here)
from numpy_vae.evaluate import active_units, iwae_nll, negative_elbo
from numpy_vae.models import OBJECTIVES, check_objective
from numpy_vae.optim import Adam
from numpy_vae.recipes import SCHEDULES, learning_rate
from numpy_vae.runs import (CONFIG_NAME, METRICS_NAME, RunFolderError, RunFolderLock,  # noqa: F401
                            append_json_line, new_run_dir, read_metrics, rewind_metrics,
                            write_run_config, writing)

DATA_STREAM = 1          # data_rng = default_rng([seed, DATA_STREAM])


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training.

    epoch, step : int          where it stopped (epoch counted from 1, step
                               within that epoch, completed steps)
    checkpoint : Path | None   the last checkpoint on disk (None: nothing saved)
    saved_epoch : int | None   the epoch that checkpoint ends (0: before training)
    """

    def __init__(self, epoch, step, checkpoint, saved_epoch):
        super().__init__(f"interrupted at epoch {epoch} step {step}")
        self.epoch, self.step = epoch, step
        self.checkpoint, self.saved_epoch = checkpoint, saved_epoch


class TrainingDiverged(RuntimeError):
    """The loss, a gradient or a parameter became NaN or infinite."""


@dataclass
class TrainOptions:
    """Everything about a run that is not the model.

    epochs : int            total epochs (a resumed run continues up to it)
    batch_size : int        examples per gradient step
    lr : float              Adam's learning rate (of the first epoch, with a schedule)
    lr_schedule : str       "constant" or "burda2015" (numpy_vae/recipes.py)
    adam_eps : float        Adam's epsilon
    objective : str         "elbo" or "iwae" (numpy_vae/iwae.py)
    k : int                 importance samples per example for "iwae" (1 for "elbo")
    kl_warmup : float       epochs over which beta grows from 0 to 1 (0: beta = 1)
    binarize : str          "none", "threshold" or "dynamic" (see data.binarize)
    seed : int              seeds the data generator (the model has its own seed)
    eval_iwae_k : int       IWAE samples for the test bound after each epoch (0: skip)
    eval_batch_size : int   images per batch when evaluating
    log_every : int         steps between readings of the loss (progress bar)
    data_dir : str | None   where the IDX files are (None: the MNIST cache)
    subset : int | None     train on the first `subset` training images only
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: str = "constant"
    adam_eps: float = 1e-8
    objective: str = "elbo"
    k: int = 1
    kl_warmup: float = 0.0
    binarize: str = "none"
    seed: int = 0
    eval_iwae_k: int = 0
    eval_batch_size: int = 1000
    log_every: int = 20
    data_dir: str | None = None
    subset: int | None = None

    def __post_init__(self):
        positive = {"epochs": self.epochs, "batch_size": self.batch_size,
                    "eval_batch_size": self.eval_batch_size, "log_every": self.log_every}
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not self.lr > 0:
            raise ValueError(f"the learning rate must be positive, got {self.lr}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {self.lr_schedule!r}")
        if not self.adam_eps > 0:
            raise ValueError(f"adam_eps must be positive, got {self.adam_eps}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        check_objective(self.objective, self.k)
        if self.objective == "iwae" and self.kl_warmup > 0:
            raise ValueError("KL warm-up scales the KL term, which the IWAE objective does not have; "
                             "use kl_warmup=0 with objective='iwae'")
        if self.kl_warmup < 0:
            raise ValueError(f"kl_warmup must be 0 or more epochs, got {self.kl_warmup}")
        if self.eval_iwae_k < 0:
            raise ValueError(f"eval_iwae_k must be 0 (skip) or more, got {self.eval_iwae_k}")
        if self.binarize not in BINARIZE_MODES and self.binarize != "static":
            raise ValueError(f"binarize must be one of {', '.join(BINARIZE_MODES)}, got {self.binarize!r}")
        self.binarize = binarize_mode(self.binarize)  # "static", the old name, warns
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"subset must be at least 1 image, got {self.subset}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainOptions":
        """Build from a saved dict; keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# --------------------------------------------------------------------------
# The training loop
# --------------------------------------------------------------------------

def kl_weight(step: int, steps_per_epoch: int, warmup_epochs: float) -> float:
    """beta for the step after ``step`` completed steps: linear from 0 to 1.

        beta = min(1, step / (warmup_epochs * steps_per_epoch)),   1 if warmup_epochs == 0
    """
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, step / (warmup_epochs * steps_per_epoch))


class Trainer:
    """Trains a model epoch by epoch, writing metrics and checkpoints to ``run_dir``.

    trainer = Trainer(model, TrainOptions(epochs=10), run_dir="runs/my-run")
    history = trainer.fit(load_dataset())        # list of per-epoch metrics dicts

    run_dir=None trains without writing anything (no checkpoints, no metrics file).
    """

    def __init__(self, model, options: TrainOptions | None = None, run_dir=None, *,
                 optimizer=None, quiet: bool = False, blas_threads=None):
        keep_freed_memory()  # a step frees dozens of temporaries; see numpy_vae/_memory.py
        self.model = model
        # None: $NUMPY_VAE_BLAS_THREADS, else "auto" (numpy_vae/threads.py); not
        # a TrainOptions field: it is about the machine, not the run
        self.blas_threads = blas_threads
        self.options = options or TrainOptions()
        self.optimizer = optimizer or Adam(model.params, lr=self.options.lr, eps=self.options.adam_eps,
                                           backend=model.backend)
        self.data_rng = np.random.default_rng([self.options.seed, DATA_STREAM])
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.quiet = quiet
        # what the options ask of the model, refused before any work (UnsupportedError)
        model.check_training(objective=self.options.objective, kl_warmup=self.options.kl_warmup,
                             eval_iwae_k=self.options.eval_iwae_k)
        self.epoch = 0      # epochs completed
        self.step = 0       # optimizer steps completed, all epochs
        self.history = []   # one metrics dict per completed epoch
        self.saved_epoch = None  # the epoch the checkpoint on disk ends (None: none written)
        self._current_epoch = 1  # the epoch being worked on, counted from 1 (for messages)
        self._step_in_epoch = 0
        self._lock = None  # RunFolderLock while this trainer works in run_dir

    def claim_run_folder(self) -> None:
        """Create run_dir if needed and lock it for this process (numpy_vae/runs.py).

        Raises RunFolderBusyError, before touching anything of the run, if
        another process holds it.  ``fit`` claims the folder itself and lets
        go when it returns; ``from_checkpoint`` claims it before reading the
        metrics file it rewinds.
        """
        if self.run_dir is None or (self._lock is not None and self._lock.held):
            return
        with writing("create the run folder", self.run_dir):
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock = RunFolderLock(self.run_dir)

    def release_run_folder(self) -> None:
        """Let another process train in run_dir (also done when this process ends)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / CHECKPOINT_NAME if self.run_dir is not None else None

    # --- resuming ------------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, path_or_run_dir, *, backend=None, epochs=None, quiet=False,
                        **option_changes) -> "Trainer":
        """Continue a run from its checkpoint (a file, or a run folder).

        epochs: the new total number of epochs (default: the saved one).
        option_changes: other TrainOptions to replace (e.g. data_dir, when
        the data moved); changing what shapes the steps (lr, batch_size,
        seed, ...) makes the continuation differ from the original run.  A
        new lr is given to the restored optimizer, whose moments carry on.
        """
        model, checkpoint = load_model(path_or_run_dir, backend=backend)
        options = TrainOptions.from_dict(checkpoint.options)
        changes = dict(option_changes, **({"epochs": epochs} if epochs is not None else {}))
        options = dataclasses.replace(options, **changes)
        dropped_warmup = options.kl_warmup > 0 and not model.supports("kl_weight")
        if dropped_warmup:  # saved by an older version that let it through; it never acted
            options = dataclasses.replace(options, kl_warmup=0.0)
        missing = [what for what, ok in (("optimizer state", checkpoint.optimizer is not None),
                                         ("generator states", {"model", "data"} <= set(checkpoint.rng_states)))
                   if not ok]
        if missing:
            raise CheckpointError(f"{checkpoint.path} holds no {' and no '.join(missing)}: it can be "
                                  f"evaluated and sampled, not resumed")
        optimizer = build_optimizer(checkpoint.optimizer, model.params, model.backend)
        if "lr" in changes:  # a new rate for the saved optimizer (its moments carry on)
            optimizer.lr = float(options.lr)
        trainer = cls(model, options, run_dir=checkpoint.path.parent, optimizer=optimizer,
                      quiet=quiet)
        trainer.claim_run_folder()  # before anything of the run is read back or rewritten
        if dropped_warmup:
            trainer._say(f"note: the saved kl_warmup is ignored: {model.WHY_NOT['kl_weight']}")
        trainer.epoch = trainer.saved_epoch = checkpoint.epoch
        trainer.step = optimizer.t
        saved = checkpoint.rng_states["model"]
        if model.backend.accepts_rng_state(saved):
            model.backend.set_rng_state(saved)
        else:
            # A CuPy run resumed on the CPU, or the other way round: the other
            # kind of generator cannot take the saved state, so the noise goes
            # on from a seed derived from it (still reproducible, not the same draws).
            model.backend.reseed(_seed_from_state(saved))
            trainer._say(f"note: backend {model.backend.name!r} cannot continue the saved generator "
                         f"({_generator_kind(saved)}); its noise goes on from a seed derived from "
                         f"the saved state, so the draws differ from a resume on the original backend")
        trainer.data_rng.bit_generator.state = checkpoint.rng_states["data"]
        trainer.history = rewind_metrics(trainer.run_dir / METRICS_NAME, checkpoint.epoch)
        return trainer

    # --- the loop ----------------------------------------------------------------

    def fit(self, data: Dataset) -> list[dict]:
        """Train until ``options.epochs`` epochs are complete; returns the history.

        Raises TrainingInterrupted on Ctrl-C (see the module docstring),
        TrainingDiverged if the loss, a gradient or a parameter stops being
        finite, and RunFolderError if the run folder cannot be written.

        BLAS runs with the thread count ``choose_threads`` picks, and gets
        its previous setting back when ``fit`` returns.
        """
        self.claim_run_folder()
        try:
            with threads.blas_threads(self.choose_threads()):
                return self._fit(data)
        finally:
            self.release_run_folder()

    def choose_threads(self) -> threads.ThreadChoice:
        """The BLAS threads for this run (numpy_vae/threads.py), said in one line."""
        products = threads.model_products(self.model.params, self.options.batch_size)
        choice = threads.resolve(self.blas_threads, products=products)
        self._say(choice.reason)
        return choice

    def _fit(self, data: Dataset) -> list[dict]:
        bk = self.model.backend
        x_test = bk.asarray(data.x_test)
        conditional = getattr(self.model, "conditional", False)
        y_train = np.asarray(data.y_train) if conditional else None
        y_test = np.asarray(data.y_test) if conditional else None
        # the same training images every epoch, unless drawn afresh ("dynamic")
        x_fixed = bk.asarray(data.x_train) if data.binarize != "dynamic" else None
        if self.run_dir is not None and self.epoch == 0 and not self.checkpoint_path.exists():
            self.save()  # so that even a first epoch cut short can be resumed
        try:
            while self.epoch < self.options.epochs:
                self._current_epoch = self.epoch + 1
                self.optimizer.lr = learning_rate(self.options.lr_schedule, self.options.lr, self.epoch)
                if x_fixed is not None:
                    x_epoch = x_fixed
                else:
                    x_epoch = bk.asarray(binarize(data.x_train, "dynamic", self.data_rng))
                start = time.perf_counter()
                train_metrics = self.train_epoch(x_epoch, y_train)
                if hasattr(self.model, "fit_prior"):
                    self.model.fit_prior(x_epoch)
                epoch_time = time.perf_counter() - start
                start = time.perf_counter()
                test_metrics = self.evaluate(x_test, y_test)
                eval_time = time.perf_counter() - start
                self.epoch += 1
                record = {"epoch": self.epoch, "step": self.step, "lr": self.optimizer.lr, **train_metrics,
                          **test_metrics, "epoch_time_s": round(epoch_time, 4),
                          "eval_time_s": round(eval_time, 4)}
                self.history.append(record)
                if self.run_dir is not None:
                    # metrics first: a resume rewinds metrics.jsonl to the checkpoint's epoch
                    append_json_line(self.run_dir / METRICS_NAME, record)
                    self.save()
                self._say(_epoch_line(record, self.options.epochs))
        except KeyboardInterrupt:
            self.saved_epoch = self._epoch_on_disk()
            saved = self.checkpoint_path if self.saved_epoch is not None else None
            raise TrainingInterrupted(self._current_epoch, self._step_in_epoch, saved,
                                      self.saved_epoch) from None
        return self.history

    def train_epoch(self, x, y=None) -> dict:
        """One pass over ``x`` (N, input_dim) in a fresh random order.

        y: (N,) integer labels, for a conditional model (else None).

        Returns the means over the epoch's examples of the training loss
        (recon + beta * kl), of recon and kl, their sum (the negative ELBO
        with the parameters of the moment), and the last beta.
        """
        bk, xp, opt = self.model.backend, self.model.backend.xp, self.options
        n = len(x)
        steps_per_epoch = math.ceil(n / opt.batch_size)
        order = bk.asarray(self.data_rng.permutation(n), dtype=np.int64)
        # One row per step, left on the device and read back only every
        # log_every steps (no sync per step): the step's loss, recon and kl,
        # then ops.finite_check of each gradient (0, or NaN if it holds inf or NaN).
        records, sizes = [], []
        sums = np.zeros(3)  # loss, recon, kl, summed over the examples read back so far
        beta = 1.0
        objective = {} if opt.objective == "elbo" else {"objective": opt.objective, "k": opt.k}
        after_step = getattr(self.model, "after_step", None)
        if y is not None:
            y = np.asarray(y)
            order_host = bk.to_numpy(order)
        self._step_in_epoch = 0
        with tqdm(total=steps_per_epoch, desc=f"epoch {self.epoch + 1}/{opt.epochs}",
                  unit="step", leave=False, disable=self.quiet, file=sys.stderr) as bar:
            for i in range(steps_per_epoch):
                batch = order[i * opt.batch_size:(i + 1) * opt.batch_size]
                beta = kl_weight(self.step, steps_per_epoch, opt.kl_warmup)
                if y is None:
                    loss, grads, info = self.model.loss_and_grads(x[batch], beta=beta, **objective)
                else:
                    labels = y[order_host[i * opt.batch_size:(i + 1) * opt.batch_size]]
                    loss, grads, info = self.model.loss_and_grads(x[batch], labels, beta=beta,
                                                                  **objective)
                records.append(xp.stack([xp.asarray(v, dtype=np.float64) for v in (loss, info["recon"], info["kl"])]
                                        + [bk.ops.finite_check(g) for g in grads.values()]))
                sizes.append(len(batch))
                self.optimizer.step(grads)
                if after_step is not None:
                    after_step()
                self.step += 1
                self._step_in_epoch = i + 1
                if (i + 1) % opt.log_every == 0:
                    sums += self._read_records(records, sizes, first_step=i + 2 - len(records),
                                               names=list(grads))
                    records, sizes = [], []
                    seen = min((i + 1) * opt.batch_size, n)
                    bar.set_postfix(loss=f"{sums[0] / seen:.2f}", refresh=False)
                bar.update(1)
        if records:
            sums += self._read_records(records, sizes, first_step=steps_per_epoch + 1 - len(records),
                                       names=list(grads))
        self._check_params_finite()
        loss_mean, recon_mean, kl_mean = sums / n
        metrics = {"train_loss": float(loss_mean), "train_nelbo": float(recon_mean + kl_mean),
                   "train_recon": float(recon_mean), "train_kl": float(kl_mean), "beta": beta}
        if hasattr(self.model, "usage"):
            metrics.update(self.model.usage(reset=True))  # codebook perplexity and dead codes
        return metrics

    def evaluate(self, x_test, y_test=None) -> dict:
        """Test negative ELBO, active units (for a VAE), and the IWAE bound if
        eval_iwae_k > 0; seeded so every epoch uses the same noise and the
        numbers are comparable.  y_test: the labels, for a conditional model."""
        opt = self.options
        result = negative_elbo(self.model, x_test, batch_size=opt.eval_batch_size, seed=opt.seed,
                               y=y_test)
        metrics = {"test_nelbo": result["nelbo"], "test_recon": result["recon"],
                   "test_kl": result["kl"]}
        if self.model.supports("active_units") and len(x_test) >= 2:
            metrics["active_units"] = active_units(self.model, x_test,
                                                   batch_size=opt.eval_batch_size)["active_units"]
        if opt.eval_iwae_k > 0:
            metrics["test_iwae_nll"] = iwae_nll(self.model, x_test, opt.eval_iwae_k, seed=opt.seed,
                                                progress=not self.quiet)
            metrics["iwae_k"] = opt.eval_iwae_k
        return metrics

    def save(self) -> Path:
        """Write the checkpoint (model, optimizer, epoch, both generators, options)."""
        rng_states = {"model": self.model.backend.get_rng_state(),
                      "data": self.data_rng.bit_generator.state}
        what = "write the checkpoint"
        if self.saved_epoch is not None:
            what += f" of epoch {self.epoch} (the one of epoch {self.saved_epoch} is intact)"
        with writing(what, self.checkpoint_path):
            path = save_checkpoint(self.checkpoint_path, self.model, self.optimizer, epoch=self.epoch,
                                   rng_states=rng_states, options=self.options.to_dict())
        self.saved_epoch = self.epoch
        return path

    def _epoch_on_disk(self) -> int | None:
        """The epoch of the checkpoint on disk (None: none).  After Ctrl-C the
        file is the truth: the signal can land inside ``save`` after the new
        file replaced the old one, before ``saved_epoch`` was updated."""
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return self.saved_epoch
        try:
            return load_checkpoint(self.checkpoint_path).epoch
        except CheckpointError:
            return self.saved_epoch

    def _read_records(self, records: list, sizes: list[int], first_step: int,
                      names: list[str]) -> np.ndarray:
        """Read the steps' records back; the sums of loss, recon and kl over their examples.

        records: one device array per step, [loss, recon, kl, finite_check(g)
        for g in grads], the first of them for step ``first_step`` of the
        current epoch; sizes: the examples in each step.  Raises
        TrainingDiverged at the first non-finite entry.
        """
        bk = self.model.backend
        table = bk.to_numpy(bk.xp.stack(records))  # (steps, 3 + len(names)), one host sync
        bad = np.argwhere(~np.isfinite(table))
        if len(bad):
            row, col = bad[0]  # the earliest step; in it, the loss comes before its gradients
            what = f"the loss became {table[row, 0]}" if col < 3 else \
                f"the gradient of {names[col - 3]} became non-finite"
            raise TrainingDiverged(
                f"{what} at epoch {self.epoch + 1} step "
                f"{first_step + row}; try a lower learning rate (now {self.optimizer.lr:g})")
        return np.asarray(sizes, dtype=np.float64) @ table[:, :3]

    def _check_params_finite(self) -> None:
        """Before a checkpoint: an update can overflow even from finite gradients."""
        xp = self.model.backend.xp
        for name, p in self.model.params.items():
            if not bool(xp.isfinite(p).all()):
                raise TrainingDiverged(
                    f"the parameter {name} became non-finite at epoch {self.epoch + 1} step "
                    f"{self._step_in_epoch}; try a lower learning rate (now {self.optimizer.lr:g})")

    def _say(self, line: str) -> None:
        if not self.quiet:
            tqdm.write(line, file=sys.stdout)


def _seed_from_state(state) -> int:
    """A 64-bit seed that depends on every value of a generator state."""
    text = json.dumps(state, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _generator_kind(state) -> str:
    return str(state.get("bit_generator", "unknown")) if isinstance(state, dict) else "unknown"


def _epoch_line(r: dict, total_epochs: int) -> str:
    """E.g. 'epoch  3/10  train -ELBO 110.21 (recon 85.30 + KL 24.91)  test ...  2.0 s'."""
    width = len(str(total_epochs))
    line = (f"epoch {r['epoch']:>{width}}/{total_epochs}  "
            f"train -ELBO {r['train_nelbo']:.2f} (recon {r['train_recon']:.2f} + KL {r['train_kl']:.2f})  "
            f"test -ELBO {r['test_nelbo']:.2f} (recon {r['test_recon']:.2f} + KL {r['test_kl']:.2f})")
    if "active_units" in r:
        line += f"  active units {r['active_units']}"
    if "test_iwae_nll" in r:
        line += f"  test IWAE(K={r['iwae_k']}) {r['test_iwae_nll']:.2f}"
    if "perplexity" in r:
        line += f"  codebook perplexity {r['perplexity']:.1f}, {r['dead_codes']} dead"
    if r["beta"] < 1:
        line += f"  beta {r['beta']:.2f}"
    return line + f"  {r['epoch_time_s']:.1f} s"


__all__ = ["TrainOptions", "Trainer", "Dataset", "load_dataset", "kl_weight",
           "TrainingInterrupted", "TrainingDiverged", "RunFolderError", "new_run_dir", "write_run_config",
           "read_metrics", "METRICS_NAME", "CONFIG_NAME"]
