"""Checks that a dataset's files are where a loader expects them, before any graph is built.

A missing directory or file, a file that a metadata file lists but that is not there, or a
metadata file that cannot be parsed, raises `DataLayoutError` naming the path and the expected
layout, so a run fails at start instead of mid-epoch.
"""
from concurrent import futures
import os
from typing import Iterator, List, Sequence, Tuple

_STAT_CHUNK = 1000     # paths per task (one future per path costs ~10x the stat itself)
_STAT_THREADS = 8      # stat releases the GIL; threads overlap the waits of network file systems
_SHOW_MISSING = 5      # missing paths named in the error


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


def missing_files(paths: Sequence[str]) -> List[str]:
  """The paths of `paths` that are not files, in order (checked by a thread pool).

  Measured on this machine (2 cores, local disk, warm page cache): 100k os.path.isfile calls take
  0.25-0.38 s serially and 0.21-0.33 s in chunks of 1000 over 4-32 threads when it is idle
  (0.5-1.7 s either way under a load average of 6); tf.io.gfile.exists: 0.39-0.43 s. One future
  per path is ~10x slower (2.6-4.2 s). So COCO train's 82,783 files cost ~0.2-0.3 s at every load; the pool
  pays off on cold caches and network file systems, where each stat waits.
  """
  chunks = [paths[i:i + _STAT_CHUNK] for i in range(0, len(paths), _STAT_CHUNK)]
  if len(chunks) <= 1:
    return [p for p in paths if not os.path.isfile(p)]
  with futures.ThreadPoolExecutor(min(_STAT_THREADS, len(chunks))) as pool:
    missing = pool.map(lambda chunk: [p for p in chunk if not os.path.isfile(p)], chunks)
    return [p for chunk in missing for p in chunk]


def require_listed_files(paths: Sequence[str], listed_by: str, layout: str) -> None:
  """Fails if any of `paths` (the files a metadata file lists, e.g. CUB's images.txt) is missing."""
  missing = missing_files(paths)
  if missing:
    raise missing_listed_files(missing, len(paths), listed_by, layout)


def missing_listed_files(missing: Sequence[str], total: int, listed_by: str,
                         layout: str) -> DataLayoutError:
  """The error for `missing` files out of `total` listed: how many, the first few, the layout."""
  shown = "\n  ".join(missing[:_SHOW_MISSING])
  more = f"\n  ... and {len(missing) - _SHOW_MISSING} more" if len(missing) > _SHOW_MISSING else ""
  return DataLayoutError(
      f"{len(missing)} of {total} files listed by {listed_by} are missing:\n  {shown}{more}"
      f"\nexpected layout:\n{layout}")


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
