"""Give memory that was freed back to the operating system between the big steps of a job.

Arrow's memory pool (behind pandas' string columns) and glibc's heap keep freed blocks for reuse, so a
process that drops its 2 GB event frame before building a 4 GB feature matrix would still hold both at
its peak. Both pools can be asked to return what they no longer use; neither call changes any data.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

import pyarrow as pa


def release_freed_memory() -> None:
    gc.collect()
    pa.default_memory_pool().release_unused()
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name)
    if hasattr(libc, "malloc_trim"):  # glibc only; other allocators return memory on their own terms
        libc.malloc_trim(0)
