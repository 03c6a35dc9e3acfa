"""How long each lesson takes, in quick or full mode, kept as a results file.

    python benchmarks/time_lessons.py --quick            # all 15, quick mode -> docs/results/lessons_quick.json
    python benchmarks/time_lessons.py                    # all 15, full mode  -> docs/results/lessons_full.json
    python benchmarks/time_lessons.py 01 02 03           # some of them (the others are "not measured")

Each lesson runs as ``make lessons`` runs it (lessons/_check.py: a fresh
process, one BLAS thread, the claims and figures checked); the file keeps
its wall time, its claims held and whether the run was clean.  The
README's learning path prints these times: a run on a busy machine takes
longer, and the load average is kept beside them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "lessons"))
import _check  # noqa: E402  (lessons/_check.py)
import _provenance  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers or name prefixes (default: all)")
    parser.add_argument("--quick", action="store_true", help="quick mode")
    parser.add_argument("--results", default=None, metavar="FILE.json",
                        help="default: docs/results/lessons_quick.json or lessons_full.json")
    args = parser.parse_args(argv)
    provenance = _provenance.start([__file__, *(sys.argv[1:] if argv is None else argv)])
    mode = "quick" if args.quick else "full"
    lessons = {}
    results = args.results or _provenance.RESULTS_DIR / f"lessons_{mode}.json"
    with tempfile.TemporaryDirectory() as out_dir:
        for path in _check.lesson_paths(args.lessons):
            run = _check.run_script(path, args.quick, out_dir)
            found = _check.parse_output(run.text)
            issues = _check.problems(run.text, run.error)
            lessons[path.stem] = {"seconds": round(run.seconds, 1),
                                  "claims_held": sum(ok for ok, _ in found.claims),
                                  "claims": len(found.claims), "clean": not issues}
            print(f"{path.name:45s} {run.seconds:7.1f} s  "
                  f"{'ok' if not issues else 'PROBLEMS: ' + '; '.join(issues)}", flush=True)
            # written after every lesson, so that a run cut short keeps what it measured
            _provenance.write(results, provenance, {"mode": mode, "lessons": lessons},
                              description=f"wall time of each lesson in {mode} mode (lessons/_check.py's run)",
                              threads_used="OPENBLAS_NUM_THREADS=1 in each lesson (lessons/_check.py)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
