"""The embedded default dataset: scikit-learn's bundled 8x8 digits, upsampled to RGB images.

1797 images of 10 classes ship inside scikit-learn, so the default run needs no download. Each
8x8 image (values 0..16) is bilinearly resized to the requested size, repeated to 3 channels and
scaled to [-1, 1]. The split is a fixed, seeded, class-stratified 80/20 permutation, identical on
every machine: 'train' (1437 images), 'test' (360), 'all' (1797).
"""
import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from data.registry import DatasetSpec, register

NUM_CLASSES = 10
_SPLIT_SEED = 20180521  # SAGAN's arXiv date: any fixed value works, it only has to never change.
_TEST_FRACTION = 0.2


def digits_source(split: str = "train"):
  """The split's original 8x8 images as uint8 in 0..16 [N, 8, 8] and labels int32 [N]."""
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  bunch = load_digits()
  labels = bunch.target.astype(np.int32)
  idx = _split_indices(labels, split)
  return bunch.images[idx].astype(np.uint8), labels[idx]


def upsample_to_rgb(images8, image_size, xp=np):
  """[N, 8, 8] values 0..16 -> [N, S, S, 3] float32 in [-1, 1] (bilinear, half-pixel centres).

  `xp` is numpy or tensorflow's experimental numpy, so the loader and tests share one formula.
  """
  r = bilinear_matrix(8, image_size).astype(np.float32)  # [S, 8]
  x = xp.asarray(images8, dtype=xp.float32) / 16.0
  up = xp.einsum("si,nij,tj->nst", r, x, r)  # [N, S, S] in [0, 1]
  return xp.stack([up, up, up], axis=-1) * 2.0 - 1.0


def digits_arrays(split: str = "train", image_size: int = 32):
  """Returns (images float32 [N, S, S, 3] in [-1, 1], labels int32 [N]) as numpy arrays."""
  images8, labels = digits_source(split)
  return upsample_to_rgb(images8, image_size).astype(np.float32), labels


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
  """[n_out, n_in] linear-interpolation weights with half-pixel centres (tf.image.resize's).

  Pure numpy, so the loader also works while an estimator graph is being built.
  """
  src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1)
  lo = np.floor(src).astype(int)
  hi = np.minimum(lo + 1, n_in - 1)
  frac = src - lo
  m = np.zeros((n_out, n_in))
  m[np.arange(n_out), lo] += 1.0 - frac
  m[np.arange(n_out), hi] += frac
  return m


def _split_indices(labels: np.ndarray, split: str) -> np.ndarray:
  rng = np.random.RandomState(_SPLIT_SEED)
  train, test = [], []
  for c in range(NUM_CLASSES):
    members = np.flatnonzero(labels == c)
    members = members[rng.permutation(len(members))]
    n_test = int(round(len(members) * _TEST_FRACTION))
    test.append(members[:n_test])
    train.append(members[n_test:])
  chosen = {"train": train, "test": test, "all": train + test}[split]
  return np.sort(np.concatenate(chosen))


def load_digits_dataset(data_dir=None, split="train", image_size=32):
  """Only the 8x8 uint8 originals (115 KB) enter the graph; upsampling runs in tf.data."""
  del data_dir  # bundled with scikit-learn
  images8, labels = digits_source(split)
  ds = tf.data.Dataset.from_tensor_slices({"images8": images8, "labels": labels})

  def upsample(example):
    image = upsample_to_rgb(example["images8"][None], image_size, tnp)[0]  # [S, S, 3]
    return {"images": tf.convert_to_tensor(image), "labels": example["labels"]}
  return ds.map(upsample, num_parallel_calls=tf.data.AUTOTUNE)


SPEC = register(DatasetSpec(
    name="digits", loader=load_digits_dataset, needs_data_dir=False, num_classes=NUM_CLASSES,
    default_image_size=32, splits=("train", "test", "all"),
    description="scikit-learn's bundled digits (no files needed)"))
