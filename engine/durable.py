"""Durable writes: what must reach the disk before a write may be acknowledged."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries: a new or renamed file survives a power cut only once its directory
    entry is on disk too (fsync of the file alone does not write it)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
