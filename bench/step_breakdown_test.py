"""bench/step_breakdown.py: nodes go to the right bucket by name scope and op type."""
import pytest

from bench import step_breakdown


@pytest.mark.parametrize("name, kind, expected", [
    ("Generator/generator/g_block1/snconv1/Conv2D", "Conv2D", "G forward"),
    ("Discriminator_1/discriminator/d_block2/sn_conv1/Conv2D", "Conv2D", "D forward"),
    ("generator_train/gradients/Discriminator_1/discriminator/d_block2/sn_conv1/Conv2D_grad/"
     "Conv2DBackpropInput", "Conv2DBackpropInput", "D backward"),
    ("generator_train/gradients/Generator/generator/g_block1/snconv1/Conv2D_grad/"
     "Conv2DBackpropFilter", "Conv2DBackpropFilter", "G backward"),
    ("Discriminator/discriminator/d_block2/sn_conv1/spectral_norm/MatMul", "MatMul",
     "spectral norm (power iteration, W / sigma)"),
    ("discriminator_train/gradients/Discriminator/discriminator/d_block2/sn_conv1/spectral_norm/"
     "truediv_grad/Neg", "Neg", "spectral norm backward"),
    ("discriminator_train/discriminator_adam/update_Discriminator/discriminator/d_block2/"
     "sn_conv1/kernel/ResourceApplyAdam", "ResourceApplyAdam", "optimiser updates"),
    ("loss/discriminator", "ScalarSummary", "summaries"),
    ("CheckNumerics", "CheckNumerics", "non-finite guard"),
    ("IteratorGetNext", "IteratorGetNext", "input"),
    ("AssignAddVariableOp", "AssignAddVariableOp", "other"),
])
def test_bucket(name, kind, expected):
  assert step_breakdown.bucket(name, kind) == expected


def test_call_kind_names_tfgan_hooks_and_the_estimator_call():
  class Op:
    def __init__(self, name):
      self.name = name
  assert step_breakdown.call_kind([Op("discriminator_train/train_op")]) == \
      "D update (TF-GAN hook)"
  assert step_breakdown.call_kind([Op("generator_train/train_op")]) == "G update (TF-GAN hook)"
  assert step_breakdown.call_kind({"a": Op("AssignAdd"), "b": Op("loss")}).startswith(
      "estimator step")


@pytest.mark.parametrize("name, expected", [
    ("Generator/generator/g_ops/sn_conv_theta/Conv2D", "Generator/generator/g_ops"),
    ("generator_train/gradients/Discriminator_1/discriminator/d_block2/sn_conv1/Conv2D_grad/"
     "Conv2DBackpropInput", "Discriminator/discriminator/d_block2"),
    ("Generator/generator/MatMul", "Generator/generator"),  # an op right under the model
    ("Discriminator/Relu", "Discriminator"),
    ("global_step/add", ""),
])
def test_layer_is_the_scope_two_levels_under_the_network(name, expected):
  assert step_breakdown.layer(name) == expected


def test_top_tables_keep_the_largest_and_sum_the_rest():
  rows = step_breakdown._top("op type", {"Conv2D": 6.0, "MatMul": 3.0, "Relu": 0.5, "Add": 0.5},
                             10.0, 2)
  assert rows == ["", "| op type | op ms/step | share |", "|---|---:|---:|",
                  "| Conv2D | 6.0 | 60.0% |", "| MatMul | 3.0 | 30.0% |",
                  "| 2 others | 1.0 | 10.0% |"]
  assert len(step_breakdown._top("layer", {"a": 1.0}, 1.0, 8)) == 4  # nothing summed


def test_aggregate_sums_per_bucket_op_type_and_layer_per_traced_step():
  from tensorflow.core.protobuf import config_pb2  # pylint: disable=import-outside-toplevel
  metadata = config_pb2.RunMetadata()
  nodes = metadata.step_stats.dev_stats.add().node_stats
  for name, label, micros in [
      ("Generator/generator/g_ops/MatMul", "g_ops/MatMul = _MklBatchMatMulV2(a, b)", 3000),
      ("gradients/Generator/generator/g_ops/MatMul_grad/MatMul", "x = _MklBatchMatMulV2(c)", 1000),
      ("Discriminator/discriminator/d_1/Conv2D", "y = _MklNativeConv2D(e, f)", 2000),
      ("_SOURCE", "", 500)]:
    node = nodes.add(node_name=name, timeline_label=label, all_end_rel_micros=micros)
    assert node.node_name == name
  ops, runs, kinds, layers = step_breakdown.aggregate([(0, "estimator step", 0.01, metadata)], 2)
  assert ops["G forward"] == 1.5 and ops["G backward"] == 0.5 and ops["D forward"] == 1.0
  assert runs == {"estimator step": (0.5, 5.0)}
  assert kinds == {"BatchMatMulV2": 2.0, "Conv2D": 1.0}
  assert layers == {"Generator/generator/g_ops": 2.0, "Discriminator/discriminator/d_1": 1.0}
