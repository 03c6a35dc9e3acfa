"""Results files: a measured number with the machine, code and moment it came from.

A measuring script calls ``start()`` before it measures and ``write(...)``
after, and gets a JSON file under docs/results/ (or wherever ``--results``
points) of this shape:

    {
      "name": "side_by_side",                  the file's stem, used by docs/make_tables.py
      "description": "what was measured",
      "values": {...},                         the numbers, in the script's own layout
      "provenance": {
        "command": "python benchmarks/bench_pytorch.py --blas-threads 1 ...",
        "date": "2026-12-04T13:02:11Z",        when the measurement started (UTC)
        "git_commit": "ff0b5b9...",            HEAD, and whether the tree differed from it
        "git_dirty": false,
        "cpu_model": "AMD EPYC",               lscpu's "Model name"
        "cpu_flags": "avx2 fma avx512f ...",   the SIMD flags that matter for BLAS
        "cpus": 2,
        "blas": "openblas 0.3.31 SkylakeX",    threadpoolctl: library, version, kernel
        "threads": "...",                      the BLAS threads and the variables that set them
        "load_average": {"start": [...], "end": [...]},   1, 5 and 15 minutes
        "nice": 10,                            the process's niceness (0: an ordinary process)
        "python": "3.11.2", "numpy": "2.3.5"
      }
    }

Nothing here imports numpy_vae: the module stands beside the package and
describes the machine, not the model.  Fields that cannot be known (a
result measured before this file existed) are written "not recorded",
never guessed; docs/make_tables.py and tests/test_docs.py check the fields.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "docs" / "results"
NOT_RECORDED = "not recorded"
FIELDS = ("command", "date", "git_commit", "git_dirty", "cpu_model", "cpu_flags", "cpus", "blas",
          "threads", "load_average", "python", "numpy")
# The flags that decide which BLAS kernel runs and how fast the elementwise loops are.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl",
              "avx512_vnni", "avx512_bf16", "amx_tile")
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMPY_VAE_BLAS_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_CORETYPE")


def _lscpu() -> dict:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def cpu() -> dict:
    """CPU model, its SIMD flags and the number of CPUs (lscpu; platform as a fallback)."""
    fields = _lscpu()
    flags = set(fields.get("Flags", "").split())
    return {
        "cpu_model": fields.get("Model name") or platform.processor() or NOT_RECORDED,
        "cpu_flags": " ".join(f for f in SIMD_FLAGS if f in flags) or NOT_RECORDED,
        "cpus": os.cpu_count() or NOT_RECORDED,
    }


def blas() -> str:
    """The BLAS library NumPy loaded, its version and the kernel it chose (threadpoolctl)."""
    try:
        import numpy  # noqa: F401  (loads the BLAS library)
        from threadpoolctl import threadpool_info
    except ImportError:
        return NOT_RECORDED
    libraries = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')}".strip()
                 for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(libraries) or NOT_RECORDED


def threads() -> str:
    """BLAS threads as this process has them, and every environment variable that sets them."""
    text = []
    try:
        from threadpoolctl import threadpool_info
        text += [f"{i.get('internal_api')} {i.get('num_threads')} threads"
                 for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        pass
    text += [f"{name}={os.environ[name]}" for name in THREAD_VARIABLES if name in os.environ]
    return ", ".join(text) or NOT_RECORDED


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def command_line(argv: list[str] | None = None) -> str:
    """The command as a reader would type it: the script's path relative to the repository."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        try:
            argv[0] = str(Path(argv[0]).resolve().relative_to(ROOT))
        except ValueError:
            pass
    prefix = [f"{name}={os.environ[name]}" for name in ("OPENBLAS_NUM_THREADS", "NUMPY_VAE_BLAS_THREADS",
                                                         "OPENBLAS_CORETYPE") if name in os.environ]
    return " ".join(prefix + ["python"] + [shlex.quote(a) for a in argv])


def start(argv: list[str] | None = None) -> dict:
    """The provenance known before measuring: command, date, commit, machine, load at the start."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "command": command_line(argv),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": _git("rev-parse", "HEAD") or NOT_RECORDED,
        "git_dirty": NOT_RECORDED if status is None else bool(status),
        **cpu(),
        "blas": NOT_RECORDED,
        "threads": NOT_RECORDED,
        "load_average": {"start": _load(), "end": None},
        "nice": os.nice(0),  # a measurement run under `nice` yields the cores to other programs
        "python": platform.python_version(),
        "numpy": _numpy_version(),
    }


def _numpy_version() -> str:
    try:
        import numpy
    except ImportError:
        return NOT_RECORDED
    return numpy.__version__


def write(path: str | os.PathLike, provenance: dict, values: dict, description: str,
          threads_used: str | None = None) -> Path:
    """Finish ``provenance`` (load at the end, BLAS, threads) and write the results file.

    ``threads_used`` replaces this process's own thread count where the
    measurement ran elsewhere (worker processes) or under a limit that has
    been lifted since."""
    path = Path(path)
    if path.suffix != ".json":
        path = RESULTS_DIR / f"{path.name}.json" if path.parent == Path(".") else path.with_suffix(".json")
    provenance = dict(provenance)
    provenance["load_average"] = {"start": provenance["load_average"]["start"], "end": _load()}
    provenance["blas"] = blas()
    provenance["threads"] = threads_used or threads()
    record = {"name": path.stem, "description": description, "values": values, "provenance": provenance}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    print(f"results written to {path}")
    return path


def missing_fields(record: dict) -> list[str]:
    """Provenance fields a measured results file lacks (empty list: complete)."""
    prov = record.get("provenance")
    if not isinstance(prov, dict):
        return ["provenance"]
    missing = [f for f in FIELDS if prov.get(f) in (None, "", [])]
    load = prov.get("load_average")
    if isinstance(load, dict) and any(load.get(k) in (None, []) for k in ("start", "end")):
        missing.append("load_average.start/end")
    return missing
