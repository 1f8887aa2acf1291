"""Atomic writes: complete new content, or the old content untouched, and no stray tmp files."""
import os

import pytest

from data import atomic_io


def test_write_and_overwrite(tmp_path):
  path = str(tmp_path / "sub" / "f.txt")
  atomic_io.atomic_write_bytes(path, b"one")
  atomic_io.atomic_write_bytes(path, b"two")
  with open(path, "rb") as f:
    assert f.read() == b"two"
  assert os.listdir(tmp_path / "sub") == ["f.txt"]


def test_failed_replace_keeps_old_content(tmp_path, monkeypatch):
  path = str(tmp_path / "f.txt")
  atomic_io.atomic_write_bytes(path, b"old")

  def crash(*args):
    raise OSError("disk gone")

  monkeypatch.setattr(os, "replace", crash)
  with pytest.raises(OSError, match="disk gone"):
    atomic_io.atomic_write_bytes(path, b"new")
  with open(path, "rb") as f:
    assert f.read() == b"old"
  assert os.listdir(tmp_path) == ["f.txt"]
