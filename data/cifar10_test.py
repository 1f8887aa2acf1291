"""CIFAR-10 from the official binary batches (written here byte by byte) and from prepared TFDS."""
import glob
import io
import json
import os
import re
import shutil
import signal

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

import data
from data import bad_records
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


@pytest.fixture(scope="module")
def tfds_cifar(cifar, tmp_path_factory):
  """A TFDS root holding cifar10/<version>/, built by the real TFDS builder from `cifar`'s files."""
  root = str(tmp_path_factory.mktemp("tfds"))
  format_writers.prepare_tfds_cifar10(root, cifar[0])
  return root


@pytest.fixture(autouse=True)
def _fresh_log():
  bad_records.LOG.reset()


def _rewrite_tfds_split(tfds_root, tmp_path, split, edit, num_files=1):
  """A copy of the prepared TFDS root whose `split` is rewritten as `num_files` TFRecord files
  holding the same tf.train.Example records in the same order, each passed through
  edit(index, example) first. dataset_info.json gets the new shard lengths and byte count, as the
  builder would have written them for these records.

  Returns:
    (copied root, [paths of the split's files], [(uint8 image, label) of each original record]).
  """
  root = str(tmp_path / "tfds_copy")
  shutil.copytree(tfds_root, root)
  (version_dir,) = glob.glob(os.path.join(root, "cifar10", "*"))
  old_files = sorted(glob.glob(os.path.join(version_dir, f"cifar10-{split}.tfrecord-*")))
  examples, originals = [], []
  for record in tf.data.TFRecordDataset(old_files):
    example = tf.train.Example.FromString(record.numpy())
    feature = example.features.feature
    originals.append((np.asarray(Image.open(io.BytesIO(feature["image"].bytes_list.value[0]))),
                      feature["label"].int64_list.value[0]))
    edit(len(examples), example)
    examples.append(example.SerializeToString())
  for path in old_files:
    os.remove(path)
  lengths = [len(part) for part in np.array_split(np.arange(len(examples)), num_files)]
  paths, start = [], 0
  for k, n in enumerate(lengths):
    paths.append(os.path.join(version_dir, f"cifar10-{split}.tfrecord-{k:05d}-of-{num_files:05d}"))
    with tf.io.TFRecordWriter(paths[-1]) as writer:
      for record in examples[start:start + n]:
        writer.write(record)
    start += n
  info_path = os.path.join(version_dir, "dataset_info.json")
  with open(info_path) as f:
    info = json.load(f)
  (split_info,) = [s for s in info["splits"] if s["name"] == split]
  split_info["shardLengths"] = [str(n) for n in lengths]
  split_info["numBytes"] = str(sum(len(r) for r in examples))
  with open(info_path, "w") as f:
    json.dump(info, f)
  return root, paths, originals


def _truncate_png(at):
  def edit(index, example):
    if index == at:
      image = example.features.feature["image"].bytes_list
      image.value[0] = image.value[0][:len(image.value[0]) // 2]
  return edit


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


@pytest.mark.parametrize("size", [64, 16])
def test_other_sizes_are_resized(cifar, size):
  """Pixels = bilinear antialiased tf.image.resize of the known record, scaled to [-1, 1]."""
  parent, expected = cifar
  got = list(data.load("cifar10", parent, "test", image_size=size))
  assert len(got) == len(expected["test"]) == 2
  for e, (image, label) in zip(got, expected["test"]):
    want = tf.image.resize(image.astype(np.float32), [size, size], method="bilinear",
                           antialias=True).numpy() * (2 / 255) - 1
    assert e["images"].shape == (size, size, 3) and int(e["labels"]) == label
    np.testing.assert_allclose(e["images"].numpy(), want, rtol=0, atol=1e-6)


def test_missing_tfds_cifar10_fails_at_once_without_tfds_or_network(tmp_path, offline):
  with pytest.raises(DataLayoutError, match="tfds build cifar10"):
    data.load("cifar10", str(tmp_path), "train")
  assert offline == []  # tfds.load would retry the network for minutes (DESIGN.md, trap 7)


def test_tfds_cifar10_prepared_from_the_same_binaries_gives_the_same_examples(cifar, tfds_cifar):
  _, expected = cifar
  got = sorted(_key(_as_uint8(e["images"].numpy()), e["labels"])
               for e in data.load("cifar10", tfds_cifar, "train"))
  assert got == sorted(_key(i, l) for i, l in expected["train"])
  assert bad_records.counts() == {}


def test_tfds_truncated_png_is_skipped_counted_and_named_or_fails_under_strict(
    cifar, tfds_cifar, tmp_path):
  _, expected = cifar
  root, (path,), originals = _rewrite_tfds_split(tfds_cifar, tmp_path, "train", _truncate_png(3))
  ds = data.load("cifar10", root, "train", seed=0, cache=False)
  for _ in range(2):   # the second epoch meets the same record again: still counted once
    got = sorted(_key(_as_uint8(e["images"].numpy()), e["labels"]) for e in ds)
    want = [_key(i, l) for i, l in expected["train"]]
    want.remove(_key(*originals[3]))
    assert got == sorted(want)
  assert bad_records.counts() == {"cifar10/train": {bad_records.CORRUPT_IMAGE: 1}}
  assert bad_records.LOG.examples()["cifar10/train"][bad_records.CORRUPT_IMAGE] == [
      f"{path} record 3"]
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"cifar10-train\.tfrecord-00000-of-00001 record 3(.|\n)*--strict_data"):
    list(data.load("cifar10", root, "train", strict=True))


def test_tfds_every_nth_record_read_names_the_bad_record_by_its_place_in_the_file(
    tfds_cifar, tmp_path):
  root, (path,), _ = _rewrite_tfds_split(tfds_cifar, tmp_path, "train", _truncate_png(3))
  sizes = [len(list(data.load("cifar10", root, "train", num_shards=2, shard_index=i)))
           for i in range(2)]
  assert sizes == [4, 3]                   # of 8: records 0, 2, 4, 6 | 1, 5, 7 (3 was skipped)
  assert bad_records.LOG.examples()["cifar10/train"] == {
      bad_records.CORRUPT_IMAGE: [f"{path} record 3"]}   # each pipeline counts all 8 records


def test_tfds_split_in_several_files_names_the_bad_record_by_file_and_record(
    cifar, tfds_cifar, tmp_path):
  _, expected = cifar
  root, paths, originals = _rewrite_tfds_split(tfds_cifar, tmp_path, "train", _truncate_png(5),
                                               num_files=2)
  whole = sorted(_key(_as_uint8(e["images"].numpy()), e["labels"])
                 for e in data.load("cifar10", root, "train", seed=0))
  parts = [sorted(_key(_as_uint8(e["images"].numpy()), e["labels"])
                  for e in data.load("cifar10", root, "train", num_shards=2, shard_index=i))
           for i in range(2)]                          # 2 files: one whole file per pipeline
  want = [_key(i, l) for i, l in expected["train"]]
  want.remove(_key(*originals[5]))
  assert whole == sorted(want) and sorted(parts[0] + parts[1]) == sorted(want)
  assert [len(p) for p in parts] == [4, 3]             # files of 4 and 4 records
  assert bad_records.counts() == {"cifar10/train": {bad_records.CORRUPT_IMAGE: 1}}
  assert bad_records.LOG.examples()["cifar10/train"][bad_records.CORRUPT_IMAGE] == [
      f"{paths[1]} record 1"]                          # record 5 of 8 = the second file's 1


def test_tfds_label_out_of_range_fails_naming_the_record_and_is_not_skipped(tfds_cifar, tmp_path):
  def label_12_at_5(index, example):
    if index == 5:
      example.features.feature["label"].int64_list.value[0] = 12
  root, (path,), _ = _rewrite_tfds_split(tfds_cifar, tmp_path, "train", label_12_at_5)
  offset = sum(len(r.numpy()) + 16 for r in tf.data.TFRecordDataset(path).take(5))
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=re.escape(f"CIFAR-10 TFDS label out of range 0..9: 12 in {path}, "
                                     f"record at byte {offset}")):
    list(data.load("cifar10", root, "train"))
  assert bad_records.counts() == {}


def test_tfds_graph_mode_input_fn_skips_and_counts_the_truncated_png(cifar, tfds_cifar, tmp_path):
  _, expected = cifar
  root, (path,), _ = _rewrite_tfds_split(tfds_cifar, tmp_path, "train", _truncate_png(0))
  got = format_writers.elements_in_tf1_graph(lambda: data.load("cifar10", root, "train"))
  assert len(got) == len(expected["train"]) - 1
  assert bad_records.LOG.examples()["cifar10/train"][bad_records.CORRUPT_IMAGE] == [
      f"{path} record 0"]


def test_tfds_damaged_or_short_file_is_read_up_to_the_damage_and_reported(tfds_cifar, tmp_path):
  """No start-up read of the files: a damaged one is skipped from the damage on and reported
  (a failure under strict), and reading it does not hang."""
  root, (path,), originals = _rewrite_tfds_split(tfds_cifar, tmp_path, "train",
                                                 lambda index, e: None)
  with open(path, "rb") as f:
    good = f.read()
  records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
  ends = np.cumsum([len(r) + 16 for r in records])                # byte after each record
  damage = {"corrupted": (good[:ends[3] + 20] + bytes([good[ends[3] + 20] ^ 0xFF]) +
                          good[ends[3] + 21:]),                    # inside record 4's data
            "truncated": good[:-40]}                               # cuts into record 7
  for what, content in damage.items():
    bad_records.LOG.reset()
    format_writers.write_bytes(path, content)
    os.utime(path, (0, os.stat(path).st_mtime))  # access time 0: any read of the file sets it
    signal.alarm(120)     # a hang kills the test process instead of stalling the suite
    try:
      ds = data.load("cifar10", root, "train", cache=False)
      assert os.stat(path).st_atime == 0, what                     # nothing read at start
      got = [_key(_as_uint8(e["images"].numpy()), e["labels"]) for e in ds]
      assert os.stat(path).st_atime > 0, what  # reading does show (the filesystem keeps atime)
      assert got == [_key(*o) for o in originals[:len(got)]], what
      assert len(got) == {"corrupted": 4, "truncated": 7}[what]
      (named,) = bad_records.LOG.examples()["cifar10/train"].values()
      assert named == [path], what
      assert bad_records.counts() == {"cifar10/train": {bad_records.CORRUPT_SHARD: 1}}, what
      with pytest.raises(tf.errors.InvalidArgumentError,
                         match=rf"corrupt tfrecord shard tail: {re.escape(path)} \(unreadable "
                               rf"after record {len(got) - 1}(.|\n)*--strict_data"):
        list(data.load("cifar10", root, "train", strict=True))
    finally:
      signal.alarm(0)
  with tf.io.TFRecordWriter(path) as writer:   # intact framing, one record fewer
    for record in records[:-1]:
      writer.write(record)
  bad_records.LOG.reset()
  assert len(list(data.load("cifar10", root, "train"))) == 7
  assert bad_records.counts() == {"cifar10/train": {bad_records.CORRUPT_SHARD: 1}}
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=re.escape(f"{path} (holds 7 records where dataset_info.json says 8)")):
    list(data.load("cifar10", root, "train", strict=True))
