"""The faster orthogonal init gives Keras' own values (same seed) to float32 round-off."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan_attention import initializers


@pytest.mark.parametrize("shape", [(4, 4, 64, 32),   # tall: 1024 x 32, the Cholesky route
                                   (96, 16),          # 6:1
                                   (16, 96),          # wide: transposed
                                   (3, 3, 8, 24),     # 72 x 24 = 3:1, Keras' QR
                                   (32, 32)])
def test_same_values_as_keras_orthogonal_with_the_same_seed(shape):
  ours = initializers.Orthogonal(gain=1.5, seed=7)(shape).numpy()
  keras = tf.keras.initializers.Orthogonal(gain=1.5, seed=7)(shape).numpy()
  assert ours.shape == tuple(shape)
  np.testing.assert_allclose(ours, keras, atol=2e-6)
  flat = ours.reshape(-1, shape[-1]) / 1.5
  gram = flat.T @ flat if flat.shape[0] >= flat.shape[1] else flat @ flat.T
  np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=2e-6)


def test_the_tall_route_is_taken_from_four_rows_per_column(monkeypatch):
  keras_route = []
  original = tf.keras.initializers.Orthogonal._generate_init_val

  def recorded(self, shape, dtype):
    keras_route.append(tuple(shape))
    return original(self, shape, dtype)
  monkeypatch.setattr(tf.keras.initializers.Orthogonal, "_generate_init_val", recorded)
  initializers.Orthogonal(seed=1)((64, 16))   # 4:1 -> Cholesky
  initializers.Orthogonal(seed=1)((16, 64))   # 1:4 -> Cholesky, transposed
  initializers.Orthogonal(seed=1)((60, 16))   # below 4:1 -> Keras' QR
  assert keras_route == [(60, 16)]


def test_in_a_graph_each_layer_gets_its_own_values():
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(3)
    layers = [tf.keras.layers.Dense(4, kernel_initializer=initializers.Orthogonal())
              for _ in range(2)]
    for layer in layers:
      layer.build([None, 64])
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      a, b = session.run([layer.kernel for layer in layers])
  np.testing.assert_allclose(a.T @ a, np.eye(4), atol=2e-6)
  assert np.abs(a - b).max() > 0.1


def test_the_registered_name_makes_a_new_instance_for_each_layer():
  first = tf.keras.initializers.get(initializers.ORTHOGONAL)
  second = tf.keras.initializers.get(initializers.ORTHOGONAL)
  assert isinstance(first, initializers.Orthogonal) and first is not second
  layer = tf.keras.layers.Conv2D(8, 3, kernel_initializer=initializers.ORTHOGONAL)
  assert isinstance(layer.kernel_initializer, initializers.Orthogonal)
