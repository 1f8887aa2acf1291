"""Fixed-length captions: exact padding, order-keeping uniform sub-sampling, caption choice."""
import collections

import numpy as np
import tensorflow as tf

from data import caption_ops


def _subsample(rows, max_words, seed):
  width = max(len(r) for r in rows)
  tokens = np.array([r + [0] * (width - len(r)) for r in rows], np.int32)
  lengths = np.array([len(r) for r in rows], np.int32)
  out, n = caption_ops.subsample_words(tf.constant(tokens), tf.constant(lengths), max_words,
                                       tf.constant(seed, tf.int64))
  return out.numpy(), n.numpy()


def test_short_captions_are_zero_padded_unchanged():
  out, n = _subsample([[5, 6, 7], [9]], max_words=4, seed=[1, 2])
  np.testing.assert_array_equal(out, [[5, 6, 7, 0], [9, 0, 0, 0]])
  np.testing.assert_array_equal(n, [3, 1])


def test_long_captions_keep_max_words_distinct_words_in_their_order():
  caption = list(range(101, 131))  # 30 distinct words
  for s in range(20):
    out, n = _subsample([caption, [1, 2]], max_words=18, seed=[s, 7])
    assert n.tolist() == [18, 2]
    kept = out[0].tolist()
    assert len(set(kept)) == 18 and set(kept) <= set(caption)
    assert kept == sorted(kept)                      # original order kept
    assert out[1].tolist() == [1, 2] + [0] * 16


def test_subsampling_is_uniform_over_positions_and_reproducible():
  out, _ = _subsample([[10, 11, 12, 13]] * 600, max_words=2, seed=[5, 0])  # 600 draws
  counts = collections.Counter(tuple(row) for row in out)
  assert len(counts) == 6                              # all C(4, 2) ordered pairs occur
  assert min(counts.values()) > 70                     # 100 expected each, sd 9
  a, _ = _subsample([list(range(1, 40))], 18, [3, 4])
  b, _ = _subsample([list(range(1, 40))], 18, [3, 4])
  np.testing.assert_array_equal(a, b)


def test_pick_caption_returns_the_row_its_index_names():
  captions = tf.constant([[1, 0], [2, 3], [4, 5]], tf.int32)
  lengths = tf.constant([1, 2, 2], tf.int32)
  seen = set()
  for s in range(30):
    cap, length, index = caption_ops.pick_caption(captions, lengths, tf.constant([s, 1]))
    i = int(index)
    np.testing.assert_array_equal(cap.numpy(), captions.numpy()[i])
    assert int(length) == lengths.numpy()[i]
    seen.add(i)
  assert seen == {0, 1, 2}
