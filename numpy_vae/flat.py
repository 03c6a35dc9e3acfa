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
parameters tiling one buffer (``flat_buffer``) updates all of them in one
call over the whole buffer, which is the same arithmetic, element by
element, as one call per parameter.
"""

from __future__ import annotations


def pack(arrays: dict, xp, dtype=None, copy: bool = True) -> tuple:
    """One flat buffer holding ``arrays`` one after another, and views into it.

    Parameters
    ----------
    arrays : dict        name -> array, in the order they will be laid out.
    xp : module          numpy or cupy.
    dtype                dtype of the buffer (default: that of the first array).
    copy : bool          Copy the values in (False: the buffer starts at zero).

    Returns
    -------
    flat : (total,)      the buffer, total = sum of the arrays' sizes
    views : dict         name -> view of ``flat`` with the array's shape
    """
    dtype = dtype or next(iter(arrays.values())).dtype
    total = sum(int(a.size) for a in arrays.values())
    flat = xp.zeros(total, dtype=dtype)
    views, start = {}, 0
    for name, a in arrays.items():
        view = flat[start:start + a.size].reshape(a.shape)
        if copy:
            view[...] = a
        views[name] = view
        start += a.size
    return flat, views


def flat_buffer(arrays: dict):
    """The 1-D array that ``arrays`` tile in order, without gaps; else None.

    True for what ``pack`` returns; false as soon as one array is not a view
    of the same buffer at the next offset (a layer that replaced its
    gradient with a new array, say).  Callers then fall back to one call per
    array, which gives the same result.
    """
    values = list(arrays.values())
    if not values:
        return None
    base = values[0].base
    if base is None or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    expected = _address(base)
    for a in values:
        if a.base is not base or not a.flags.c_contiguous or _address(a) != expected:
            return None
        expected += a.size * a.itemsize
    return base if expected == _address(base) + base.nbytes else None


def _address(a) -> int:
    """Where the array's first element is in memory (NumPy or CuPy)."""
    data = a.data
    return data.ptr if hasattr(data, "ptr") else a.__array_interface__["data"][0]


__all__ = ["pack", "flat_buffer"]
