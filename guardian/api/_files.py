"""Uploads handed to file-based use-cases through a private temporary directory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def workdir() -> Iterator[Path]:
    """A 0700 directory, removed with everything in it when the block ends."""
    with tempfile.TemporaryDirectory(prefix="guardian-api-") as d:
        yield Path(d)


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


__all__ = ["workdir", "write"]
