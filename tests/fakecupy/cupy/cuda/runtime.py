"""fakecupy.cuda.runtime: one device."""

is_hip = False
_is_hip_environment = False
cudaDevAttrMultiProcessorCount = 16


class CUDARuntimeError(RuntimeError):
    pass


def getDeviceCount():
    return 1


def getDevice():
    return 0


def setDevice(device):
    if device != 0:
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")


def runtimeGetVersion():
    return 12040


def driverGetVersion():
    return 12040


def deviceSynchronize():
    pass


def getDeviceProperties(device):
    return {"name": b"fakecupy CPU emulation", "warpSize": 32, "multiProcessorCount": 132,
            "totalGlobalMem": 80 * 2**30, "major": 9, "minor": 0}


def memGetInfo():
    return (80 * 2**30, 80 * 2**30)
