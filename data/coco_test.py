"""COCO 2014 captions JSON + image folders: pixels, 5 captions per image, bad input."""
import os

import numpy as np
import pytest
import tensorflow as tf

import data
from data import bad_records
from data import format_writers
from data.layout import DataLayoutError

CAPTIONS = {3: ["A man riding a horse.", "a person on a horse", "horse and rider", "a brown horse",
                "someone rides", "a sixth caption is never used"],
            5: ["two dogs", 17, "a dog and a dog", "!!!", "dogs on grass", "grass"],
            9: ["a red bus", "a bus", "bus on a street", "a city bus", "a big red bus"]}


@pytest.fixture(autouse=True)
def _fresh_log():
  bad_records.LOG.reset()


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
  d = str(tmp_path_factory.mktemp("coco"))
  images = {i: format_writers.smooth_image(19, 30 + i, seed=i) for i in CAPTIONS}
  annotations, n = [], 100
  for image_id in (9, 3, 5):                      # JSON order is not id order
    for caption in CAPTIONS[image_id]:
      annotations.append({"id": n, "image_id": image_id, "caption": caption})
      n += 1
  annotations.append({"id": n, "image_id": 12345, "caption": "no such image"})
  format_writers.write_coco(d, "train2014", "captions_train2014.json",
                            [{"id": i, "file_name": f"COCO_train2014_{i:012d}.jpg",
                              "image": images[i]} for i in (9, 3, 5)], annotations)
  format_writers.write_coco(d, "val2014", "captions_val2014.json",
                            [{"id": 1, "file_name": "COCO_val2014_000000000001.jpg",
                              "image": format_writers.smooth_image(20, 20, seed=0)}],
                            [{"id": 1000 + k, "image_id": 1, "caption": f"val words {k}"}
                             for k in range(5)])
  decoded = {}
  for i in CAPTIONS:
    with open(os.path.join(d, "train2014", f"COCO_train2014_{i:012d}.jpg"), "rb") as f:
      decoded[i] = tf.io.decode_jpeg(f.read(), channels=3).numpy()
  return d, decoded


def test_images_by_id_with_their_first_five_good_captions(coco):
  d, decoded = coco
  vocab = data.get_spec("coco").vocabulary(d)
  good = {i: [c for c in CAPTIONS[i] if isinstance(c, str) and c != "!!!"][:5] for i in CAPTIONS}
  words = {w for i in (3, 5, 9) for c in good[i] for w in data.text.tokenize(c)}
  assert vocab.words[:6] == ["<end>", "a", "man", "riding", "horse", "person"]
  assert "sixth" not in vocab.words                # the 6th caption of an image is not read
  assert len(vocab) == 1 + len(words | {"val", "words", "0", "1", "2", "3", "4"})
  examples = list(data.load("coco", d, "train", image_size=16, augment=False, max_words=8,
                           shuffle=False))
  assert len(examples) == 3 and "labels" not in examples[0]
  for e, image_id in zip(examples, (3, 5, 9)):
    # shorter side 19 = int(16 * 76 / 64): no resampling; central 16 crop at (round(1.5), ...)
    left = int(round((30 + image_id - 16) / 2))
    np.testing.assert_allclose(e["images"].numpy(), decoded[image_id][2:18, left:left + 16]
                               .astype(np.float32) * (2 / 255) - 1, atol=2e-5)
  good[5] = good[5] + good[5][:1]                  # 4 good captions: the first one repeats
  for e, image_id in zip(examples, (3, 5, 9)):
    want = np.zeros([5, 8], np.int32)
    for k, caption in enumerate(good[image_id]):
      ids = vocab.encode_text(caption)
      want[k, :len(ids)] = ids
    np.testing.assert_array_equal(e["all_captions"].numpy(), want)
  assert bad_records.counts() == {"coco/train": {bad_records.MALFORMED_CAPTION: 3,
                                                 bad_records.TOO_FEW_CAPTIONS: 1}}
  (val,) = list(data.load("coco", d, "test", image_size=16))
  assert vocab.decode(val["all_captions"].numpy()[4]) == "val words 4"


def test_missing_annotations_or_image_folder_fail_with_the_layout(tmp_path):
  with pytest.raises(DataLayoutError, match=r"missing file .*captions_train2014\.json"):
    data.load("coco", str(tmp_path), "train")
  format_writers.write_coco(str(tmp_path), "train2014", "captions_train2014.json", [], [])
  with pytest.raises(DataLayoutError, match=r"missing directory .*train2014"):
    data.load("coco", str(tmp_path), "train")


def test_batches_for_training_inside_a_tf1_graph(coco):
  """The estimator path: input_fn in a TF1 graph, batch_pipeline on top, static batch shapes."""
  d, _ = coco
  with tf.Graph().as_default():
    ds = data.batch_pipeline(data.load("coco", d, "train", image_size=16, seed=1), 2,
                             training=True, seed=1)
    assert ds.element_spec["images"].shape.as_list() == [2, 16, 16, 3]
    assert ds.element_spec["captions"].shape.as_list() == [2, 12]
    assert ds.element_spec["all_captions"].shape.as_list() == [2, 5, 12]
    iterator = tf.compat.v1.data.make_initializable_iterator(ds)  # what estimators use
    nxt = iterator.get_next()
    with tf.compat.v1.Session() as sess:
      sess.run(iterator.initializer)
      batches = [sess.run(nxt) for _ in range(4)]        # 3 images: the repeat goes on
  for b in batches:
    assert b["caption_length"].tolist() == [int((c > 0).sum()) for c in b["captions"]]
    assert b["images"].min() >= -1 and b["images"].max() <= 1


def _write_val(d, images=1):
  format_writers.write_coco(d, "val2014", "captions_val2014.json",
                            [{"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg", "data": b"x"}
                             for i in range(images)],
                            [{"id": 1000 + k, "image_id": 0, "caption": f"val {k}"}
                             for k in range(5 if images else 0)])
  os.makedirs(os.path.join(d, "val2014"), exist_ok=True)


def test_an_image_the_json_lists_but_the_folder_lacks_fails_at_load(tmp_path):
  d = str(tmp_path)
  names = [f"COCO_train2014_{i:012d}.jpg" for i in range(3)]
  format_writers.write_coco(d, "train2014", "captions_train2014.json",
                            [{"id": i, "file_name": n, "data": b"x"} for i, n in enumerate(names)],
                            [{"id": 10 * i + k, "image_id": i, "caption": f"a cat {k}"}
                             for i in range(3) for k in range(5)])
  _write_val(d)
  os.remove(os.path.join(d, "train2014", names[1]))
  with pytest.raises(DataLayoutError) as error:
    data.load("coco", d, "train")                    # at load time: nothing is iterated
  assert str(error.value) == (
      f"1 of 3 files listed by {d}/annotations/captions_train2014.json are missing:\n"
      f"  {d}/train2014/{names[1]}\nexpected layout:\n{data.coco.LAYOUT}")
  assert bad_records.counts() == {}                  # not a corrupt image


def test_a_split_without_images_is_a_layout_error_naming_folder_and_json(tmp_path):
  d = str(tmp_path)
  format_writers.write_coco(d, "train2014", "captions_train2014.json",
                            [{"id": 1, "file_name": "COCO_train2014_1.jpg", "data": b"x"}],
                            [{"id": 1, "image_id": 1, "caption": "a cat"}])
  _write_val(d, images=0)
  with pytest.raises(DataLayoutError) as error:
    data.load("coco", d, "test")
  assert str(error.value) == (
      f"coco/test: the split has no images (images under {d}/val2014: 0 listed by "
      f"{d}/annotations/captions_val2014.json, 0 of them without a usable caption)\n"
      f"expected layout:\n{data.coco.LAYOUT}")
