"""Writing a file so that a reader sees the old content or the new one, never a part of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from services.core.errors import FileAccessError


def write_atomically(file: Path, text: str, *, newline: str | None = None) -> None:
    """Write `text` (UTF-8) to `file`: a temp file in the same directory, flushed to disk, then
    renamed over `file` (atomic on one file system). Creates the parent directories; on any
    failure the temp file is removed and `file` is left as it was."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{file.name}-", suffix=".tmp", dir=file.parent)
    except OSError as exc:
        raise FileAccessError.of(file, exc, "write") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, file)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise FileAccessError.of(file, exc, "write") from exc
        raise
