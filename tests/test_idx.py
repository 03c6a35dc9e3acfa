"""Specification of the IDX reader and writer (numpy_vae/idx.py)."""

import gzip
import struct
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_vae.idx import IDX_TYPES, IDXError, read_idx, write_idx


def _header(code, *dims):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def _write(path, data, *, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# --------------------------------------------------------------------------
# What a well-formed file gives back
# --------------------------------------------------------------------------

# one array per IDX type code, with each type's extreme values
EXAMPLES = {
    0x08: np.array([[0, 1], [128, 255]], dtype=np.uint8),
    0x09: np.array([-128, -1, 0, 127], dtype=np.int8),
    0x0B: np.array([[-32768, 1, 32767]], dtype=np.int16),
    0x0C: np.arange(-6, 6, dtype=np.int32).reshape(2, 3, 2) * 2**28,
    0x0D: np.array([-np.inf, -1.5, 0.0, 1e-38, np.nan, 3.4e38], dtype=np.float32),
    0x0E: np.array([[np.pi, -0.0, 1e308, np.nan]], dtype=np.float64),
}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("code", sorted(EXAMPLES), ids=lambda c: f"0x{c:02X}")
def test_write_then_read_gives_back_the_same_array(tmp_path, code, compress):
    array = EXAMPLES[code]
    path = tmp_path / "array-idx"
    write_idx(path, array, compress=compress)

    back = read_idx(path)

    assert back.shape == array.shape
    assert back.dtype == array.dtype          # native byte order
    np.testing.assert_array_equal(back, array)  # NaN == NaN here
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if compress else b"\x00\x00")


def test_written_header_follows_the_mnist_layout(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, np.zeros((2, 28, 28), dtype=np.uint8))

    data = path.read_bytes()
    assert data[:16] == bytes.fromhex("00000803 00000002 0000001c 0000001c")
    assert len(data) == 16 + 2 * 28 * 28


def test_gzip_is_recognised_by_its_magic_bytes_not_by_the_file_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "compressed-but-no-suffix", array, compress=True)
    write_idx(tmp_path / "raw-but-named.gz", array, compress=False)

    np.testing.assert_array_equal(read_idx(tmp_path / "compressed-but-no-suffix"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw-but-named.gz"), array)


def test_write_idx_compresses_when_the_name_ends_in_gz(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros(3, dtype=np.uint8))
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_big_endian_values_come_back_native_and_writable(tmp_path):
    path = _write(tmp_path / "shorts", _header(0x0B, 2) + b"\x01\x02\xff\xfe")

    array = read_idx(path)

    assert array.dtype == np.dtype(np.int16)
    assert array.tolist() == [0x0102, -2]
    array[0] = 7  # callers may normalise in place


def test_an_empty_array_is_a_valid_idx_file(tmp_path):
    path = _write(tmp_path / "empty", _header(0x08, 0, 28, 28))
    assert read_idx(path).shape == (0, 28, 28)


def test_write_idx_refuses_types_idx_cannot_hold(tmp_path):
    for array in (np.zeros(3, dtype=bool), np.zeros(3, dtype=np.uint16),
                  np.zeros(3, dtype=np.complex64)):
        with pytest.raises(ValueError, match="uint8, int8, int16, int32, float32, float64"):
            write_idx(tmp_path / "x", array)
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))


# --------------------------------------------------------------------------
# What a damaged file gives: IDXError, naming the file and the problem
# --------------------------------------------------------------------------

def test_truncated_file_reports_expected_and_found_sizes(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    data = _header(0x08, 60000, 28, 28)
    path.write_bytes(data + bytes(1048576 - len(data)))

    with pytest.raises(IDXError) as error:
        read_idx(path)

    assert str(error.value) == (
        f"{path}: expected 47040016 bytes for 60000 28x28 images, "
        f"found 1048576 (truncated download?)")


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("content, problem", [
    (b"", "too short"),
    (b"\x00\x00", "too short"),
    (b"<!DOCTYPE html><html>Not Found</html>", "not an IDX file"),
    (_header(0x08, 3)[:2] + b"\x07\x01" + bytes(7), "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (_header(0x08, 10, 28, 28)[:10], "announces 3 dimensions"),
    (_header(0x08, 10, 28, 28) + bytes(100), "truncated download"),
    (_header(0x08, 4) + bytes(5), "extra bytes after the data"),
    (_header(0x0C, 2) + bytes(7), "expected 16 bytes for 2 int values, found 15"),
    (_header(0x08, 0, 3, 2**31, 2**31), "too large for any array"),
], ids=["empty", "2 bytes", "html page", "unknown type", "no dimensions",
        "cut in header", "truncated", "trailing bytes", "partial value",
        "empty but impossible shape"])
def test_malformed_file_raises_idx_error_naming_the_file(tmp_path, content, problem, compress):
    path = _write(tmp_path / "labels-idx1-ubyte", content, compress=compress)

    with pytest.raises(IDXError, match=problem) as error:
        read_idx(path)

    assert "labels-idx1-ubyte" in str(error.value)


def test_unknown_type_code_message_lists_the_known_codes(tmp_path):
    path = _write(tmp_path / "f", b"\x00\x00\x0a\x01" + bytes(4))
    with pytest.raises(IDXError, match="0x08 ubyte, 0x09 byte, 0x0B short"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_header_claiming_huge_sizes_fails_fast_without_allocating(tmp_path, compress):
    # 2**31 x 28 x 28 bytes is 1.6 TB; the file is 100 bytes
    content = _header(0x08, 2**31, 28, 28)
    path = _write(tmp_path / "huge", content + bytes(100 - len(content)), compress=compress)

    tracemalloc.start()
    try:
        with pytest.raises(IDXError, match="huge: expected 1683627180048 bytes"):
            read_idx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 << 20  # bytes; a 1 MiB read buffer at most


def _gzip_stream(data=bytes(_header(0x08, 300)) + bytes(range(256)) + bytes(44)):
    return bytearray(gzip.compress(data, mtime=0))


def _flip(data, index):
    data[index] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize("content", [
    _flip(_gzip_stream(), -8),                       # CRC-32 in the trailer
    _flip(_gzip_stream(), -1),                       # size in the trailer
    bytes(_gzip_stream()[:-12]),                     # stream cut short
    bytes(_gzip_stream()[:12]),                      # cut inside the header
    b"\x1f\x8b" + bytes(range(200, 256)) * 3,        # gzip magic, then junk
    bytes(_gzip_stream()) + b"junk after the end",   # trailing garbage
], ids=["bad crc", "bad size", "truncated", "truncated header",
        "junk after magic", "trailing garbage"])
def test_corrupt_gzip_stream_raises_idx_error_naming_the_file(tmp_path, content):
    path = _write(tmp_path / "t10k-labels-idx1-ubyte.gz", content)

    with pytest.raises(IDXError) as error:
        read_idx(path)

    assert "t10k-labels-idx1-ubyte.gz" in str(error.value)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nowhere")


# --------------------------------------------------------------------------
# Properties: any input gives a consistent array or an IDXError, never a crash
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scratch_file(tmp_path_factory):
    return tmp_path_factory.mktemp("idx-property") / "random-idx"


def _read_or_idx_error(path):
    """The array read_idx returns, or None for an IDXError; anything else fails."""
    try:
        return read_idx(path)
    except IDXError as err:
        assert str(path) in str(err)
        return None


def _consistent(array, n_bytes):
    """A returned array accounts for every byte of the (decompressed) file."""
    assert 4 + 4 * array.ndim + array.nbytes == n_bytes
    assert array.dtype.byteorder in "=|"


@settings(max_examples=300, deadline=None)
@given(content=st.binary(max_size=200), compress=st.booleans())
def test_random_bytes_give_an_array_or_idx_error(scratch_file, content, compress):
    _write(scratch_file, content, compress=compress)
    array = _read_or_idx_error(scratch_file)
    if array is not None:
        _consistent(array, len(content))


@settings(max_examples=300, deadline=None)
@given(code=st.sampled_from(sorted(IDX_TYPES) + [0x00, 0x0A, 0xFF]),
       dims=st.lists(st.integers(0, 6) | st.integers(0, 2**32 - 1), min_size=1, max_size=4),
       body=st.binary(max_size=300), compress=st.booleans())
def test_random_bytes_after_a_plausible_header_give_an_array_or_idx_error(
        scratch_file, code, dims, body, compress):
    content = _header(code, *dims) + body
    _write(scratch_file, content, compress=compress)
    array = _read_or_idx_error(scratch_file)
    if array is not None:
        _consistent(array, len(content))
        assert array.shape == tuple(dims)
