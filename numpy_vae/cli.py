"""The ``numpy-vae`` command (also ``python -m numpy_vae``).

    numpy-vae train                      train the default recipe on MNIST into runs/<new folder>
    numpy-vae train --resume RUN         continue a stopped run exactly where its checkpoint ends
    numpy-vae evaluate RUN --iwae-k 5000 test negative ELBO and IWAE bound, with their times
    numpy-vae sample RUN -n 64 --out samples.png
    numpy-vae plot RUN                   (re)draw every figure of a run
    numpy-vae gradcheck                  finite-difference check of a model's gradients
    numpy-vae exercise [N [FILE]]        check your solution of a lesson exercise (no N: list them)

``numpy-vae COMMAND --help`` lists every option with its default.

Exit codes: 0 success; 1 a known problem, reported in one line starting
"numpy-vae: error:" (no data, a bad checkpoint, a backend that cannot run
here, a run folder that cannot be written, a diverging loss, a failed
gradient check); 2 bad arguments (argparse's message);
130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

from numpy_vae._memory import keep_freed_memory
from numpy_vae.backend import BACKEND_NAMES, ENV_VAR, BackendUnavailableError, resolve_backend_name
from numpy_vae.checkpoint import CheckpointError
from numpy_vae.data import DataUnavailableError, IDXError
from numpy_vae.runs import RunFolderError

PROG = "numpy-vae"
EXIT_ERROR, EXIT_INTERRUPTED = 1, 130  # argparse itself exits with 2 on bad arguments
EVALUATION_NAME = "evaluation.jsonl"

LIKELIHOOD_CHOICES = ("bernoulli", "gaussian", "gaussian_learned")
ACTIVATION_CHOICES = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus")


# Errors we can explain in one line; anything else is a bug and keeps its traceback.
_KNOWN_ERRORS = (DataUnavailableError, IDXError, CheckpointError, BackendUnavailableError,
                 RunFolderError)


# --------------------------------------------------------------------------
# Argument types: a bad value becomes argparse's own message and exit code 2
# --------------------------------------------------------------------------

def _positive_int(text):
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative_int(text):
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive integer, got {text!r}")
    return value


def _int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _at_least_two(text):
    value = _int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be 2 or more, got {text!r}")
    return value


def _float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _positive_float(text):
    value = _float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _non_negative_float(text):
    value = _float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def _blas_threads(text):
    from numpy_vae.threads import parse_setting
    try:
        return parse_setting(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _int_list(text):
    """'400' -> (400,);  '512,256' -> (512, 256);  '' -> () (no hidden layer)."""
    if text.strip() == "":
        return ()
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 400 or 512,256, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return values


def _dims_text(values):
    return ",".join(str(v) for v in values)


# --------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------

class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option; descriptions keep their line breaks.

    Options whose default is None or False (a flag) explain their default
    in words in their help, so "(default: None)" is left out.
    """

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter, allow_abbrev=False,
        description="A variational autoencoder written from scratch in NumPy.",
        epilog="Run 'numpy-vae COMMAND --help' for the options of each command.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train", formatter_class=_Formatter, allow_abbrev=False,
        help="train a VAE (with no options: the default recipe on MNIST)",
        description="Train a VAE.  With no options: the 784-400-20 Bernoulli VAE, ReLU, Adam 1e-3,\n"
                    "batch 128, 10 epochs, float32, on MNIST (downloaded if needed), into a new\n"
                    "run folder runs/YYYYmmdd-HHMMSS-... that receives metrics.jsonl, checkpoint.npz\n"
                    "(rewritten after every epoch) and the figures.\n\n"
                    "Ctrl-C stops training; the checkpoint of the last completed epoch stays on\n"
                    "disk, and --resume continues from it exactly (the partial epoch is redone).")
    _add_model_options(train)
    group = train.add_argument_group("training")
    group.add_argument("--recipe", choices=("burda2015",), default=None,
                       help="a published recipe: burda2015 is Burda et al.'s (2015) MNIST setting, "
                            "784-200-200-50 tanh, batch 20, Adam(0.9, 0.999, eps 1e-4), learning rate "
                            "0.001 * 10^(-i/7) for 3^i epochs, i = 0..7 (3280 epochs), dynamic "
                            "binarization; --epochs cuts it short.  The model, batch, learning-rate "
                            "and binarization options cannot be given with it")
    group.add_argument("--objective", choices=("elbo", "iwae"), default="elbo",
                       help="train on the ELBO (analytic KL) or on the importance-weighted bound "
                            "with --k samples per image")
    group.add_argument("--k", type=_positive_int, default=1,
                       help="importance samples per image for --objective iwae (1: the one-sample "
                            "ELBO with a sampled KL)")
    group.add_argument("--epochs", type=_positive_int, default=10,
                       help="total number of epochs (with --resume: the new total; with --recipe: "
                            "default the recipe's)")
    group.add_argument("--batch-size", type=_positive_int, default=128, help="images per step")
    group.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam's learning rate")
    group.add_argument("--kl-warmup", type=_non_negative_float, default=0.0, metavar="EPOCHS",
                       help="grow the KL weight beta from 0 to 1 over this many epochs (0: beta = 1)")
    group.add_argument("--binarize", choices=("none", "threshold", "dynamic", "static"), default="none",
                       help="pixels as grey levels in [0, 1] (none), thresholded at 0.5 (threshold; "
                            "'static' is its old name), or drawn as Bernoulli(pixel) afresh each "
                            "epoch (dynamic)")
    group.add_argument("--seed", type=_non_negative_int, default=0,
                       help="seeds the weights, the noise and the shuffling")
    group.add_argument("--eval-iwae-k", type=_non_negative_int, default=0, metavar="K",
                       help="after each epoch also compute the test IWAE bound with K samples "
                            "(0: skip; costs ~ K/5000 of an `evaluate --iwae-k 5000`)")
    group.add_argument("--subset", type=_positive_int, default=None, metavar="N",
                       help="train on the first N training images only (quick runs); "
                            "the test set stays complete")
    group = train.add_argument_group("files and output")
    group.add_argument("--data-dir", default=None, metavar="DIR",
                       help="folder with the four MNIST-layout IDX files (default: $NUMPY_VAE_DATA, "
                            "else the MNIST cache, downloading what is missing)")
    group.add_argument("--run-dir", default=None, metavar="DIR",
                       help="the run folder to create (default: runs/YYYYmmdd-HHMMSS-<model> "
                            "in the current folder)")
    group.add_argument("--resume", default=None, metavar="RUN_OR_CKPT",
                       help="continue the run in this folder (or from this checkpoint file) with its "
                            "saved settings; only --epochs, --backend, --data-dir, --eval-iwae-k, "
                            "--blas-threads and --quiet may be given with it")
    group.add_argument("--quiet", action="store_true",
                       help="no progress bars and no per-epoch lines")
    group = train.add_argument_group("speed")
    group.add_argument("--blas-threads", type=_blas_threads, default=None, metavar="N|auto|default",
                       help="threads for the matrix products: auto (the default, or "
                            "$NUMPY_VAE_BLAS_THREADS if set) takes the cores that other programs "
                            "leave free, at most what the matrices can use; default leaves "
                            "BLAS's own choice (one per core)")
    train.set_defaults(func=_cmd_train, parser=train)

    evaluate = commands.add_parser(
        "evaluate", formatter_class=_Formatter, allow_abbrev=False,
        help="test negative ELBO and IWAE bound of a trained model",
        description="Print the test negative ELBO (one sampled z per image), the active units and the\n"
                    "importance-weighted bound on -log p(x) with K samples, in nats per image, with\n"
                    "the time each took, and the protocol that says what the numbers are: only a\n"
                    "Bernoulli model trained with --binarize dynamic, on the test set binarized\n"
                    "once with its fixed seed, gives numbers comparable with papers.  Results are\n"
                    "also appended to RUN/evaluation.jsonl.\n\n"
                    "Cost: K importance samples for each of the 10,000 test images are 10,000 * K\n"
                    "decoder passes." + _IWAE_TIMING)
    evaluate.add_argument("run", metavar="RUN_OR_CKPT", help="a run folder or a checkpoint file")
    evaluate.add_argument("--iwae-k", type=_non_negative_int, default=5000, metavar="K",
                          help="importance samples per image (0: skip the IWAE bound); the "
                               "default takes about 15 minutes for the 10,000 MNIST test images "
                               "on 2 CPU cores, and the time grows in proportion to K")
    evaluate.add_argument("--batch-size", type=_positive_int, default=1000,
                          help="images per batch for the negative ELBO")
    evaluate.add_argument("--max-rows", type=_positive_int, default=None,
                          help="decoder rows per chunk for the IWAE bound (bounds the memory; "
                               "default: the model's, 8192 for the MLP (~25 MB per array), 1024 "
                               "for the convolutional VAE (~170 MB measured at the peak))")
    evaluate.add_argument("--seed", type=_non_negative_int, default=0, help="seeds the noise")
    evaluate.add_argument("--test-images", type=_positive_int, default=None, metavar="N",
                          help="evaluate on the first N test images only (quicker; the result "
                               "says N); default: all of them")
    _add_runtime_options(evaluate)
    evaluate.set_defaults(func=_cmd_evaluate, parser=evaluate)

    sample = commands.add_parser(
        "sample", formatter_class=_Formatter, allow_abbrev=False,
        help="draw images from a trained model into a PNG",
        description="Decode n draws z ~ N(0, I) and save them as one image grid.")
    sample.add_argument("run", metavar="RUN_OR_CKPT", help="a run folder or a checkpoint file")
    sample.add_argument("-n", type=_positive_int, default=64, help="number of images")
    sample.add_argument("--out", default=None, metavar="FILE.png",
                        help="where to write (default: RUN/samples-seed<seed>.png)")
    sample.add_argument("--seed", type=_non_negative_int, default=0, help="seeds the draws of z")
    sample.add_argument("--label", type=_non_negative_int, default=None,
                        help="a conditional VAE's digit to draw (default: 0, 1, ..., 9 in turn)")
    _add_backend_option(sample)
    sample.set_defaults(func=_cmd_sample, parser=sample)

    plot = commands.add_parser(
        "plot", formatter_class=_Formatter, allow_abbrev=False,
        help="(re)draw every figure of a run folder",
        description="Write reconstructions.png, samples.png, loss_curves.png and, for 2-D latent\n"
                    "models, latent_scatter.png and latent_manifold.png into the run folder.")
    plot.add_argument("run", metavar="RUN_DIR", help="a run folder")
    _add_runtime_options(plot)
    plot.set_defaults(func=_cmd_plot, parser=plot)

    gradcheck = commands.add_parser(
        "gradcheck", formatter_class=_Formatter, allow_abbrev=False,
        help="check a model's gradients against finite differences",
        description="Build the model in float64, compute its gradients on a small random batch\n"
                    "with fixed noise, and compare each parameter array with a finite-difference\n"
                    "estimate (on --max-elements random elements per array).  Prints the largest\n"
                    "relative error per array; exits with 1 if one reaches --threshold.\n\n"
                    "A finite difference whose step straddles a ReLU kink is not a derivative:\n"
                    "such elements (found from the forward pass alone) are left out and counted.")
    _add_model_options(gradcheck, with_dtype=False)
    gradcheck.add_argument("--batch", type=_positive_int, default=4, help="examples in the batch")
    gradcheck.add_argument("--max-elements", type=_non_negative_int, default=20,
                           help="elements checked per parameter array (0: all of them; slow "
                                "for big models)")
    gradcheck.add_argument("--beta", type=_non_negative_float, default=1.0, help="KL weight")
    gradcheck.add_argument("--objective", choices=("elbo", "iwae"), default="elbo",
                           help="check the ELBO's gradient or the importance-weighted bound's")
    gradcheck.add_argument("--k", type=_positive_int, default=1,
                           help="importance samples per image for --objective iwae")
    gradcheck.add_argument("--threshold", type=_positive_float, default=1e-6,
                           help="largest acceptable relative error (a correct backward pass "
                                "gives ~1e-8, a wrong one 1e-2 or more)")
    gradcheck.add_argument("--seed", type=_non_negative_int, default=0,
                           help="seeds the weights, the batch, the noise and the elements checked")
    gradcheck.set_defaults(func=_cmd_gradcheck, parser=gradcheck)
    _add_exercise_command(commands)
    return parser


def _add_model_options(parser, with_dtype=True):
    group = parser.add_argument_group("model")
    group.add_argument("--model", choices=("mlp", "conv", "cvae", "vqvae"), default="mlp",
                       help="MLP encoder/decoder, the convolutional one, the conditional VAE "
                            "(the digit's label enters both networks), or the VQ-VAE (discrete codes)")
    group.add_argument("--hidden-dims", type=_int_list, default="400", metavar="N[,N...]",
                       help="hidden layer widths of the MLP (the decoder mirrors them)")
    group.add_argument("--channels", type=_int_list, default="32,64", metavar="C1,C2",
                       help="feature maps of the two convolutions (--model conv)")
    group.add_argument("--latent-dim", type=_positive_int, default=20,
                       help="size of z (not for --model vqvae: D * d there)")
    group.add_argument("--n-slots", type=_positive_int, default=16, metavar="D",
                       help="--model vqvae: code symbols per image")
    group.add_argument("--slot-dim", type=_positive_int, default=8, metavar="d",
                       help="--model vqvae: size of each slot and codebook vector")
    group.add_argument("--n-codes", type=_at_least_two, default=64, metavar="K",
                       help="--model vqvae: codebook size (each slot is one of K codes, log2 K bits)")
    group.add_argument("--beta-commit", type=_non_negative_float, default=0.25,
                       help="--model vqvae: weight of the commitment term")
    group.add_argument("--codebook-update", choices=("ema", "gradient"), default="ema",
                       help="--model vqvae: codes as running means of their encoder outputs "
                            "(ema), or trained by the optimizer on the codebook term (gradient)")
    group.add_argument("--restart-every", type=_non_negative_int, default=100, metavar="STEPS",
                       help="--model vqvae: move codes unused for this many steps onto encoder "
                            "outputs (0: never)")
    group.add_argument("--likelihood", choices=LIKELIHOOD_CHOICES, default="bernoulli",
                       help="the decoder's distribution p(x|z)")
    group.add_argument("--activation", choices=ACTIVATION_CHOICES, default="relu",
                       help="hidden-layer activation")
    if with_dtype:
        group.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                           help="floating-point type of parameters and activations")
    _add_backend_option(group)


def _add_backend_option(parser):
    parser.add_argument("--backend", choices=BACKEND_NAMES, default=resolve_backend_name(None),
                        help="array backend; the default is $NUMPY_VAE_BACKEND if set, else numpy")


def _add_runtime_options(parser):
    _add_backend_option(parser)
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="folder with the IDX files (default: the one the run was trained on)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or data messages")


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------

def _model_config(args, dtype, parser) -> dict:
    config = dict(latent_dim=args.latent_dim, likelihood=args.likelihood,
                  activation=args.activation, dtype=dtype, seed=args.seed)
    if args.model == "conv":
        if len(args.channels) != 2:
            parser.error(f"argument --channels: the convolutional model needs two numbers "
                         f"C1,C2, got {_dims_text(args.channels)!r}")
        return dict(config, model="conv", input_dim=784, channels=list(args.channels))
    if args.model == "cvae":
        return dict(config, model="cvae", input_dim=784, hidden_dims=list(args.hidden_dims),
                    n_classes=10)
    if args.model == "vqvae":
        del config["latent_dim"]
        return dict(config, model="vqvae", input_dim=784, hidden_dims=list(args.hidden_dims),
                    n_slots=args.n_slots, slot_dim=args.slot_dim, n_codes=args.n_codes,
                    beta_commit=args.beta_commit, restart_every=args.restart_every,
                    codebook_update=args.codebook_update)
    return dict(config, model="vae", input_dim=784, hidden_dims=list(args.hidden_dims))


# Measured with benchmarks/burda2015_table.py and bench_iwae.py; see README.md.
_IWAE_TIMING = ("  Measured on a 2-core machine, Numba backend, 784-200-200-50\n"
                "model: K=5000 took 9.5 minutes for all 10,000 test images with one BLAS thread\n"
                "on an otherwise idle machine, 15-25 minutes on one shared with other jobs; use\n"
                "--test-images N for a quicker number on the first N.  The NumPy backend is\n"
                "about 1.4x slower.")


# options whose saved value a resumed run must keep (flag -> TrainOptions or config field)
_FIXED_WHEN_RESUMING = ("--model", "--hidden-dims", "--channels", "--latent-dim", "--n-slots",
                        "--slot-dim", "--n-codes", "--beta-commit", "--codebook-update",
                        "--restart-every", "--likelihood",
                        "--activation", "--dtype", "--batch-size", "--lr", "--kl-warmup",
                        "--binarize", "--seed", "--subset", "--run-dir", "--recipe", "--objective",
                        "--k")
# what --recipe sets, so cannot be given beside it
_SET_BY_RECIPE = ("--model", "--hidden-dims", "--channels", "--latent-dim", "--likelihood",
                  "--activation", "--batch-size", "--lr", "--binarize", "--kl-warmup")


def _given(argv, flag):
    """Was ``flag`` written on the command line (as ``--flag V`` or ``--flag=V``)?"""
    return any(token == flag or token.startswith(flag + "=") for token in argv)


# the option that asks a model for each feature of models.FEATURES
_FLAG_OF_FEATURE = {"iwae_objective": "--objective iwae", "iwae_bound": "--eval-iwae-k",
                    "kl_weight": "--kl-warmup", "active_units": "active units"}


def _check_supported(parser, check, flag=None, **asked):
    """Run a model's check (``check_training``, ``require``, or what makes a
    Trainer, which calls it); its refusal becomes argparse's one-line
    message and exit 2, before anything is written.  Returns what ``check`` returns."""
    from numpy_vae.models import UnsupportedError
    try:
        return check(**asked)
    except UnsupportedError as err:
        parser.error(f"{flag or _FLAG_OF_FEATURE.get(err.feature, err.feature)}: {err}")


def _parsed(parser, make, *args, **kwargs):
    """make(*args, **kwargs); a ValueError (a model or option that cannot be
    built from these values) becomes argparse's one-line message and exit 2."""
    try:
        return make(*args, **kwargs)
    except ValueError as err:
        parser.error(str(err))


def _check_environment(parser):
    """The environment variables the package reads, checked before any work."""
    from numpy_vae.threads import ENV_VAR as THREADS_VAR
    from numpy_vae.threads import parse_setting
    value = os.environ.get(THREADS_VAR)
    if value is not None:
        try:
            parse_setting(value)
        except ValueError as err:
            parser.error(f"${THREADS_VAR}={value!r}: {err}")


def _cmd_train(args, parser, argv) -> int:
    from numpy_vae.dataset import load_dataset
    from numpy_vae.factory import MODEL_KINDS, build_model
    from numpy_vae.runs import new_run_dir, write_run_config
    from numpy_vae.train import Trainer, TrainOptions

    if args.resume is not None:
        trainer = _resumed_trainer(args, parser, argv)
        options = trainer.options
        data = load_dataset(options.data_dir, subset=options.subset, binarize_mode=options.binarize,
                            dtype=str(trainer.model.backend.dtype), quiet=args.quiet)
        if not args.quiet:
            print(f"resuming {trainer.run_dir} after epoch {trainer.epoch} of {options.epochs}")
        return _train(trainer, data, args.quiet)

    if args.binarize == "static":
        print(f"{PROG}: note: --binarize static is now called --binarize threshold (it thresholds "
              f"at 0.5; 'statically binarized MNIST' in the literature is one fixed random draw)",
              file=sys.stderr)
        args.binarize = "threshold"
    if args.objective == "elbo" and args.k != 1:
        parser.error(f"--k {args.k} needs --objective iwae (the ELBO uses one sample)")
    if args.objective == "iwae" and args.kl_warmup > 0:
        parser.error("--kl-warmup scales the KL term, which the IWAE objective does not have")
    if args.recipe is not None:
        config, recipe_options = _recipe(args, parser, argv)
    else:
        config = _model_config(args, args.dtype, parser)
        recipe_options = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              kl_warmup=args.kl_warmup, binarize=args.binarize)
    # what the model kind cannot do is refused here, by asking it (models.py)
    _check_supported(parser, MODEL_KINDS[config["model"]].check_training,
                     objective=args.objective, kl_warmup=recipe_options.get("kl_warmup", 0.0),
                     eval_iwae_k=args.eval_iwae_k)
    model = _parsed(parser, build_model, config, backend=args.backend)
    options = _parsed(parser, TrainOptions, **recipe_options, seed=args.seed,
                      objective=args.objective, k=args.k, eval_iwae_k=args.eval_iwae_k,
                      data_dir=_absolute(args.data_dir), subset=args.subset)
    if args.run_dir is not None and (Path(args.run_dir) / "checkpoint.npz").exists():
        raise CheckpointError(f"{args.run_dir} already holds a run; continue it with "
                              f"--resume {args.run_dir}, or choose another --run-dir")
    data = load_dataset(options.data_dir, subset=options.subset, binarize_mode=options.binarize,
                        dtype=args.dtype, quiet=args.quiet)
    # the run folder is made only once the data is there: no empty folders after errors
    if args.run_dir is not None:
        run_dir = Path(args.run_dir)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunFolderError(f"cannot create the run folder {run_dir}: {err.strerror or err}") from err
    else:
        run_dir = new_run_dir("runs", config)
    trainer = Trainer(model, options, run_dir, quiet=args.quiet, blas_threads=args.blas_threads)
    trainer.claim_run_folder()  # before config.json: a folder in use is left untouched
    write_run_config(run_dir, model, options, argv=[PROG, *argv])
    return _train(trainer, data, args.quiet)


def _recipe(args, parser, argv):
    """The model config and training options of ``--recipe`` (numpy_vae/recipes.py)."""
    from numpy_vae.recipes import RECIPES

    clashes = [flag for flag in _SET_BY_RECIPE if _given(argv, flag)]
    if clashes:
        parser.error(f"{', '.join(clashes)} cannot be given with --recipe {args.recipe}: the recipe "
                     f"sets them (allowed beside it: --epochs, --objective, --k, --seed, --dtype, "
                     f"--backend, --eval-iwae-k, --subset, --data-dir, --run-dir, --quiet)")
    recipe = RECIPES[args.recipe]
    config = dict(recipe["model"], dtype=args.dtype, seed=args.seed)
    options = dict(recipe["options"])
    if _given(argv, "--epochs"):
        options["epochs"] = args.epochs
    return config, options


def _resumed_trainer(args, parser, argv):
    from numpy_vae.train import Trainer

    fixed = [flag for flag in _FIXED_WHEN_RESUMING if _given(argv, flag)]
    if fixed:
        parser.error(f"{', '.join(fixed)} cannot be given with --resume: a resumed run keeps "
                     f"its saved settings (allowed: --epochs, --backend, --data-dir, "
                     f"--eval-iwae-k, --blas-threads, --quiet)")
    changes = {}
    if _given(argv, "--epochs"):
        changes["epochs"] = args.epochs
    if _given(argv, "--data-dir"):
        changes["data_dir"] = _absolute(args.data_dir)
    if _given(argv, "--eval-iwae-k"):
        changes["eval_iwae_k"] = args.eval_iwae_k
    trainer = _check_supported(parser, Trainer.from_checkpoint, path_or_run_dir=args.resume,
                               backend=args.backend, quiet=args.quiet, **changes)
    trainer.blas_threads = args.blas_threads  # about this machine, not the saved run
    return trainer


def _train(trainer, data, quiet) -> int:
    """Fit, draw the figures, print the summary; the exit code."""
    from numpy_vae import plots
    from numpy_vae.train import TrainingDiverged, TrainingInterrupted

    model = trainer.model
    if not quiet:
        print(f"{model} with {model.num_params:,} parameters")
        print(f"{len(data.x_train)} training and {len(data.x_test)} test images "
              f"(binarize={trainer.options.binarize}); run folder {trainer.run_dir}")
    try:
        history = trainer.fit(data)
    except TrainingInterrupted as stop:
        if stop.checkpoint is None:
            print(f"interrupted at epoch {stop.epoch} step {stop.step}; nothing was saved",
                  file=sys.stderr)
        else:
            print(f"interrupted at epoch {stop.epoch} step {stop.step}; saved {stop.checkpoint} "
                  f"(end of epoch {stop.saved_epoch}); resume with: {PROG} train --resume "
                  f"{trainer.run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TrainingDiverged as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_ERROR

    if plots.available():
        figures = plots.plot_all(model, history, data.x_test, data.y_test, trainer.run_dir)
        if not quiet:
            print(f"figures: {', '.join(p.name for p in figures)}")
    else:
        print(f"figures skipped: matplotlib is not installed (install it with: {plots.INSTALL_HINT})")
    if history:
        last = history[-1]
        times = [r["epoch_time_s"] for r in history]
        print(f"test negative ELBO after epoch {last['epoch']}: {last['test_nelbo']:.2f} nats per "
              f"image (recon {last['test_recon']:.2f} + KL {last['test_kl']:.2f}); median epoch "
              f"{statistics.median(times):.2f} s; run folder {trainer.run_dir}")
        if "perplexity" in last:
            print(f"codebook over the last epoch: perplexity {last['perplexity']:.1f} of "
                  f"{model.n_codes} codes, {last['dead_codes']} dead")
    return 0


def _absolute(path):
    return None if path is None else str(Path(path).expanduser().resolve())


def _load_test_set(checkpoint, model, data_dir, quiet):
    """The run's test set, binarized as during training."""
    from numpy_vae.dataset import load_dataset
    options = checkpoint.options
    folder = _absolute(data_dir) if data_dir is not None else options.get("data_dir")
    return load_dataset(folder, subset=1, binarize_mode=options.get("binarize", "none"),
                        dtype=str(model.backend.dtype), quiet=quiet)


def _cmd_evaluate(args, parser, argv) -> int:
    from numpy_vae.checkpoint import load_model
    from numpy_vae.dataset import TEST_BINARIZE_SEED
    from numpy_vae.evaluate import DEFAULT_MAX_ROWS, active_units, iwae_nll, negative_elbo, protocol

    model, checkpoint = load_model(args.run, backend=args.backend)
    data = _load_test_set(checkpoint, model, args.data_dir, args.quiet)
    if args.test_images is not None:
        data.x_test, data.y_test = data.x_test[:args.test_images], data.y_test[:args.test_images]
    x = model.backend.asarray(data.x_test)
    print(f"{model} from {checkpoint.path} (epoch {checkpoint.epoch})")
    binarize = checkpoint.options.get("binarize", "none")
    about = protocol(model.config.get("likelihood", "bernoulli"), binarize, TEST_BINARIZE_SEED,
                     conditional=model.conditional)
    print(f"test set: {len(data.x_test)} images, binarize={binarize}")
    print(f"protocol: {about['note']}")
    record = {"protocol": about["protocol"], "comparable_with_papers": about["comparable"],
              "checkpoint": str(checkpoint.path), "epoch": checkpoint.epoch,
              "backend": model.backend.name, "seed": args.seed, "test_images": len(data.x_test)}

    y = data.y_test if getattr(model, "conditional", False) else None
    start = time.perf_counter()
    elbo = negative_elbo(model, x, batch_size=args.batch_size, seed=args.seed, y=y)
    seconds = time.perf_counter() - start
    print(f"test negative ELBO: {elbo['nelbo']:.2f} nats per image (recon {elbo['recon']:.2f} "
          f"+ KL {elbo['kl']:.2f}; one sampled z per image)  {seconds:.1f} s")
    record.update(test_nelbo=elbo["nelbo"], test_recon=elbo["recon"], test_kl=elbo["kl"],
                  nelbo_time_s=round(seconds, 3))
    kind = model.config.get("model", "vae")
    if model.supports("active_units") and len(data.x_test) >= 2:
        units = active_units(model, x, batch_size=args.batch_size)["active_units"]
        print(f"active units: {units} of {model.latent_dim} (Var_x E_q[z_u] > 0.01 over the test images)")
        record["active_units"] = units

    if args.iwae_k > 0 and not model.supports("iwae_bound"):
        print(f"no IWAE bound for a {kind} model: {model.WHY_NOT['iwae_bound']}")
    elif args.iwae_k > 0:
        start = time.perf_counter()
        if args.max_rows is None:
            args.max_rows = getattr(model, "IWAE_MAX_ROWS", DEFAULT_MAX_ROWS)
        bound = iwae_nll(model, x, args.iwae_k, seed=args.seed, max_rows=args.max_rows,
                         progress=not args.quiet)
        seconds = time.perf_counter() - start
        print(f"test IWAE bound, K={args.iwae_k}: -log p(x) <= {bound:.2f} nats per image"
              + _bits_per_dim(bound, model, about) + f"  {seconds:.1f} s"
              + ("" if about["comparable"] else f"  [{about['protocol']}: not comparable with papers]"))
        record.update(iwae_k=args.iwae_k, test_iwae_nll=bound, iwae_time_s=round(seconds, 3),
                      max_rows=args.max_rows)
    with open(checkpoint.path.parent / EVALUATION_NAME, "a") as f:
        f.write(json.dumps(record) + "\n")
    return 0


def _bits_per_dim(nats, model, about):
    """' (x.xx bits/dim)' for a continuous density; nothing for the Bernoulli."""
    import math
    if about["protocol"] != "continuous-density":
        return ""
    return f" ({nats / (model.input_dim * math.log(2)):.3f} bits/dim)"


def _cmd_sample(args, parser, argv) -> int:
    from numpy_vae import plots
    from numpy_vae.checkpoint import load_model

    if not plots.available():
        raise plots.PlotsUnavailableError(f"sample writes a PNG and needs matplotlib "
                                          f"(install it with: {plots.INSTALL_HINT})")
    model, checkpoint = load_model(args.run, backend=args.backend)
    out = Path(args.out) if args.out else checkpoint.path.parent / f"samples-seed{args.seed}.png"
    if args.label is not None:
        if not getattr(model, "conditional", False):
            parser.error(f"--label needs a conditional VAE (--model cvae); {args.run} holds a "
                         f"{model.config.get('model', 'vae')!r} model")
        if args.label >= model.n_classes:
            parser.error(f"--label must be below {model.n_classes}, got {args.label}")
        if args.out is None:
            out = checkpoint.path.parent / f"samples-label{args.label}-seed{args.seed}.png"
    path = plots.plot_samples(model, out, n=args.n, seed=args.seed, label=args.label)
    print(f"wrote {args.n} samples to {path}")
    return 0


def _cmd_plot(args, parser, argv) -> int:
    from numpy_vae import plots
    from numpy_vae.checkpoint import load_model
    from numpy_vae.runs import read_metrics

    if not plots.available():
        raise plots.PlotsUnavailableError(f"plot needs matplotlib (install it with: {plots.INSTALL_HINT})")
    model, checkpoint = load_model(args.run, backend=args.backend)
    data = _load_test_set(checkpoint, model, args.data_dir, args.quiet)
    paths = plots.plot_all(model, read_metrics(checkpoint.path.parent), data.x_test, data.y_test,
                           checkpoint.path.parent)
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_gradcheck(args, parser, argv) -> int:
    import numpy as np

    from numpy_vae import gradcheck
    from numpy_vae.factory import MODEL_KINDS, build_model

    if args.objective == "elbo" and args.k != 1:
        parser.error(f"--k {args.k} needs --objective iwae (the ELBO uses one sample)")
    if args.objective == "iwae" and args.beta != 1:
        parser.error("--beta is not defined for --objective iwae (the bound has no KL term to weigh)")
    config = _model_config(args, "float64", parser)
    kind = MODEL_KINDS[config["model"]]
    _check_supported(parser, kind.check_training, objective=args.objective)
    if args.beta != 1:
        _check_supported(parser, kind.require, feature="kl_weight", flag="--beta")
    model = _parsed(parser, build_model, config, backend=args.backend)
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch, model.input_dim))
    y = rng.integers(0, model.n_classes, args.batch) if model.conditional else None
    if args.objective == "iwae":
        eps = rng.standard_normal((args.k, args.batch, model.latent_dim))
        what = f"fixed eps, IWAE objective with k={args.k}"
    else:
        eps = rng.standard_normal((args.batch, model.latent_dim))
        what = f"fixed eps, beta={args.beta:g}"
    if hasattr(model, "gradient_targets"):  # the VQ-VAE: no noise; straight-through
        eps, what = None, "straight-through gradients against their surrogates"
    if model.conditional:
        what += ", random labels"
    print(f"{model}: {model.num_params:,} parameters; batch of {args.batch} random images, "
          f"{what}, "
          + ("every element" if args.max_elements == 0 else
             f"up to {args.max_elements} random elements per array"))
    start = time.perf_counter()
    # skip_kinks: a difference quotient whose step straddles a ReLU kink is not a
    # derivative, so such elements are left out (they are found from the forward
    # function alone, so a wrong backward pass cannot hide there).  tiny=None:
    # entries too small for the finite difference to resolve are judged by their
    # absolute error (see gradcheck.check_model).
    errors = gradcheck.check_model(model, x, eps=eps, beta=args.beta,
                                   max_elements=args.max_elements or None, seed=args.seed,
                                   skip_kinks=True, tiny=None, objective=args.objective, k=args.k,
                                   y=y)
    seconds = time.perf_counter() - start
    print(gradcheck.format_table(errors, threshold=args.threshold, title="parameter"))
    skipped = sum(errors.skipped.values())
    if skipped:
        print(f"left out {skipped} element(s) with a kink (a ReLU's, or a code switch) within the "
              f"finite-difference step")
    worst_name = max(errors, key=errors.get)
    worst = errors[worst_name]
    if worst >= args.threshold:
        print(f"{PROG}: error: gradient check failed: {worst_name} has relative error "
              f"{worst:.2e} >= {args.threshold:g}", file=sys.stderr)
        return EXIT_ERROR
    print(f"all {len(errors)} parameter arrays pass (largest error {worst:.2e} in {worst_name}, "
          f"threshold {args.threshold:g}; {seconds:.1f} s)")
    return 0


# --------------------------------------------------------------------------
# numpy-vae exercise: the checker of lessons/exercises/ (numpy_vae/exercises.py)
# --------------------------------------------------------------------------

def _add_exercise_command(commands):
    exercise = commands.add_parser(
        "exercise", formatter_class=_Formatter, allow_abbrev=False,
        help="check your solution of a lesson exercise (lessons/exercises/)",
        description="Check exercise N of lessons/exercises/ (or FILE, your copy of it): your\n"
                    "backward passes against finite differences of your forward passes, in\n"
                    "float64 on random shapes and on edge cases, your forward passes against the\n"
                    "package's.  Prints pass, to do, or FAIL with the relative error, the array\n"
                    "that is wrong and a hint.  Exits with 0 when every check passes, else 1.\n"
                    "Without N: the list of exercises and your progress.\n\n"
                    "Exercise 12, the capstone, trains your VAE on MNIST for about a minute\n"
                    "(--quick: a few seconds, with a looser bound).")
    exercise.add_argument("number", nargs="?", type=_positive_int, default=None, metavar="N",
                          help="the exercise to check (default: list them all)")
    exercise.add_argument("file", nargs="?", default=None, metavar="FILE",
                          help="your file (default: lessons/exercises/NN_*.py)")
    exercise.add_argument("--quick", action="store_true",
                          help="exercise 12: a short training run with a looser bound")
    exercise.add_argument("--seed", type=_non_negative_int, default=0,
                          help="exercise 12: seeds the weights, the batches and the noise")
    exercise.set_defaults(func=_cmd_exercise, parser=exercise)


def _cmd_exercise(args, parser, argv) -> int:
    from numpy_vae import exercises

    try:
        if args.number is None:
            return exercises.progress()
        return exercises.report(args.number, args.file, quick=args.quick, seed=args.seed)
    except exercises.ExerciseError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_ERROR


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit code."""
    from numpy_vae.plots import PlotsUnavailableError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # bad arguments: argparse prints usage and exits with 2
    if getattr(args, "backend", None) not in (None, *BACKEND_NAMES):
        # only the default can get here (from $NUMPY_VAE_BACKEND): argparse checks given values
        args.parser.error(f"${ENV_VAR}={args.backend!r} is not one of {', '.join(BACKEND_NAMES)}")
    _check_environment(args.parser)
    keep_freed_memory()  # glibc: keep freed arrays for reuse (numpy_vae/_memory.py)
    try:
        return args.func(args, args.parser, argv)
    except (*_KNOWN_ERRORS, PlotsUnavailableError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


__all__ = ["main", "build_parser"]
