"""The benchmark scripts that are not tested elsewhere still run and print their tables."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _in_a_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True)
    return done.returncode == 0


def _compare_commits_main():
    path = ROOT / "benchmarks" / "compare_commits.py"
    namespace = {"__name__": "compare_commits", "__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace["main"]


@pytest.mark.skipif(not _in_a_git_checkout(), reason="needs git and a git checkout of numpy-vae")
def test_compare_commits_names_a_revision_git_does_not_know():
    with pytest.raises(SystemExit, match=r"^compare_commits: cannot read numpy_vae/ at 'no-such-rev': "):
        _compare_commits_main()(["no-such-rev", "--quick"])


@pytest.mark.skipif(not _in_a_git_checkout(), reason="needs git and a git checkout of numpy-vae")
def test_compare_commits_times_an_old_version_beside_the_working_tree():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _compare_commits_main()(["HEAD", "--backends", "numpy", "--rounds", "1", "--quick"])
    rows = {line[:34].strip(): line[34:].split() for line in out.getvalue().splitlines()[2:]}
    assert set(rows) == {"GEMM floor", "HEAD numpy", "working tree numpy"}, out.getvalue()
    assert all(float(us) > 0 and float(ratio) > 0 for us, ratio in rows.values())
