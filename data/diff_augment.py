"""DiffAugment (Zhao et al. 2020) as differentiable TF graph ops, the policies LadaGAN trains with.

Images are [B, H, W, 3] float in [-1, 1] (static H, W), the convention of the official LadaGAN
TF code (its data are (x - 127.5) / 127.5 and its generator's raw output is fed unclipped); the
magnitudes below are in those units. Every draw is per example:

  color        brightness  x + U(-0.5, 0.5)
               saturation  (x - mean_channels) * U(0, 2) + mean_channels
               contrast    (x - mean_image) * U(0.5, 1.5) + mean_image
  translation  shift by integers in [-r, r] per axis, r = int(size / 8 + 0.5); vacated pixels 0
  cutout       zero one int(size / 2 + 0.5) square whose centre is uniform over the image
               (clipped at the borders)

Color can leave [-1, 1]; translation and cutout only move pixels or write 0, so they keep any
range that contains 0. All ops pass gradients to their input (the generator is trained through
them). With `seed` (shape [2] int32/int64 tensor, or a Python int) every draw is stateless and
derived from it, so the same seed gives the same augmentation again (e.g. the discriminator loss
and R1 on the same augmented reals, or replayed on another replica); without it the draws are
TF's stateful random ops.

Per-example draws (`example_draws`, then `diff_augment(..., draws=...)`): row i of a [B, K]
table of uniforms in [0, 1) is a function of (seed, rows[i]) only, so an example is augmented
the same way whichever replica or batch split it lands in (a mirrored or multi-worker run
augments its global batch as one device does). Each op maps its column to its range as TF's
uniform does (minval + u (maxval - minval); integers floor(u n) + minval): the same
per-example distributions as the stateful draws.
"""
from typing import Optional, Sequence, Tuple

import tensorflow as tf

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy) -> Tuple[str, ...]:
  """'color,translation' (or a sequence) -> ('color', 'translation'); '' -> ()."""
  names = policy.split(",") if isinstance(policy, str) else list(policy)
  names = tuple(n.strip() for n in names if n.strip())
  for n in names:
    if n not in POLICIES:
      raise ValueError(f"unknown DiffAugment policy {n!r}; choose from {POLICIES}")
  return names


class _Draws:
  """Per-op uniform draws: stateful, or stateless from sub-seeds of one seed."""

  def __init__(self, seed):
    if seed is not None and isinstance(seed, int):
      seed = tf.constant([seed, 0], tf.int64)
    self.seed = seed
    self.count = 0

  def uniform(self, shape, minval, maxval, dtype=tf.float32):
    self.count += 1
    if self.seed is None:
      return tf.random.uniform(shape, minval, maxval, dtype=dtype)
    sub = tf.random.experimental.stateless_fold_in(self.seed, self.count)
    return tf.random.stateless_uniform(shape, sub, minval, maxval, dtype=dtype)


class _ExampleDraws:
  """The ops' draws taken, in order, from the columns of a [B, K] table of uniforms in [0, 1)
  (`example_draws`): each op's draw has one value per example, shape [B, 1, ...]."""

  def __init__(self, table):
    self.table = tf.convert_to_tensor(table, tf.float32)
    self.count = 0

  def uniform(self, shape, minval, maxval, dtype=tf.float32):
    if self.count >= int(self.table.shape[1]):
      raise ValueError(f"the policy needs more than the {self.table.shape[1]} draws per "
                       "example given; make them with example_draws(seed, rows, policy)")
    u = tf.reshape(self.table[:, self.count], [-1] + [1] * (len(shape) - 1))
    self.count += 1
    if dtype.is_integer:
      n = maxval - minval
      return tf.minimum(tf.cast(tf.floor(u * n), dtype), n - 1) + minval
    return minval + u * (maxval - minval)


def num_draws(policy) -> int:
  """Uniforms per example the policy draws (brightness, saturation, contrast; translation's two
  shifts; cutout's two offsets)."""
  return sum(len(_OPS[name]) if name == "color" else 2 for name in parse_policy(policy))


def example_draws(seed, rows, policy) -> tf.Tensor:
  """[B, num_draws(policy)] uniforms in [0, 1): row i from (seed, rows[i]) only (seed a [2]
  integer tensor, rows [B] int64: each example's index in the run's stream of examples)."""
  count = num_draws(policy)
  seed = tf.cast(seed, tf.int64)
  rows = tf.cast(rows, tf.int64)
  if not count:
    return tf.zeros([tf.shape(rows)[0], 0], tf.float32)
  return tf.map_fn(
      lambda row: tf.random.stateless_uniform(
          [count], tf.random.experimental.stateless_fold_in(seed, row)),
      rows, fn_output_signature=tf.float32)


def _static_hw(x):
  h, w = x.shape[1], x.shape[2]
  if h is None or w is None:
    raise ValueError(f"DiffAugment needs static H and W, got {x.shape}")
  return int(h), int(w)


def brightness(x, draws):
  b = tf.shape(x)[0]
  return x + draws.uniform([b, 1, 1, 1], -0.5, 0.5)


def saturation(x, draws):
  b = tf.shape(x)[0]
  mean = tf.reduce_mean(x, axis=3, keepdims=True)  # [B, H, W, 1]
  return (x - mean) * draws.uniform([b, 1, 1, 1], 0.0, 2.0) + mean


def contrast(x, draws):
  b = tf.shape(x)[0]
  mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)  # [B, 1, 1, 1]
  return (x - mean) * draws.uniform([b, 1, 1, 1], 0.5, 1.5) + mean


def translation(x, draws, ratio=0.125):
  """out[b, i, j] = x[b, i + ty_b, j + tx_b], 0 where that falls outside the image."""
  h, w = _static_hw(x)
  b = tf.shape(x)[0]
  sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  rows = tf.range(h)[None] + draws.uniform([b, 1], -sh, sh + 1, tf.int32)  # [B, H] source rows
  cols = tf.range(w)[None] + draws.uniform([b, 1], -sw, sw + 1, tf.int32)  # [B, W]
  x = tf.gather(x, tf.clip_by_value(rows, 0, h - 1), axis=1, batch_dims=1)
  x = tf.gather(x, tf.clip_by_value(cols, 0, w - 1), axis=2, batch_dims=1)
  inside = lambda t, n: tf.cast((t >= 0) & (t < n), x.dtype)
  return x * inside(rows, h)[:, :, None, None] * inside(cols, w)[:, None, :, None]


def cutout(x, draws, ratio=0.5):
  """Zeroes a ch x cw square centred at a uniform pixel (the official offsets), clipped."""
  h, w = _static_hw(x)
  b = tf.shape(x)[0]
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  top = draws.uniform([b, 1], 0, h + (1 - ch % 2), tf.int32) - ch // 2  # [B, 1]
  left = draws.uniform([b, 1], 0, w + (1 - cw % 2), tf.int32) - cw // 2
  rows, cols = tf.range(h)[None], tf.range(w)[None]
  in_rows = (rows >= top) & (rows < top + ch)  # [B, H]
  in_cols = (cols >= left) & (cols < left + cw)  # [B, W]
  hole = in_rows[:, :, None] & in_cols[:, None, :]  # [B, H, W]
  return x * tf.cast(~hole, x.dtype)[..., None]


_OPS = {"color": (brightness, saturation, contrast), "translation": (translation,),
        "cutout": (cutout,)}


def diff_augment(images: tf.Tensor, policy="color,translation",
                 seed: Optional[object] = None, draws: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Applies the policy's ops in the order given. images [B, H, W, C] -> same shape.

  Args:
    images: float [B, H, W, C] in [-1, 1], static H and W; B may be dynamic.
    policy: comma-separated names from POLICIES (or a sequence); '' returns images unchanged.
    seed: None (stateful draws) or an int / [2] integer tensor for stateless, repeatable draws.
    draws: instead of `seed`, the examples' own uniforms [B, num_draws(policy)]
      (`example_draws`): the augmentation of an example does not depend on its batch.
  """
  names = parse_policy(policy)
  if draws is not None and seed is not None:
    raise ValueError("pass seed or draws, not both")
  draws = _Draws(seed) if draws is None else _ExampleDraws(draws)
  x = images
  for name in names:
    for op in _OPS[name]:
      x = op(x, draws)
  return x


def augment_fn(policy: Sequence[str] = ("color", "translation")):
  """A one-argument augmentation (images -> images) for the given policy, stateful draws."""
  names = parse_policy(policy)
  return lambda images: diff_augment(images, names)
