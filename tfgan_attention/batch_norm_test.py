"""Batch norm layers: hand-computed CBN outputs, moving statistics eagerly and in TF1 graphs."""
import numpy as np
import tensorflow as tf

from tfgan_attention.batch_norm import BatchNorm, ConditionalBatchNorm


def test_conditional_batch_norm_equals_hand_computation():
  # Two examples, 1x2 pixels, 2 channels; classes 0 and 2 of 3.
  x = np.array([[[[1.0, 10.0], [3.0, 14.0]]],
                [[[5.0, 18.0], [7.0, 22.0]]]], np.float32)  # [2, 1, 2, 2]
  labels = np.array([0, 2])
  cbn = ConditionalBatchNorm(3, epsilon=1e-3)
  cbn(x, labels, training=True)  # build
  cbn.gamma.assign([[1.0, 2.0], [9.0, 9.0], [0.5, -1.0]])
  cbn.beta.assign([[0.0, 1.0], [9.0, 9.0], [2.0, 3.0]])
  y = cbn(x, labels, training=True).numpy()
  # channel 0 values 1,3,5,7: mean 4, biased var 5; channel 1 values 10,14,18,22: mean 16, var 20.
  n0 = (x[..., 0] - 4.0) / np.sqrt(5.0 + 1e-3)
  n1 = (x[..., 1] - 16.0) / np.sqrt(20.0 + 1e-3)
  expected = np.stack([n0, n1], -1)
  expected[0] = expected[0] * [1.0, 2.0] + [0.0, 1.0]
  expected[1] = expected[1] * [0.5, -1.0] + [2.0, 3.0]
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
  # Untrained CBN (gamma ones, beta zeros) is plain normalisation, not x * 0.
  fresh = ConditionalBatchNorm(3)
  np.testing.assert_allclose(fresh(x, labels, training=True).numpy()[..., 0],
                             (x[..., 0] - 4.0) / np.sqrt(5.0 + 1e-3), rtol=1e-5)


def test_conditional_batch_norm_mixes_classes_by_weights():
  """Class weights [B, num_classes] mix gamma and beta linearly; one-hot weights are the class."""
  x = np.random.RandomState(0).standard_normal((2, 2, 2, 3)).astype(np.float32)
  cbn = ConditionalBatchNorm(4)
  cbn(x, np.array([0, 1]), training=False)
  rng = np.random.RandomState(1)
  cbn.gamma.assign(rng.standard_normal((4, 3)))
  cbn.beta.assign(rng.standard_normal((4, 3)))
  hard = cbn(x, np.array([2, 3]), training=False).numpy()
  one_hot = np.eye(4, dtype=np.float32)[[2, 3]]
  np.testing.assert_array_equal(cbn(x, one_hot, training=False).numpy(), hard)
  weights = np.array([[0.25, 0.0, 0.75, 0.0], [0.0, 0.5, 0.0, 0.5]], np.float32)
  x_hat = cbn(x, np.array([0, 0]), training=False).numpy() - cbn.beta.numpy()[0]
  x_hat /= cbn.gamma.numpy()[0]
  gamma, beta = weights @ cbn.gamma.numpy(), weights @ cbn.beta.numpy()
  np.testing.assert_allclose(cbn(x, weights, training=False).numpy(),
                             x_hat * gamma[:, None, None] + beta[:, None, None], rtol=1e-4,
                             atol=1e-5)


def test_moving_statistics_follow_decay_and_are_used_in_inference():
  x = np.arange(8, dtype=np.float32).reshape(2, 2, 2, 1)  # mean 3.5, biased var 5.25
  bn = BatchNorm(decay=0.9, epsilon=0.0)
  bn(x, training=True)
  np.testing.assert_allclose(bn.moving_mean.numpy(), [0.35], rtol=1e-6)
  np.testing.assert_allclose(bn.moving_variance.numpy(), [0.9 + 0.1 * 5.25], rtol=1e-6)
  y = bn(x, training=False).numpy()
  np.testing.assert_allclose(y, (x - 0.35) / np.sqrt(0.9 + 0.525), rtol=1e-5)


def test_updates_land_in_update_ops_collection_in_tf1_graph():
  g = tf.Graph()
  with g.as_default():
    with tf.compat.v1.name_scope("Generator"):
      bn = BatchNorm()
      bn(tf.ones([2, 2, 2, 3]) * 4.0, training=True)
    ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, "Generator")
    assert len(ops) == 2
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(ops)
      np.testing.assert_allclose(sess.run(bn.moving_mean), [0.004] * 3, rtol=1e-5)


def test_moments_are_cross_replica_on_tpu_and_local_elsewhere():
  """Inside a TPU shard context (TPUGANEstimator's replicated step) the batch moments are summed
  over the cores (CrossReplicaSum ops, TF-GAN's cross_replica_moments); with the option off, or
  outside TPU and tf.distribute, they are this replica's own."""
  from tensorflow.python.tpu import tpu_function  # pylint: disable=import-outside-toplevel
  from tfgan_attention.batch_norm import batch_moments  # pylint: disable=import-outside-toplevel

  def op_types(**kwargs):
    graph = tf.Graph()
    with graph.as_default():
      batch_moments(tf.zeros([4, 3, 3, 2]), [0, 1, 2], **kwargs)
    return {op.type for op in graph.get_operations()}

  with tpu_function.tpu_shard_context(8):
    assert "CrossReplicaSum" in op_types()
    assert "CrossReplicaSum" not in op_types(cross_replica=False)
  assert "CrossReplicaSum" not in op_types()
  x = np.random.RandomState(0).randn(6, 2, 2, 3).astype(np.float32)
  mean, var = batch_moments(tf.constant(x), [0, 1, 2])
  np.testing.assert_allclose(mean, x.mean((0, 1, 2)), atol=1e-6)
  np.testing.assert_allclose(var, x.var((0, 1, 2)), atol=1e-5)
