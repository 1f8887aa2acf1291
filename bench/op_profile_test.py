"""bench/op_profile.py: reading tf.profiler's trace into per-node times, and the buckets of both
naming schemes (our estimator graph's, Keras eager's)."""
import pytest
import tensorflow as tf

from bench import op_profile


@pytest.mark.parametrize("node, bucket", [
    ("Generator_1/generator/block_8/attention/MatMul", "G forward"),
    ("generator/sm_ladaformer_2/sequential_3/dense_20/MatMul", "G forward"),
    ("generator_train/gradients/Generator_1/generator/lee_8/conv/Conv2DBackpropFilter",
     "G backward"),
    ("gradient_tape/generator/sm_ladaformer/dense/MatMul", "G backward"),
    ("generator_train/gradients/Discriminator_2/discriminator/head_conv/Conv2DBackpropInput",
     "D backward"),
    ("gradient_tape/gradient_tape/discriminator/conv2d_7/Conv2D_1/Conv2D", "D backward"),
    ("Discriminator/discriminator/down_0/main_conv1/Conv2D", "D forward"),
    ("discriminator_train/discriminator_adam/update_Discriminator/stem_conv/kernel/"
     "ResourceApplyAdam", "optimiser and EMA updates"),
    ("Adam/Adam/AssignAddVariableOp", "optimiser and EMA updates"),
    ("DiffAugment/GatherV2", "other (augment, losses, EMA, control)"),
])
def test_nodes_fall_in_their_network_and_direction(node, bucket):
  assert op_profile.classify(node) == bucket


def test_summary_is_per_step_and_largest_first():
  times = [("Generator/a/MatMul", "MatMul", 3000.0), ("Discriminator/b/Conv2D", "Conv2D", 5000.0),
           ("gradients/Discriminator/b/Conv2D_grad", "Conv2DBackpropInput", 1000.0),
           ("Generator/c/MatMul", "MatMul", 3000.0)]
  kinds, buckets, total = op_profile.summarise(times, steps=2)
  assert list(kinds.items()) == [("MatMul", 3.0), ("Conv2D", 2.5), ("Conv2DBackpropInput", 0.5)]
  assert buckets == {"G forward": 3.0, "D forward": 2.5, "D backward": 0.5}
  assert total == pytest.approx(6.0)


def test_a_profiled_function_gives_its_nodes_and_op_types(tmp_path):
  v = tf.Variable(tf.ones([32, 32]))

  @tf.function
  def step(x):
    with tf.GradientTape() as tape:
      y = tf.reduce_sum(tf.nn.relu(tf.matmul(x, v)))
    v.assign_sub(0.1 * tape.gradient(y, v))

  step(tf.ones([32, 32]))  # traced outside the profile
  with op_profile.profiled(str(tmp_path)):
    step(tf.ones([32, 32]))
  times = op_profile.op_times(str(tmp_path), detail=True)
  kinds = {kind for _, kind, *_ in times}
  assert {"MatMul", "Relu", "ReluGrad", "AssignSubVariableOp"} <= kinds
  assert all(us >= 0 and len(t) == 5 for t in times for us in [t[2]])
  with pytest.raises(RuntimeError, match="no profiler trace"):
    op_profile.op_times(str(tmp_path / "empty"))
