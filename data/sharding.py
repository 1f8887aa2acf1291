"""Which part of a dataset this input pipeline reads: one of `num_shards` disjoint shards.

Multi-worker and TPU training run one input pipeline per host; each must read a different part
of the data. The shard comes from a `tf.distribute.InputContext` (tf.distribute strategies call
`distribute_datasets_from_function(fn(input_context))`) or from explicit numbers (TPUEstimator's
per-host input: host id and number of hosts). Loaders shard files when there are at least as
many files as shards, and records inside every file otherwise, so shards always partition the data.
"""
import dataclasses
from typing import Optional, Sequence, TypeVar

import tensorflow as tf

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Shard:
  num_shards: int = 1
  index: int = 0

  def __post_init__(self):
    if self.num_shards < 1 or not 0 <= self.index < self.num_shards:
      raise ValueError(f"bad shard {self.index} of {self.num_shards}")

  @property
  def is_whole(self) -> bool:
    return self.num_shards == 1

  def take(self, items: Sequence[T]) -> Sequence[T]:
    """Every num_shards-th item starting at index: shards of a list partition it."""
    return items[self.index::self.num_shards]

  def apply(self, ds: tf.data.Dataset) -> tf.data.Dataset:
    return ds if self.is_whole else ds.shard(self.num_shards, self.index)


def resolve(input_context: Optional[tf.distribute.InputContext] = None,
            num_shards: Optional[int] = None, shard_index: Optional[int] = None) -> Shard:
  """Builds the Shard from an InputContext or explicit numbers (not both)."""
  if input_context is not None:
    if num_shards is not None or shard_index is not None:
      raise ValueError("give either input_context or num_shards/shard_index, not both")
    return Shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
  if (num_shards is None) != (shard_index is None):
    raise ValueError("num_shards and shard_index go together")
  if num_shards is None:
    return Shard()
  return Shard(int(num_shards), int(shard_index))
