"""Run the lessons as a reader would, and check what they claim.

    python lessons/_check.py                   every lesson as a script, full mode
    python lessons/_check.py --quick 03 04     some lessons, quick mode
    python lessons/_check.py --notebooks       every lesson as a notebook (jupytext +
                                               nbclient), executed copies saved in
                                               lessons/notebooks/
    python lessons/_check.py --quick --seed 1 --kernel Prescott 10
                                               one lesson under another seed and
                                               another BLAS kernel
    python lessons/_check.py --quick --robust  every lesson under seeds 0, 1, 2 times
                                               the kernels Haswell, Sandybridge,
                                               Prescott (make lessons-robust): in how
                                               many of the 9 variants each claim held

``make lessons`` and ``make notebooks`` call this file, and tests/test_lessons.py
imports it, so the suite and the make targets apply the same checks to a run:

* it ended without an error (exit status 0; no exception in a notebook),
* it printed the checklist of ``done()`` (lessons/_common.py) with at least
  MIN_CLAIMS claims, none of them ``claim FAILED``,
* every ``[figure] PATH`` line names a PNG file that exists, and there is at
  least one.

Lessons are found by the pattern ``[0-9][0-9]_*.py``, so a new lesson is
checked without editing anything here.

Why the robustness run: a claim is a fact about VAEs only if it holds on the
reader's machine too.  Other CPUs round matrix products differently, and
OpenBLAS imitates them on any x86-64 machine when OPENBLAS_CORETYPE names one
of its kernels (Haswell: AVX2; Sandybridge: AVX; Prescott: SSE3; SkylakeX
needs AVX-512).  A lesson prints the kernel that actually ran (threadpoolctl),
and the robustness table shows it.  Other seeds change every random draw
(NUMPY_VAE_SEED, lessons/_common.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

LESSONS_DIR = Path(__file__).resolve().parent
ROOT = LESSONS_DIR.parent
LESSON_GLOB = "[0-9][0-9]_*.py"
NOTEBOOK_DIR = LESSONS_DIR / "notebooks"
MIN_CLAIMS = 3
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CHECKLIST_HEADER = "claims checked by this run"
_CLAIM_LINE = re.compile(r"^claim (ok|FAILED): (.*)$")
_VALUE = re.compile(r"^(.*?)  \[(.*)\]$")  # "statement  [value]"
_BLAS_LINE = re.compile(r"^BLAS: (.*)$")
# OpenBLAS kernels that run on any x86-64 CPU and round differently from
# each other; the robustness run uses them, with seeds 0, 1, 2.
PORTABLE_KERNELS = ("Haswell", "Sandybridge", "Prescott")
ROBUST_SEEDS = (0, 1, 2)


def kernels_can_be_chosen() -> bool:
    """OPENBLAS_CORETYPE picks among x86-64 kernels; elsewhere it is ignored."""
    return platform.machine().lower() in ("x86_64", "amd64")
_FIGURE_LINE = re.compile(r"^\[figure\] (.+)$")


def lesson_paths(selection=()) -> list[Path]:
    """The numbered lessons, in order; ``selection`` keeps those whose name
    starts with one of its strings ("03", "07_latent")."""
    paths = sorted(LESSONS_DIR.glob(LESSON_GLOB))
    if selection:
        paths = [p for p in paths if any(p.name.startswith(s) for s in selection)]
    return paths


def lesson_env(quick: bool, out_dir, seed: int | None = None, kernel: str | None = None) -> dict:
    """The environment a lesson runs in: quick mode by NUMPY_VAE_QUICK (the
    switch that also works in a notebook kernel), figures to ``out_dir``,
    the seed by NUMPY_VAE_SEED and the BLAS kernel by OPENBLAS_CORETYPE
    (None: as the caller's environment has them)."""
    env = dict(os.environ, MPLBACKEND="Agg", NUMPY_VAE_QUICK="1" if quick else "0",
               NUMPY_VAE_LESSONS_OUT=str(out_dir))
    if seed is not None:
        env["NUMPY_VAE_SEED"] = str(seed)
    if kernel is not None:
        env["OPENBLAS_CORETYPE"] = kernel
    # One BLAS thread: on a small machine shared with other jobs, a
    # multi-threaded BLAS fighting for cores made steps up to 10x slower.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, "1")
    env.pop("NUMPY_VAE_BACKEND", None)  # the lessons choose their own backends
    return env


# --------------------------------------------------------------------------
# Reading what a run printed
# --------------------------------------------------------------------------

def parse_output(text: str) -> SimpleNamespace:
    """The checklist and the figures in a lesson's printed output.

    Returns a namespace with
        checklist   True if the checklist header of ``done()`` was printed
        claims      [(held, statement)] from the checklist (not the lines
                    printed as each claim was made, which repeat them)
        values      [value] of those claims, in the same order ("" if none)
        figures     [Path] from the ``[figure] PATH`` lines
        blas        the ``BLAS: ...`` line of setup(): library, kernel, threads
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(CHECKLIST_HEADER)), None)
    claims, values = [], []
    if start is not None:
        for line in lines[start + 1:]:
            match = _CLAIM_LINE.match(line)
            if match:
                claims.append((match.group(1) == "ok", match.group(2)))
                with_value = _VALUE.match(match.group(2))
                values.append(with_value.group(2) if with_value else "")
    figures = [Path(m.group(1).strip()) for m in map(_FIGURE_LINE.match, lines) if m]
    blas = next((m.group(1) for m in map(_BLAS_LINE.match, lines) if m), "not printed")
    return SimpleNamespace(checklist=start is not None, claims=claims, values=values,
                           figures=figures, blas=blas)


def statement_of(claim_text: str) -> str:
    """The sentence of a checklist line without its ``  [value]``."""
    with_value = _VALUE.match(claim_text)
    return with_value.group(1) if with_value else claim_text


def problems(text: str, error: str | None = None) -> list[str]:
    """Everything wrong with a run, from its output; [] for a good run.

    error: why the run did not end normally (exit status, exception), if so.
    """
    found = parse_output(text)
    issues = [error] if error else []
    if not found.checklist:
        issues.append("no checklist: done() was not reached or printed nothing")
    elif len(found.claims) < MIN_CLAIMS:
        issues.append(f"only {len(found.claims)} claim(s) in the checklist; a lesson checks at least {MIN_CLAIMS}")
    issues += [f"claim FAILED: {statement}" for held, statement in found.claims if not held]
    if not found.figures:
        issues.append("no [figure] line: the lesson saved no figure")
    for path in found.figures:
        if not path.is_file():
            issues.append(f"figure {path} was announced but does not exist")
        elif path.read_bytes()[:8] != PNG_SIGNATURE:
            issues.append(f"figure {path} is not a PNG file")
    return issues


# --------------------------------------------------------------------------
# Running a lesson: as a script, or as a notebook
# --------------------------------------------------------------------------

def run_script(path: Path, quick: bool, out_dir, timeout: float | None = None,
               seed: int | None = None, kernel: str | None = None) -> SimpleNamespace:
    """``python lessons/NN_topic.py`` in a fresh process: output, error, seconds."""
    start = time.time()
    proc = subprocess.run([sys.executable, str(path)], cwd=ROOT,
                          env=lesson_env(quick, out_dir, seed=seed, kernel=kernel),
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.time() - start
    error = None if proc.returncode == 0 else f"exited with status {proc.returncode}"
    return SimpleNamespace(text=proc.stdout, stderr=proc.stderr, error=error, seconds=seconds)


def to_notebook(path: Path):
    """The lesson as a notebook: jupytext reads the ``# %%`` cells."""
    import jupytext

    nb = jupytext.read(path, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def run_notebook(path: Path, quick: bool, out_dir, timeout: float | None = None,
                 save_to: Path | None = None, seed: int | None = None,
                 kernel: str | None = None) -> SimpleNamespace:
    """Execute the lesson as a notebook in a fresh kernel (nbclient).

    Quick mode reaches the kernel the way a reader sets it, through the
    environment variable.  The kernel's working directory is lessons/.  The
    text is everything the cells printed; ``done()`` raises in a notebook
    when a claim fails, which ends the run with an error.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = to_notebook(path)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(LESSONS_DIR)}})
    start = time.time()
    error = None
    try:
        client.execute(env=lesson_env(quick, out_dir, seed=seed, kernel=kernel))
    except (CellExecutionError, CellTimeoutError) as err:
        last_line = re.sub(r"\x1b\[[0-9;]*m", "", str(err).strip().splitlines()[-1])  # no colour codes
        error = f"{type(err).__name__}: {last_line}"
    seconds = time.time() - start
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save_to)
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream"
                   and out.get("name") == "stdout")
    return SimpleNamespace(text=text, stderr="", error=error, seconds=seconds)


# --------------------------------------------------------------------------
# The robustness run: every claim under several seeds and BLAS kernels
# --------------------------------------------------------------------------

def robust_table(path: Path, runs: list) -> tuple[list[str], bool]:
    """Rows for one lesson's runs (one per variant): per claim, in how many
    variants it held and its values.  Claims are matched by their sentence.
    Returns (rows, every claim held in every variant and every run was clean)."""
    found = [(variant, parse_output(run.text), problems(run.text, run.error)) for variant, run in runs]
    statements = []
    for _, f, _ in found:
        for _, text in f.claims:
            if statement_of(text) not in statements:
                statements.append(statement_of(text))
    rows = [f"{path.name}: {len(statements)} claims, {len(runs)} variants"]
    clean = True
    for variant, f, issues in found:
        if issues:
            clean = False
            other = [i for i in issues if not i.startswith("claim FAILED")]
            if other:
                rows.append(f"  !! {variant}: " + "; ".join(other))
    for statement in statements:
        held, values = 0, []
        for _, f, _ in found:
            mine = [(ok, v) for (ok, text), v in zip(f.claims, f.values) if statement_of(text) == statement]
            if mine:
                held += mine[0][0]
                values.append(mine[0][1] if mine[0][0] else f"FAILED {mine[0][1]}")
            else:
                values.append("absent")
        clean &= held == len(runs)
        mark = "ok " if held == len(runs) else "!! "
        rows.append(f"  {mark}{held}/{len(runs)}  {statement}")
        rows.append(f"           values: {' | '.join(values)}")
    return rows, clean


def robust(paths, quick: bool, out_dir: Path, seeds, kernels, jobs: int) -> int:
    """Run every lesson under seeds x kernels; print the per-claim table."""
    variants = [(seed, kernel) for kernel in kernels for seed in seeds]
    tasks = [(path, seed, kernel) for path in paths for seed, kernel in variants]
    print(f"robustness run: {len(paths)} lesson(s) x {len(variants)} variants "
          f"(seeds {list(seeds)}, kernels {list(kernels)}), {'quick' if quick else 'full'} mode, "
          f"{jobs} at a time", flush=True)

    def one(task):
        path, seed, kernel = task
        folder = out_dir / f"seed{seed}-{kernel or 'default'}"
        folder.mkdir(parents=True, exist_ok=True)
        run = run_script(path, quick, folder, seed=seed, kernel=kernel)
        blas = parse_output(run.text).blas
        verdict = "ok" if not problems(run.text, run.error) else "PROBLEMS"
        print(f"  {path.name} seed {seed} kernel {kernel or 'default'}: {verdict}, "
              f"{run.seconds:.1f} s  [BLAS: {blas}]", flush=True)
        return task, run

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, tasks))
    all_clean, summary = True, []
    for path in paths:
        runs = [(f"seed {seed} / {kernel or 'default'}", run) for (p, seed, kernel), run in results if p == path]
        rows, clean = robust_table(path, runs)
        all_clean &= clean
        seconds = [run.seconds for _, run in runs]
        summary.append(f"{path.name:40s} {'every claim in every variant' if clean else 'SOME CLAIM FAILED'}"
                       f"  ({min(seconds):.0f}-{max(seconds):.0f} s per run)")
        print("\n" + "\n".join(rows))
    print("\nrobustness summary:\n" + "\n".join(summary))
    return 0 if all_clean else 1


# --------------------------------------------------------------------------
# make lessons / make notebooks / make lessons-robust
# --------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers or name prefixes (default: all)")
    parser.add_argument("--quick", action="store_true", help="quick mode (NUMPY_VAE_QUICK=1)")
    parser.add_argument("--notebooks", action="store_true",
                        help=f"run as notebooks; save the executed copies in {NOTEBOOK_DIR.relative_to(ROOT)}/")
    parser.add_argument("--out", default=None, help="folder for the figures (default: lessons/out)")
    parser.add_argument("--seed", type=int, default=None, help="NUMPY_VAE_SEED for the runs (default: 0)")
    parser.add_argument("--kernel", default=None,
                        help="OPENBLAS_CORETYPE for the runs, e.g. Haswell, Sandybridge, Prescott")
    parser.add_argument("--robust", action="store_true",
                        help="run every lesson under --seeds x --kernels and report each claim")
    parser.add_argument("--seeds", default=",".join(map(str, ROBUST_SEEDS)),
                        help="with --robust: seeds, comma-separated (default: %(default)s)")
    parser.add_argument("--kernels", default=",".join(PORTABLE_KERNELS),
                        help="with --robust: OpenBLAS kernels, comma-separated (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="with --robust: lessons run at once, one BLAS thread each (default: 2)")
    args = parser.parse_args(argv)
    out_dir = Path(args.out) if args.out else LESSONS_DIR / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = lesson_paths(args.lessons)
    if not paths:
        parser.error(f"no lesson matches {args.lessons}")
    if args.robust:
        try:
            seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
        except ValueError:
            parser.error(f"--seeds takes whole numbers separated by commas, got {args.seeds!r}")
        kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
        if not kernels_can_be_chosen():
            print(f"note: this is not an x86-64 machine; OPENBLAS_CORETYPE is ignored, "
                  f"so only the seeds vary")
            kernels = [None]
        return robust(paths, args.quick, out_dir, seeds, kernels, max(1, args.jobs))
    mode = "quick" if args.quick else "full"
    print(f"{len(paths)} lesson(s), {mode} mode, as {'notebooks' if args.notebooks else 'scripts'}")
    rows, bad = [], 0
    for path in paths:
        print(f"\n=== {path.name}", flush=True)
        if args.notebooks:
            run = run_notebook(path, args.quick, out_dir, save_to=NOTEBOOK_DIR / (path.stem + ".ipynb"),
                               seed=args.seed, kernel=args.kernel)
        else:
            run = run_script(path, args.quick, out_dir, seed=args.seed, kernel=args.kernel)
        print(run.text, end="")
        if run.stderr:
            print(run.stderr[-3000:], end="", file=sys.stderr)
        found = parse_output(run.text)
        issues = problems(run.text, run.error)
        bad += bool(issues)
        held = sum(ok for ok, _ in found.claims)
        rows.append(f"{path.name:40s} {held:3d} of {len(found.claims):2d} claims hold  "
                    f"{len(found.figures):2d} figures  {run.seconds:6.1f} s  "
                    + ("ok" if not issues else "PROBLEMS: " + "; ".join(issues)))
    print(f"\n{mode} mode, {'notebooks' if args.notebooks else 'scripts'}:")
    print("\n".join(rows))
    if args.notebooks:
        print(f"executed notebooks in {NOTEBOOK_DIR}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
