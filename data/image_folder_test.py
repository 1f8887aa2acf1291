"""Image folders (CelebA / FFHQ / LSUN exports): exact pixels, bad files among good ones, shards."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import data
from data import bad_records
from data import format_writers


@pytest.fixture(autouse=True)
def _fresh_log():
  bad_records.LOG.reset()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
  """A tree with 3 PNGs, 1 JPEG and 2 bad files; returns (dir, {path: expected uint8 10x10})."""
  d = str(tmp_path_factory.mktemp("folder"))
  expected = {}
  square = format_writers.smooth_image(10, 10, seed=1)
  wide = format_writers.smooth_image(10, 15, seed=2)
  tall = format_writers.smooth_image(13, 10, seed=3)
  for rel, image, want in [("a/square.png", square, square),
                           ("a/b/wide.PNG", wide, wide[:, 3:13]),     # ceil((15 - 10) / 2) = 3
                           ("tall.png", tall, tall[2:12])]:           # ceil((13 - 10) / 2) = 2
    path = format_writers.write_bytes(os.path.join(d, rel), format_writers.png_bytes(image))
    expected[path] = want
  jpeg = format_writers.jpeg_bytes(format_writers.smooth_image(14, 10, seed=4))
  path = format_writers.write_bytes(os.path.join(d, "c", "photo.jpg"), jpeg)
  expected[path] = tf.io.decode_jpeg(jpeg, channels=3).numpy()[2:12]
  truncated = format_writers.jpeg_bytes(format_writers.smooth_image(10, 10, seed=5))[:200]
  format_writers.write_bytes(os.path.join(d, "c", "truncated.jpg"), truncated)
  format_writers.write_bytes(os.path.join(d, "c", "not_an_image.png"), b"hello, world")
  format_writers.write_bytes(os.path.join(d, "c", "notes.txt"), b"ignored: not an image name")
  return d, expected


def _to_uint8(image):
  return np.round((image + 1.0) * 127.5).astype(np.uint8)


def test_every_good_file_reads_back_its_central_square_and_bad_ones_are_counted(folder, tmp_path):
  d, expected = folder
  ds = data.load("celeba", d, "all", image_size=10, resize_method="tfgan", shuffle=False)
  got = [_to_uint8(e["images"].numpy()) for e in ds]
  want = [expected[p] for p in sorted(expected)]     # file order is the sorted path order
  assert len(got) == len(want) == 4
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)
  bad = [os.path.join(d, "c", "not_an_image.png"), os.path.join(d, "c", "truncated.jpg")]
  assert bad_records.counts() == {"celeba/all": {bad_records.CORRUPT_IMAGE: 2}}
  assert sorted(bad_records.LOG.examples()["celeba/all"][bad_records.CORRUPT_IMAGE]) == bad
  report = json.load(open(bad_records.write_report(str(tmp_path / "run"))))
  assert report["counts"] == {"celeba/all": {bad_records.CORRUPT_IMAGE: 2}}


def test_strict_data_fails_naming_the_corrupt_file(folder):
  d, _ = folder
  with pytest.raises(tf.errors.InvalidArgumentError, match=r"c/not_an_image\.png"):
    list(data.load("ffhq", d, "all", image_size=8, strict=True, shuffle=False))


def test_two_pipelines_partition_the_files_and_a_seed_fixes_the_order(folder):
  d, _ = folder

  def run(**kw):
    return [_to_uint8(e["images"].numpy()).tobytes()
            for e in data.load("lsun", d, "train", image_size=10, resize_method="tfgan", **kw)]
  parts = [run(num_shards=2, shard_index=i, seed=3) for i in range(2)]
  assert [len(p) for p in parts] == [1, 3]   # sorted files 0, 2, 4 (two of them bad) | 1, 3, 5
  assert sorted(parts[0] + parts[1]) == sorted(run(shuffle=False))
  assert run(seed=5) == run(seed=5)
  assert sorted(run(seed=5)) == sorted(run(shuffle=False))


def test_splits_from_subdirectories_or_celeba_partition_file(tmp_path):
  for split, n in (("train", 2), ("test", 1)):
    for i in range(n):
      format_writers.write_bytes(str(tmp_path / "sub" / split / f"{i}.png"),
                                 format_writers.png_bytes(np.full((4, 4, 3), i, np.uint8)))
  assert len(list(data.load("image_folder", str(tmp_path / "sub"), "test", image_size=4))) == 1
  celeba = tmp_path / "celeba"
  for i in range(1, 5):
    format_writers.write_bytes(str(celeba / "img_align_celeba" / f"{i:06d}.jpg"),
                               format_writers.png_bytes(np.full((4, 4, 3), 50 * i, np.uint8)))
  format_writers.write_bytes(str(celeba / "list_eval_partition.txt"),
                             b"000001.jpg 0\n000002.jpg 2\n000003.jpg 1\n000004.jpg 2\n")
  test = [int(_to_uint8(e["images"].numpy())[0, 0, 0])
          for e in data.load("celeba", str(celeba), "test", image_size=4, shuffle=False)]
  assert test == [100, 200]
  with pytest.raises(data.layout.DataLayoutError, match="validation"):
    data.load("image_folder", str(tmp_path / "sub"), "validation", image_size=4)


def test_graph_mode_input_fn_skips_and_counts_like_eager(folder):
  """Estimators build the input pipeline inside a TF1 graph: same elements, same counts."""
  d, expected = folder
  got = [_to_uint8(e["images"]) for e in format_writers.elements_in_tf1_graph(
      lambda: data.load("image_folder", d, "all", image_size=10, resize_method="tfgan",
                        shuffle=False))]
  assert len(got) == 4
  np.testing.assert_array_equal(got[0], expected[sorted(expected)[0]])
  assert bad_records.counts() == {"image_folder/all": {bad_records.CORRUPT_IMAGE: 2}}


def test_a_file_celebas_partition_lists_but_the_folder_lacks_fails_at_load(tmp_path):
  image_dir = tmp_path / "img_align_celeba"
  for i in (1, 2):
    format_writers.write_bytes(str(image_dir / f"{i:06d}.png"),
                               format_writers.png_bytes(np.zeros((4, 4, 3), np.uint8)))
  partition = format_writers.write_bytes(str(tmp_path / "list_eval_partition.txt"),
                                         b"000001.png 2\n000002.png 0\n000003.png 2\n")
  with pytest.raises(data.layout.DataLayoutError) as error:
    data.load("celeba", str(tmp_path), "test", image_size=4)
  assert str(error.value) == (
      f"1 of 2 files listed by {partition} (split 'test') are missing:\n"
      f"  {image_dir}/000003.png\nexpected layout:\n{data.image_folder.LAYOUT}")
  assert len(list(data.load("celeba", str(tmp_path), "train", image_size=4))) == 1


def test_an_empty_split_directory_is_a_layout_error_naming_it(tmp_path):
  format_writers.write_bytes(str(tmp_path / "test" / "readme.txt"), b"not an image")
  with pytest.raises(data.layout.DataLayoutError) as error:
    data.load("image_folder", str(tmp_path), "test", image_size=4)
  assert str(error.value) == (
      f"image_folder/test: the split has no images (no .jpg, .jpeg, .png file in "
      f"{tmp_path}/test)\nexpected layout:\n{data.image_folder.LAYOUT}")


def test_resize_to_square_keeps_the_whole_image_as_ladagans_official_code(tmp_path):
  wide = format_writers.smooth_image(10, 16, seed=7)  # 10 x 16: no crop, squeezed to 8 x 8
  format_writers.write_bytes(str(tmp_path / "wide.png"), format_writers.png_bytes(wide))
  ds = data.load("celeba", data_dir=str(tmp_path), split="all", image_size=8, seed=0,
                 resize_to_square=True, resize_method="plain_bilinear")
  got = next(iter(ds))["images"].numpy()
  want = tf.image.resize(wide.astype(np.float32), [8, 8], method="bilinear").numpy()
  np.testing.assert_allclose(got, want * (2.0 / 255.0) - 1.0, atol=1e-6)
  cropped = next(iter(data.load("celeba", data_dir=str(tmp_path), split="all", image_size=8,
                                seed=0, resize_method="plain_bilinear")))["images"].numpy()
  assert np.abs(cropped - got).max() > 0.05  # the default still cuts the central square first
  with pytest.raises(ValueError, match="takes no crop_size"):
    data.load("celeba", data_dir=str(tmp_path), split="all", image_size=8, resize_to_square=True,
              crop_size=8)
