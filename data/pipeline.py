"""Batching for training and evaluation: shuffle, repeat, batch, prefetch, deterministic by seed."""
from typing import Optional

import tensorflow as tf


def batch_pipeline(ds: tf.data.Dataset, batch_size: int, *, training: bool,
                   seed: Optional[int] = None, shuffle_buffer: int = 10_000,
                   drop_remainder: bool = True) -> tf.data.Dataset:
  """Turns an element dataset into batches.

  Training batches are shuffled (reshuffled every epoch), repeated forever and have a fixed batch
  dimension (drop_remainder) so TPU and compiled steps see static shapes. With a seed the order is
  the same on every run. Evaluation batches keep the file order and are not repeated.
  """
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  if training:
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True).repeat()
  ds = ds.batch(batch_size, drop_remainder=drop_remainder or training)
  options = tf.data.Options()
  options.deterministic = seed is not None or not training
  ds = ds.with_options(options)
  return ds.prefetch(tf.data.AUTOTUNE)
