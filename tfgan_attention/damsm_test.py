"""DAMSM scores and loss against an independent numpy computation, pair by pair."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfgan_attention import damsm


def _softmax(x, axis):
  e = np.exp(x - x.max(axis, keepdims=True))
  return e / e.sum(axis, keepdims=True)


def _cos(a, b):
  return np.sum(a * b, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1),
                                        1e-8)


def _np_word_score(words, regions, v):
  """Eqs. 7-10 for one image [N, D] and one caption already cut to its real words [L, D]."""
  s_bar = _softmax(words @ regions.T, axis=0)  # eq. 8 over words, per region [L, N]
  alpha = _softmax(v.gamma1 * s_bar, axis=1)  # eq. 9 over regions, per word
  r = _cos(alpha @ regions, words)  # [L]
  score = np.log(np.sum(np.exp(v.gamma2 * r)))
  return (score / v.gamma2 if v.inverse_gamma2 else score), alpha


def _np_xent(scores, class_ids):
  """Mean over rows of -log softmax(row)[i], with same-class j != i left out of row i."""
  losses = []
  for i, row in enumerate(scores):
    keep = np.ones(len(row), bool) if class_ids is None else (
        (np.asarray(class_ids) != class_ids[i]) | (np.arange(len(row)) == i))
    losses.append(np.log(np.sum(np.exp(row[keep]))) - row[i])
  return np.mean(losses)


def _np_damsm(words, sentence, regions, image_global, lengths, class_ids, v):
  b = len(words)
  regions = regions.reshape(b, -1, regions.shape[-1])
  w = np.array([[_np_word_score(words[j, :lengths[j]], regions[i], v)[0] for j in range(b)]
                for i in range(b)])  # [images, captions]
  s = np.array([[_cos(image_global[i], sentence[j]) for j in range(b)] for i in range(b)])
  w, s = v.gamma3 * w, v.gamma3 * s
  return (_np_xent(w, class_ids), _np_xent(w.T, class_ids), _np_xent(s, class_ids),
          _np_xent(s.T, class_ids))


def _batch(seed, b=4, t=6, h=2, w=3, d=8):
  rng = np.random.RandomState(seed)
  return dict(words=rng.randn(b, t, d), sentence=rng.randn(b, d), regions=rng.randn(b, h, w, d),
              image_global=rng.randn(b, d))


@pytest.mark.parametrize("variant", [damsm.PAPER, damsm.OFFICIAL], ids=lambda v: v.name)
@pytest.mark.parametrize("class_ids", [None, [0, 1, 0, 1]])
def test_loss_equals_numpy(variant, class_ids):
  batch = _batch(0)
  lengths = np.array([3, 6, 1, 4])
  expected = _np_damsm(**batch, lengths=lengths, class_ids=class_ids, v=variant)
  loss = damsm.damsm_loss(**{k: tf.constant(x, tf.float64) for k, x in batch.items()},
                          lengths=lengths, class_ids=class_ids, variant=variant)
  got = [loss.w0.numpy(), loss.w1.numpy(), loss.s0.numpy(), loss.s1.numpy()]
  np.testing.assert_allclose(got, expected, rtol=1e-10)
  assert loss.total.numpy() == pytest.approx(sum(expected), rel=1e-10)
  assert loss.attention.shape == (4, 6, 6)


def test_variants_are_the_paper_and_official_values():
  assert (damsm.PAPER.gamma1, damsm.PAPER.gamma2, damsm.PAPER.gamma3) == (5.0, 5.0, 10.0)
  assert damsm.PAPER.inverse_gamma2 and not damsm.OFFICIAL.inverse_gamma2
  assert damsm.OFFICIAL.gamma1 == 4.0 and damsm.VARIANTS["official"] is damsm.OFFICIAL
  with pytest.raises(ValueError, match="reduction"):
    damsm.DamsmVariant(reduction="max")


def test_without_inverse_gamma2_word_scores_are_gamma2_times_larger():
  batch = _batch(1)
  lengths = [2, 6, 5, 3]
  paper, _ = damsm.word_scores(batch["words"], batch["regions"], lengths, damsm.PAPER)
  no_inverse = dataclasses.replace(damsm.PAPER, inverse_gamma2=False)
  scaled, _ = damsm.word_scores(batch["words"], batch["regions"], lengths, no_inverse)
  np.testing.assert_allclose(scaled.numpy(), 5.0 * paper.numpy(), rtol=1e-12)


def test_sum_reduction_is_batch_size_times_the_mean():
  batch = _batch(2)
  lengths = [6, 2, 3, 4]
  summed = dataclasses.replace(damsm.PAPER, reduction="sum")
  mean = damsm.damsm_loss(**batch, lengths=lengths).total.numpy()
  assert damsm.damsm_loss(**batch, lengths=lengths, variant=summed).total.numpy() == (
      pytest.approx(4 * mean, rel=1e-12))


@pytest.mark.parametrize("variant", [damsm.PAPER, damsm.OFFICIAL], ids=lambda v: v.name)
def test_padding_words_get_exactly_zero_attention_for_every_example(variant):
  batch = _batch(3, b=5, t=7)
  lengths = np.array([1, 7, 4, 2, 5])
  scores, attention = damsm.word_scores(batch["words"], batch["regions"], lengths, variant)
  attention = attention.numpy()  # [B, T, N] of the matching pairs
  regions = batch["regions"].reshape(5, -1, 8)
  for i, n in enumerate(lengths):
    assert np.all(attention[i, n:] == 0.0), i
    _, alpha = _np_word_score(batch["words"][i, :n], regions[i], variant)
    np.testing.assert_allclose(attention[i, :n], alpha, rtol=1e-10)
  # Every (image, caption) pair, not only the matching ones.
  _, alpha = damsm.word_matching_score(batch["words"][np.newaxis], regions[:, np.newaxis],
                                       lengths[np.newaxis], variant)
  for j, n in enumerate(lengths):
    assert np.all(alpha.numpy()[:, j, n:] == 0.0), j
  # Neither the padding words' values nor extra padding change any score.
  padded = np.concatenate([batch["words"], np.zeros((5, 3, 8))], axis=1)
  for i, n in enumerate(lengths):
    padded[i, n:] = 50.0 * np.random.RandomState(i).randn(10 - n, 8)
  scores_padded, _ = damsm.word_scores(padded, batch["regions"], lengths, variant)
  np.testing.assert_allclose(scores_padded.numpy(), scores.numpy(), rtol=1e-12)


def test_class_masks_against_a_hand_computation():
  scores = np.array([[3.0, 1.0, 2.0],
                     [0.5, 1.0, -1.0],
                     [2.0, 4.0, 0.0]])
  class_ids = [7, 7, 9]  # pairs (0, 1) and (1, 0) are same-class negatives: dropped
  i2t, t2i = damsm.matching_losses(tf.constant(scores), class_ids)
  rows = [np.log(np.exp(3) + np.exp(2)) - 3,  # image 0: captions 0, 2
          np.log(np.exp(1) + np.exp(-1)) - 1,  # image 1: captions 1, 2
          np.log(np.exp(2) + np.exp(4) + np.exp(0)) - 0]  # image 2: all three
  cols = [np.log(np.exp(3) + np.exp(2)) - 3,  # caption 0: images 0, 2
          np.log(np.exp(1) + np.exp(4)) - 1,  # caption 1: images 1, 2
          np.log(np.exp(2) + np.exp(-1) + np.exp(0)) - 0]  # caption 2: all three
  assert i2t.numpy() == pytest.approx(np.mean(rows), rel=1e-12)
  assert t2i.numpy() == pytest.approx(np.mean(cols), rel=1e-12)
  np.testing.assert_array_equal(damsm.class_negative_mask(class_ids).numpy(),
                                [[False, True, False], [True, False, False],
                                 [False, False, False]])


def test_one_class_batch_has_no_negatives_and_finite_gradients():
  batch = {k: tf.constant(x) for k, x in _batch(4).items()}
  with tf.GradientTape() as tape:
    tape.watch(list(batch.values()))
    loss = damsm.damsm_loss(**batch, lengths=[3, 6, 1, 4], class_ids=[2, 2, 2, 2],
                            variant=damsm.OFFICIAL)
  assert loss.total.numpy() == 0.0  # only the matching pair is left in every softmax
  grads = tape.gradient(loss.total, list(batch.values()))
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_matching_pairs_score_higher_after_alignment():
  """Sanity: captions whose words are their image's regions outscore the other captions."""
  rng = np.random.RandomState(5)
  regions = rng.randn(3, 4, 16)
  words = regions[:, :3] + 0.01 * rng.randn(3, 3, 16)
  scores, _ = damsm.word_scores(words, regions, [3, 3, 3], damsm.PAPER)
  assert np.all(np.argmax(scores.numpy(), axis=1) == np.arange(3))


def test_same_loss_in_a_tf1_graph_with_an_unknown_batch():
  """The estimator builds graphs: placeholders of unknown batch size give the eager numbers."""
  batch = {k: x.astype(np.float32) for k, x in _batch(6).items()}
  lengths, class_ids = [3, 6, 1, 4], [0, 1, 0, 1]
  eager = damsm.damsm_loss(**batch, lengths=lengths, class_ids=class_ids).total.numpy()
  with tf.Graph().as_default():
    feeds = {k: tf.compat.v1.placeholder(tf.float32, [None] + list(x.shape[1:]))
             for k, x in batch.items()}
    length_ph = tf.compat.v1.placeholder(tf.int32, [None])
    class_ph = tf.compat.v1.placeholder(tf.int32, [None])
    loss = damsm.damsm_loss(**feeds, lengths=length_ph, class_ids=class_ph)
    assert loss.attention.shape.as_list() == [None, 6, 6]
    with tf.compat.v1.Session() as sess:
      feed = {feeds[k]: x for k, x in batch.items()}
      feed.update({length_ph: lengths, class_ph: class_ids})
      assert sess.run(loss.total, feed) == pytest.approx(eager, rel=1e-5)


@pytest.mark.parametrize("variant", [damsm.PAPER, damsm.OFFICIAL], ids=lambda v: v.name)
def test_finite_gradients_when_padding_words_are_zero_vectors(variant):
  """The text encoder zeroes padding words; their zero context must not give 0/0 gradients."""
  batch = {k: tf.constant(x) for k, x in _batch(7).items()}
  lengths = np.array([3, 6, 1, 4])
  batch["words"] *= (np.arange(6)[None, :, None] < lengths[:, None, None]).astype(np.float64)
  with tf.GradientTape() as tape:
    tape.watch(list(batch.values()))
    loss = damsm.damsm_loss(**batch, lengths=lengths, variant=variant)
  grads = tape.gradient(loss.total, list(batch.values()))
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)
  assert np.all(grads[0].numpy()[0, 3:] == 0.0)  # nothing flows into padding words
