"""The shared train op's ordering of a step's sub-steps, on toy networks (any model's).

D first with fresh fakes, the G sub-step's generator forward runs outside the dependency on D's
update when it touches nothing D's update does (issue #27): G's loss and update still read D's
updated weights."""
import numpy as np
import pytest
import tensorflow as tf

from estimators.engines import model_pieces, train_op
from estimators.engines.training_step import TrainingStep

LR = 0.1
NOISE = np.array([[1.0, 2.0], [0.5, -1.0], [-2.0, 0.25], [1.5, 1.0]], np.float32)
G_NOISE = np.array([[0.5, 1.0], [2.0, -0.5], [1.0, 1.0], [-1.0, 0.75]], np.float32)
REALS = np.arange(12, dtype=np.float32).reshape(4, 3) / 10.0
W0 = np.full([2, 3], 0.5, np.float32)
V0 = np.full([3, 1], 0.1, np.float32)


def _pieces(g_batch_norm=False, g_reads=None, d_writes=None):
  """Linear G (noise @ w) and D (x @ v), D's loss mean D(G(z)) - mean D(x), G's -mean D(G(z)).
  g_batch_norm: G's forward creates a moving-mean update op; g_reads / d_writes: a variable
  G's forward reads / D's forward updates (an update op of D's scope)."""
  def variable(name, value, trainable=True):
    return tf.compat.v1.get_variable(name, initializer=tf.constant(value), trainable=trainable)

  def generator_fn(features, mode):
    out = tf.matmul(features["noise"], variable("w", W0))
    if g_batch_norm and mode == tf.estimator.ModeKeys.TRAIN:
      moving = variable("moving_mean", np.zeros([3], np.float32), trainable=False)
      tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS, moving.assign_sub(
          (moving - tf.reduce_mean(out, 0)) * 0.5, read_value=False))
    if g_reads is not None:
      out += 0.0 * g_reads
    return {"images": out}

  def discriminator_fn(data, generator_inputs, mode):
    if d_writes is not None:
      tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS,
                                     d_writes.assign_add(1.0, read_value=False))
    return tf.matmul(data["images"], variable("v", V0))

  def model_loss(which, gan_model):
    fake = tf.reduce_mean(gan_model.discriminator_gen_outputs)
    if which == "generator":
      return -fake, {}
    return fake - tf.reduce_mean(gan_model.discriminator_real_outputs), {}
  return model_pieces.GANPieces(generator_fn, discriminator_fn, model_loss, None, None, None)


def _step(order="discriminator_first", bn_updates="generator_step"):
  return TrainingStep(step_order=order, step_fakes="fresh", adam_epsilon=1e-8,
                      adam_epsilon_form="tf", generator_bn_updates=bn_updates,
                      ema_variables="trainable", bn_moving_variance="biased")


def _build(pieces, step):
  inputs = {"noise": tf.constant(NOISE), "g_noise": tf.constant(G_NOISE)}
  sgd = tf.compat.v1.train.GradientDescentOptimizer
  return train_op.step_train_op(pieces, step, {"images": tf.constant(REALS)}, inputs,
                                sgd(LR), sgd(LR))


def _depends_on(op, target):
  return any(a is target for a in train_op._ancestors([op]))  # pylint: disable=protected-access


def _graph_facts():
  """(D's apply op, G's apply op, the G sub-step's generator forward (its matmul), the G
  sub-step's D call on its fakes) of the default graph's step."""
  graph = tf.compat.v1.get_default_graph()
  applies = {op.inputs[0].op.name.split("/")[0]: op for op in graph.get_operations()
             if op.type == "ResourceApplyGradientDescent"}
  return (applies["Discriminator"], applies["Generator"],
          graph.get_operation_by_name("Generator_1/MatMul"),
          graph.get_operation_by_name("Discriminator_2/MatMul"))


@pytest.mark.parametrize("case, overlaps", [
    (dict(), True),
    (dict(g_batch_norm=True), True),  # G's BN updates in G's sub-step only: D never runs them
    (dict(g_batch_norm=True, bn_updates="both_steps"), False),  # D's update ran the same ones
    (dict(shared="g_reads_d_writes"), False),  # G's forward reads what D's update writes
])
def test_g_forward_of_a_d_first_step_waits_for_d_update_only_when_it_must(case, overlaps):
  case = dict(case)
  bn_updates = case.pop("bn_updates", "generator_step")
  with tf.Graph().as_default():
    if case.pop("shared", None):
      counter = tf.Variable(0.0, trainable=False, name="counter")
      case.update(g_reads=counter, d_writes=counter)
    _build(_pieces(**case), _step(bn_updates=bn_updates))
    d_apply, g_apply, g_forward, g_step_d_call = _graph_facts()
    assert _depends_on(g_forward, d_apply) != overlaps
    assert _depends_on(g_step_d_call, d_apply) and _depends_on(g_apply, d_apply)
    assert not _depends_on(d_apply, g_apply)


def test_g_first_step_keeps_d_sub_step_after_g_update():
  with tf.Graph().as_default():
    _build(_pieces(), _step(order="generator_first"))
    graph = tf.compat.v1.get_default_graph()
    applies = {op.inputs[0].op.name.split("/")[0]: op for op in graph.get_operations()
               if op.type == "ResourceApplyGradientDescent"}
    d_forward = graph.get_operation_by_name("Generator_1/MatMul")  # the D sub-step's fakes
    assert _depends_on(d_forward, applies["Generator"])
    assert _depends_on(applies["Discriminator"], applies["Generator"])


def test_overlapped_step_computes_d_then_g_on_the_updated_d():
  """One D-first step with the G forward overlapped: D's SGD step on its draw, then G's
  against the updated D on the other draw, and G's moving mean from its own forward only."""
  with tf.Graph().as_default():
    step, _ = _build(_pieces(g_batch_norm=True), _step())
    variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(step)
      got = sess.run({k: variables[k] for k in ("Generator/w", "Discriminator/v",
                                                 "Generator/moving_mean")})
  fake = NOISE @ W0
  v1 = V0 - LR * (fake.mean(0) - REALS.mean(0))[:, None]
  w1 = W0 + LR * G_NOISE.mean(0)[:, None] @ v1.T  # d(-mean(z w v1))/dw = -mean(z) v1^T
  np.testing.assert_allclose(got["Discriminator/v"], v1, rtol=1e-6)
  np.testing.assert_allclose(got["Generator/w"], w1, rtol=1e-6)
  np.testing.assert_allclose(got["Generator/moving_mean"], 0.5 * (G_NOISE @ W0).mean(0),
                             rtol=1e-6)
