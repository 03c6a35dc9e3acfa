"""The run folder's files: creating the folder, config.json and metrics.jsonl.

A run folder (runs/YYYYmmdd-HHMMSS-<model>) holds

    checkpoint.npz   the model, optimizer and generators (numpy_vae/checkpoint_format.py)
    config.json      a readable record of the run: model, options, backend, command
    metrics.jsonl    one JSON line per completed epoch
    .lock            held by the process training in the folder (``RunFolderLock``)

Writing any of them (a read-only disk, a full disk, a path through a file)
fails with ``RunFolderError``, one line naming what could not be written.

One process trains in a folder at a time: the trainer holds an advisory
lock (``fcntl.flock``) on ``.lock`` while it works there.  The operating
system releases it when the process exits in any way, a ``kill -9``
included, so a crashed run never leaves the folder locked.  A second
process gets ``RunFolderBusyError`` before it reads or writes anything of
the run.  Where ``fcntl`` does not exist (Windows) there is no lock.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

METRICS_NAME = "metrics.jsonl"
CONFIG_NAME = "config.json"
LOCK_NAME = ".lock"


class RunFolderError(RuntimeError):
    """The run folder cannot be written (read-only, full disk, not a folder)."""


class RunFolderBusyError(RunFolderError):
    """Another process is training in the run folder."""


class RunFolderLock:
    """An exclusive advisory lock on ``run_dir/.lock``, held until ``release``
    or the end of the process.

    lock = RunFolderLock(run_dir)   # raises RunFolderBusyError if another process holds it
    ...
    lock.release()
    """

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd = None
        if fcntl is None:
            return
        with writing("create the lock file", self.path):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            who = ("another trainer of this process" if holder == str(os.getpid()) else
                   f"another process{f' (pid {holder})' if holder.isdigit() else ''}")
            raise RunFolderBusyError(f"{self.path.parent} is in use: {who} is training in it; "
                                     f"wait for it to finish or stop it, then try again") from None
        except OSError as err:
            os.close(fd)
            raise RunFolderError(f"cannot lock the run folder {self.path.parent}: "
                                 f"{err.strerror or err}") from err
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())  # for the message a second process prints
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock (closing the file releases the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        try:
            self.release()
        except Exception:  # at interpreter exit os may be gone; the OS releases the lock anyway
            pass


@contextmanager
def writing(what: str, path):
    """Turn an OSError into one readable line: 'cannot write the checkpoint X: No space left on device'."""
    try:
        yield
    except OSError as err:
        raise RunFolderError(f"cannot {what} {path}: {err.strerror or err}") from err



def new_run_dir(root="runs", model_config: dict | None = None) -> Path:
    """A fresh folder root/YYYYmmdd-HHMMSS-<model>, e.g. runs/20250101-120000-vae-784-400-20."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = stamp
    if model_config:
        sizes = [model_config.get("input_dim"), *model_config.get("hidden_dims", []),
                 model_config.get("latent_dim")]
        name += "-" + "-".join([str(model_config.get("model", "vae"))] +
                               [str(s) for s in sizes if s is not None])
    root = Path(root)
    candidate, n = root / name, 1
    while candidate.exists():  # two runs started in the same second
        n += 1
        candidate = root / f"{name}-{n}"
    with writing("create the run folder", candidate):
        candidate.mkdir(parents=True)
    return candidate


def write_run_config(run_dir, model, options, argv=None) -> Path:
    """config.json: a readable record of the run (the checkpoint is what resumes it)."""
    path = Path(run_dir) / CONFIG_NAME
    record = {"model": model.config, "options": options.to_dict(),
              "backend": model.backend.name, "command": argv,
              "created": datetime.now().isoformat(timespec="seconds")}
    with writing("write", path):
        path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def read_metrics(run_dir) -> list[dict]:
    """The per-epoch records of ``metrics.jsonl`` (an empty list if there is none).

    A last line that is not JSON is a write cut short (a full disk, a kill
    in the middle of ``append_json_line``): it is left out, since the
    checkpoint of that epoch was never written.  A bad line before the last
    one raises RunFolderError, naming the file and the line.
    """
    return _read_metrics(Path(run_dir) / METRICS_NAME)[0]


def _read_metrics(path: Path) -> tuple[list[dict], bool]:
    """(records, whether a torn last line was left out)."""
    if not path.exists():
        return [], False
    with writing("read", path):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                return records, True
            raise RunFolderError(f"{path} line {number} is not a JSON record (the file is "
                                 f"damaged): {line[:60]!r}") from None
    return records, False


def append_json_line(path: Path, record: dict) -> None:
    """Add ``record`` as one line at the end of the file ``path``."""
    with writing("write", path), open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def rewind_metrics(path: Path, epoch: int) -> list[dict]:
    """Drop records after ``epoch`` (written after the last checkpoint); returns the rest."""
    records, torn = _read_metrics(path)
    kept = [r for r in records if r.get("epoch", 0) <= epoch]
    if torn or len(kept) != len(records):
        path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    return kept


__all__ = ["RunFolderError", "RunFolderBusyError", "RunFolderLock", "LOCK_NAME", "writing", "new_run_dir", "write_run_config", "read_metrics",
           "append_json_line", "rewind_metrics", "METRICS_NAME", "CONFIG_NAME"]
