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
