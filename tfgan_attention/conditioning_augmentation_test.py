"""ConditioningAugmentation and kl_loss against hand computations."""
import numpy as np
import tensorflow as tf

from tfgan_attention.conditioning_augmentation import ConditioningAugmentation, glu, kl_loss


def test_kl_loss_matches_hand_computation():
  mu = np.array([[0.0, 1.0], [2.0, -1.0]], np.float32)
  logvar = np.array([[0.0, 0.0], [np.log(2.0), -1.0]], np.float32)
  # Per element KL(N(mu, s2) || N(0, 1)) = 0.5 * (s2 + mu^2 - 1 - log s2).
  per_element = [0.0, 0.5, 0.5 * (2.0 + 4.0 - 1.0 - np.log(2.0)),
                 0.5 * (np.exp(-1.0) + 1.0 - 1.0 + 1.0)]
  assert kl_loss(mu, logvar).numpy() == np.float32(np.mean(per_element))
  assert kl_loss(np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32)).numpy() == 0.0


def test_shapes_parameter_count_and_reparameterisation():
  tf.keras.utils.set_random_seed(0)
  layer = ConditioningAugmentation(condition_dim=100)
  sentence = np.random.RandomState(0).randn(3, 256).astype(np.float32)
  noise = np.random.RandomState(1).randn(3, 100).astype(np.float32)
  c, mu, logvar = layer(sentence, noise=noise)
  assert c.shape == mu.shape == logvar.shape == (3, 100)
  # fc 256 -> 400 with bias (official CA_NET), GLU -> 200 = mu | logvar.
  assert sum(int(np.prod(v.shape)) for v in layer.trainable_variables) == 256 * 400 + 400
  x = sentence.astype(np.float64) @ layer.fc.kernel.numpy() + layer.fc.bias.numpy()
  gated = x[:, :200] / (1.0 + np.exp(-x[:, 200:]))
  np.testing.assert_allclose(mu.numpy(), gated[:, :100], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(logvar.numpy(), gated[:, 100:], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(c.numpy(), gated[:, :100] + np.exp(gated[:, 100:] / 2) * noise,
                             rtol=1e-4, atol=1e-5)


def test_draws_fresh_noise_when_none_is_given():
  tf.keras.utils.set_random_seed(0)
  layer = ConditioningAugmentation(condition_dim=4)
  sentence = tf.ones([2, 8])
  c1, mu, _ = layer(sentence)
  c2, _, _ = layer(sentence)
  assert not np.allclose(c1.numpy(), c2.numpy())
  assert not np.allclose(c1.numpy(), mu.numpy())


def test_glu_halves_the_last_axis():
  np.testing.assert_allclose(glu(tf.constant([[2.0, 0.0]])).numpy(), [[1.0]])
