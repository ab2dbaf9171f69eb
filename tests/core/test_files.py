"""services/core/files.py: a file is replaced whole or not at all (config save, mappings CSV export)."""

from __future__ import annotations

import os

import pytest

from services.core import files
from services.core.errors import FileAccessError


def test_write_atomically_creates_parents_and_replaces_whole(tmp_path):
    target = tmp_path / "a" / "b" / "out.csv"
    files.write_atomically(target, "x,y\r\n1,2\r\n", newline="")
    assert target.read_bytes() == b"x,y\r\n1,2\r\n"  # newline="" writes the text's own line ends
    files.write_atomically(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.toml"
    target.write_text("old", encoding="utf-8")

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(FileAccessError, match="cannot write .*out.toml: No space left on device"):
        files.write_atomically(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.toml"]
