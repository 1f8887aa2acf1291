"""LadaGAN (Morales-Juarez & Fuentes-Pineda 2024): hyperparameters, inputs, losses, summaries,
serving and the attention-map figures of an unconditional Ladaformer GAN.

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
  - Adam 2e-4 (0.5, 0.99) for both networks and an EMA of G (0.999) that starts as an exact
    copy of G (the official TF code never copied it; estimators/optimizers.py does) and is what
    evaluation, sampling and export use: these are this model's `run_defaults`.
The generator has no tanh: evaluation, sample grids and the SavedModel clip its raw output to
[-1, 1] (as the official code does when it writes images); the discriminator sees it unclipped.
"""
import dataclasses
import os

import numpy as np
import tensorflow as tf

from data import diff_augment
from estimators import summaries
from estimators.model_registry import POSITIVE, ModelSpec, hparam, register
from estimators.models import ladagan_losses, ladagan_networks

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
  run_defaults = {"generator_lr": 2e-4, "discriminator_lr": 2e-4, "beta1": 0.5, "beta2": 0.99,
                  "ema_decay": 0.999}

  def __init__(self):
    self.modes = {"attention_maps": self.write_attention_maps}

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
    return {"images": out}

  def images(self, outputs):
    return tf.clip_by_value(outputs["images"], -1.0, 1.0)

  def augments(self, cfg, training):
    """Whether D's inputs pass through DiffAugment: in training, unless bCR takes its place."""
    return training and bool(cfg.hparams.diffaugment) and not cfg.hparams.bcr_weight

  def discriminate(self, cfg, discriminator, data, inputs, training):
    """{'logits' [B, 25], 'images': what D saw (augmented in training: R1 differentiates it)}."""
    images = data["images"]
    if self.augments(cfg, training):
      images = diff_augment.diff_augment(images, cfg.hparams.diffaugment)
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
    """Fixed-noise grid (clipped) and each stage's per-head attention of sample 0."""
    inputs = {k: tf.constant(v) for k, v in self.fixed_inputs(cfg).items()}
    outputs, maps = self.generate(cfg, generator, inputs, training=False, return_attention=True)
    images = self.images(outputs)
    summaries.add_image_grid("fixed_noise_grid", images,
                             self.grid_columns(cfg, int(images.shape[0])))
    with tf.compat.v1.name_scope(""):
      for attention in maps:
        side = int(np.sqrt(int(attention.shape[-1])))
        heat = attention_heat_maps(attention[0], cfg.image_size)  # [heads, S, S, 1]
        tf.compat.v1.summary.image(f"attention/generator_{side}x{side}", heat,
                                   max_outputs=int(attention.shape[1]))

  # --- serving --------------------------------------------------------------------------------
  def extra_signatures(self, cfg, generator):
    """'attention': noise -> images (clipped) and each stage's maps attention_<side>
    [N, heads, side * side]."""
    spec = tf.TensorSpec([None, self.z_dim(cfg)], tf.float32, name="noise")

    def attention(noise):
      outputs, maps = self.generate(cfg, generator, {"noise": noise}, training=False,
                                    return_attention=True)
      result = {"images": self.images(outputs)}
      for m in maps:
        side = int(np.sqrt(int(m.shape[-1])))
        result[f"attention_{side}"] = m
      return result
    return {"attention": tf.function(attention, input_signature=[spec])}

  # --- the attention_maps mode ----------------------------------------------------------------
  def write_attention_maps(self, cfg, options):
    """PNG overlays (paper Figure 6): per stage, one row per sample: the image, then each
    head's attention over the image. From --saved_model (its 'attention' signature) or a
    checkpoint (default: the latest; the EMA generator when the run has one)."""
    from estimators import export, run_dir  # pylint: disable=import-outside-toplevel
    from estimators.evaluation import use_ema  # pylint: disable=import-outside-toplevel
    num = min(int(options.get("num_samples") or 8), 16)
    noise = self.sample_inputs(cfg, num, seed=options.get("seed") or 0,
                               truncation=options.get("truncation"))["noise"]
    if options.get("saved_model"):
      loaded = tf.saved_model.load(options["saved_model"])
      if "attention" not in loaded.signatures:
        raise ValueError(f"SavedModel {options['saved_model']} has no 'attention' signature "
                         "(export it from a LadaGAN run with this version)")
      out = loaded.signatures["attention"](noise=tf.constant(noise))
      images = out["images"].numpy()
      maps = [out[k].numpy() for k in sorted((k for k in out if k.startswith("attention_")),
                                             key=lambda k: int(k.split("_")[1]))]
      tag = "savedmodel"
    else:
      ckpt = export.resolve_checkpoint(options.get("checkpoint") or cfg.model_dir)
      generator = export.restore_generator(cfg, ckpt, use_ema(cfg, ckpt))
      outputs, maps = self.generate(cfg, generator, {"noise": tf.constant(noise)},
                                    training=False, return_attention=True)
      images = self.images(outputs).numpy()
      maps = [m.numpy() for m in maps]
      tag = f"step{export.checkpoint_step(ckpt)}"
    out_dir = options.get("sample_dir") or os.path.join(cfg.model_dir, "attention_maps", tag)
    paths = []
    for attention in maps:  # [N, heads, side * side]
      side = int(np.sqrt(attention.shape[-1]))
      rows = []
      for image, per_head in zip(images, attention):
        heat = attention_heat_maps(tf.constant(per_head), cfg.image_size).numpy()
        rows.append([image] + [overlay(image, h[..., 0]) for h in heat])
      tiles = np.stack([t for row in rows for t in row])  # [N * (1 + heads), S, S, 3]
      path = os.path.join(out_dir, f"attention_{side}x{side}.png")
      run_dir.write_png(path, run_dir.grid(tiles, 1 + attention.shape[1]))
      paths.append(path)
    print(f"attention maps: {', '.join(paths)}")
    return paths


def attention_heat_maps(attention, image_size):
  """[heads, N] attention of one sample -> [heads, S, S, 1] in [0, 1], each head scaled to its
  maximum and resized (nearest) from its sqrt(N) x sqrt(N) token grid to the image."""
  heads, n = attention.shape
  side = int(np.sqrt(int(n)))
  maps = tf.reshape(attention, [heads, side, side, 1])
  maps = maps / (tf.reduce_max(maps, axis=[1, 2, 3], keepdims=True) + 1e-12)
  return tf.image.resize(maps, [image_size, image_size], method="nearest")


def overlay(image, heat):
  """An image [S, S, 3] in [-1, 1] with a heat map [S, S] in [0, 1] blended in red, in [-1, 1]."""
  gray = np.repeat(np.mean(image, axis=-1, keepdims=True), 3, axis=-1) * 0.5  # dimmed
  colour = np.stack([heat, 0.25 * heat, 1.0 - heat], axis=-1) * 2.0 - 1.0  # blue -> red
  return np.clip(0.5 * gray + 0.5 * colour, -1.0, 1.0).astype(np.float32)


register(LadaGAN())
