"""The tables of README.md and docs/*.md, generated from the results files.

    python docs/make_tables.py            # rewrite every table from docs/results/*.json
    python docs/make_tables.py --check    # exit 1 and name the tables that differ

Every measured number in the README and the docs sits between two marker
comments,

    <!-- results:NAME -->
    ...a table, generated...
    <!-- /results:NAME -->

and is rewritten from docs/results/*.json by the function ``NAME`` below.
A results file is written by the command that measured its numbers
(benchmarks/_provenance.py, the commands listed in benchmarks/measure_all.sh),
with the machine, the load, the commit and the date; each generated table
ends with that provenance.  Do not edit a table by hand:
tests/test_docs.py fails when a table differs from what this script makes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"(<!-- results:(?P<name>[a-z_0-9]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)
NOT_RECORDED = "not recorded"

# What each lesson teaches, one line each (the table of the README's learning path).
LESSONS = {
    "01_autoencoder": "784 pixels to 2 or 10 numbers and back; random codes fall in the gaps",
    "02_points_to_distributions": "the encoder predicts a mean and a log-variance per digit",
    "03_reparameterization": "z = mu + sigma * eps, its gradient checked live, and why mu + sigma^2 * eps is wrong",
    "04_kl_divergence": "the closed-form KL derived, checked by Monte Carlo, and its gradient",
    "05_elbo": "the bound checked exactly; Bernoulli vs Gaussian; summing vs averaging over pixels",
    "06_training_on_mnist": "the training loop written out; loss curves, reconstructions",
    "07_latent_space_three_ways": "reconstruction only, KL only, both: where the codes land",
    "08_generating": "prior samples, the 2-D manifold, interpolation, latent arithmetic",
    "09_denoising_and_compression": "noisy and half-hidden digits; the ELBO against latent size",
    "10_beta_balance": "beta sweep, posterior collapse, KL warm-up, learned pixel variance",
    "11_how_good_is_the_model": "the ELBO against the importance-weighted bound as K grows",
    "12_faster_and_convolutional": "the NumPy and Numba backends timed; a convolutional VAE",
    "13_training_with_the_tighter_bound": "the IWAE objective, its weighted gradient checked, more active units",
    "14_asking_for_a_digit": "the conditional VAE: asked-for digits, style transfer, a smaller KL",
    "15_discrete_latents": "the VQ-VAE: quantization, the straight-through gradient, dead codes, the code prior",
}


# --------------------------------------------------------------------------
# reading the results files
# --------------------------------------------------------------------------

def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _cpu(prov: dict) -> str:
    cpu = prov.get("cpu_model", NOT_RECORDED)
    flags = prov.get("cpu_flags", "")
    simd = "AVX-512" if "avx512" in flags else "AVX2" if "avx2" in flags else ""
    cpus = prov.get("cpus")
    return f"{cpus}-CPU {cpu}" + (f" ({simd})" if simd else "") if isinstance(cpus, int) else cpu


def _load(prov: dict) -> str:
    load = prov.get("load_average", {})
    if load.get("start") == NOT_RECORDED:
        return load.get("as_described", NOT_RECORDED)
    start, end = load.get("start"), load.get("end")
    return f"load average {start[0]:.1f} at the start, {end[0]:.1f} at the end"


def _threads(prov: dict) -> str:
    """The thread line, without the trainer's explanation of its choice."""
    return prov.get("threads", NOT_RECORDED).split(" (")[0].split("; override")[0]


def _commit(prov: dict) -> str:
    commit = prov.get("git_commit", NOT_RECORDED)
    if commit == NOT_RECORDED:
        return "commit not recorded"
    return f"commit {commit[:7]}" + (" + uncommitted changes" if prov.get("git_dirty") is True else "")


def provenance_line(*records: dict) -> str:
    """One line per results file: where, when and how its numbers were measured."""
    lines = []
    for rec in records:
        if rec is None:
            continue
        link = f"[{rec['name']}](docs/results/{rec['name']}.json)"
        if "source" in rec:
            lines.append(f"{link}: {rec['source']}.")
            continue
        prov = rec["provenance"]
        nice = f" (run under nice {prov['nice']})" if prov.get("nice") else ""
        lines.append(f"{link}: {prov['date'][:10]}, {_cpu(prov)}, {prov['blas']}, {_threads(prov)}, "
                     f"{_load(prov)}{nice}, {_commit(prov)}; `{prov['command']}`.")
    return "\n".join(f"- {line}" for line in lines)


def _fix_links(text: str, page: Path) -> str:
    """Results links are written from the repository root; pages in docs/ need them relative."""
    return text.replace("](docs/results/", "](results/") if page.parent.name == "docs" else text


def _missing(name: str) -> str:
    return f"*Not measured in this version: `docs/results/{name}.json` is missing ({_command_for(name)}).*\n"


def _command_for(name: str) -> str:
    for line in (ROOT / "benchmarks" / "measure_all.sh").read_text().splitlines():
        if f" {name} " in f" {line} " or f"/{name}.json" in line or f"{name}.json" in line:
            return "`" + line.strip().replace("$PY ", "python ") + "`"
    return "see benchmarks/measure_all.sh"


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


# --------------------------------------------------------------------------
# the tables, one function per marker name
# --------------------------------------------------------------------------

def lessons() -> str:
    quick, full = load("lessons_quick"), load("lessons_full")
    rows = []
    for stem, what in LESSONS.items():
        cells = []
        for rec in (quick, full):
            run = rec and rec["values"]["lessons"].get(stem)
            cells.append(_minutes(run["seconds"]) if run else "not measured")
        number, _, title = stem.partition("_")
        rows.append([f"[{number} {title.replace('_', ' ')}](lessons/{stem}.py)", what, *cells])
    text = table(["lesson", "what it teaches", "quick", "full"], rows, "llrr")
    return text + "\nTimes: " + "; ".join(
        f"{mode} mode " + (f"measured {rec['provenance']['date'][:10]} on a {_cpu(rec['provenance'])}, "
                           f"{_load(rec['provenance'])} ([{rec['name']}](docs/results/{rec['name']}.json))"
                           if rec else "not measured yet")
        for mode, rec in (("quick", quick), ("full", full))) + "." + _busy_note(quick, full) + "\n"


def _busy_note(*records) -> str:
    """A warning when the times were taken with more runnable programs than CPUs."""
    busy = [r for r in records if r and r["provenance"]["load_average"].get("start") != NOT_RECORDED
            and max(r["provenance"]["load_average"]["start"][0], r["provenance"]["load_average"]["end"][0])
            > r["provenance"]["cpus"]]
    return (" The machine was shared with other jobs (load average above its number of CPUs), so these "
            "times are longer than on a quiet machine, and unevenly so.") if busy else ""


def _training_row(name: str, label: str, what) -> list | None:
    rec = load(name)
    if rec is None:
        return [label, "not measured in this version", "", "", _command_for(name), ""]
    v = rec["values"]
    return [label, what(v), v["epoch"], _minutes(sum(v["epoch_times_s"])), f"`{v['train_command']}`",
            f"[{name}](docs/results/{name}.json)"]


def _vq_text(v: dict) -> str:
    prior = v["test_nelbo"] - v["test_recon"]
    return (f"reconstruction {v['test_recon']:.2f}; -ELBO with the uniform code prior "
            f"{v['test_nelbo']:.2f} (= recon + {prior:.2f})")


def main_table() -> str:
    rows = [
        _training_row("train_mlp", "VAE, MLP 784-400-20 (the main job)",
                      lambda v: f"test -ELBO **{v['test_nelbo']:.2f}** (recon {v['test_recon']:.2f} + KL {v['test_kl']:.2f})"),
        _training_row("train_conv", "convolutional VAE (32, 64 channels)",
                      lambda v: f"test -ELBO {v['test_nelbo']:.2f} (recon {v['test_recon']:.2f} + KL {v['test_kl']:.2f})"),
        _training_row("train_cvae", "conditional VAE (label in)",
                      lambda v: f"test -ELBO of x given its label {v['test_nelbo']:.2f}"),
        _training_row("train_vqvae", "VQ-VAE, 16 slots x 64 codes", _vq_text),
    ]
    burda, long_run, paper = load("burda2015_40_epochs"), load("burda2015_elbo_335_epochs"), load("burda2015_paper")
    if burda:
        for key, label in (("elbo", "burda2015 recipe, ELBO"), ("iwae_k5", "burda2015 recipe, IWAE k = 5")):
            r = burda["values"]["runs"][key]
            rows.append([label, f"binarized-MNIST test NLL (-L_5000) **{r['test_nll_l5000']:.2f}**", r["epochs"],
                         f"{r['train_wall_min']:.0f} min", f"`{r['train_command']}`", f"[{burda['name']}](docs/results/{burda['name']}.json)"])
    if long_run:
        v = long_run["values"]
        rows.append(["burda2015 recipe, ELBO, continued", f"binarized-MNIST test NLL (-L_5000) **{v['test_nll_l5000']:.2f}**",
                     v["epochs"], f"+ {v['continued_wall_min']} min",
                     "the same with `--resume RUN --epochs 3280`, stopped at epoch 335",
                     f"[{long_run['name']}](docs/results/{long_run['name']}.json)"])
    if paper:
        r = paper["values"]["rows"]
        rows.append(["Burda et al. (2015), the paper", f"VAE {r['vae_k1']['test_nll_l5000']:.2f}, "
                     f"IWAE k = 5 {r['iwae_k5']['test_nll_l5000']:.2f}", paper["values"]["epochs"], "",
                     "(their Table 1)", f"[{paper['name']}](docs/results/{paper['name']}.json)"])
    return table(["model", "nats per test image (lower is better)", "epochs", "training time", "command",
                  "results file"], rows, "llrrll")


def models() -> str:
    rows = []
    for name, label in (("train_mlp", "VAE 784-400-20"), ("train_conv", "ConvVAE (32, 64)"),
                        ("train_cvae", "conditional VAE 784-400-20"), ("train_vqvae", "VQ-VAE 784-400, D 16, d 8, K 64")):
        rec = load(name)
        if rec is None:
            rows.append([label, "not measured in this version", "", "", "", _command_for(name)])
            continue
        v = rec["values"]
        extra = ""
        if "test_perplexity" in v or "perplexity" in v:
            extra = f"; codebook perplexity {v.get('test_perplexity', v.get('perplexity')):.1f} of 64"
        if "dead_codes" in v or "test_dead_codes" in v:
            extra += f", {v.get('test_dead_codes', v.get('dead_codes'))} dead codes"
        rows.append([label, f"`{v['train_command']}`", v["epoch"], f"{v['test_nelbo']:.2f}",
                     f"{v['test_recon']:.2f} + {v['test_kl']:.2f}{extra}",
                     f"{v['median_epoch_s']:.1f} ({_load(rec['provenance'])})"])
    recs = [load(n) for n in ("train_mlp", "train_conv", "train_cvae", "train_vqvae")]
    return (table(["model", "command", "epochs", "test -ELBO", "recon + KL", "s/epoch (median)"], rows, "llrrll")
            + "\n" + provenance_line(*recs) + "\n")


def burda() -> str:
    burda, long_run, paper = load("burda2015_40_epochs"), load("burda2015_elbo_335_epochs"), load("burda2015_paper")
    rows = []
    if paper:
        for r in paper["values"]["rows"].values():
            rows.append([f"Burda et al. (2015), {r['objective']}", paper["values"]["epochs"],
                         f"{r['test_nll_l5000']:.2f}", "", "", "", "(the paper)"])
    if burda:
        for r in burda["values"]["runs"].values():
            rows.append([f"numpy-vae, {r['objective']}", r["epochs"], f"{r['test_nll_l5000']:.2f}",
                         f"{r['test_nelbo']:.2f}", f"{r['active_units']} of {r['latent_dim']}",
                         f"{r['train_wall_min']:.1f} min", f"`{r['train_command']}`"])
    if long_run:
        v = long_run["values"]
        rows.append(["numpy-vae, ELBO (k = 1), continued", v["epochs"], f"{v['test_nll_l5000']:.2f}",
                     f"{v['test_nelbo']:.2f}", f"{v['active_units']} of {v['latent_dim']}",
                     f"{v['s_per_epoch']} s/epoch", f"`{v['train_command']}`"])
    text = table(["run", "epochs", "test NLL (-L_5000)", "test -ELBO", "active units", "training time", "command"],
                 rows, "lrrrrrl")
    if burda:
        p = burda["values"]["paired_first_1000"]
        text += (f"\nOn the first 1,000 test images alone (`{p['command']}`) the two 40-epoch runs give "
                 f"{p['elbo']:.2f} and {p['iwae_k5']:.2f}: IWAE lower by {p['difference']:.2f} nats, standard "
                 f"error {p['standard_error']:.2f} (paired over the images). -L_5000 on all "
                 f"{burda['values']['test_images']:,} test images took {burda['values']['runs']['elbo']['eval_s']} s "
                 f"and {burda['values']['runs']['iwae_k5']['eval_s']} s "
                 f"(`{burda['values']['eval_command']}`)")
        if long_run:
            text += f", and {long_run['values']['eval_s']} s for the continued run"
        step = burda["values"]["step_ms_batch_20"]
        text += (f". A training step took {step['iwae_k5']} ms with IWAE k = 5 against {step['elbo']} ms with "
                 f"the ELBO ({step['what']}).\n")
    return text + "\n" + provenance_line(paper, burda, long_run) + "\n"


def iwae_eval() -> str:
    rec = load("iwae_eval")
    if rec is None:
        return _missing("iwae_eval")
    v = rec["values"]
    rows = [[r["backend"], r["method"], f"{r['seconds']:.2f}", f"{r['x_floor']:.2f}", _minutes(r["test_set_s"])]
            for r in v["rows"] if "x_floor" in r]
    gaps = [f"{r['backend']} {r['max_abs_difference_nats']:.1e}" for r in v["rows"] if "x_floor" not in r]
    return (table(["backend", "method", "seconds", "x GEMM floor", "10,000 images at this rate"], rows, "llrrr")
            + f"\n{v['images']} images x K = {v['k']} of the {v['model']} model, `max_rows` {v['max_rows']}; "
              f"largest difference between the batched and the reference bound: {', '.join(gaps)} nats.\n\n"
            + provenance_line(rec) + "\n")


def side_by_side() -> str:
    rec = load("side_by_side")
    if rec is None:
        return _missing("side_by_side")
    v = rec["values"]
    labels = {"pytorch": "PyTorch, the classic example", "numpy-vae-numpy": "`numpy-vae train`, NumPy backend",
              "numpy-vae-numba": "`numpy-vae train`, Numba backend", "loop-numpy": "minimal loop, NumPy backend",
              "loop-numba": "minimal loop, Numba backend", "floor": "GEMM floor (the matrix products only)"}
    columns = {"x_floor": "x GEMM floor", "x_loop": "x minimal loop", "x_pytorch": "x PyTorch"}
    if not any("x_pytorch" in r for r in v["runners"].values()):
        del columns["x_pytorch"]
    rows = []
    for name, r in v["runners"].items():
        ratios = {**r, "x_floor": 1.0} if name.startswith("floor") else r
        rows.append([labels.get(name.partition("@")[0], name), f"{r['median_s']:.2f}",
                     *(f"{ratios[k]:.2f}" if k in ratios else "" for k in columns), r["threads"]])
    text = table(["runner", "s/epoch", *columns.values(), "threads"], rows, "lr" + "r" * len(columns) + "l")
    text += (f"\n{v['images_per_epoch']:,} images per epoch, batch {v['batch']}, median of {v['rounds']} rounds; "
             f"ratios are medians over the rounds of the ratio within one round.")
    if "pytorch" in v.get("not_run", []):
        text += " PyTorch: not measured in this version (torch was not installed on the machine that measured)."
    return text + "\n\n" + provenance_line(rec) + "\n"


def busy_machine() -> str:
    rec = load("busy_machine")
    if rec is None:
        return _missing("busy_machine")
    v = rec["values"]
    rows = []
    for name, r in v["runners"].items():
        runner, _, setting = name.partition("@")
        backend = "NumPy" if runner.endswith("numpy") else "Numba"
        choice = "the package's choice" if setting == "auto" else "BLAS's default (one per core)"
        rows.append([f"{backend} backend, {choice}", f"{r['median_s']:.2f}", f"{r['loaded_median_s']:.2f}",
                     f"{r['slowdown']:.2f}", f"{r['threads']} / {r['threads_loaded']}"])
    return (table(["runner", "as things are: s/epoch", "one more busy process: s/epoch", "slowdown",
                   "BLAS threads (as is / loaded)"], rows, "lrrrl")
            + f"\n{v['images_per_epoch']:,} images per epoch, median of {v['rounds']} rounds.\n\n"
            + provenance_line(rec) + "\n")


def conv_speed() -> str:
    rec = load("conv_speed")
    if rec is None:
        return _missing("conv_speed")
    v = rec["values"]
    labels = {"numpy": "NumPy backend", "numpy+numba-col2im": "NumPy backend, Numba's col2im",
              "numba": "Numba backend"}
    rows = [[labels.get(k, k), f"{r['ms_per_step']:.1f}", f"{r['s_per_epoch']:.1f}"] for k, r in v["variants"].items()]
    return (table(["ConvVAE (32, 64), batch 128", "ms per step", "s per epoch (x 469 steps)"], rows, "lrr")
            + f"\nMedian of {v['chunks']} chunks of {v['steps']} steps on MNIST-shaped data.\n\n"
            + provenance_line(rec) + "\n")


def gradchecks() -> str:
    rec = load("gradchecks")
    if rec is None:
        return _missing("gradchecks")
    rows = [[r["component"], f"{r['max_rel_error']:.1e}", r["how"]] for r in rec["values"]["rows"]]
    planted = [[r["bug"], f"{r['max_rel_error']:.2f}"] for r in rec["values"].get("planted", [])]
    text = table(["component (float64)", "max relative error", "checked"], rows, "lrl")
    if planted:
        text += "\n" + table(["planted bug", "max relative error"], planted, "lr")
    return text + "\n" + provenance_line(rec) + "\n"


TABLES = {"lessons": lessons, "main": main_table, "models": models, "burda": burda, "iwae_eval": iwae_eval,
          "side_by_side": side_by_side, "busy_machine": busy_machine, "conv_speed": conv_speed,
          "gradchecks": gradchecks}


# --------------------------------------------------------------------------
# rewriting the pages
# --------------------------------------------------------------------------

def render(text: str, page: Path) -> str:
    """``text`` with every marked table regenerated."""
    def replace(match):
        name = match.group("name")
        if name not in TABLES:
            raise SystemExit(f"make_tables: {page.relative_to(ROOT)} has a marker for an unknown table {name!r}; "
                             f"known: {', '.join(TABLES)}")
        return match.group(1) + _fix_links(TABLES[name](), page) + match.group(4)
    return MARKER.sub(replace, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table differs")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        text = page.read_text()
        new = render(text, page)
        if new != text:
            stale.append(str(page.relative_to(ROOT)))
            if not args.check:
                page.write_text(new)
    if args.check and stale:
        print("tables differ from docs/results/ in: " + ", ".join(stale) + " (run python docs/make_tables.py)")
        return 1
    print(("rewrote: " + ", ".join(stale)) if stale and not args.check else "tables up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
