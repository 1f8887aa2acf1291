"""ImageNet from TFRecord shards and from a prepared TFDS directory, written here in the real formats."""
import os
import shutil
import signal
import time

import numpy as np
import pytest
import tensorflow as tf

import data
from data import bad_records
from data import format_writers
from data.layout import DataLayoutError

SIZE = 16
# (height, width, 1-based label) per shard; shard 1 record 1 is a truncated JPEG.
SHARDS = [[(20, 30, 1), (33, 21, 5)], [(24, 24, 1000), (25, 40, 7)], [(30, 17, 3)]]
CORRUPT = (1, 1)


def _tfgan_reference(jpeg, size=SIZE):
  """TF-GAN's `_process_record` on the fully decoded JPEG (central square, crop_and_resize)."""
  return format_writers.tfgan_reference_crop(tf.io.decode_jpeg(jpeg, channels=3), size)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
  """(data_dir, {0-based label: reference image}) for the good records."""
  d = str(tmp_path_factory.mktemp("imagenet_tfrecords"))
  expected, records = {}, []
  for k, shard in enumerate(SHARDS):
    records.append([])
    for i, (h, w, label) in enumerate(shard):
      jpeg = format_writers.jpeg_bytes(format_writers.smooth_image(h, w, seed=10 * k + i))
      if (k, i) == CORRUPT:
        jpeg = jpeg[:len(jpeg) // 3]
      else:
        expected[label - 1] = _tfgan_reference(jpeg)
      records[-1].append((jpeg, label))
  format_writers.write_imagenet_shards(d, "train", records)
  return d, expected


@pytest.fixture(autouse=True)
def _fresh_log():
  bad_records.LOG.reset()


def _read(ds):
  return {int(e["labels"]): e["images"].numpy() for e in ds}


def test_shards_read_back_tfgan_pixels_zero_based_labels_and_skip_the_corrupt_jpeg(shards):
  d, expected = shards
  got = _read(data.load("imagenet128", d, "train", image_size=SIZE, seed=0))
  assert sorted(got) == [0, 2, 4, 999]          # labels 1, 3, 5, 1000 -> 0-based; 7 was corrupt
  for label, image in got.items():
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.float32
    np.testing.assert_allclose(image, expected[label], atol=2e-5)
  shard1 = os.path.join(d, "train-00001-of-00003")
  assert bad_records.counts() == {"imagenet/train": {bad_records.CORRUPT_IMAGE: 1}}
  assert bad_records.LOG.examples()["imagenet/train"][bad_records.CORRUPT_IMAGE] == [
      f"{shard1} record 1"]


def test_graph_mode_input_fn_reads_the_same_and_counts_the_corrupt_record(shards):
  d, expected = shards
  got = {int(e["labels"]): e["images"] for e in format_writers.elements_in_tf1_graph(
      lambda: data.load("imagenet", d, "train", image_size=SIZE, seed=0))}
  assert sorted(got) == [0, 2, 4, 999]
  np.testing.assert_allclose(got[999], expected[999], atol=2e-5)
  assert bad_records.counts() == {"imagenet/train": {bad_records.CORRUPT_IMAGE: 1}}


def test_strict_mode_fails_naming_the_shard_and_record(shards):
  d, _ = shards
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"train-00001-of-00003 record 1"):
    _read(data.load("imagenet", d, "train", image_size=SIZE, strict=True))


def test_pipelines_partition_the_records_by_file_or_inside_files(shards, tmp_path):
  d, _ = shards
  parts = [sorted(_read(data.load("imagenet", d, "train", image_size=SIZE, input_context=ctx)))
           for ctx in (tf.distribute.InputContext(2, 0), tf.distribute.InputContext(2, 1))]
  assert parts == [[0, 2, 4], [999]]               # 3 files >= 2 pipelines: files 0, 2 | file 1
  shutil.copy(os.path.join(d, "train-00000-of-00003"), tmp_path / "train-00000-of-00001")
  parts = [sorted(_read(data.load("imagenet", str(tmp_path), "train", image_size=SIZE,
                                  num_shards=2, shard_index=i))) for i in range(2)]
  assert parts == [[0], [4]]                       # 1 file < 2 pipelines: records 0 | 1 of it


def test_parallel_reads_give_the_same_records_and_nonsense_is_refused(shards):
  d, expected = shards
  got = _read(data.load("imagenet", d, "train", image_size=SIZE, seed=0, parallel_reads=2))
  assert sorted(got) == [0, 2, 4, 999]
  np.testing.assert_allclose(got[4], expected[4], atol=2e-5)
  assert bad_records.counts() == {"imagenet/train": {bad_records.CORRUPT_IMAGE: 1}}
  with pytest.raises(ValueError, match="parallel_reads must be a positive number"):
    data.load("imagenet", d, "train", image_size=SIZE, parallel_reads=0)


def test_label_outside_1_to_1000_is_an_error_naming_the_shard(tmp_path):
  jpeg = format_writers.jpeg_bytes(format_writers.smooth_image(8, 8, 0))
  format_writers.write_imagenet_shards(str(tmp_path), "validation", [[(jpeg, 3), (jpeg, 0)]])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"label out of range: 0 in \S*validation-00000-of-00001, record at "
                           r"byte \d+ \(expected 1..1000\)"):
    _read(data.load("imagenet", str(tmp_path), "validation", image_size=8))
  time.sleep(0.5)     # a prefetch may read on to the shard's end: it must not be reported short
  assert bad_records.counts() == {}


def test_a_truncated_shard_keeps_its_good_records_and_is_counted(shards, tmp_path):
  d, expected = shards
  shutil.copy(os.path.join(d, "train-00000-of-00003"), tmp_path / "train-00000-of-00001")
  path = str(tmp_path / "train-00000-of-00001")
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.truncate(size - 40)                          # cuts into the second record
  got = _read(data.load("imagenet", str(tmp_path), "train", image_size=SIZE))
  assert sorted(got) == [0]
  np.testing.assert_allclose(got[0], expected[0], atol=2e-5)
  assert bad_records.counts() == {"imagenet/train": {bad_records.CORRUPT_SHARD: 1}}


def test_default_is_tfgan_exact_pixels_and_the_dct_downscale_is_opt_in(tmp_path):
  jpeg = format_writers.jpeg_bytes(format_writers.smooth_image(100, 70, seed=8))
  format_writers.write_imagenet_shards(str(tmp_path), "train", [[(jpeg, 1)]])
  (default,) = list(data.load("imagenet", str(tmp_path), "train", image_size=SIZE))
  (exact,) = list(data.load("imagenet", str(tmp_path), "train", image_size=SIZE,
                            jpeg_downscale=False))
  (fast,) = list(data.load("imagenet", str(tmp_path), "train", image_size=SIZE,
                           jpeg_downscale=True))
  np.testing.assert_allclose(default["images"].numpy(), _tfgan_reference(jpeg), atol=2e-5)
  np.testing.assert_array_equal(default["images"].numpy(), exact["images"].numpy())
  # side 70 >= 4 * 16: square [15, 0, 70, 70] at 1/4 is [4, 0, 18, 18] (rounded, centred)
  quarter = tf.io.decode_jpeg(jpeg, channels=3, ratio=4)[4:22, :18]
  want = tf.compat.v1.image.resize_bilinear(quarter[None], [SIZE, SIZE], align_corners=True)[0]
  np.testing.assert_allclose(fast["images"].numpy(), want.numpy() * (2 / 255) - 1, atol=2e-5)
  assert np.abs(fast["images"].numpy() - exact["images"].numpy()).mean() > 1e-3


def test_prepared_tfds_default_is_tfgan_exact_pixels_too(tmp_path):
  jpegs = {"n01440764": [format_writers.jpeg_bytes(format_writers.smooth_image(100, 70, seed=8))]}
  format_writers.prepare_tfds_imagenet(str(tmp_path / "tfds"), str(tmp_path / "manual"), jpegs,
                                       jpegs["n01440764"])
  (default,) = list(data.load("imagenet", str(tmp_path / "tfds"), "train", image_size=SIZE))
  (fast,) = list(data.load("imagenet", str(tmp_path / "tfds"), "train", image_size=SIZE,
                           jpeg_downscale=True))
  reference = _tfgan_reference(jpegs["n01440764"][0])
  np.testing.assert_allclose(default["images"].numpy(), reference, atol=2e-5)
  assert np.abs(fast["images"].numpy() - reference).mean() > 1e-3


def test_missing_tfds_imagenet_fails_at_once_without_tfds_or_network(tmp_path, offline):
  with pytest.raises(DataLayoutError) as e:
    data.load("imagenet128", str(tmp_path), "train")
  assert offline == []  # tfds.load would retry the network for minutes (DESIGN.md, trap 7)
  assert "tfds build imagenet2012" in str(e.value) and "--manual_dir" in str(e.value)
  assert "train-00000-of-01024" in str(e.value)
  with pytest.raises(DataLayoutError, match="missing directory"):
    data.load("imagenet", str(tmp_path / "nope"), "train")


def test_prepared_tfds_imagenet2012_reads_with_crop_decode(tmp_path):
  jpegs = {syn: [format_writers.jpeg_bytes(format_writers.smooth_image(18 + i, 27, seed=i + j))
                 for i in range(n)] for j, (syn, n) in enumerate([("n01440764", 2),
                                                                  ("n01443537", 1)])}
  val = [format_writers.jpeg_bytes(format_writers.smooth_image(31, 22, seed=99))]
  format_writers.prepare_tfds_imagenet(str(tmp_path / "tfds"), str(tmp_path / "manual"), jpegs, val)
  ds = data.load("imagenet", str(tmp_path / "tfds"), "train", image_size=SIZE, seed=0)
  def by_label_then_pixels(pair):
    return pair[0], float(pair[1].sum())
  got = sorted(((int(e["labels"]), e["images"].numpy()) for e in ds), key=by_label_then_pixels)
  want = sorted([(0, _tfgan_reference(j)) for j in jpegs["n01440764"]] +
                [(1, _tfgan_reference(jpegs["n01443537"][0]))], key=by_label_then_pixels)
  assert [g[0] for g in got] == [0, 0, 1]
  for (_, g), (_, w) in zip(got, want):
    np.testing.assert_allclose(g, w, atol=2e-5)
  (val_example,) = list(data.load("imagenet", str(tmp_path / "tfds"), "validation", SIZE))
  assert int(val_example["labels"]) == 65         # TFDS validation_labels.txt line 1: n01751748
  np.testing.assert_allclose(val_example["images"].numpy(), _tfgan_reference(val[0]), atol=2e-5)
  parts = [[int(e["labels"]) for e in data.load("imagenet", str(tmp_path / "tfds"), "train",
                                                 SIZE, num_shards=2, shard_index=i)]
           for i in range(2)]
  assert sorted(parts[0] + parts[1]) == [0, 0, 1] and len(parts[0]) == 2 and len(parts[1]) == 1


def test_shards_on_a_remote_filesystem_are_read_with_parallel_reads(shards):
  """ram:// stands in for gs://: paths go through tf.io.gfile, and reads default to AUTOTUNE."""
  d, expected = shards
  remote = "ram://imagenet_remote"
  tf.io.gfile.makedirs(remote)
  for name in sorted(os.listdir(d)):
    tf.io.gfile.copy(os.path.join(d, name), f"{remote}/{name}", overwrite=True)
  got = _read(data.load("imagenet", remote, "train", image_size=SIZE, seed=0))
  assert sorted(got) == [0, 2, 4, 999]
  np.testing.assert_allclose(got[2], expected[2], atol=2e-5)
  assert bad_records.LOG.examples()["imagenet/train"][bad_records.CORRUPT_IMAGE] == [
      f"{remote}/train-00001-of-00003 record 1"]
  assert _interleave_ops(data.load("imagenet", remote, "train", image_size=SIZE)) == [
      "ParallelInterleaveDatasetV4"]
  assert _interleave_ops(data.load("imagenet", d, "train", image_size=SIZE)) == [
      "InterleaveDataset"]                      # local: one thread cycles through the shards


def _interleave_ops(ds):
  graph = tf.compat.v1.GraphDef.FromString(
      ds._as_serialized_graph().numpy())  # pylint: disable=protected-access
  nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
  return sorted({n.op for n in nodes if "Interleave" in n.op})


def test_prepared_tfds_imagenet2012_skips_a_corrupt_image_and_survives_a_damaged_file(tmp_path):
  """TFDS files go through the resilient reader: no crash, and no endless retry (TFDS's own
  reader retries a damaged file's DataLossError forever under a skipping decode)."""
  jpegs = {"n01440764": [format_writers.jpeg_bytes(format_writers.smooth_image(18 + i, 27, i))
                         for i in range(3)]}
  format_writers.prepare_tfds_imagenet(str(tmp_path / "tfds"), str(tmp_path / "manual"), jpegs,
                                       jpegs["n01440764"][:1])
  (path,) = tf.io.gfile.glob(str(tmp_path / "tfds/imagenet2012/*/imagenet2012-train.tfrecord-*"))
  examples = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
  image = examples[1].features.feature["image"].bytes_list.value
  image[0] = image[0][:len(image[0]) // 3]                    # record 1: a truncated JPEG
  with tf.io.TFRecordWriter(path) as writer:
    for e in examples:
      writer.write(e.SerializeToString())
  want = _tfgan_reference(examples[0].features.feature["image"].bytes_list.value[0])

  def read():
    signal.alarm(120)     # a hang kills the test process (SIGALRM) instead of stalling the suite
    try:
      return [e["images"].numpy() for e in data.load("imagenet", str(tmp_path / "tfds"),
                                                      "train", image_size=SIZE, seed=0)]
    finally:
      signal.alarm(0)
  assert len(read()) == 2
  assert bad_records.LOG.examples()["imagenet/train"] == {
      bad_records.CORRUPT_IMAGE: [f"{path} record 1"]}
  bad_records.LOG.reset()
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 40)                   # cuts into record 2
  (only,) = read()
  np.testing.assert_allclose(only, want, atol=2e-5)
  assert bad_records.counts() == {"imagenet/train": {bad_records.CORRUPT_IMAGE: 1,
                                                     bad_records.CORRUPT_SHARD: 1}}
