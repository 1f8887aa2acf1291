"""The embedded default dataset: scikit-learn's bundled 8x8 digits, upsampled to RGB images.

1797 images of 10 classes ship inside scikit-learn, so the default run needs no download. Each
8x8 image (values 0..16) is bilinearly resized to the requested size, repeated to 3 channels and
scaled to [-1, 1]. The split is a fixed, seeded, class-stratified 80/20 permutation, identical on
every machine: 'train' (1437 images), 'test' (360), 'all' (1797).
"""
import numpy as np
import tensorflow as tf

from data.registry import DatasetSpec, register

NUM_CLASSES = 10
_SPLIT_SEED = 20180521  # SAGAN's arXiv date: any fixed value works, it only has to never change.
_TEST_FRACTION = 0.2


def digits_arrays(split: str = "train", image_size: int = 32):
  """Returns (images float32 [N, S, S, 3] in [-1, 1], labels int32 [N]) as numpy arrays."""
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  bunch = load_digits()
  images8 = bunch.images.astype(np.float32) / 16.0  # [N, 8, 8] in [0, 1]
  labels = bunch.target.astype(np.int32)
  idx = _split_indices(labels, split)
  images8, labels = images8[idx], labels[idx]
  images = tf.image.resize(images8[..., None], [image_size, image_size], method="bilinear")
  images = np.clip(images.numpy(), 0.0, 1.0)
  images = np.repeat(images, 3, axis=-1) * 2.0 - 1.0  # [N, S, S, 3] in [-1, 1]
  return images.astype(np.float32), labels


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
  del data_dir  # bundled with scikit-learn
  images, labels = digits_arrays(split, image_size)
  return tf.data.Dataset.from_tensor_slices({"images": images, "labels": labels})


SPEC = register(DatasetSpec(
    name="digits", loader=load_digits_dataset, needs_data_dir=False, num_classes=NUM_CLASSES,
    default_image_size=32, splits=("train", "test", "all"),
    description="scikit-learn's bundled digits (no files needed)"))
