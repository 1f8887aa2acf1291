"""Atomic file writes: a reader sees the old file or the new one, never a half-written one.

Shared by every package (data is the bottom layer): run-directory files, metrics.jsonl, the
real-statistics cache, vocabularies, index files and bad-record reports all go through it.

`atomic_write_bytes`: write a temporary file in the same directory, flush and fsync it, then
`os.replace` it over the target (atomic on POSIX and Windows) and fsync the directory so the
rename survives a crash.
"""
import os
import tempfile


def atomic_write_bytes(path: str, data: bytes) -> None:
  """Writes `data` to `path` atomically (tmp file + fsync + os.replace + directory fsync)."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                  dir=directory)
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp_path, path)
  except BaseException:
    if os.path.exists(tmp_path):
      os.remove(tmp_path)
    raise
  _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
  if not hasattr(os, "O_DIRECTORY"):  # Windows: directories cannot be opened for fsync.
    return
  fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)
