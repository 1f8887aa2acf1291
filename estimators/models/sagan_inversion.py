"""--mode=invert for SAGAN and YLG-SAGAN: attention-guided GAN inversion (YLG paper sec. 5, app. 9).

Given a real image x and its class, find z with G(z) close to x. The paper's method (its
"Solution 1", app. 9.1.1) minimises, over z,

    sum_i || (D0(G(z)) - D0(x)) * S'_i ||^2                                      (YLG eq. 3)

D0 = the discriminator up to, not including, its attention layer (`Discriminator.
attention_features`); S_i = head i's saliency on the REAL image: the attention each key position
receives, averaged over the query positions; S'_i = S_i nearest-resized from the key grid (r/2)
to D0's grid (r): each key was max-pooled from a 2x2 cell of D0's grid and weighs that cell.
Lookahead (Zhang et al. 2019; tensorflow-addons) around Adam, lr 0.05, 1500 steps, 4 restarts
from a truncated normal (+/- 2 std), the restart with the lowest final loss kept (app. 9.1.3,
9.2). Two more methods run in the same call from the same starts with the same optimiser: the
paper's baseline, pixel-space descent on ||G(z) - x||^2 (eq. 1), and the saliency-weighted pixel
loss at G's output, sum_i ||(G(z) - x) * S''_i||^2 (eq. 4, app. 9.4.1, Fig. 11c; S''_i = S_i
nearest-resized from the key grid to G's output), which the paper shows failing.

`--invert_recipe=official` is the authors' ylg/inverse_image.py instead, each difference a
quirk of that script and an option of its own (`RECIPE_VALUES`; an option given explicitly wins
over the recipe): Adam 0.07 without Lookahead (its Lookahead ops run once before the loop
and never again), 1000 steps, 8 restarts, heads 0-3 only (YLG's RTL heads; fewer on a model with
fewer heads), each key's summed attention divided by the number of queries giving it non-zero
weight (masked queries excluded) instead of by all queries, the UN-squared Frobenius norm over
all restarts at once (restarts coupled through its gradient scale), D0(x) and the saliency
recomputed at every step (graph tensors of the real image, re-run by every session call), D's
spectral-norm u vectors refreshed by every D call (snconv2d's training=True), the printed loss's
pass before each update included, and the whole image resized bilinearly without a centre crop.
The script optimises eq. 3 only; eqs. 1 and 4 under its settings are this project's
extrapolation (labelled so in inversion.json). The script writes every restart; here the best by
loss is kept as in the paper, and every restart is written too.

Outside u updates no spectral-norm u vector of G or D changes (both run in inference
mode, D without a run's --sn_update_in_eval quirk); G's batch norm runs as the model's
--bn_inference says (with 'batch', restarts optimised together share statistics, as in the
official script's batch of 8).

This module holds the options, the objectives and the descent; running it on a run directory
(--mode=invert: restoring the networks, the outputs) is estimators/models/sagan_inversion_mode.py.
"""
import dataclasses
import math
import os
import re
from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf

from estimators.model_registry import POSITIVE, UNIT_INTERVAL, hparam

RECIPES = ("paper", "official")
NORMALISATIONS = ("mean", "nonzero")  # saliency: / all queries (paper) or / non-zero entries
NORMS = ("squared", "unsquared")  # per restart, squared (paper) or one un-squared norm (official)
PREPROCESSING = ("central_square", "resize_whole")  # project (TF-GAN) or official
# Each method: (the YLG equation, what it compares). Eq. 1 at G's output, eq. 3 in D0's space
# weighted by each head's saliency S'_i, eq. 4 at G's output weighted by S''_i (paper app. 9.4.1).
METHODS = {"attention": "3", "pixel": "1", "weighted_pixel": "4"}
ADAM_EPSILON = 1e-8  # tf.compat.v1.train.AdamOptimizer's, which the official script uses
RESULT_FILE = "inversion.json"
# --invert_image=digits:SPLIT:K: image K of the embedded digits' SPLIT (data/digits.py: 'test' is
# the 360 held-out images no run trains on), upsampled as the digits loader does, its class the
# default --invert_label.
DIGITS_IMAGE = re.compile(r"^digits:(train|test|all):(\d+)$")


class InversionInputError(ValueError):
  """An input --mode=invert cannot use (the image, the class, the heads, the model)."""


def _none_or(check):
  return (lambda v: v is None or check[0](v), check[1])


def _one_of(values):
  return (lambda v: v in values, f"must be one of {', '.join(values)}")


def _heads_ok(text):
  try:
    parse_heads(text)
  except ValueError:
    return False
  return True


@dataclasses.dataclass(frozen=True)
class InversionOptions:
  """--mode=invert's flags. None: the recipe's value (the paper's, or the official script's)."""
  invert_image: str = hparam("", "--mode=invert: the real image to invert (JPEG or PNG, any "
                             "size; central square, resized to --image_size as TF-GAN's "
                             "ImageNet pipeline does), or digits:SPLIT:K, image K of the "
                             "embedded digits SPLIT (train, test, all), its class the default "
                             "--invert_label.",
                             check=(lambda v: bool(v) and ("://" in v or os.path.isfile(v)
                                                          or bool(DIGITS_IMAGE.match(v))),
                                    "must name an existing JPEG or PNG file or "
                                    "digits:SPLIT:K"))
  invert_label: int = hparam(None, "--mode=invert: the image's class (class-conditional runs).",
                             check=_none_or((lambda v: v >= 0, "must be >= 0")))
  invert_recipe: str = hparam(
      "paper", "--mode=invert: 'paper' (YLG sec. 5 / app. 9: sum over all heads of squared "
      "saliency-weighted D0 distances, Lookahead+Adam 0.05, 1500 steps, 4 restarts) or "
      "'official' (ylg/inverse_image.py: Adam 0.07 without Lookahead, 1000 steps, 8 restarts, "
      "heads 0-3, non-zero-count saliency, un-squared norm over all restarts, D0(x) and the "
      "saliency recomputed at every step, D's spectral-norm vectors updated by every D call, "
      "the whole image resized bilinearly). Each part is also an --invert_* option, which wins "
      "when given.", choices=RECIPES)
  invert_lr: float = hparam(None, "--mode=invert: Adam learning rate (paper 0.05, official "
                            "0.07).", check=_none_or(POSITIVE))
  invert_steps: int = hparam(None, "--mode=invert: descent steps (paper 1500, official 1000).",
                             check=_none_or(POSITIVE))
  invert_restarts: int = hparam(None, "--mode=invert: latents optimised from different starts, "
                                "the best by loss kept (paper 4, official 8).",
                                check=_none_or(POSITIVE))
  invert_heads: str = hparam("", "--mode=invert: comma-separated attention heads whose "
                             "saliency-weighted losses are summed ('': paper all, official 0-3).",
                             check=(_heads_ok, "must be comma-separated head indices >= 0"))
  invert_lookahead: bool = hparam(None, "--mode=invert: Lookahead around Adam (paper app. "
                                  "9.1.3) or plain Adam (--noinvert_lookahead: official, whose "
                                  "Lookahead ops run once before the loop, inverse_image.py:161-"
                                  "162). Unset: the recipe's.")
  invert_saliency: str = hparam(None, "--mode=invert: a key's saliency = its summed attention / "
                                "'mean' all queries (paper sec. 5) or / 'nonzero' the queries "
                                "giving it weight (official inverse_image.py:60-61). Unset: the "
                                "recipe's.", check=_none_or(_one_of(NORMALISATIONS)))
  invert_norm: str = hparam(None, "--mode=invert: 'squared' norm per restart (paper eqs. 1, 3, "
                            "4) or 'unsquared' Frobenius norm over all restarts in one tensor "
                            "(official inverse_image.py:72, tf.norm). Unset: the recipe's.",
                            check=_none_or(_one_of(NORMS)))
  invert_sn_update: bool = hparam(None, "--mode=invert: D's spectral-norm u vectors refreshed by "
                                  "every D call, the printed loss's pass included (official: "
                                  "snconv2d's default training=True, ylg/ops.py:22) or fixed "
                                  "(paper). Unset: the recipe's.")
  invert_real_every_step: bool = hparam(None, "--mode=invert: D0(x) and the saliency recomputed "
                                        "at every step (official: graph tensors of the real "
                                        "image, inverse_image.py:154,165) or once (paper). "
                                        "Unset: the recipe's.")
  invert_preprocess: str = hparam(None, "--mode=invert: 'central_square' (TF-GAN's ImageNet "
                                  "pipeline: central square, resized; this project's choice, "
                                  "the paper says nothing) or 'resize_whole' (bilinear resize "
                                  "of the whole image, no crop: official inverse_image.py:145-"
                                  "146). Unset: the recipe's.",
                                  check=_none_or(_one_of(PREPROCESSING)))
  invert_lookahead_k: int = hparam(5, "--mode=invert: Lookahead sync period k (Lookahead paper "
                                   "and the YLG script: 5).", check=POSITIVE)
  invert_lookahead_alpha: float = hparam(0.5, "--mode=invert: Lookahead slow step size alpha "
                                         "(0.5).", check=UNIT_INTERVAL)


def parse_heads(text) -> Optional[Tuple[int, ...]]:
  """'0,1,2' -> (0, 1, 2); '' -> None (the recipe's)."""
  text = (text or "").strip()
  if not text:
    return None
  heads = tuple(int(h) for h in text.split(","))
  if any(h < 0 for h in heads) or len(set(heads)) != len(heads):
    raise ValueError(f"heads must be distinct indices >= 0, got {text!r}")
  return heads


@dataclasses.dataclass(frozen=True)
class InversionSettings:
  """What one inversion does, every choice resolved (written to inversion.json)."""
  recipe: str
  lr: float
  steps: int
  restarts: int
  heads: Tuple[int, ...]
  lookahead: bool  # Lookahead around Adam (paper) or plain Adam (official)
  lookahead_k: int
  lookahead_alpha: float
  saliency_normalisation: str  # "mean" (paper) or "nonzero" (official)
  squared: bool  # squared norm per restart (paper) or un-squared over all restarts (official)
  update_sn: bool  # refresh D's spectral-norm u vectors at every D call (official only)
  real_every_step: bool = False  # D0(x) and the saliency recomputed at every step (official)
  preprocess: str = "central_square"  # or "resize_whole" (official)


# The recipes' values of each option left unset: (paper, official ylg/inverse_image.py).
RECIPE_VALUES = {
    "invert_lr": (0.05, 0.07),  # app. 9.1.3; inverse_image.py:16
    "invert_steps": (1500, 1000),  # app. 9.1.3; inverse_image.py:15
    "invert_restarts": (4, 8),  # app. 9.1.3 ("at most 4 seeds"); inverse_image.py:12 (bs)
    "invert_lookahead": (True, False),  # app. 9.1.3; inverse_image.py:161-162 (ops run once)
    "invert_saliency": ("mean", "nonzero"),  # sec. 5; inverse_image.py:60-61
    "invert_norm": ("squared", "unsquared"),  # eqs. 1, 3, 4; inverse_image.py:49, 72
    "invert_sn_update": (False, True),  # (inference); ylg/ops.py:22 snconv2d training=True
    "invert_real_every_step": (False, True),  # (S from x, once); inverse_image.py:154, 165
    "invert_preprocess": ("central_square", "resize_whole"),  # (TF-GAN); inverse_image.py:145
}


def resolve_settings(options: InversionOptions, num_heads: int) -> InversionSettings:
  """The recipe's values under the options given (an option set explicitly wins); heads
  checked against the model's."""
  paper = options.invert_recipe == "paper"
  heads = parse_heads(options.invert_heads)
  if heads is None:
    heads = tuple(range(num_heads)) if paper else tuple(h for h in range(4) if h < num_heads)
  bad = [h for h in heads if h >= num_heads]
  if bad:
    raise InversionInputError(f"--invert_heads={options.invert_heads}: the model's attention "
                              f"has {num_heads} head(s) (0..{num_heads - 1}); {bad} do not exist")

  def pick(name):
    value = getattr(options, name)
    return value if value is not None else RECIPE_VALUES[name][0 if paper else 1]
  return InversionSettings(
      recipe=options.invert_recipe, lr=pick("invert_lr"), steps=pick("invert_steps"),
      restarts=pick("invert_restarts"), heads=heads, lookahead=pick("invert_lookahead"),
      lookahead_k=options.invert_lookahead_k, lookahead_alpha=options.invert_lookahead_alpha,
      saliency_normalisation=pick("invert_saliency"),
      squared=pick("invert_norm") == "squared", update_sn=pick("invert_sn_update"),
      real_every_step=pick("invert_real_every_step"), preprocess=pick("invert_preprocess"))


# --- the real image ------------------------------------------------------------------------------
def digits_image(text, size):
  """'digits:SPLIT:K' -> (image K of the digits SPLIT as the digits loader gives it at `size`:
  float32 [size, size, 3] in [-1, 1], its class), or None for any other text."""
  match = DIGITS_IMAGE.match(text or "")
  if not match:
    return None
  from data import digits  # pylint: disable=import-outside-toplevel
  images8, labels = digits.digits_source(match.group(1))
  k = int(match.group(2))
  if k >= len(labels):
    raise InversionInputError(f"--invert_image={text}: the digits {match.group(1)} split has "
                              f"{len(labels)} images (0..{len(labels) - 1})")
  return digits.upsample_to_rgb(images8[k:k + 1], size)[0].astype(np.float32), int(labels[k])


def read_image(path, size, preprocess="central_square") -> np.ndarray:
  """A JPEG or PNG file -> float32 [size, size, 3] in [-1, 1]. 'central_square': the central
  square, resized as TF-GAN's ImageNet pipeline (data.image_ops 'tfgan'), x * 2/255 - 1.
  'resize_whole' (official inverse_image.py:145-146): x * 2/255 - 1 of the whole image, resized
  bilinearly (tf.image.resize's default) to size x size, the aspect ratio not kept. PNGs with
  16 bits or an alpha channel are read as 8-bit RGB."""
  from data import image_ops  # pylint: disable=import-outside-toplevel
  if preprocess not in PREPROCESSING:
    raise ValueError(f"preprocess must be one of {PREPROCESSING}, got {preprocess!r}")
  if not path:
    raise InversionInputError("--mode=invert needs --invert_image=FILE (a JPEG or PNG)")
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f"--invert_image={path} does not exist")
  data = tf.io.gfile.GFile(path, "rb").read()
  if not (data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n"):
    raise InversionInputError(f"--invert_image={path} is neither a JPEG nor a PNG (by its "
                              "first bytes)")
  window = image_ops.central_square if preprocess == "central_square" else image_ops.whole_image
  try:
    image = image_ops.decode_window(tf.constant(data), window)  # uint8 [h, w, 3]
  except tf.errors.OpError as e:
    raise InversionInputError(f"--invert_image={path} cannot be decoded: {e.message}") from e
  if preprocess == "resize_whole":
    signed = tf.cast(image, tf.float32) * (2.0 / 255.0) - 1.0
    return tf.image.resize(signed, (size, size), method="bilinear").numpy().astype(np.float32)
  image = image_ops.resize_square(image, size, method="tfgan")
  return (image.numpy() * (2.0 / 255.0) - 1.0).astype(np.float32)


# --- saliency ------------------------------------------------------------------------------------
def dense_attention(attention, num_keys):
  """A layer's attention as dense [B, heads, Nq, Nk] (sparse YLG's CompactAttention densified)."""
  if hasattr(attention, "key_index"):
    from tfgan_attention import densify_attention  # pylint: disable=import-outside-toplevel
    return densify_attention(attention, num_keys)
  return tf.convert_to_tensor(attention)


def saliency(attention, normalisation="mean"):
  """Per-head saliency [B, heads, Nk] of dense attention [B, heads, Nq, Nk]: the weight each key
  receives summed over queries, divided by Nq ('mean', YLG sec. 5) or by the number of queries
  giving it non-zero weight ('nonzero', ylg/inverse_image.py get_saliency; 0 where none do)."""
  if normalisation not in NORMALISATIONS:
    raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
  attention = tf.convert_to_tensor(attention, tf.float32)
  total = tf.reduce_sum(attention, axis=2)  # [B, heads, Nk]
  if normalisation == "mean":
    return total / tf.cast(tf.shape(attention)[2], tf.float32)
  count = tf.cast(tf.math.count_nonzero(attention, axis=2), tf.float32)
  return tf.math.divide_no_nan(total, count)


def saliency_on_grid(sal, side, key_side=None):
  """[B, heads, Nk] over the key grid (key_side^2; default side/2, D0's grid pooled 2x2) ->
  [B, heads, side, side]: each key's weight on the cell of the grid it covers (nearest resize,
  as the official script's S' (inverse_image.py:63); for eq. 4's S'' at G's output likewise)."""
  key_side = key_side or side // 2
  if side % key_side:
    raise ValueError(f"a {side}x{side} grid is not a whole multiple of the {key_side}x{key_side} "
                     "key grid")
  sal = tf.convert_to_tensor(sal)
  tf.debugging.assert_equal(tf.shape(sal)[-1], key_side * key_side,
                            message="saliency keys do not match the key grid")
  grid = tf.reshape(sal, tf.concat([tf.shape(sal)[:-1], [key_side, key_side]], 0))
  factor = side // key_side
  return tf.repeat(tf.repeat(grid, factor, axis=-2), factor, axis=-1)


def real_reference(d0_attention: Callable, target, settings: InversionSettings):
  """reference(training) -> (D0(x) [1, r, r, C], S'_i [heads, r, r] of the chosen heads, S_i
  [heads, Nk] on the key grid): what the losses compare with, from the real image x [1, S, S, 3].
  d0_attention(images, training) -> (D0 features, the attention layer's attention)."""
  target = tf.constant(np.asarray(target, np.float32))
  heads = list(settings.heads)

  def reference(training):
    features, attention = d0_attention(target, training)
    side = int(features.shape[1])
    attention = dense_attention(attention, (side // 2) ** 2)  # [1, heads, Nq, Nk]
    sal = tf.gather(saliency(attention, settings.saliency_normalisation)[0], heads)  # [h, Nk]
    return features, saliency_on_grid(sal, side), sal
  return reference


# --- losses --------------------------------------------------------------------------------------
def attention_losses(fake, real, weights, squared):
  """(per-restart losses [R], total) of D0 features fake [R, r, r, C] vs real [1, r, r, C],
  weights [heads, r, r] (the chosen heads' S').

  squared (paper eq. 3): restart j's loss sum_i ||(fake_j - real) * S'_i||^2; total = their sum
  (the restarts are independent). Un-squared (official): restart j's loss sum_i ||...||_F, and
  total = sum_i ||(fake - real) * S'_i||_F over all restarts in one norm.
  """
  diff = fake - real  # [R, r, r, C]
  weighted = diff[:, None] * weights[None, :, :, :, None]  # [R, heads, r, r, C]
  per_head = tf.reduce_sum(tf.square(weighted), axis=[2, 3, 4])  # [R, heads]
  if squared:
    per_restart = tf.reduce_sum(per_head, axis=1)
    return per_restart, tf.reduce_sum(per_restart)
  per_restart = tf.reduce_sum(tf.sqrt(per_head), axis=1)
  return per_restart, tf.reduce_sum(tf.sqrt(tf.reduce_sum(per_head, axis=0)))


def pixel_losses(images, target, squared):
  """(per-restart [R], total): ||G(z_j) - x||^2 summed (eq. 1), or the official script's
  un-squared norm (per restart; total over all restarts at once)."""
  per = tf.reduce_sum(tf.square(images - target), axis=[1, 2, 3])  # [R]
  if squared:
    return per, tf.reduce_sum(per)
  return tf.sqrt(per), tf.sqrt(tf.reduce_sum(per))


def pixel_distance(images, target):
  """Root-mean-square pixel distance [R] in [-1, 1] units (for the logs of both methods)."""
  return tf.sqrt(tf.reduce_mean(tf.square(images - target), axis=[1, 2, 3]))


# --- descent -------------------------------------------------------------------------------------
def truncated_starts(restarts, z_dim, seed):
  """[restarts, z_dim] from N(0, 1) truncated at 2 std (tf.random.truncated_normal's; app. 9.2)."""
  return tf.random.stateless_truncated_normal([restarts, z_dim], seed=[seed, 0x1471]).numpy()


def make_optimizer(settings: InversionSettings):
  """Adam (the legacy Keras one tfa.Lookahead wraps), in Lookahead when the recipe says."""
  adam = tf.keras.optimizers.legacy.Adam(settings.lr, epsilon=ADAM_EPSILON)
  if not settings.lookahead:
    return adam
  import tensorflow_addons as tfa  # pylint: disable=import-outside-toplevel
  return tfa.optimizers.Lookahead(adam, sync_period=settings.lookahead_k,
                                  slow_step_size=settings.lookahead_alpha)


class LatentDescent:
  """Gradient descent on latents z [R, z_dim] of `loss_fn(z) -> (per-restart [R], total,
  pixel rms [R])`. `step()` applies one update and returns the losses at z before it."""

  def __init__(self, loss_fn: Callable, z0, settings: InversionSettings):
    self.z = tf.Variable(np.asarray(z0, np.float32), name="inversion_z")
    self.optimizer = make_optimizer(settings)
    self._loss_fn = loss_fn

    @tf.function
    def step():
      if settings.update_sn:
        # The official loop prints the loss (inverse_image.py:171-172) before each update: one
        # more pass of D, whose u vectors advance; the printed values are the ones logged.
        logged = loss_fn(self.z)
      with tf.GradientTape() as tape:
        per, total, rms = loss_fn(self.z)
      grad = tape.gradient(total, self.z)
      self.optimizer.apply_gradients([(grad, self.z)])
      return logged if settings.update_sn else (per, total, rms)
    self._step = step

  def step(self):
    per, _, rms = self._step()
    return per.numpy(), rms.numpy()

  def evaluate(self):
    per, _, rms = self._loss_fn(self.z)  # once, eagerly: no second trace
    return per.numpy(), rms.numpy()

  def slow_weights(self):
    """Lookahead's slow copy of z (None without Lookahead, or before the first step)."""
    if not hasattr(self.optimizer, "get_slot") or "slow" not in self.optimizer.get_slot_names():
      return None
    try:
      return self.optimizer.get_slot(self.z, "slow").numpy()
    except KeyError:
      return None


def descend(loss_fn, z0, settings: InversionSettings, track=None):
  """Runs settings.steps updates from z0 (`track(range)` may wrap the step loop: progress).
  Returns a dict: per-step losses [steps][R] and pixel rms, final losses [R] at the final z,
  the final z, the best restart by final loss."""
  descent = LatentDescent(loss_fn, z0, settings)
  losses, rms_log = [], []
  steps = range(settings.steps)
  for _ in (track(steps) if track else steps):
    per, rms = descent.step()
    losses.append(per)
    rms_log.append(rms)
  final, final_rms = descent.evaluate()
  return {"losses": np.array(losses), "pixel_rms": np.array(rms_log), "final_losses": final,
          "final_pixel_rms": final_rms, "z": descent.z.numpy(),
          "best": int(np.argmin(final))}


def _fixed_or_every_step(reference, settings):
  """reference() for the loss: computed once here (frozen u), or at every call (official)."""
  if settings.real_every_step:
    return lambda: reference(settings.update_sn)
  once = tuple(tf.stop_gradient(t) for t in reference(False))
  return lambda: once


def attention_loss_fn(generate: Callable, d0: Callable, target, reference: Callable,
                      settings: InversionSettings):
  """loss_fn(z) of the attention-guided method, eq. 3 (for `descend`).

  generate(z [R, z]) -> images [R, S, S, 3]; d0(images, training) -> D0 features [R, r, r, C]
  (training refreshes spectral-norm vectors: settings.update_sn); target [1, S, S, 3] in
  [-1, 1]; reference: `real_reference`'s, D0(x) and S' from x once or at every step.
  """
  target = tf.constant(np.asarray(target, np.float32))
  real_side = _fixed_or_every_step(reference, settings)

  def loss(z):
    real, weights, _ = real_side()  # D0(x) first, as the script's graph (no order guaranteed)
    images = generate(z)
    per, total = attention_losses(d0(images, settings.update_sn), real, weights,
                                  settings.squared)
    return per, total, pixel_distance(images, target)
  return loss


def pixel_loss_fn(generate: Callable, target, settings: InversionSettings):
  """loss_fn(z) of the paper's baseline, pixel-space descent (eq. 1)."""
  target = tf.constant(np.asarray(target, np.float32))

  def loss(z):
    images = generate(z)
    per, total = pixel_losses(images, target, settings.squared)
    return per, total, pixel_distance(images, target)
  return loss


def weighted_pixel_loss_fn(generate: Callable, target, reference: Callable,
                           settings: InversionSettings):
  """loss_fn(z) of eq. 4 (paper app. 9.4.1, Fig. 11c): sum_i ||(G(z) - x) * S''_i||^2, S''_i
  head i's saliency nearest-resized from the key grid to G's output (as S' to D0's grid)."""
  target = tf.constant(np.asarray(target, np.float32))
  size = int(target.shape[1])
  real_side = _fixed_or_every_step(reference, settings)

  def loss(z):
    _, weights, sal = real_side()
    on_image = saliency_on_grid(sal, size, math.isqrt(int(sal.shape[-1])))  # [heads, S, S]
    images = generate(z)
    per, total = attention_losses(images, target, on_image, settings.squared)
    return per, total, pixel_distance(images, target)
  return loss


def invert(generate: Callable, d0: Callable, target, reference: Callable, z0,
           settings: InversionSettings, track=None):
  """The three methods from the same starts z0 [R, z_dim] with the same optimiser; target
  [S, S, 3] in [-1, 1], reference as `real_reference`'s; track(method, range) may wrap each
  step loop. Returns {method: descend(...)} for METHODS."""
  target = np.asarray(target, np.float32)[None]  # [1, S, S, 3]
  wrap = (lambda name: (lambda steps: track(name, steps))) if track else (lambda name: None)
  loss_fns = {"attention": attention_loss_fn(generate, d0, target, reference, settings),
              "pixel": pixel_loss_fn(generate, target, settings),
              "weighted_pixel": weighted_pixel_loss_fn(generate, target, reference, settings)}
  return {name: descend(fn, z0, settings, wrap(name)) for name, fn in loss_fns.items()}


def image_scores(images, target):
  """(PSNR [R], SSIM [R]) of images [R, S, S, 3] against target [S, S, 3], both in [-1, 1],
  measured on [0, 1] pixels (SSIM's window shrinks to the image below 11 px)."""
  a = (np.asarray(images, np.float32) + 1.0) / 2.0
  b = np.broadcast_to((np.asarray(target, np.float32) + 1.0) / 2.0, a.shape)
  psnr = tf.image.psnr(a, b, max_val=1.0).numpy()
  ssim = tf.image.ssim(a, b, max_val=1.0, filter_size=min(11, a.shape[1])).numpy()
  return psnr, ssim
