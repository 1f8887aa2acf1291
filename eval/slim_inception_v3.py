"""Inception-v3 in the layout of tensorflow/models' original `inception/slim`, read from its TF1
checkpoints by variable name: the network StackGAN's evaluation model was fine-tuned from.

This is NOT tf-slim's `nets.inception_v3` (scopes `InceptionV3/Conv2d_1a_3x3/...`): the 2016
`inception/slim/inception_model.py` that hanzhanggit/StackGAN-inception-model ships opens the
model with a name scope only, so its variables carry no model prefix:

  conv0 .. conv4                        stem convolutions (`conv0/weights`, `conv0/BatchNorm/beta`)
  mixed_35x35x256a/branch5x5/Conv_1     inception blocks; unnamed convolutions of a branch are
                                        `Conv`, `Conv_1`, ... in creation order (TF1 default names)
  logits/logits/{weights,biases}        the classifier, [2048, C] and [C]
  aux_logits/...                        the auxiliary head (training only; never on this path)

Every convolution is slim's `ops.conv2d` with `batch_norm_params`: no bias, then batch norm with a
beta and no gamma (`scale=False`), epsilon 0.001, inference statistics (`moving_mean`,
`moving_variance`), then ReLU. Average pools inside blocks are 3x3 stride 1 'SAME' (TF's, which
averages over the valid pixels), the final pool is the whole 8x8 map, dropout is off at eval.

`depth_divisor` divides every width (1: the real network); tests use it to write small checkpoints
with the real variable names.
"""
import dataclasses
from typing import Callable, Dict, Tuple

import numpy as np
import tensorflow as tf

BN_EPSILON = 0.001  # inception_score.py / inception_model.py batch_norm_params
EMA_SUFFIX = "/ExponentialMovingAverage"  # tf.train.ExponentialMovingAverage.average_name
AUX_SCOPE = "aux_logits/"
LOGITS_WEIGHTS, LOGITS_BIASES = "logits/logits/weights", "logits/logits/biases"
# (filters, kernel) of each branch's convolutions, per block kind; 'pool' = 3x3 avg pool first.
_BLOCK_35 = (("branch1x1", ((64, 1),)), ("branch5x5", ((48, 1), (64, 5))),
             ("branch3x3dbl", ((64, 1), (96, 3), (96, 3))))


class CheckpointMismatchError(ValueError):
  """A checkpoint that does not hold this network; the message names the keys and shapes."""


class _Net:
  """Runs the network with `get(name, shape)` supplying each variable (shape: the expected one)."""

  def __init__(self, get: Callable[[str, Tuple[int, ...]], object], depth_divisor: int):
    self.get, self.d = get, depth_divisor

  def conv(self, x, scope, filters, kernel, stride=1, padding="SAME"):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    filters //= self.d
    weights = self.get(f"{scope}/weights", (kh, kw, int(x.shape[-1]), filters))
    y = tf.nn.conv2d(x, weights, stride, padding)
    bn = [self.get(f"{scope}/BatchNorm/{n}", (filters,))
          for n in ("beta", "moving_mean", "moving_variance")]
    y = tf.nn.batch_normalization(y, bn[1], bn[2], bn[0], None, BN_EPSILON)
    return tf.nn.relu(y)

  def branch(self, x, scope, convs):
    """Unnamed slim convolutions in one variable scope: Conv, Conv_1, Conv_2, ..."""
    for i, (filters, kernel) in enumerate(convs):
      name = "Conv" if i == 0 else f"Conv_{i}"
      x = self.conv(x, f"{scope}/{name}", filters, kernel)
    return x

  def pool_branch(self, x, block, filters):
    pooled = tf.nn.avg_pool2d(x, 3, 1, "SAME")
    return self.conv(pooled, f"{block}/branch_pool/Conv", filters, 1)

  def block_35(self, x, block, pool_filters):
    outs = [self.branch(x, f"{block}/{b}", convs) for b, convs in _BLOCK_35]
    return tf.concat(outs + [self.pool_branch(x, block, pool_filters)], 3)

  def block_17(self, x, block, c):
    outs = [self.branch(x, f"{block}/branch1x1", ((192, 1),)),
            self.branch(x, f"{block}/branch7x7", ((c, 1), (c, (1, 7)), (192, (7, 1)))),
            self.branch(x, f"{block}/branch7x7dbl", ((c, 1), (c, (7, 1)), (c, (1, 7)),
                                                     (c, (7, 1)), (192, (1, 7))))]
    return tf.concat(outs + [self.pool_branch(x, block, 192)], 3)

  def block_8(self, x, block):
    branch1x1 = self.branch(x, f"{block}/branch1x1", ((320, 1),))
    b3 = self.conv(x, f"{block}/branch3x3/Conv", 384, 1)
    branch3x3 = tf.concat([self.conv(b3, f"{block}/branch3x3/Conv_1", 384, (1, 3)),
                           self.conv(b3, f"{block}/branch3x3/Conv_2", 384, (3, 1))], 3)
    d = self.branch(x, f"{block}/branch3x3dbl", ((448, 1), (384, 3)))
    branch3x3dbl = tf.concat([self.conv(d, f"{block}/branch3x3dbl/Conv_2", 384, (1, 3)),
                              self.conv(d, f"{block}/branch3x3dbl/Conv_3", 384, (3, 1))], 3)
    return tf.concat([branch1x1, branch3x3, branch3x3dbl, self.pool_branch(x, block, 192)], 3)

  def __call__(self, images, num_classes):
    """images [N, 299, 299, 3] in [-1, 1] -> (logits [N, C], pool [N, 2048 / d])."""
    x = self.conv(images, "conv0", 32, 3, 2, "VALID")  # [N, 149, 149, 32]
    x = self.conv(x, "conv1", 32, 3, 1, "VALID")  # [N, 147, 147, 32]
    x = self.conv(x, "conv2", 64, 3)  # [N, 147, 147, 64]
    x = tf.nn.max_pool2d(x, 3, 2, "VALID")  # pool1 [N, 73, 73, 64]
    x = self.conv(x, "conv3", 80, 1, 1, "VALID")
    x = self.conv(x, "conv4", 192, 3, 1, "VALID")  # [N, 71, 71, 192]
    x = tf.nn.max_pool2d(x, 3, 2, "VALID")  # pool2 [N, 35, 35, 192]
    x = self.block_35(x, "mixed_35x35x256a", 32)
    x = self.block_35(x, "mixed_35x35x288a", 64)
    x = self.block_35(x, "mixed_35x35x288b", 64)  # [N, 35, 35, 288]
    block = "mixed_17x17x768a"
    x = tf.concat([self.conv(x, f"{block}/branch3x3/Conv", 384, 3, 2, "VALID"),
                   self.conv(self.branch(x, f"{block}/branch3x3dbl", ((64, 1), (96, 3))),
                             f"{block}/branch3x3dbl/Conv_2", 96, 3, 2, "VALID"),
                   tf.nn.max_pool2d(x, 3, 2, "VALID")], 3)  # [N, 17, 17, 768]
    for block, c in (("b", 128), ("c", 160), ("d", 160), ("e", 192)):
      x = self.block_17(x, f"mixed_17x17x768{block}", c)
    block = "mixed_17x17x1280a"  # (sic: its output is 8x8x1280; slim kept the scope name)
    x = tf.concat([self.conv(self.conv(x, f"{block}/branch3x3/Conv", 192, 1),
                             f"{block}/branch3x3/Conv_1", 320, 3, 2, "VALID"),
                   self.conv(self.branch(x, f"{block}/branch7x7x3",
                                         ((192, 1), (192, (1, 7)), (192, (7, 1)))),
                             f"{block}/branch7x7x3/Conv_3", 192, 3, 2, "VALID"),
                   tf.nn.max_pool2d(x, 3, 2, "VALID")], 3)  # [N, 8, 8, 1280]
    x = self.block_8(x, "mixed_8x8x2048a")
    x = self.block_8(x, "mixed_8x8x2048b")  # [N, 8, 8, 2048]
    pool = tf.reduce_mean(x, [1, 2])  # logits/pool: avg_pool over the whole map, [N, 2048]
    weights = self.get(LOGITS_WEIGHTS, (int(pool.shape[-1]), num_classes))
    logits = tf.matmul(pool, weights) + self.get(LOGITS_BIASES, (num_classes,))
    return logits, pool


def variable_shapes(num_classes: int, depth_divisor: int = 1) -> Dict[str, Tuple[int, ...]]:
  """{slim variable name: shape} of the evaluation path (no auxiliary head), in creation order."""
  shapes = {}

  def record(name, shape):
    shapes[name] = shape
    return tf.zeros(shape)

  _Net(record, depth_divisor)(tf.zeros([1, 75, 75, 3]), num_classes)  # 75: the smallest input
  return shapes


def forward(variables: Dict[str, object], images, depth_divisor: int = 1):
  """(logits [N, C], pool [N, 2048]) of images [N, 299, 299, 3] in [-1, 1]; `variables` by name."""
  num_classes = int(np.shape(variables[LOGITS_BIASES])[0])

  def get(name, shape):
    value = variables[name]
    if tuple(value.shape) != tuple(shape):
      raise CheckpointMismatchError(f"{name}: shape {tuple(value.shape)}, the network needs "
                                    f"{tuple(shape)}")
    return value

  return _Net(get, depth_divisor)(images, num_classes)


@dataclasses.dataclass(frozen=True)
class LoadReport:
  """Which checkpoint key filled which variable, and every key left unread with the reason."""
  sources: Dict[str, str]   # variable name -> checkpoint key
  unused: Dict[str, str]    # checkpoint key -> why it is not part of the evaluation graph
  num_classes: int


def _why_unused(key: str, averaged: bool, needed) -> str:
  if key == "global_step":
    return "training step counter"
  if key.startswith(AUX_SCOPE):
    return "auxiliary head (training loss only; the evaluation logits do not use it)"
  base = key[:-len(EMA_SUFFIX)] if key.endswith(EMA_SUFFIX) else key
  if averaged and key in needed:
    return ("the training value; StackGAN's inception_score.py restores the moving average "
            "(variables_to_restore of ExponentialMovingAverage(0.9999))")
  if not averaged and key.endswith(EMA_SUFFIX) and base in needed:
    return "moving average (averaged=False reads the training values)"
  if "/" in key and key.rsplit("/", 1)[0] in needed:
    return f"optimizer slot ({key.rsplit('/', 1)[1]})"
  return "not a variable of the evaluation graph"


def load_checkpoint(prefix: str, averaged: bool = True,
                    depth_divisor: int = 1) -> Tuple[Dict[str, np.ndarray], LoadReport]:
  """The evaluation path's variables from a TF1 checkpoint of tensorflow/models' inception/slim.

  averaged: read `<name>/ExponentialMovingAverage` (the moving average of every trainable variable
    and of the BN moving statistics), as StackGAN's inception_score.py restores them; False reads
    the training values `<name>`.
  The class count is the checkpoint's (logits/logits/biases). Raises CheckpointMismatchError
  naming every missing key, or a key whose shape differs with both shapes.
  """
  reader = tf.train.load_checkpoint(prefix)
  stored = reader.get_variable_to_shape_map()
  suffix = EMA_SUFFIX if averaged else ""
  classes_key = LOGITS_BIASES + suffix
  if classes_key not in stored:
    sample = sorted(stored)[:4]
    raise CheckpointMismatchError(
        f"{prefix}: no {classes_key}: not a checkpoint of tensorflow/models' inception/slim "
        f"Inception-v3{' with moving averages' if averaged else ''} (it holds e.g. {sample})")
  (num_classes,) = stored[classes_key]
  expected = variable_shapes(num_classes, depth_divisor)
  missing = [name + suffix for name in expected if name + suffix not in stored]
  if missing:
    raise CheckpointMismatchError(
        f"{prefix} lacks {len(missing)} of the {len(expected)} variables of the evaluation "
        f"graph: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
  wrong = [f"{name + suffix}: checkpoint {tuple(stored[name + suffix])}, network {shape}"
           for name, shape in expected.items() if tuple(stored[name + suffix]) != shape]
  if wrong:
    raise CheckpointMismatchError(f"{prefix}: shapes differ: " + "; ".join(wrong[:8]))
  variables = {name: reader.get_tensor(name + suffix).astype(np.float32) for name in expected}
  sources = {name: name + suffix for name in expected}
  used = set(sources.values())
  unused = {k: _why_unused(k, averaged, expected) for k in sorted(stored) if k not in used}
  return variables, LoadReport(sources, unused, int(num_classes))
