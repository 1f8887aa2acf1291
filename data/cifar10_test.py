"""CIFAR-10 from the official binary batches (written here byte by byte) and from prepared TFDS."""
import os
import time

import numpy as np
import pytest
import tensorflow as tf

import data
from data import format_writers
from data.layout import DataLayoutError

RECORDS_PER_FILE = {"data_batch_1.bin": 3, "data_batch_2.bin": 1, "data_batch_3.bin": 2,
                    "data_batch_4.bin": 1, "data_batch_5.bin": 1, "test_batch.bin": 2}


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
  """(directory holding cifar-10-batches-bin/, {split: [(image uint8 HWC, label)]})."""
  parent = str(tmp_path_factory.mktemp("cifar"))
  rng = np.random.RandomState(0)
  expected = {"train": [], "test": []}
  for name, n in RECORDS_PER_FILE.items():
    images = rng.randint(0, 256, size=(n, 32, 32, 3)).astype(np.uint8)
    labels = rng.randint(0, 10, size=n)
    format_writers.write_bytes(os.path.join(parent, "cifar-10-batches-bin", name),
                               format_writers.cifar_binary(images, labels))
    expected["test" if name.startswith("test") else "train"] += list(zip(images, labels))
  return parent, expected


def _as_uint8(images):
  return np.round((images + 1.0) * 127.5).astype(np.uint8)


def _key(image, label):
  return int(label), image.tobytes()


def test_binary_records_are_label_byte_then_red_green_blue_planes(tmp_path):
  record = np.zeros(3073, np.uint8)
  record[0] = 7
  record[1:1025], record[1025:2049], record[2049:] = 10, 20, 30
  record[1 + 1] = 200                  # red plane, row 0, column 1
  record[1025 + 32 * 3 + 5] = 250      # green plane, row 3, column 5
  format_writers.write_bytes(str(tmp_path / "test_batch.bin"), record.tobytes())
  (e,) = list(data.load("cifar10", str(tmp_path), "test"))
  image = _as_uint8(e["images"].numpy())
  assert int(e["labels"]) == 7 and e["labels"].dtype == tf.int32
  assert image[0, 0].tolist() == [10, 20, 30]
  assert image[0, 1].tolist() == [200, 20, 30]
  assert image[3, 5].tolist() == [10, 250, 30]
  np.testing.assert_allclose(e["images"].numpy()[0, 0], np.array([10, 20, 30]) * (2 / 255) - 1,
                             atol=1e-6)


def test_binary_train_and_test_splits_read_back_exactly(cifar):
  parent, expected = cifar
  for split in ("train", "test"):
    got = sorted(_key(_as_uint8(e["images"].numpy()), e["labels"])
                 for e in data.load("cifar10", parent, split, seed=0))
    assert got == sorted(_key(i, l) for i, l in expected[split]), split


def test_two_pipelines_partition_the_binary_records(cifar):
  parent, expected = cifar
  parts = [sorted(_key(_as_uint8(e["images"].numpy()), e["labels"])
                  for e in data.load("cifar10", parent, "train", num_shards=2, shard_index=i))
           for i in range(2)]
  assert len(parts[0]) == 6 and len(parts[1]) == 2   # per file: records 0, 2, .. | 1, 3, ..
  assert sorted(parts[0] + parts[1]) == sorted(_key(i, l) for i, l in expected["train"])


def test_bad_file_size_fails_at_start_and_a_label_above_9_names_file_and_record(tmp_path):
  format_writers.write_bytes(str(tmp_path / "test_batch.bin"), bytes(3073 + 5))
  with pytest.raises(DataLayoutError, match=r"test_batch\.bin has 3078 bytes"):
    data.load("cifar10", str(tmp_path), "test")
  records = format_writers.cifar_binary(np.zeros((2, 32, 32, 3), np.uint8), [3, 10])
  format_writers.write_bytes(str(tmp_path / "test_batch.bin"), records)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"label out of range 0\.\.9(.|\n)*test_batch\.bin(.|\n)*record(.|\n)*1"):
    list(data.load("cifar10", str(tmp_path), "test"))


def test_other_sizes_are_resized(cifar):
  parent, _ = cifar
  (e, _) = list(data.load("cifar10", parent, "test", image_size=64))
  assert e["images"].shape == (64, 64, 3)


def test_tfds_cifar10_prepared_from_the_same_binaries_gives_the_same_examples(cifar, tmp_path):
  parent, expected = cifar
  start = time.time()
  with pytest.raises(DataLayoutError, match="tfds build cifar10"):
    data.load("cifar10", str(tmp_path), "train")
  assert time.time() - start < 1.0
  format_writers.prepare_tfds_cifar10(str(tmp_path / "tfds"), parent)
  got = sorted(_key(_as_uint8(e["images"].numpy()), e["labels"])
               for e in data.load("cifar10", str(tmp_path / "tfds"), "train"))
  assert got == sorted(_key(i, l) for i, l in expected["train"])
