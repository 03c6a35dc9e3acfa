"""fakecupy.cuda.memory: pools that only count (no real device memory)."""


class MemoryPointer:
    def __init__(self, ptr, mem=None, offset=0):
        self.ptr = int(ptr) + offset
        self.device_id = 0

    def __int__(self):
        return self.ptr

    def __add__(self, offset):
        return MemoryPointer(self.ptr + offset)


class MemoryPool:
    """Emulated: no device memory exists, so the byte counts are 0."""

    def __init__(self, allocator=None):
        self._limit = 0

    def malloc(self, size):
        raise NotImplementedError("fakecupy: raw device allocation is not emulated")

    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_bytes(self):
        return 0

    def n_free_blocks(self):
        return 0

    def free_all_blocks(self, stream=None):
        pass

    def set_limit(self, size=None, fraction=None):
        self._limit = size or 0

    def get_limit(self):
        return self._limit


class PinnedMemoryPool(MemoryPool):
    pass


_pool = MemoryPool()
_pinned = PinnedMemoryPool()


def get_default_memory_pool():
    return _pool


def get_default_pinned_memory_pool():
    return _pinned


def alloc(size):
    raise NotImplementedError("fakecupy: raw device allocation is not emulated")


def set_allocator(allocator=None):
    pass
