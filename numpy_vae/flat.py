"""All parameters in one array, all gradients in another.

A model's parameters are a dict of arrays, name -> W or b.  An optimizer step
touches each of them once, and the default MNIST model has 10: with separate
arrays that is 10 calls of the update kernel (120 ufunc calls for NumPy's
Adam, most of them on small bias vectors, where the cost is the call and not
the arithmetic).  So the models keep every parameter in one flat buffer,

    flat = [ encoder.0.W (784*400 values) | encoder.0.b (400) | mu.W | ... ]
    params["encoder.0.W"] = flat[0:313600].reshape(784, 400)   # a view

and every gradient in a second flat buffer laid out the same way.  The layers
read and write the views and never notice; an optimizer that finds its
parameters laid out this way (``flat_buffer``) updates all of them in one
call over the whole buffer, which is the same arithmetic, element by
element, as one call per parameter.

Each array starts on a 64-byte boundary (a cache line, and the width of
an AVX-512 register), with a few zeros of padding before it where the
previous array ended elsewhere.  The padding stays zero: its gradient is
zero, so an update leaves it alone.  The alignment matters more than one
would guess: the Numba Adam kernel runs 3x faster on 64-byte-aligned
arrays than on the 16-byte alignment that malloc gives large NumPy
arrays (94 vs 270 us for 313,600 values, benchmarks/NOTES.md).
"""

from __future__ import annotations

import numpy as np


ALIGNMENT = 64  # bytes


def _aligned_offsets(arrays: dict, itemsize: int) -> tuple[list, int]:
    """Where each array starts in the buffer (in elements), and the buffer's length."""
    step = max(1, ALIGNMENT // itemsize)
    offsets, end = [], 0
    for a in arrays.values():
        start = -(-end // step) * step  # end rounded up to a multiple of step
        offsets.append(start)
        end = start + int(a.size)
    return offsets, end


def pack(arrays: dict, xp, dtype=None, copy: bool = True) -> tuple:
    """One flat buffer holding ``arrays`` one after another, and views into it.

    Parameters
    ----------
    arrays : dict        name -> array, in the order they will be laid out.
    xp : module          numpy or cupy.
    dtype                dtype of the buffer (default: that of the first array).
    copy : bool          Copy the values in (False: the views start at zero).

    Returns
    -------
    flat : (length,)     the buffer: every array, each from a 64-byte boundary
    views : dict         name -> view of ``flat`` with the array's shape
    """
    dtype = np.dtype(dtype or next(iter(arrays.values())).dtype)
    offsets, length = _aligned_offsets(arrays, dtype.itemsize)
    spare = ALIGNMENT // dtype.itemsize  # room to move the start onto a boundary
    memory = xp.zeros(length + spare, dtype=dtype)
    first = (-_address(memory) % ALIGNMENT) // dtype.itemsize
    flat = memory[first:first + length]
    views = {}
    for (name, a), start in zip(arrays.items(), offsets):
        view = flat[start:start + a.size].reshape(a.shape)
        if copy:
            view[...] = a
        views[name] = view
    return flat, views


def flat_buffer(arrays: dict):
    """The flat buffer ``pack`` made for ``arrays``, as a view; else None.

    None as soon as one array is not where ``pack`` puts it: a view of the
    same memory, C-contiguous, at its aligned offset after the one before (a
    layer that replaced its gradient with a new array, say).  Callers then
    fall back to one call per array, which gives the same result.
    """
    values = list(arrays.values())
    if not values:
        return None
    first = values[0]
    memory = first.base
    if memory is None or memory.ndim != 1 or not memory.flags.c_contiguous:
        return None
    offsets, length = _aligned_offsets(arrays, first.itemsize)
    origin = _address(first)
    for a, start in zip(values, offsets):
        if a.base is not memory or not a.flags.c_contiguous or a.dtype != first.dtype \
                or _address(a) != origin + start * a.itemsize:
            return None
    begin = (origin - _address(memory)) // first.itemsize
    if begin + length > memory.size:
        return None
    return memory[begin:begin + length]


def _address(a) -> int:
    """Where the array's first element is in memory (NumPy or CuPy)."""
    data = a.data
    return data.ptr if hasattr(data, "ptr") else a.__array_interface__["data"][0]


__all__ = ["pack", "flat_buffer", "ALIGNMENT"]
