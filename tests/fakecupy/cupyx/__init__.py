"""fakecupy's cupyx: profiler.benchmark and time_range only."""
from cupyx import profiler  # noqa: F401
