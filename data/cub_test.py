"""CUB-200-2011 + captions in AttnGAN's layout: box crop pixels, caption ids, split, bad input."""
import os
import pickle
import re

import numpy as np
import pytest
import tensorflow as tf

import data
from data import bad_records
from data import captioned_images
from data import format_writers
from data.layout import DataLayoutError

A1 = "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111"
A2 = "001.Black_footed_Albatross/Black_Footed_Albatross_0002_55"
L3 = "002.Laysan_Albatross/Laysan_Albatross_0003_1033"
L4 = "002.Laysan_Albatross/Laysan_Albatross_0004_77"
A1_LINES = ["A small red bird."] + [f"bird {k} has a red crown" for k in range(1, 9)] + [
    "this long caption has many many words so the loader must drop some of them"]
A2_LINES = ["white bird", "grey wings", "a small white bird"]
L3_LINES = [f"laysan {k}" for k in range(10)]


@pytest.fixture(autouse=True)
def _fresh_log():
  bad_records.LOG.reset()


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("birds"))
  a1 = format_writers.smooth_image(90, 100, seed=1)
  a2 = format_writers.smooth_image(40, 50, seed=2)
  l4 = format_writers.jpeg_bytes(format_writers.smooth_image(30, 30, seed=4))[:150]
  # 2 malformed lines (not UTF-8; no word) among 10 good ones; lines after the 10th are not read.
  a1_text = "\n".join(A1_LINES[:3]) + "\n\xff\xfe\n...\n" + "\n".join(A1_LINES[3:]) + "\n\xff\n"
  format_writers.write_cub(d, [
      dict(name=A1, image=a1, box=(30, 20, 51, 40), cls=1, split="train",
           captions=a1_text.encode("latin-1")),
      dict(name=A2, data=format_writers.png_bytes(a2), box=(0, 0, 20, 30), cls=1, split="train",
           captions=("\n".join(A2_LINES) + "\n").encode()),
      dict(name=L3, image=format_writers.smooth_image(60, 60, seed=3), box=(5, 5, 40, 40), cls=2,
           split="test", captions=("\n".join(L3_LINES) + "\n").encode()),
      dict(name=L4, data=l4, box=(1, 1, 20, 20), cls=2, split="train",
           captions=("\n".join(L3_LINES) + "\n").encode()),
  ])
  # The training image as TF decodes it from the file the loader reads.
  with open(os.path.join(d, "CUB_200_2011", "images", A1 + ".jpg"), "rb") as f:
    a1_decoded = tf.io.decode_jpeg(f.read(), channels=3).numpy()
  return d, a1_decoded, a2


def _words(lines):
  return [data.text.tokenize(line) for line in lines]


def test_box_window_is_attngans_integer_arithmetic_clipped_to_the_image():
  def window(box, h, w):
    return captioned_images.attngan_box_window(tf.constant(box, tf.int32))(
        tf.constant(h), tf.constant(w)).numpy().tolist()
  # r = int(0.75 * 51) = 38, centre (int(55.5), 40) = (55, 40): rows 2..78, columns 17..93
  assert window([30, 20, 51, 40], 90, 100) == [2, 17, 76, 76]
  # r = int(22.5) = 22, centre (10, 15): clipped to rows 0..37, columns 0..32
  assert window([0, 0, 20, 30], 40, 50) == [0, 0, 37, 32]


def test_eval_examples_have_the_box_crop_pixels_labels_and_exact_caption_ids(cub):
  d, a1, a2 = cub
  vocab = data.get_spec("cub").vocabulary(d)
  train_words = _words(A1_LINES) + _words(A2_LINES) + _words(L3_LINES)
  assert vocab.words[:6] == ["<end>", "a", "small", "red", "bird", "1"]
  assert len(vocab) == 1 + len({w for c in train_words for w in c} | {"laysan"})
  ds = data.load("cub", d, "train", image_size=64, max_words=40, augment=False, shuffle=False)
  e1, e2 = list(ds)                                  # the corrupt L4 is skipped
  # A1: 76 x 76 box crop = load size for S = 64, so no resampling; central 64 crop at (6, 6).
  np.testing.assert_allclose(e1["images"].numpy(),
                             a1[8:72, 23:87].astype(np.float32) * (2 / 255) - 1, atol=2e-5)
  assert int(e1["labels"]) == 0 and int(e2["labels"]) == 0
  want = np.zeros([10, 40], np.int32)
  for k, words in enumerate(_words(A1_LINES)):
    want[k, :len(words)] = vocab.encode(words)
  np.testing.assert_array_equal(e1["all_captions"].numpy(), want)
  np.testing.assert_array_equal(e1["all_caption_lengths"].numpy(), [len(w) for w in _words(A1_LINES)])
  k = int(e1["caption_index"])
  np.testing.assert_array_equal(e1["captions"].numpy(), want[k])
  assert int(e1["caption_length"]) == len(_words(A1_LINES)[k])
  # A2: the clipped 37 x 32 crop, shorter side to 76 (87 x 76), central crop at (12, 6).
  crop = tf.image.resize(a2[:37, :32], [87, 76], antialias=True).numpy()
  np.testing.assert_allclose(e2["images"].numpy(), crop[12:76, 6:70] * (2 / 255) - 1, atol=1e-5)
  np.testing.assert_array_equal(e2["all_caption_lengths"].numpy(), [2, 2, 4] * 3 + [2])
  counts = bad_records.counts()["cub/train"]
  assert counts == {bad_records.MALFORMED_CAPTION: 2, bad_records.TOO_FEW_CAPTIONS: 1,
                    bad_records.CORRUPT_IMAGE: 1}


def test_training_examples_are_augmented_reproducibly_and_long_captions_subsampled(cub):
  d, _, _ = cub

  def epoch(ds):
    return [{k: v.numpy() for k, v in e.items()} for e in ds]

  def same(x, y):
    return all(np.array_equal(x[i][k], y[i][k]) for i in range(len(x)) for k in x[i])
  ds = data.load("cub", d, "train", image_size=32, max_words=6, seed=7)
  a, a_next = epoch(ds), epoch(ds)
  b = epoch(data.load("cub", d, "train", image_size=32, max_words=6, seed=7))
  assert len(a) == 2 and same(a, b)                  # a seed reproduces a run
  assert not same(a, a_next)                         # but every epoch draws new crops/captions
  for e in a:
    assert e["images"].shape == (32, 32, 3) and e["all_captions"].shape == (10, 6)
    assert e["captions"].shape == (6,) and e["all_caption_lengths"].max() <= 6
  vocab = data.get_spec("cub").vocabulary(d)
  long_ids = vocab.encode(_words(A1_LINES)[-1])                      # 15 words
  e1 = next(e for e in a if e["labels"] == 0 and e["all_caption_lengths"][0] == 4)
  kept = e1["all_captions"][9].tolist()
  positions = [long_ids.index(i) for i in kept]
  assert len(kept) == 6 and positions == sorted(positions)           # order kept


def test_split_sources_and_a_pickle_that_is_not_a_list_of_names(cub, tmp_path):
  d, _, _ = cub
  test = list(data.load("cub", d, "test", image_size=32))
  assert len(test) == 1 and int(test[0]["labels"]) == 1
  cub_text = data.cub.read_cub(os.path.abspath(d), "official")
  assert cub_text.names == {"train": [A1, A2, L4], "test": [L3]}
  evil = tmp_path / "evil"
  format_writers.write_cub(str(evil), [dict(name=A2, data=b"", box=(0, 0, 1, 1), cls=1,
                                            split="train", captions=b"x\n")])
  with open(evil / "train" / "filenames.pickle", "wb") as f:
    pickle.dump([A2, os.path.join], f)             # would import a function: refused
  with pytest.raises(DataLayoutError, match="list of file names"):
    data.load("cub", str(evil), "train")


def test_missing_caption_file_or_bad_label_fails_before_training(tmp_path):
  format_writers.write_cub(str(tmp_path), [dict(
      name=A2, data=b"", box=(0, 0, 1, 1), cls=1, split="train", captions=b"x\n")])
  os.remove(tmp_path / "text" / (A2 + ".txt"))
  with pytest.raises(DataLayoutError, match=r"missing file .*Albatross_0002_55\.txt"):
    data.load("cub", str(tmp_path), "train")
  with pytest.raises(DataLayoutError, match="missing directory"):
    data.load("cub", str(tmp_path / "nowhere"), "train")
  labels = tmp_path / "other"
  format_writers.write_cub(str(labels), [dict(
      name=A2, data=b"", box=(0, 0, 1, 1), cls=201, split="train", captions=b"x\n")])
  with pytest.raises(DataLayoutError, match="class 201 outside 1..200"):
    data.load("cub", str(labels), "train")


def test_two_pipelines_partition_the_images(cub):
  d, _, _ = cub
  parts = [[int(e["all_caption_lengths"][0]) for e in data.load(
      "cub", d, "train", image_size=16, num_shards=2, shard_index=i, augment=False)]
      for i in range(2)]
  assert parts == [[4], [2]]                         # [A1, L4 (corrupt)] | [A2]


class _Sentinel:
  """Unpickling this would call _record_call: a stand-in for a malicious payload."""
  calls = []

  def __reduce__(self):
    return (_record_call, ("pwned",))


def _record_call(arg):
  _Sentinel.calls.append(arg)
  return arg


def test_split_pickle_holding_code_is_refused_without_running_it(tmp_path):
  import pickle  # pylint: disable=import-outside-toplevel
  from data import cub  # pylint: disable=import-outside-toplevel
  from data.layout import DataLayoutError  # pylint: disable=import-outside-toplevel
  good = tmp_path / "good.pickle"
  good.write_bytes(pickle.dumps(["001.Black_footed_Albatross/a", b"002.Laysan/b"]))
  assert cub._read_names(str(good)) == ["001.Black_footed_Albatross/a", "002.Laysan/b"]
  evil = tmp_path / "evil.pickle"
  evil.write_bytes(pickle.dumps(["001.Black_footed_Albatross/a", _Sentinel()]))
  with pytest.raises(DataLayoutError, match="cannot read the list of file names"):
    cub._read_names(str(evil))
  assert _Sentinel.calls == []  # the payload never ran


def _albatross(k):
  return f"001.Black_footed_Albatross/Albatross_{k}"


def test_a_listed_image_file_missing_fails_at_load_naming_count_paths_and_layout(tmp_path):
  d = str(tmp_path)
  format_writers.write_cub(d, [dict(name=_albatross(k), data=b"x", box=(0, 0, 1, 1), cls=1,
                                    split="train" if k < 7 else "test", captions=b"a bird\n" * 10)
                               for k in range(8)])
  images = os.path.join(d, "CUB_200_2011", "images")
  for k in range(1, 7):
    os.remove(os.path.join(images, _albatross(k) + ".jpg"))
  with pytest.raises(DataLayoutError) as error:
    data.load("cub", d, "train")                     # at load time: nothing is iterated
  shown = "".join(f"\n  {images}/{_albatross(k)}.jpg" for k in range(1, 6))
  assert str(error.value) == (
      f"6 of 7 files listed by {d}/train/filenames.pickle are missing:{shown}\n  ... and 1 more"
      f"\nexpected layout:\n{data.cub.LAYOUT}")
  with pytest.raises(DataLayoutError, match=r"^6 of 7 files listed by .*/train_test_split\.txt"):
    data.load("cub", d, "train", split_source="official")
  assert bad_records.counts() == {}                  # not counted as corrupt images
  data.load("cub", d, "test")                        # the test split's one image is there


def test_missing_files_keeps_the_listing_order_across_thread_pool_chunks(tmp_path):
  present = tmp_path / "present.jpg"
  present.write_bytes(b"")
  paths = [str(present) if k % 3 else str(tmp_path / f"gone_{k}.jpg") for k in range(2500)]
  assert data.layout.missing_files(paths) == [str(tmp_path / f"gone_{k}.jpg")
                                              for k in range(0, 2500, 3)]


def test_an_empty_split_is_a_layout_error_naming_where_its_images_come_from(tmp_path):
  d = str(tmp_path / "no_test")
  format_writers.write_cub(d, [dict(name=A2, data=b"x", box=(0, 0, 1, 1), cls=1, split="train",
                                    captions=b"x\n")])
  with pytest.raises(DataLayoutError) as error:
    data.load("cub", d, "test")
  assert str(error.value) == (
      f"cub/test: the split has no images (images under {d}/CUB_200_2011/images: 0 listed by "
      f"{d}/test/filenames.pickle, 0 of them without a usable caption)\n"
      f"expected layout:\n{data.cub.LAYOUT}")
  d = str(tmp_path / "no_words")
  format_writers.write_cub(d, [dict(name=A2, data=b"x", box=(0, 0, 1, 1), cls=1, split="train",
                                    captions=b"...\n!!\n")], attngan_split=False)
  with pytest.raises(DataLayoutError, match=re.escape(
      f"cub/train: the split has no images (images under {d}/CUB_200_2011/images: 1 listed by "
      f"{d}/CUB_200_2011/train_test_split.txt, 1 of them without a usable caption)")):
    data.load("cub", d, "train")


def test_more_input_pipelines_than_images_is_a_plain_value_error(cub):
  d, _, _ = cub
  with pytest.raises(ValueError) as error:
    data.load("cub", d, "train", num_shards=4, shard_index=3)
  assert type(error.value) is ValueError               # pylint: disable=unidiomatic-typecheck
  assert str(error.value) == ("cub/train: 3 image files cannot feed 4 input pipelines (pipeline 3 "
                              "would read none); use at most 3 input pipelines (workers or hosts) "
                              "for this split")


def test_default_pixels_are_the_full_resolution_decode_not_the_dct_downscale(cub):
  d, a1, _ = cub

  def first(**kw):
    return next(iter(data.load("cub", d, "train", image_size=32, augment=False, shuffle=False,
                               **kw)))["images"].numpy()
  # A1's 76 x 76 box crop is 2 x the load size int(32 * 76 / 64) = 38, so jpeg_downscale=True
  # decodes it at ratio 2; the default decodes it whole, then resizes 76 -> 38 (antialiased
  # bilinear) and takes the central 32 crop at (3, 3).
  resized = tf.image.resize(a1[2:78, 17:93].astype(np.float32), [38, 38], antialias=True).numpy()
  default = first()
  np.testing.assert_allclose(default, resized[3:35, 3:35] * (2 / 255) - 1, atol=2e-5)
  np.testing.assert_array_equal(default, first(jpeg_downscale=False))
  assert np.abs(default - first(jpeg_downscale=True)).max() > 0.02   # the option still differs


def test_strict_mode_fails_at_load_naming_the_caption_file_and_line(cub):
  d, _, _ = cub
  caption_file = os.path.join(d, "text", A1 + ".txt")
  with pytest.raises(bad_records.StrictDataError, match=re.escape(
      f"cub/train: malformed caption line: {caption_file}:4 (not UTF-8")):
    data.load("cub", d, "train", strict=True)
  data.load("cub", d, "train")                       # without strict: skipped and counted
  assert bad_records.LOG.examples()["cub/train"][bad_records.MALFORMED_CAPTION] == [
      f"{caption_file}:4", f"{caption_file}:5"]
  assert bad_records.counts()["cub/train"][bad_records.MALFORMED_CAPTION] == 2
