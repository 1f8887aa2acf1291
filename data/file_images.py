"""The pipeline for datasets stored as one image file per example (folders, CUB, COCO).

records (none at all: DataLayoutError naming where they should be) -> this pipeline's shard
(every n-th file; more pipelines than files: ValueError) -> order (sorted, or one seeded
permutation for training; the element shuffle buffer of `batch_pipeline` reshuffles every epoch)
-> index file -> parallel read + decode (corrupt or unreadable files skipped, counted and named)
-> optional cache. Parallel reads come from the parallel decode map: each call reads its own file.
"""
from typing import Callable, Dict, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from data import bad_records
from data import index_file
from data import resilient_decode
from data.layout import DataLayoutError
from data.sharding import Shard


def image_files_dataset(records: Sequence[index_file.ImageRecord], *, tag: str, source: str,
                        layout: str, decode_fn: Callable[[tf.Tensor], Dict[str, tf.Tensor]],
                        shard: Shard = Shard(), shuffle: bool = False, seed: Optional[int] = None,
                        strict: bool = False, cache: Union[bool, str] = False,
                        index_dir: Optional[str] = None) -> tf.data.Dataset:
  """Decoded examples of `records` for this shard.

  Args:
    records: the images (all shards), in a fixed order.
    tag: names the dataset in the skipped-record counts, e.g. 'cub/train'.
    source: where this split's images come from (directory, listing file), for the error
      raised when there are none.
    layout: the dataset's expected layout, for the same error.
    decode_fn: index line (see index_file.path_of / parse_line) -> dict of decoded tensors; it
      reads the file itself. It runs in the parallel map, so parsing costs no serial time.
    shard: which shard this pipeline reads.
    shuffle: permute this shard's files once (seeded by `seed`; random when seed is None).
    seed: see shuffle.
    strict: raise at the first corrupt file instead of skipping it.
    cache: False, True (memory) or a file prefix for tf.data's cache of the decoded examples.
    index_dir: where the index file goes (default: a directory under the system temp dir).
  """
  if not records:
    raise DataLayoutError(f"{tag}: the split has no images ({source})\nexpected layout:\n{layout}")
  mine = list(shard.take(list(records)))
  if not mine:
    raise ValueError(f"{tag}: {len(records)} image files cannot feed {shard.num_shards} input "
                     f"pipelines (pipeline {shard.index} would read none); use at most "
                     f"{len(records)} input pipelines (workers or hosts) for this split")
  if shuffle:
    order = np.random.RandomState(seed).permutation(len(mine))
    mine = [mine[i] for i in order]
  path = index_file.write_index(mine, index_dir)

  def on_skipped(first, count):
    for pos in range(first, first + count):
      bad_records.record(tag, bad_records.CORRUPT_IMAGE, mine[pos].path, strict=strict)

  ds = resilient_decode.decode_list_skipping_bad(index_file.read_index(path), decode_fn,
                                                 length=len(mine), on_skipped=on_skipped)
  if cache:
    ds = ds.cache("" if cache is True else cache)
  return ds
