"""LadaGAN (Morales-Juarez & Fuentes-Pineda 2024): hyperparameters, inputs, losses, summaries,
serving and attention maps of an unconditional Ladaformer GAN.

Networks: estimators/models/ladagan_networks.py (architecture per image size: the released
CIFAR-10 / CelebA-64 / FFHQ-128 configs; LSUN-128 = FFHQ-128's with the conv decoder).
Losses: estimators/models/ladagan_losses.py (non-saturating logistic over batch x 25 patches,
R1, bCR). Inputs: noise [B, 128]; labels of the dataset are ignored.

Training step as the official TF code (which produced the paper's numbers):
  - DiffAugment (`--diffaugment`, released configs: color,translation) on reals and fakes in
    every discriminator call of the train graph, so the D step sees D(T(x)), D(T(G(z))) and the
    G step D(T(G(z))); R1 (`--r1_weight`, 1e-4, no 1/2) differentiates D's summed logits with
    respect to the very augmented reals the D loss saw (the same draw);
  - with `--bcr_weight` > 0, the bCR path instead: D's loss and R1 on un-augmented images plus
    weight * (MSE(D(x), D(T(x))) + MSE(D(G(z)), D(T(G(z))))), T's output under stop_gradient;
    G's step un-augmented (paper IV-B: CIFAR-10 with cutout and bCR 1.0, FFHQ bCR 0.1);
  - Adam 2e-4 (0.5, 0.99, Keras' epsilon 1e-7) for both networks and an EMA of G (0.999, over
    all of G's variables, BN moving statistics included) that starts as an exact copy of G (the
    official TF code never copied it; estimators/engines/optimizers.py does) and is what evaluation,
    sampling and export use; D's sub-step first, G in training mode in both sub-steps (its BN
    statistics update twice a step), unbiased BN moving variance: this model's `run_defaults`.
The generator has no tanh: evaluation, sample grids and the SavedModel clip its raw output to
[-1, 1] (as the official code does when it writes images); the discriminator sees it unclipped.
"""
import dataclasses

import numpy as np
import tensorflow as tf

from data import diff_augment
from estimators import summaries
from estimators.model_registry import POSITIVE, ModelSpec, hparam, register
from estimators.models import ladagan_import, ladagan_losses, ladagan_networks

# --image_size -> the released architecture of that size (LSUN-128: --g_decoder on FFHQ's).
PRESET_FOR_SIZE = {32: "cifar10", 64: "celeba64", 128: "ffhq128"}


def _widths(text):
  """'1024,256,64' -> (1024, 256, 64); '' -> None (the preset's); 'none' -> ()."""
  text = text.strip()
  if not text:
    return None
  if text == "none":
    return ()
  return tuple(int(w) for w in text.split(","))


def _is_widths(text):
  try:
    widths = _widths(text)
  except ValueError:
    return False
  return widths is None or all(w > 0 for w in widths)


WIDTHS = (_is_widths, "must be comma-separated positive integers, '' (the image size's released "
          "config) or 'none'")


@dataclasses.dataclass(frozen=True)
class LadaGANHParams:
  """Paper sec. III-IV and the released configs; widths default to the --image_size's config."""
  z_dim: int = hparam(128, "Noise dimension (LadaGAN: 128).", check=POSITIVE)
  g_dim: str = hparam("", "Widths of G's 8x8, 16x16 and 32x32 Ladaformers, e.g. 1024,256,64 "
                      "('': the image size's released config).", check=WIDTHS)
  g_decoder: str = hparam("", "Conv decoder widths after the 32x32 stage, one per x2 ('none': "
                          "pixel/patch output; '': the released config: FFHQ-128 128,64, "
                          "CIFAR-10/CelebA-64 none). Paper Table II.", check=WIDTHS)
  g_mlp_dim: int = hparam(512, "Hidden width of the Ladaformer MLPs (G and D).", check=POSITIVE)
  lada_heads: int = hparam(4, "Lada attention heads (G and D).", check=POSITIVE)
  g_mlp_residual: bool = hparam(False, "Table I ablation: a residual around G's MLP (LadaGAN: "
                                "none).")
  g_lee_conv: bool = hparam(True, "Table I ablation: the convolution in the local embedding "
                            "expansion (off: pixel shuffle alone).")
  g_modulation: bool = hparam(True, "Table I ablation: self-modulated LayerNorm (off: plain LN).")
  g_residual_with_pos_emb: bool = hparam(
      True, "Official code: the attention residual adds the tokens with their positional "
      "embedding (x = h + E); False: the paper's eq. 10 (h + MAA(SLN(h + E))).")
  d_type: str = hparam("lada", "Table II: the Ladaformer discriminator or the conv one (the "
                       "paper trains conv D with --discriminator_lr=4e-4).",
                       choices=ladagan_networks.D_TYPES)
  d_enc_dim: str = hparam("", "D's stem width, then each down-block's, down to 16x16 ('': the "
                          "released config: 128,256 / 64,128,256 / 32,64,128,256).",
                          check=WIDTHS)
  d_out_dim: str = hparam("512,1024", "Widths of D's head convolutions (3x3, then 1x1).",
                          check=WIDTHS)
  diffaugment: str = hparam("color,translation", "DiffAugment policy on reals and fakes "
                            "(color, translation, cutout; '' for none).",
                            check=(lambda v: _policy_ok(v), "must name DiffAugment ops from "
                                   f"{diff_augment.POLICIES}"))
  r1_weight: float = hparam(1e-4, "R1 weight on the (augmented) reals, no 1/2 (official code; "
                            "not stated in the paper); 0 turns R1 off.",
                            check=(lambda v: v >= 0, "must be >= 0"))
  bcr_weight: float = hparam(0.0, "bCR consistency weight; > 0 switches to the bCR path (paper "
                             "IV-B: CIFAR-10 1.0, FFHQ-128 0.1).",
                             check=(lambda v: v >= 0, "must be >= 0"))


def _policy_ok(policy):
  try:
    diff_augment.parse_policy(policy)
  except ValueError:
    return False
  return True


def architecture(hparams, image_size, cross_replica_bn=True):
  """The LadaGANArch of these hyperparameters at `image_size`."""
  if image_size not in PRESET_FOR_SIZE:
    raise ValueError(f"LadaGAN builds {sorted(PRESET_FOR_SIZE)} px images, not {image_size}")
  overrides = dict(
      noise_dim=hparams.z_dim, g_heads=hparams.lada_heads, d_heads=hparams.lada_heads,
      g_mlp_dim=hparams.g_mlp_dim, d_mlp_dim=hparams.g_mlp_dim,
      g_mlp_residual=hparams.g_mlp_residual, g_lee_conv=hparams.g_lee_conv,
      g_modulation=hparams.g_modulation, g_residual_with_pos_emb=hparams.g_residual_with_pos_emb,
      d_type=hparams.d_type, cross_replica_bn=cross_replica_bn)
  for field in ("g_dim", "g_decoder", "d_enc_dim", "d_out_dim"):
    widths = _widths(getattr(hparams, field))
    if widths is not None:
      overrides[field] = widths
  return ladagan_networks.preset(PRESET_FOR_SIZE[image_size], **overrides)


class LadaGAN(ModelSpec):
  """Unconditional LadaGAN: Ladaformer G and D, NS loss, R1, DiffAugment or bCR, EMA of G."""
  name = "ladagan"
  description = "LadaGAN: linear additive attention (Morales-Juarez & Fuentes-Pineda 2024)"
  hparams_class = LadaGANHParams
  conditional = False
  variables_depend_on_dataset = False  # no class embedding: the same networks on every dataset
  has_attention_maps = True
  run_defaults = {"generator_lr": 2e-4, "discriminator_lr": 2e-4, "beta1": 0.5, "beta2": 0.99,
                  "ema_decay": 0.999,
                  # The official train_step (engines/training_step.py; README notes): D then
                  # G, fresh noise; Keras Adam's epsilon; G in training mode in both sub-steps;
                  # EMA over generator.weights; Keras fused BN's unbiased moving variance.
                  "step_order": "discriminator_first", "adam_epsilon": 1e-7,
                  "generator_bn_updates": "both_steps", "ema_variables": "all",
                  "bn_moving_variance": "unbiased"}

  # --- hyperparameters ------------------------------------------------------------------------
  def validate(self, hparams, image_size, dataset):
    del dataset
    try:
      arch = architecture(hparams, image_size)
    except ValueError as e:
      return str(e)
    bad = [w for w in arch.g_dim + arch.d_enc_dim if w % hparams.lada_heads]
    if bad:
      return (f"Lada attention splits widths over --lada_heads={hparams.lada_heads}; widths "
              f"{bad} (--g_dim/--d_enc_dim) do not divide.")
    return None

  def suggested_hparams(self, image_size):
    architecture(LadaGANHParams(), image_size)  # ValueError for a size without networks
    return {}

  def arch(self, cfg):
    return architecture(cfg.hparams, cfg.image_size, cfg.cross_replica_bn)

  # --- networks -------------------------------------------------------------------------------
  def make_generator(self, cfg):
    return ladagan_networks.Generator(self.arch(cfg))

  def make_discriminator(self, cfg):
    return ladagan_networks.Discriminator(self.arch(cfg))

  # --- forward passes -------------------------------------------------------------------------
  def generate(self, cfg, generator, inputs, training, return_attention=False):
    out = generator(inputs["noise"], training=training, return_attention=return_attention)
    if return_attention:
      images, maps = out
      return {"images": images}, maps  # raw output [B, S, S, 3], maps [B, heads, N] x 3
    if training and "augment_fake" in inputs:  # the fakes' own DiffAugment draws (discriminate)
      return {"images": out, "augment_draws": inputs["augment_fake"]}
    return {"images": out}

  def images(self, outputs):
    return tf.clip_by_value(outputs["images"], -1.0, 1.0)

  def augments(self, cfg, training):
    """Whether D's inputs pass through DiffAugment: in training, unless bCR takes its place."""
    return training and bool(cfg.hparams.diffaugment) and not cfg.hparams.bcr_weight

  def generator_inputs(self, cfg, rows, seed, real):
    """Noise and, when D's inputs are augmented, each example's DiffAugment draws for the reals
    ('augment_real') and the fakes ('augment_fake'), [B, K] uniforms: like the noise,
    functions of (seed, row) only, so a mirrored or multi-worker run augments its global batch
    as one device does (the G sub-step's 'g_' inputs carry their own)."""
    inputs = super().generator_inputs(cfg, rows, seed, real)
    if self.augments(cfg, training=True):
      for tag, key in ((1, "augment_real"), (2, "augment_fake")):
        inputs[key] = diff_augment.example_draws(
            tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 1000 + tag), rows,
            cfg.hparams.diffaugment)
    return inputs

  def discriminate(self, cfg, discriminator, data, inputs, training):
    """{'logits' [B, 25], 'images': what D saw (augmented in training: R1 differentiates it)}.

    The training input_fn's inputs carry each example's draws (`generator_inputs`; the fakes'
    travel with them from `generate`); without them (a graph built by hand) the draws are TF's
    stateful ones."""
    images = data["images"]
    if self.augments(cfg, training):
      draws = data.get("augment_draws", inputs.get("augment_real"))
      images = diff_augment.diff_augment(images, cfg.hparams.diffaugment, draws=draws)
    return {"logits": discriminator(images, training=training), "images": images}

  # --- losses ---------------------------------------------------------------------------------
  def generator_loss(self, cfg, gan_model):
    fake = gan_model.discriminator_gen_outputs["logits"]
    return ladagan_losses.generator_loss(fake), {}

  def discriminator_loss(self, cfg, gan_model):
    hp = cfg.hparams
    real_out = gan_model.discriminator_real_outputs
    fake_out = gan_model.discriminator_gen_outputs
    real, fake = real_out["logits"], fake_out["logits"]
    loss = ladagan_losses.discriminator_loss(real, fake)
    scalars = {"discriminator/mean_real_logit": tf.reduce_mean(real),
               "discriminator/mean_fake_logit": tf.reduce_mean(fake)}
    if hp.r1_weight:
      r1 = ladagan_losses.r1_from_logits(real, real_out["images"], hp.r1_weight)
      loss += r1
      scalars["loss/discriminator_r1"] = r1
    if hp.bcr_weight:
      discriminator = lambda images: gan_model.discriminator_fn(
          {"images": images}, gan_model.generator_inputs)["logits"]
      # Under D's variable scope (as TF-GAN's own D calls), so the batch-norm updates of this
      # training-mode pass join D's update ops.
      with tf.compat.v1.variable_scope(gan_model.discriminator_scope, reuse=True):
        real_aug, fake_aug = ladagan_losses.bcr_augmented_logits(
            discriminator, real_out["images"], fake_out["images"],
            lambda images: diff_augment.diff_augment(images, hp.diffaugment))
      bcr = ladagan_losses.bcr_consistency(real, real_aug, fake, fake_aug, hp.bcr_weight)
      loss += bcr
      scalars["loss/discriminator_bcr"] = bcr
    return loss, scalars

  # --- summaries ------------------------------------------------------------------------------
  def generator_summaries(self, cfg, generator):
    """Fixed-noise grid (clipped) and, per stage, sample 0 then each head's attention over it
    (Figure 6; summaries' drawing, as --mode=attention_maps)."""
    inputs = {k: tf.constant(v) for k, v in self.fixed_inputs(cfg).items()}
    outputs, maps = self.generate(cfg, generator, inputs, training=False, return_attention=True)
    images = self.images(outputs)
    summaries.add_image_grid("fixed_noise_grid", images,
                             self.grid_columns(cfg, int(images.shape[0])))
    size = summaries.tile_size(cfg.image_size)
    with tf.compat.v1.name_scope(""):
      for attention in maps:  # [B, heads, side * side]
        side = int(np.sqrt(int(attention.shape[-1])))
        figure = summaries.token_figure(images[:1], attention[:1], size)  # sample, heads
        summaries.add_figure(f"attention/generator_{side}x{side}", figure)

  # --- attention maps (TensorBoard, the 'attention' signature, --mode=attention_maps) --------
  def attention(self, cfg, generator, inputs):
    """(images clipped [B, S, S, 3], {'attention_<side>': [B, heads, side * side]}) for G's
    8x8, 16x16 and 32x32 Ladaformers: each head's weights over the stage's tokens."""
    outputs, maps = self.generate(cfg, generator, inputs, training=False, return_attention=True)
    named = {}
    for m in maps:
      side = int(np.sqrt(int(m.shape[-1])))
      named[f"attention_{side}"] = m
    return self.images(outputs), named

  # --- the authors' released weights (estimators/models/ladagan_import.py) -------------------
  has_importer = True

  def read_release(self, paths):
    return ladagan_import.read_release(paths)

  def import_weights(self, cfg, release):
    return ladagan_import.import_weights(cfg, release, self.build_networks(cfg))


register(LadaGAN())
