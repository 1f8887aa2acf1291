"""LadaGAN losses against hand computations and R1 against finite differences."""
import numpy as np
import tensorflow as tf

from estimators.models import ladagan_losses as losses
from estimators.models.ladagan_networks import Discriminator, LadaGANArch


def test_non_saturating_losses_by_hand():
  real = tf.constant([[0.0, 2.0], [-1.0, 3.0]])
  fake = tf.constant([[1.0, -2.0], [0.5, 0.0]])
  sp = lambda v: np.log1p(np.exp(v))
  expected_d = (sp(-0.0) + sp(-2.0) + sp(1.0) + sp(-3.0)) / 4 + (sp(1.0) + sp(-2.0) + sp(0.5)
                                                                  + sp(0.0)) / 4
  expected_g = (sp(-1.0) + sp(2.0) + sp(-0.5) + sp(0.0)) / 4
  np.testing.assert_allclose(losses.discriminator_loss(real, fake).numpy(), expected_d, rtol=1e-6)
  np.testing.assert_allclose(losses.generator_loss(fake).numpy(), expected_g, rtol=1e-6)


def _tiny_discriminator():
  """A float64 nonlinear map [B, 3, 3, 2] -> [B, 25] (so the sum over patches matters)."""
  rs = np.random.RandomState(0)
  w1, w2 = tf.constant(rs.randn(18, 7)), tf.constant(rs.randn(7, 25) * 0.5)
  return lambda x: tf.tanh(tf.reshape(x, [-1, 18]) @ w1) @ w2 + tf.reshape(x, [-1, 18])[:, :1]


def test_r1_against_finite_differences():
  d = _tiny_discriminator()
  x = np.random.RandomState(1).randn(3, 3, 3, 2)
  logits, penalty = losses.r1_penalty(d, tf.constant(x), weight=0.5)
  np.testing.assert_allclose(logits.numpy(), d(tf.constant(x)).numpy())
  eps = 1e-6
  f = lambda t: d(tf.constant(t)).numpy().sum(axis=1)  # per example: sum of its 25 logits
  grads = np.zeros_like(x)
  for idx in np.ndindex(*x.shape[1:]):
    up, down = x.copy(), x.copy()
    up[(slice(None),) + idx] += eps
    down[(slice(None),) + idx] -= eps
    grads[(slice(None),) + idx] = (f(up) - f(down)) / (2 * eps)
  expected = 0.5 * np.mean(np.sum(grads.reshape(3, -1) ** 2, axis=1))  # no 1/2 inside
  np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-7)


def test_r1_on_a_tiny_ladagan_discriminator_in_a_tf1_graph():
  """In a TF1 graph (the estimator's), r1_penalty and r1_from_logits equal eager r1_penalty on
  the same weights and images, and R1 reaches D's weights (D is trained on it)."""
  arch = LadaGANArch(g_dim=(64, 16, 8), g_mlp_dim=16, d_enc_dim=(4, 8), d_out_dim=(8, 8),
                     d_mlp_dim=8)
  images = np.random.RandomState(0).randn(2, 32, 32, 3).astype(np.float32)
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(0)
    d = Discriminator(arch)
    x = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
    logits, penalty = losses.r1_penalty(lambda t: d(t, training=True), x, weight=0.5)
    from_logits = losses.r1_from_logits(logits, x, weight=0.5)
    second_order = tf.gradients(penalty, d.trainable_variables)  # D is trained on R1
    assert all(g is not None for g in second_order)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      lv, pv, fv, weights = sess.run([logits, penalty, from_logits, d.weights], {x: images})
  eager_d = Discriminator(arch)
  eager_d(images)
  eager_d.set_weights(weights)
  eager_logits, eager_penalty = losses.r1_penalty(lambda t: eager_d(t, training=True),
                                                  tf.constant(images), weight=0.5)
  assert lv.shape == (2, 25) and pv > 1e-3
  np.testing.assert_allclose(lv, eager_logits.numpy(), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose([pv, fv], eager_penalty.numpy(), rtol=1e-5)


def test_bcr_consistency_by_hand_and_stop_gradient():
  real, real_aug = tf.constant([[1.0, 2.0]]), tf.constant([[0.0, 4.0]])
  fake, fake_aug = tf.constant([[-1.0, 0.5]]), tf.constant([[-1.0, -0.5]])
  # real: ((1-0)^2 + (2-4)^2) / 2 = 2.5; fake: (0 + 1) / 2 = 0.5
  np.testing.assert_allclose(
      losses.bcr_consistency(real, real_aug, fake, fake_aug, weight=0.1).numpy(), 0.3, rtol=1e-6)
  w = tf.Variable([[2.0]])
  reals = tf.ones([2, 2, 2, 1])
  d = lambda t: tf.reshape(t * w, [-1, 4])
  with tf.GradientTape(persistent=True) as tape:
    fakes = 3.0 * w * tf.ones([3, 2, 2, 1])  # "generator" output depends on w
    r_aug, f_aug = losses.bcr_augmented_logits(d, reals, fakes, lambda t: t + 1.0)
    loss = tf.reduce_sum(f_aug)
  assert r_aug.shape == (2, 4) and f_aug.shape == (3, 4)
  np.testing.assert_allclose(r_aug.numpy(), 4.0)  # (1 + 1) * 2
  np.testing.assert_allclose(f_aug.numpy(), 14.0)  # (6 + 1) * 2
  # d loss / d w only through D's weight (the augmented fakes are constants): 12 * 7
  np.testing.assert_allclose(tape.gradient(loss, w).numpy(), [[84.0]])
