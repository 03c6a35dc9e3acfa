"""cupyx.profiler (emulated): benchmark() times on the host clock; gpu_times
are the same host times (there is no GPU)."""

import contextlib
import math
import time

import numpy


class _PerfCaseResult:
    def __init__(self, name, ts, devices):
        self.name = name
        self._ts = ts
        self._devices = devices

    @property
    def cpu_times(self):
        return self._ts[0]

    @property
    def gpu_times(self):
        return self._ts[1:]

    def __repr__(self):
        t = self.cpu_times * 1e6
        return f"{self.name:<20s}:    CPU:{t.mean():>10.3f} us   +/-{t.std():.3f} (fakecupy: no GPU)"


def benchmark(func, args=(), kwargs={}, n_repeat=10000, *, name=None, n_warmup=10,
              max_duration=math.inf, devices=None):
    if name is None:
        name = getattr(func, "__name__", "benchmark")
    devices = (0,) if devices is None else tuple(devices)
    for _ in range(n_warmup):
        func(*args, **kwargs)
    times = []
    start_all = time.perf_counter()
    for _ in range(n_repeat):
        t0 = time.perf_counter()
        func(*args, **kwargs)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start_all > max_duration:
            break
    ts = numpy.asarray(times)
    return _PerfCaseResult(name, numpy.vstack([ts] + [ts] * len(devices)), devices)


@contextlib.contextmanager
def time_range(message=None, color_id=None, argb_color=None, sync=False):
    yield


@contextlib.contextmanager
def profile():
    yield
