"""AttnGAN's per-stage losses and the CA KL against hand computations (numpy)."""
import numpy as np
import pytest
import tensorflow as tf

from estimators.models import attngan_losses
from tfgan_attention.conditioning_augmentation import kl_loss


def _bce(logits, target):
  p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
  return float(np.mean(-(target * np.log(p) + (1 - target) * np.log(1 - p))))


REAL = {"uncond": [0.5, -1.0, 2.0], "cond": [1.5, 0.2, -0.3], "cond_wrong": [0.7, -2.0]}
FAKE = {"uncond": [-0.4, 0.1, 1.2], "cond": [0.3, -1.1, 0.0]}


def _tensors(d):
  return {k: tf.constant(v, tf.float32) for k, v in d.items()}


def test_official_discriminator_terms_and_weights():
  loss, terms = attngan_losses.discriminator_stage_loss(_tensors(REAL), _tensors(FAKE))
  # wrong pairs: real image j with sentence j + 1 for j = 0..B-2: B - 1 logits, their mean
  wrong = _bce([0.7, -2.0], 0)
  expected = ((_bce(REAL["uncond"], 1) + _bce(REAL["cond"], 1)) / 2
              + (_bce(FAKE["uncond"], 0) + _bce(FAKE["cond"], 0) + wrong) / 3)
  assert float(terms["wrong_cond"]) == pytest.approx(wrong, rel=1e-6)
  assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_paper_weighting_has_no_mismatched_term_and_half_factors():
  real = dict(REAL, cond_wrong=[100.0, 100.0])  # ignored by eq. 5
  loss, terms = attngan_losses.discriminator_stage_loss(_tensors(real), _tensors(FAKE), "paper")
  expected = 0.5 * (_bce(REAL["uncond"], 1) + _bce(FAKE["uncond"], 0) + _bce(REAL["cond"], 1)
                    + _bce(FAKE["cond"], 0))
  assert "wrong_cond" not in terms
  assert float(loss) == pytest.approx(expected, rel=1e-6)
  g_paper = attngan_losses.generator_stage_loss(_tensors(FAKE), "paper")
  g_official = attngan_losses.generator_stage_loss(_tensors(FAKE), "official")
  g = _bce(FAKE["uncond"], 1) + _bce(FAKE["cond"], 1)
  assert float(g_official) == pytest.approx(g, rel=1e-6)
  assert float(g_paper) == pytest.approx(0.5 * g, rel=1e-6)
  with pytest.raises(ValueError, match="loss weighting"):
    attngan_losses.generator_stage_loss(_tensors(FAKE), "other")


def test_wrong_sentences_pair_each_row_with_the_next_example_b_minus_1_rows():
  sentence = tf.constant([[0.0], [1.0], [2.0], [3.0]])  # the global batch, B = 4
  np.testing.assert_array_equal(attngan_losses.wrong_sentences(sentence).numpy(),
                                [[1.0], [2.0], [3.0]])  # official conditions[1:B]
  # Two replicas of 2 rows: the first pairs its rows 0, 1 with sentences 1, 2; the second has
  # only row 2 paired (with sentence 3): together the one-device pairs.
  np.testing.assert_array_equal(attngan_losses.wrong_sentences(sentence, 0, 2).numpy(),
                                [[1.0], [2.0]])
  np.testing.assert_array_equal(attngan_losses.wrong_sentences(sentence, 2, 2).numpy(), [[3.0]])


def test_global_batch_outside_a_strategy_is_the_batch_itself():
  value = {"a": tf.constant([[1.0], [2.0]])}
  gathered, first = attngan_losses.global_batch(value)
  assert gathered is value and first == 0


def test_kl_against_hand_computation():
  mu = np.array([[1.0, 0.0], [0.5, -2.0]])
  logvar = np.array([[0.0, np.log(2.0)], [-1.0, 0.5]])
  # -0.5 (1 + logvar - mu^2 - exp(logvar)) per element, mean over batch and dimensions
  by_hand = [0.5, 0.5 * (2.0 - 1.0 - np.log(2.0)), -0.5 * (1 - 1 - 0.25 - np.exp(-1.0)),
             -0.5 * (1 + 0.5 - 4.0 - np.exp(0.5))]
  assert float(kl_loss(tf.constant(mu, tf.float32), tf.constant(logvar, tf.float32))) == (
      pytest.approx(np.mean(by_hand), rel=1e-6))
