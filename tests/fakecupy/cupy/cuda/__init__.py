"""fakecupy.cuda: one emulated device (id 0); streams and events are synchronous."""

from __future__ import annotations

import time

from cupy.cuda import memory, runtime  # noqa: F401
from cupy.cuda.memory import MemoryPointer, MemoryPool, PinnedMemoryPool, alloc, set_allocator  # noqa: F401


class CUDARuntimeError(RuntimeError):
    pass


def get_device_id():
    return 0


def is_available():
    return True


class Device:
    def __init__(self, device=None):
        device = 0 if device is None else int(device)
        if device != 0:
            raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
        self.id = device

    def synchronize(self):
        pass

    def use(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __int__(self):
        return self.id

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"

    compute_capability = property(lambda self: "90")
    attributes = property(lambda self: {"MultiProcessorCount": 132})


class Stream:
    null = None  # set below

    def __init__(self, null=False, non_blocking=False, ptr=0):
        self.ptr = 0 if null else id(self)

    def synchronize(self):
        pass

    def use(self):
        return self

    def done(self):
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def record(self, event=None):
        event = event or Event()
        event.record(self)
        return event


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    return Stream.null


class Event:
    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._t = None

    def record(self, stream=None):
        self._t = time.perf_counter()

    def synchronize(self):
        pass

    @property
    def done(self):
        return True


def get_elapsed_time(start_event, end_event):
    """Milliseconds between two recorded events (host clock here)."""
    if start_event._t is None or end_event._t is None:
        raise CUDARuntimeError("cudaErrorInvalidResourceHandle: event not recorded")
    return (end_event._t - start_event._t) * 1000.0


class _Compiler:
    pass


compiler = _Compiler()
