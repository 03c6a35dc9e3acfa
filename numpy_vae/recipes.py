"""Published training recipes: a model, an objective and a learning-rate schedule.

One recipe so far, ``burda2015``: the one-stochastic-layer MNIST model of
Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders" (2015),
section 5 and appendix:

    model      784-200-200-50, tanh, Bernoulli likelihood
    data       dynamic binarization (a fresh Bernoulli draw of every pixel
               each epoch); the test set binarized once with a fixed seed
    optimizer  Adam, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-4, batch 20
    schedule   for i = 0..7: 3^i epochs at learning rate 0.001 * 10^(-i/7)
               (1 + 3 + 9 + ... + 2187 = 3280 epochs in all)

The objective (ELBO, or IWAE with k samples) is chosen separately, as in
the paper, which trains both with the same recipe.

``learning_rate(schedule, base_lr, epoch)`` is the rate of the epoch after
``epoch`` completed ones: a function of the epoch alone, so that a resumed
run sets it from the checkpoint's epoch and continues exactly.
"""

from __future__ import annotations

SCHEDULES = ("constant", "burda2015")
BURDA_STAGES = 8  # i = 0..7


def burda2015_stage(epoch: int) -> int:
    """The stage i of the epoch after ``epoch`` completed ones: stage i holds
    epochs (3^i - 1) / 2 .. (3^(i+1) - 1) / 2 - 1 (counted from 0); the last
    stage goes on if the run is longer."""
    if epoch < 0:
        raise ValueError(f"epoch must be 0 or more, got {epoch}")
    i, end = 0, 1
    while epoch >= end and i < BURDA_STAGES - 1:
        i += 1
        end += 3 ** i
    return i


def burda2015_epochs() -> int:
    """Total epochs of the schedule: sum_{i=0..7} 3^i = 3280."""
    return sum(3 ** i for i in range(BURDA_STAGES))


def learning_rate(schedule: str, base_lr: float, epoch: int) -> float:
    """The learning rate for the epoch after ``epoch`` completed ones.

    "constant": base_lr;  "burda2015": base_lr * 10^(-i / 7), i = burda2015_stage(epoch).
    """
    if schedule == "constant":
        return base_lr
    if schedule == "burda2015":
        return base_lr * 10.0 ** (-burda2015_stage(epoch) / 7)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")


# The recipe's settings, by the names of the model config and of the training options.
BURDA2015 = {
    "model": dict(model="vae", input_dim=784, hidden_dims=[200, 200], latent_dim=50,
                  likelihood="bernoulli", activation="tanh"),
    "options": dict(epochs=burda2015_epochs(), batch_size=20, lr=1e-3, adam_eps=1e-4,
                    lr_schedule="burda2015", binarize="dynamic"),
}
RECIPES = {"burda2015": BURDA2015}


__all__ = ["SCHEDULES", "RECIPES", "BURDA2015", "learning_rate", "burda2015_stage",
           "burda2015_epochs"]
