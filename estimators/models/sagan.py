"""SAGAN (Zhang et al. 2019) and YLG-SAGAN (Daras et al. 2020): hyperparameters, networks, hinge
losses, summaries. YLG-SAGAN is SAGAN with only the attention layer replaced, so both live here.

Networks: estimators/models/sagan_networks.py (TF-GAN's self_attention_estimator layout).
Inputs: noise [B, z] and, on class-conditional sets, labels [B] (fake labels drawn uniformly, as
TF-GAN's SAGAN) or class weights [B, num_classes] that mix the classes' CBN gammas and betas
(latent walks between classes); outputs {'images' [B, S, S, 3] in [-1, 1], 'labels' [B]};
D: logits [B]. Attention maps (--mode=attention_maps, the 'attention' signature): the
generator's query-key matrix [B, heads, R*R, (R/2)*(R/2)] at R = attention_resolution.
"""
import dataclasses

import tensorflow as tf
import tensorflow_gan as tfgan

from estimators import summaries
from estimators.model_registry import POSITIVE, UNIT_INTERVAL, ModelSpec, hparam, register
from estimators.models import sagan_import, sagan_inversion, sagan_inversion_mode, sagan_networks
from tfgan_attention import SN_BOUNDS, CompactAttention, YLGAttention, densify_attention


@dataclasses.dataclass(frozen=True)
class _SAGANArchitecture:
  """What SAGAN and YLG-SAGAN share (SAGAN sec. 5: gf = df = 64 at 128 px, z 128)."""
  z_dim: int = hparam(128, "Noise dimension.", check=POSITIVE)
  gf_dim: int = hparam(64, "Generator width unit (SAGAN: 64).", check=POSITIVE, cli_default=16)
  df_dim: int = hparam(64, "Discriminator width unit (SAGAN: 64).", check=POSITIVE,
                       cli_default=16)
  attention_resolution: int = hparam(
      64, "Feature-map size of the attention block (SAGAN Table 1 feat8..feat64; the headline "
      "IS 52.52 / FID 18.65 is feat64, TF-GAN's example uses feat32).", check=POSITIVE,
      cli_default=16)
  attention_type: str = hparam(
      "self_attention", "Attention block, or the Table 1 ablations: a residual block, or nothing.",
      choices=sagan_networks.ATTENTION_TYPES)
  bn_decay: float = hparam(
      0.999, "Moving-average decay of G's batch-norm statistics used at inference (SAGAN's CBN: "
      "0.999, which needs ~10k steps to settle; the digits default uses 0.99).",
      check=UNIT_INTERVAL, cli_default=0.99)
  sn_update_in_eval: bool = hparam(
      False, "Official-D quirk: update spectral-norm u vectors outside training too.",
      may_change=True)
  bn_inference: str = hparam(
      "moving", "G's batch norm outside training (sampling, evaluation, export): 'moving' "
      "averages, as TF-GAN's example and the YLG code do (both generate and evaluate with "
      "training=False, tfgan.tpu.batch_norm's moving statistics), or 'batch' statistics, as the "
      "SAGAN authors' PyTorch code does (it keeps no moving averages). A 'batch' SavedModel's "
      "output depends on the whole batch it is given.",
      choices=("moving", "batch"), may_change=True)
  sn_bound: str = hparam(
      "paper", "Spectral-norm bound: 'paper' = W / sigma everywhere (SAGAN); 'tfgan' = W / "
      "max(1, sigma) for convolutions, linears and the class embedding, W / sigma in the "
      "attention block, as TF-GAN's example and the official YLG code (YLG's numbers).",
      choices=SN_BOUNDS)


@dataclasses.dataclass(frozen=True)
class SAGANHParams(_SAGANArchitecture):
  num_heads: int = hparam(1, "Attention heads (YLG's 8-head SAGAN ablation: 8).", check=POSITIVE)


@dataclasses.dataclass(frozen=True)
class YLGSAGANHParams(_SAGANArchitecture):
  """YLG: 8 heads of local 2-step sparse attention; everything else is SAGAN's."""
  ylg_layout: str = hparam("ylg", "'ylg' (RTL on heads 0-3, LTR on 4-7) or the Strided ablation.",
                           choices=("ylg", "strided"))
  ylg_esa: bool = hparam(True, "ESA enumeration (False: the No-ESA ablation).")
  ylg_nonsquare: str = hparam("tile", "Query/key grid mapping when they differ: the official "
                              "tiling or the paper's block shift.", choices=("tile", "shift"))
  ylg_implementation: str = hparam("sparse", "Sparse O(N sqrt N) compute or the dense masked "
                                   "reference.", choices=("sparse", "dense"))


YLG_HEADS = 8


class SAGAN(ModelSpec):
  """Class-conditional SAGAN: SN in G and D, CBN in G, projection D, hinge loss."""
  name = "sagan"
  description = "SAGAN: dense self-attention (Zhang et al. 2019)"
  hparams_class = SAGANHParams
  has_attention_maps = True  # with attention_type=self_attention (returns_attention_maps)
  supports_class_mixing = True  # CBN mixes the classes' gamma/beta by weight
  modes = {"invert": lambda cfg, options: sagan_inversion_mode.invert_mode(cfg, options)}
  mode_options = {"invert": sagan_inversion.InversionOptions}

  def heads(self, hparams):
    return hparams.num_heads

  def attention_layer_fn(self, hparams, update_u_in_eval=False):
    """None: sagan_networks builds SAGAN's SelfAttention."""
    del hparams, update_u_in_eval
    return None

  # --- hyperparameters ------------------------------------------------------------------------
  def validate(self, hparams, image_size, dataset):
    del dataset
    if image_size not in sagan_networks.G_WIDTHS:
      return f"--image_size must be one of {sorted(sagan_networks.G_WIDTHS)}, got {image_size}."
    if hparams.attention_type == "none":
      return None
    valid = sagan_networks.valid_attention_resolutions(image_size)
    if hparams.attention_resolution not in valid:
      return (f"--attention_resolution={hparams.attention_resolution} is not a feature-map size "
              f"of both networks at {image_size} px; choose one of {valid}.")
    if hparams.attention_type == "self_attention":
      heads = self.heads(hparams)
      channels = sagan_networks.attention_channels(image_size, hparams.gf_dim, hparams.df_dim,
                                                   hparams.attention_resolution)
      if any(c % (8 * heads) for c in channels):
        return (f"attention at {hparams.attention_resolution}x{hparams.attention_resolution} "
                f"sees {channels[0]} (G) and {channels[1]} (D) channels; {heads} head(s) need "
                f"multiples of {8 * heads}: raise --gf_dim/--df_dim"
                + (" or lower --num_heads." if hasattr(hparams, "num_heads") else "."))
    return None

  def suggested_hparams(self, image_size):
    """Attention where the paper configs put it at this size (bench defaults): SAGAN's feat64
    headline at 128 px, else the largest size both networks have."""
    if image_size not in sagan_networks.G_WIDTHS:
      raise ValueError(f"{self.name} builds {sorted(sagan_networks.G_WIDTHS)} px images, not "
                       f"{image_size}")
    if image_size == 128:
      return {"attention_resolution": 64}
    return {"attention_resolution": max(sagan_networks.valid_attention_resolutions(image_size))}

  # --- networks -------------------------------------------------------------------------------
  def make_generator(self, cfg):
    hp = cfg.hparams
    return sagan_networks.Generator(
        cfg.image_size, hp.gf_dim, self.num_classes(cfg),
        attention_resolution=hp.attention_resolution, attention_type=hp.attention_type,
        num_heads=self.heads(hp), attention_layer_fn=self.attention_layer_fn(hp),
        bn_decay=hp.bn_decay, cross_replica_bn=cfg.cross_replica_bn, sn_bound=hp.sn_bound,
        bn_inference=hp.bn_inference)

  def make_discriminator(self, cfg):
    hp = cfg.hparams
    return sagan_networks.Discriminator(
        cfg.image_size, hp.df_dim, self.num_classes(cfg),
        attention_resolution=hp.attention_resolution, attention_type=hp.attention_type,
        num_heads=self.heads(hp), update_u_in_eval=hp.sn_update_in_eval,
        attention_layer_fn=self.attention_layer_fn(hp, hp.sn_update_in_eval),
        sn_bound=hp.sn_bound)

  # --- forward passes -------------------------------------------------------------------------
  def generate(self, cfg, generator, inputs, training, return_attention=False):
    noise = inputs["noise"] if isinstance(inputs, dict) else inputs  # [B, z]
    batch = tf.shape(noise)[0]
    num_classes = self.num_classes(cfg)
    if not num_classes:
      labels = tf.zeros([batch], tf.int32)
    elif isinstance(inputs, dict) and "class_weights" in inputs:  # class_mixture_inputs
      weights = tf.cast(inputs["class_weights"], tf.float32)  # [B, num_classes]
      out = generator(noise, weights, training=training, return_attention=return_attention)
      labels = tf.argmax(weights, axis=1, output_type=tf.int32)  # the dominant class
      if return_attention:
        return {"images": out[0], "labels": labels}, out[1]
      return {"images": out, "labels": labels}
    elif isinstance(inputs, dict) and "labels" in inputs:
      labels = tf.cast(inputs["labels"], tf.int32)
    else:  # TF-GAN's SAGAN samples fake labels uniformly inside the generator
      labels = tf.cast(tf.random.categorical(tf.zeros([batch, num_classes]), 1)[:, 0], tf.int32)
    out = generator(noise, labels if num_classes else None, training=training,
                    return_attention=return_attention)
    if return_attention:
      images, attention = out
      return {"images": images, "labels": labels}, attention
    return {"images": out, "labels": labels}

  def discriminate(self, cfg, discriminator, data, inputs, training):
    labels = data.get("labels") if self.num_classes(cfg) else None
    return discriminator(data["images"], labels, training=training)  # [B]

  # --- losses (SAGAN eq. 4, through TF-GAN's hinge losses) ------------------------------------
  def generator_loss(self, cfg, gan_model):
    """L_G = -E[D(G(z), y)]."""
    return tfgan.losses.wargs.wasserstein_hinge_generator_loss(
        gan_model.discriminator_gen_outputs, add_summaries=False), {}

  def discriminator_loss(self, cfg, gan_model):
    """L_D = E[relu(1 - D(x, y))] + E[relu(1 + D(G(z), y))]; mean D(real), D(fake) logged."""
    real, fake = gan_model.discriminator_real_outputs, gan_model.discriminator_gen_outputs
    loss = tfgan.losses.wargs.wasserstein_hinge_discriminator_loss(real, fake,
                                                                   add_summaries=False)
    return loss, {"discriminator/mean_real_output": tf.reduce_mean(real),
                  "discriminator/mean_fake_output": tf.reduce_mean(fake)}

  # --- attention maps and class mixing (figures.py, interpolate.py, SavedModel signatures) ---
  def returns_attention_maps(self, hparams):
    return hparams.attention_type == "self_attention"

  def attention(self, cfg, generator, inputs):
    """(images [B, S, S, 3], {'attention_<R>': [B, heads, R*R, (R/2)*(R/2)]}): G's attention
    block at R = attention_resolution, queries on the R x R feature grid, keys on the 2x2
    max-pooled grid, both raster order, rows summing to 1. YLG's sparse maps are densified
    (masked pairs exactly 0)."""
    hp = cfg.hparams
    if not self.returns_attention_maps(hp):
      raise ValueError(f"--attention_type={hp.attention_type} has no attention maps")
    outputs, attn = self.generate(cfg, generator, inputs, training=False, return_attention=True)
    if isinstance(attn, CompactAttention):
      attn = densify_attention(attn, (hp.attention_resolution // 2) ** 2)
    return self.images(outputs), {f"attention_{hp.attention_resolution}": attn}

  def class_mixture_inputs(self, cfg, noise, class_weights):
    """{'noise' [B, z], 'class_weights' [B, num_classes]}: every CBN layer of G uses
    sum_c w_c * gamma[c] and sum_c w_c * beta[c] (G's only use of the class)."""
    del cfg
    return {"noise": noise, "class_weights": class_weights}

  def serving_notes(self, cfg):
    if cfg.hparams.bn_inference != "batch":
      return None
    return ("This generator normalises with batch statistics at inference (--bn_inference=batch, "
            "as the SAGAN authors' PyTorch code, which keeps no moving averages): an image "
            "depends on the other inputs of its batch. Feed batches as large as evaluation used "
            f"({cfg.eval_batch_size}) for comparable samples.")

  # --- the authors' released weights (estimators/models/sagan_import.py) ---------------------
  has_importer = True  # TF1 estimator checkpoints of TF-GAN's example and of the YLG code

  def read_release(self, paths):
    return sagan_import.read_release(paths, self.name)

  def import_weights(self, cfg, release):
    return sagan_import.import_weights(cfg, release, self.build_networks(cfg),
                                       ylg=self.name == "ylg_sagan")

  # --- summaries ------------------------------------------------------------------------------
  def generator_summaries(self, cfg, generator):
    """Fixed-noise grid, attention gates, and sample 0's attention over it (summaries'
    drawing): the rows of the five default query points per head (generator_query_maps) and
    each head's saliency (generator_saliency)."""
    inputs = {k: tf.constant(v) for k, v in self.fixed_inputs(cfg).items()}
    outputs, attn = self.generate(cfg, generator, inputs, training=False, return_attention=True)
    images = outputs["images"]
    summaries.add_image_grid("fixed_noise_grid", images,
                             self.grid_columns(cfg, int(images.shape[0])))
    hp = cfg.hparams
    if isinstance(attn, CompactAttention):  # YLG sparse: sample 0 only, [1, 8, Nq, K] -> dense
      attn = densify_attention(CompactAttention(attn.weights[:1], attn.key_index),
                               (hp.attention_resolution // 2) ** 2)
    with tf.compat.v1.name_scope(""):  # tags without the 'Generator/' scope prefix
      sigma = getattr(generator.attention, "sigma", None)
      if sigma is not None:
        tf.compat.v1.summary.scalar("attention/generator_gate", sigma)
      if attn is not None:  # sample 0 drawn as --mode=attention_maps draws it
        side, size = hp.attention_resolution, summaries.tile_size(cfg.image_size)
        cells = summaries.query_cells(summaries.DEFAULT_QUERY_POINTS, side)
        rows = tf.gather(attn[0], [r * side + c for r, c in cells], axis=1)  # [heads, Q, Nk]
        summaries.add_figure("attention/generator_query_maps",
                             summaries.query_figure(images[0], rows, cells, side, size))
        saliency = tf.reduce_mean(attn[:1], axis=2)  # [1, heads, Nk]: YLG sec. 5
        summaries.add_figure("attention/generator_saliency",
                             summaries.token_figure(images[:1], saliency, size))

  def discriminator_summaries(self, cfg, discriminator):
    if getattr(discriminator.attention, "sigma", None) is not None:
      with tf.compat.v1.name_scope(""):
        tf.compat.v1.summary.scalar("attention/discriminator_gate", discriminator.attention.sigma)


class YLGSAGAN(SAGAN):
  """SAGAN with YLG's 8-head local sparse attention in G and D."""
  name = "ylg_sagan"
  description = "YLG-SAGAN: local 2-step sparse attention (Daras et al. 2020)"
  hparams_class = YLGSAGANHParams

  def heads(self, hparams):
    del hparams
    return YLG_HEADS

  def attention_layer_fn(self, hparams, update_u_in_eval=False):
    return lambda name: YLGAttention(
        layout=hparams.ylg_layout, esa=hparams.ylg_esa, nonsquare=hparams.ylg_nonsquare,
        implementation=hparams.ylg_implementation, update_u_in_eval=update_u_in_eval, name=name)

  def suggested_hparams(self, image_size):
    """YLG's code keeps TF-GAN's feat32 (its 16x16 key masks) at 128 px."""
    if image_size == 128:
      return {"attention_resolution": 32}
    return super().suggested_hparams(image_size)


register(SAGAN())
register(YLGSAGAN())
