"""Checks that a dataset's files are where a loader expects them, before any graph is built.

A missing directory or file, or a metadata file that cannot be parsed, raises `DataLayoutError`
naming the path and the expected layout, so a run fails at start instead of mid-epoch.
"""
import os
from typing import Iterator, List, Tuple


class DataLayoutError(FileNotFoundError):
  """The data directory does not have the layout a loader needs (message says what is expected)."""


def require_dir(path: str, layout: str) -> str:
  if not os.path.isdir(path):
    raise DataLayoutError(f"missing directory {path}\nexpected layout:\n{layout}")
  return path


def require_file(path: str, layout: str) -> str:
  if not os.path.isfile(path):
    raise DataLayoutError(f"missing file {path}\nexpected layout:\n{layout}")
  return path


def first_existing(paths: List[str], layout: str, kind: str = "file") -> str:
  """Returns the first existing path of `paths` (alternative places for the same thing)."""
  check = os.path.isdir if kind == "dir" else os.path.isfile
  for path in paths:
    if check(path):
      return path
  raise DataLayoutError(
      f"missing {kind}: none of {', '.join(paths)} exists\nexpected layout:\n{layout}")


def table_rows(path: str, num_fields: int, layout: str) -> Iterator[Tuple[int, List[str]]]:
  """Yields (line number, whitespace-split fields) of a metadata table such as CUB's images.txt.

  Blank lines are ignored; any other line without exactly `num_fields` fields is a layout error
  (these files define the dataset, so a damaged one stops the run instead of being skipped).
  """
  require_file(path, layout)
  with open(path, "r", encoding="utf-8") as f:
    for lineno, line in enumerate(f, start=1):
      fields = line.split()
      if not fields:
        continue
      if len(fields) != num_fields:
        raise DataLayoutError(
            f"{path}:{lineno}: expected {num_fields} fields, got {line.rstrip()!r}\n"
            f"expected layout:\n{layout}")
      yield lineno, fields


def parse_number(text: str, path: str, lineno: int, kind=int):
  try:
    return kind(text)
  except ValueError:
    raise DataLayoutError(f"{path}:{lineno}: {text!r} is not a number") from None
