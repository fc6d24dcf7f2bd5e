"""Peak resident memory of one step, from the kernel's high-water mark
(Linux)."""
import ctypes
import gc
from typing import Callable, Optional


def _status_mib(field: str) -> float:
    with open('/proc/self/status') as file:
        for line in file:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise OSError(f'/proc/self/status has no {field}')


def peak_memory_mib(step: Callable[[], object]) -> Optional[float]:
    """Peak resident memory added by one call of ``step`` (MiB), from the
    kernel's high-water mark (Linux); None where it cannot be reset.

    Args:
        step (callable): The function measured, without arguments.
    """
    gc.collect()
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open('/proc/self/clear_refs', 'w') as file:
            file.write('5')  # reset VmHWM to the current RSS
        before = _status_mib('VmRSS')
    except OSError:
        return None
    step()
    return _status_mib('VmHWM') - before
