"""Captioned digits: every caption states the class and attributes an independent measurement of
the pixels confirms; the elements have the caption datasets' format and are deterministic."""
import collections

import numpy as np
import pytest

from data import digits
from data import digits_captions as dc
from data import load
from data import text


def _measure_by_loops(image8):
  """Stroke weight, slant and width of one 8x8 image, pixel by pixel (independent of dc.measure)."""
  pixels = [(r, c, float(image8[r][c]) / 16.0) for r in range(8) for c in range(8)]
  ink = sum(x for _, _, x in pixels)
  mr = sum(r * x for r, _, x in pixels) / ink
  mc = sum(c * x for _, c, x in pixels) / ink
  var_r = sum((r - mr) ** 2 * x for r, _, x in pixels) / ink
  var_c = sum((c - mc) ** 2 * x for _, c, x in pixels) / ink
  cov = sum((r - mr) * (c - mc) * x for r, c, x in pixels) / ink
  return {"weight": ink, "slant": -cov / var_r, "width": var_c ** 0.5}


@pytest.fixture(scope="module")
def measured():
  """Attribute value index (0, 1, 2) of all 1,797 images from the loop measurement and
  per-class tertiles computed here."""
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
  bunch = load_digits()
  raw = [_measure_by_loops(img) for img in bunch.images]
  labels = bunch.target
  out = {}
  for attribute in dc.ATTRIBUTES:
    values = np.array([m[attribute] for m in raw])
    index = np.zeros(len(values), int)
    for k in range(10):
      members = labels == k
      low, high = np.percentile(values[members], [100 / 3, 200 / 3])
      index[members] = (values[members] > low).astype(int) + (values[members] > high)
    out[attribute] = index
  return labels, out


def test_every_caption_states_the_class_and_measured_attributes(measured):
  labels, attributes = measured
  captions = dc.all_captions()
  assert len(captions) == 1797
  mentions = collections.Counter()
  for i, caps in enumerate(captions):
    assert len(caps) == dc.CAPTIONS_PER_IMAGE
    assert len(set(caps)) >= 8, caps  # varied phrasing
    for caption in caps:
      tokens = set(text.tokenize(caption))
      assert dc.NUMBER_WORDS[labels[i]] in tokens, caption
      assert not (tokens & set(dc.NUMBER_WORDS)) - {dc.NUMBER_WORDS[labels[i]]}, caption
      stated = 0
      for attribute in dc.ATTRIBUTES:
        truth = dc.VALUES[attribute][attributes[attribute][i]]
        for value, markers in dc.MARKERS[attribute].items():
          if tokens & markers:
            assert value == truth, (i, caption, attribute, truth)
            stated += 1
            mentions[attribute] += 1
      assert stated >= 1, caption
    assert sum(len(set(text.tokenize(c)) & set().union(*dc.MARKERS[a].values()))
               > 0 for c in caps for a in dc.ATTRIBUTES) >= 2 * dc.CAPTIONS_PER_IMAGE
  assert min(mentions.values()) > 0.5 * 1797 * dc.CAPTIONS_PER_IMAGE


def test_module_measurement_matches_and_values_split_each_class_in_thirds(measured):
  labels, attributes = measured
  images, _ = dc._all_digits()  # pylint: disable=protected-access
  mine = dc.attribute_values(images, labels)
  for attribute in dc.ATTRIBUTES:
    np.testing.assert_array_equal(mine[attribute], attributes[attribute])
    for k in range(10):
      counts = np.bincount(attributes[attribute][labels == k], minlength=3)
      assert counts.min() >= 0.3 * counts.sum(), (attribute, k, counts)


def test_markers_belong_to_one_value_and_every_phrase_has_its_own():
  owners = collections.defaultdict(set)
  for attribute, values in dc.MARKERS.items():
    for value, markers in values.items():
      for m in markers:
        owners[m].add((attribute, value))
  assert all(len(o) == 1 for o in owners.values()), owners
  assert not set(owners) & set(dc.NUMBER_WORDS)
  for slot, values in dc.PHRASES.items():
    attribute = dc._SLOT_ATTRIBUTE[slot]  # pylint: disable=protected-access
    for value, phrases in values.items():
      for phrase in phrases:
        tokens = set(text.tokenize(phrase))
        assert tokens & dc.MARKERS[attribute][value], (slot, phrase)
        others = set().union(*(m for v, m in dc.MARKERS[attribute].items() if v != value))
        assert not tokens & others, (slot, phrase)


def test_elements_have_the_caption_format_and_are_deterministic():
  vocab = dc.vocabulary()
  ds = load("digits_captions", split="test", image_size=16, seed=7, max_words=6)
  elements = list(ds.take(5).as_numpy_iterator())
  again = list(load("digits_captions", split="test", image_size=16, seed=7,
                    max_words=6).take(5).as_numpy_iterator())
  images8, labels, ids, lengths = dc.split_arrays("test")
  expected_images = digits.upsample_to_rgb(images8[:5], 16)
  captions = dc.all_captions()
  test_index = dc.split_indices("test")
  for n, (e, f) in enumerate(zip(elements, again)):
    assert set(e) == {"images", "captions", "caption_length", "caption_index", "all_captions",
                      "all_caption_lengths", "labels"}
    for key in e:
      np.testing.assert_array_equal(e[key], f[key])
    assert e["images"].shape == (16, 16, 3) and e["images"].dtype == np.float32
    np.testing.assert_allclose(e["images"], expected_images[n], atol=1e-6)
    assert e["labels"] == labels[n]
    assert e["all_captions"].shape == (10, 6) and e["captions"].shape == (6,)
    np.testing.assert_array_equal(e["captions"], e["all_captions"][e["caption_index"]])
    for k in range(10):
      full = vocab.encode_text(captions[test_index[n]][k])
      got = e["all_captions"][k][:e["all_caption_lengths"][k]]
      assert e["all_caption_lengths"][k] == min(len(full), 6)
      position = 0  # sub-sampled words keep their order
      for word in got:
        position = full.index(word, position) + 1
      assert np.all(e["all_captions"][k][e["all_caption_lengths"][k]:] == 0)
  assert len(vocab) == len(set(vocab.words)) and vocab.words[0] == "<end>"
  assert lengths.min() >= 4 and ids.shape[1] == 10
  assert sum(1 for _ in load("digits_captions", split="train")) == len(digits.digits_source("train")[1])
