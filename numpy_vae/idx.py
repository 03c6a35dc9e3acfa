"""Read and write IDX files, the small array format MNIST is distributed in.

An IDX file is a header followed by the array's values, big-endian, C order::

    bytes 0-1    0x00 0x00
    byte  2      type code: 0x08 ubyte, 0x09 byte, 0x0B short (>i2),
                 0x0C int (>i4), 0x0D float (>f4), 0x0E double (>f8)
    byte  3      ndim, the number of dimensions
    4 * ndim     the sizes, each a big-endian unsigned 32-bit integer
    the rest     prod(sizes) values of the type above

MNIST's ``train-images-idx3-ubyte``, for example, starts with 00 00 08 03,
then the sizes 60000, 28, 28, then 60000 * 28 * 28 = 47040000 pixel bytes:
16 + 47040000 = 47040016 bytes in all.

The files are often gzip-compressed.  ``read_idx`` recognises that from the
gzip magic bytes (1f 8b), not from the file name.  It checks the header
against the file's length *before* reading the data, so a damaged header
that claims terabytes is refused at once instead of exhausting memory.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

GZIP_MAGIC = b"\x1f\x8b"

# type code -> (the name the IDX format uses, big-endian NumPy dtype)
IDX_TYPES = {
    0x08: ("ubyte", np.dtype("u1")),
    0x09: ("byte", np.dtype("i1")),
    0x0B: ("short", np.dtype(">i2")),
    0x0C: ("int", np.dtype(">i4")),
    0x0D: ("float", np.dtype(">f4")),
    0x0E: ("double", np.dtype(">f8")),
}

_CHUNK = 1 << 20  # read 1 MiB at a time, so memory grows only with real data


class IDXError(ValueError):
    """A file is not a well-formed IDX file; the message names the file."""


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------

def read_idx(path) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a NumPy array.

    Returns an array of shape (size_1, ..., size_ndim) in native byte order,
    e.g. (60000, 28, 28) uint8 for MNIST's training images or (60000,) uint8
    for its labels.

    Raises IDXError (a ValueError) naming the file when the header is not
    IDX, the type code is unknown, the length does not match the header, or
    the gzip stream is corrupt.  A missing file raises FileNotFoundError.
    """
    name = os.fspath(path)
    with open(path, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
        f.seek(0)
        if compressed:
            return _read_gzip(f, name)
        return _read_raw(f, name)


def _read_raw(f, name: str) -> np.ndarray:
    """Uncompressed file: compare the header with the file size, then read."""
    file_size = os.fstat(f.fileno()).st_size
    code, dims = _read_header(f, name)
    header_size = 4 + 4 * len(dims)
    data_size = _data_size(code, dims)
    if header_size + data_size != file_size:
        raise IDXError(_size_message(name, code, dims, file_size))
    data = _read_at_most(f, data_size)
    if len(data) != data_size:  # the file changed while we were reading it
        raise IDXError(_size_message(name, code, dims, header_size + len(data)))
    return _to_array(data, code, dims)


def _read_gzip(f, name: str) -> np.ndarray:
    """Compressed file: the decompressed size is unknown until we read it.

    We read at most the announced size + 1 byte: the extra byte tells us
    whether data follows, and a header that claims huge sizes can only make
    us hold as much memory as the stream really decompresses to.  Reading to
    the end of the stream also makes gzip check its CRC.
    """
    try:
        with gzip.GzipFile(fileobj=f, mode="rb") as stream:
            code, dims = _read_header(stream, name)
            data_size = _data_size(code, dims)
            data = _read_at_most(stream, data_size + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise IDXError(f"{name}: corrupt gzip stream ({err})") from None

    header_size = 4 + 4 * len(dims)
    if len(data) > data_size:
        raise IDXError(_size_message(name, code, dims, None))
    if len(data) < data_size:
        raise IDXError(_size_message(name, code, dims, header_size + len(data)))
    return _to_array(data, code, dims)


def _read_header(stream, name: str) -> tuple[int, tuple[int, ...]]:
    """Read and check the header; returns (type code, sizes)."""
    magic = _read_at_most(stream, 4)
    if len(magic) < 4:
        raise IDXError(
            f"{name}: only {len(magic)} bytes, too short to be an IDX file "
            f"(the header alone takes 4 bytes + 4 per dimension)")
    if magic[:2] != b"\x00\x00":
        raise IDXError(
            f"{name}: not an IDX file (it starts with {magic.hex(' ')}; "
            f"an IDX file starts with 00 00, a type code and the number of "
            f"dimensions)")
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X} {t}" for c, (t, _) in IDX_TYPES.items())
        raise IDXError(f"{name}: unknown IDX type code 0x{code:02X} "
                       f"(known codes: {known})")
    if ndim == 0:
        raise IDXError(f"{name}: the header announces 0 dimensions; "
                       f"an IDX array has at least 1")
    raw_sizes = _read_at_most(stream, 4 * ndim)
    if len(raw_sizes) < 4 * ndim:
        raise IDXError(f"{name}: the header announces {ndim} dimensions but "
                       f"the file ends after {4 + len(raw_sizes)} bytes "
                       f"(truncated download?)")
    dims = struct.unpack(f">{ndim}I", raw_sizes)
    # NumPy refuses shapes like (0, 3, 2**31, 2**31) even though they are empty
    if math.prod(s for s in dims if s) * IDX_TYPES[code][1].itemsize \
            > np.iinfo(np.intp).max:
        raise IDXError(f"{name}: the header's sizes {'x'.join(map(str, dims))} "
                       f"are too large for any array (damaged header?)")
    return code, dims


def _data_size(code: int, dims: tuple[int, ...]) -> int:
    """Number of data bytes the header announces (Python ints: no overflow)."""
    return math.prod(dims) * IDX_TYPES[code][1].itemsize


def _read_at_most(stream, limit: int) -> bytearray:
    """Read until `limit` bytes or the end of the stream, whichever is first."""
    data = bytearray()
    while len(data) < limit:
        chunk = stream.read(min(_CHUNK, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _to_array(data: bytearray, code: int, dims: tuple[int, ...]) -> np.ndarray:
    """Bytes -> array of shape `dims`, converted to native byte order."""
    big_endian = IDX_TYPES[code][1]
    array = np.frombuffer(data, dtype=big_endian).reshape(dims)
    return array.astype(big_endian.newbyteorder("="), copy=False)


def _size_message(name: str, code: int, dims: tuple[int, ...],
                  found: int | None) -> str:
    """E.g. 'x: expected 47040016 bytes for 60000 28x28 images, found 1048576
    (truncated download?)'.  found=None means "more than expected"."""
    expected = 4 + 4 * len(dims) + _data_size(code, dims)
    what = _describe(code, dims)
    if found is None or found > expected:
        found_text = "more" if found is None else str(found)
        return (f"{name}: expected {expected} bytes for {what}, found "
                f"{found_text} (extra bytes after the data: wrong header, "
                f"or not an IDX file?)")
    return (f"{name}: expected {expected} bytes for {what}, found {found} "
            f"(truncated download?)")


def _describe(code: int, dims: tuple[int, ...]) -> str:
    """'60000 28x28 images', '60000 ubyte values', or 'a 2x3x4x5 int array'."""
    type_name = IDX_TYPES[code][0]
    if len(dims) == 3:
        plural = "" if dims[0] == 1 else "s"
        return f"{dims[0]} {dims[1]}x{dims[2]} image{plural}"
    if len(dims) == 1:
        return f"{dims[0]} {type_name} values"
    return f"a {'x'.join(map(str, dims))} {type_name} array"


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------

def write_idx(path, array, *, compress: bool | None = None) -> None:
    """Write `array` as an IDX file (to build a dataset in MNIST's layout).

    array: any shape with 1 to 255 dimensions, each size below 2**32, of type
        uint8, int8, int16, int32, float32 or float64.
    compress: gzip the file; None (default) means "if the name ends in .gz".

    Example: ``write_idx("train-images-idx3-ubyte", images)`` with images of
    shape (N, 28, 28) and dtype uint8 writes a file in MNIST's layout.
    """
    array = np.asarray(array)
    code = _type_code(array.dtype)
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"an IDX file holds 1 to 255 dimensions; "
                         f"this array has {array.ndim}")
    if any(size >= 2**32 for size in array.shape):
        raise ValueError(f"IDX sizes are 32-bit; shape {array.shape} is too large")

    header = bytes([0, 0, code, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape)
    body = np.ascontiguousarray(array, dtype=IDX_TYPES[code][1]).tobytes()
    if compress is None:
        compress = os.fspath(path).endswith(".gz")
    if compress:
        # mtime=0: the same array always gives the same bytes (and checksum)
        with gzip.GzipFile(path, "wb", mtime=0) as f:
            f.write(header + body)
    else:
        with open(path, "wb") as f:
            f.write(header + body)


def _type_code(dtype: np.dtype) -> int:
    """The IDX type code for a NumPy dtype, in either byte order."""
    for code, (_, idx_dtype) in IDX_TYPES.items():
        if dtype.kind == idx_dtype.kind and dtype.itemsize == idx_dtype.itemsize:
            return code
    raise ValueError(
        f"IDX files cannot hold {dtype} values; convert the array to one of "
        f"uint8, int8, int16, int32, float32, float64 first "
        f"(e.g. array.astype(np.uint8))")
