"""AttnGAN (Xu et al. 2018): text-to-image with word attention, trained against a frozen DAMSM.

Networks: estimators/models/attngan_networks.py (G0/G1/G2 with word attention, one discriminator
per stage with unconditional and conditional logits). Losses: attngan_losses.py (official
weighting by default, the paper's eqs. 4-5 with `--loss_weighting=paper`). DAMSM pretraining
(`--mode=pretrain_damsm`): damsm_pretrain.py; the DAMSM checkpoint format: damsm.py.

Inputs (per example, from the real batch): the caption's token ids `captions` [B, T] and
`caption_length` [B] (the text the generator draws), noise [B, z_dim] and the conditioning-
augmentation draw `ca_noise` [B, c_dim] (stateless per example), and `class_ids` [B] (the
dataset's labels; used only by --damsm_term_class_mask).
The frozen DAMSM: its text encoder is part of G (all variables non-trainable; they start from
the DAMSM checkpoint and the GAN checkpoint carries them); its image encoder encodes G's last
stage for lambda * L_DAMSM. Neither is ever in G's or D's trainable variables; no gradient flows
into the text features (the official code detaches them). Loading checks the vocabulary of the
run against the DAMSM's (load_damsm's error says what to do).
G's EMA (0.999, the official code's saved generator) is what evaluation, sampling and export use.
"""
import concurrent.futures
import contextlib
import dataclasses
import os
import weakref

from absl import logging
import numpy as np
import tensorflow as tf

import data
from data.text import Vocabulary
from estimators import summaries
from estimators.model_registry import POSITIVE, ModelSpec, hparam, register
from estimators.models import (attngan_import, attngan_losses, attngan_networks,
                               attngan_sampling, damsm, damsm_networks, damsm_pretrain)
from tfgan_attention import damsm as damsm_ops
from tfgan_attention.conditioning_augmentation import kl_loss


@dataclasses.dataclass(frozen=True)
class AttnGANHParams(damsm.DamsmHParams):
  """Paper sec. 3 / official bird_attn2.yml (CUB) defaults; the DAMSM's fields are inherited."""
  z_dim: int = hparam(100, "Noise dimension (AttnGAN: 100).", check=POSITIVE)
  condition_dim: int = hparam(100, "Conditioning-augmentation dimension c_dim (100).",
                              check=POSITIVE)
  gf_dim: int = hparam(32, "Generator width ngf (CUB 32, COCO 48).", check=POSITIVE)
  df_dim: int = hparam(64, "Discriminator width ndf (CUB 64, COCO 96).", check=POSITIVE)
  r_num: int = hparam(2, "Residual blocks per attention stage (CUB 2, COCO 3).", check=POSITIVE)
  branch_num: int = hparam(3, "Generator stages: 3 = AttnGAN2 (two attention stages, 64 -> 128 "
                           "-> 256), 2 = AttnGAN1 (one), 1 = G0 alone.",
                           check=(lambda v: 1 <= v <= 3, "must be 1, 2 or 3"))
  lambda_damsm: float = hparam(5.0, "lambda of L_DAMSM in G's loss (eq. 3: CUB 5, COCO 50).",
                               check=(lambda v: v >= 0, "must be >= 0"))
  loss_weighting: str = hparam(
      "official", "Adversarial loss: 'official' (mismatched real-image/wrong-sentence pairs, "
      "1/2 real and 1/3 fake weights in D, 1 + 1 in G) or 'paper' (eqs. 4-5: 1/2 factors, no "
      "mismatched pairs).", choices=attngan_losses.LOSS_WEIGHTINGS)
  damsm_term_variant: str = hparam(
      "paper", "DAMSM constants of G's L_DAMSM term: 'paper' (gamma1 5, eq. 10's 1/gamma2) or "
      "'official' (gamma1 4, no 1/gamma2).", choices=tuple(damsm_ops.VARIANTS))
  r_precision_damsm_dir: str = hparam(
      "", "DAMSM that scores R-precision at evaluation ('' = the one G trained against, which "
      "inflates it; give a separately pretrained one to avoid that).", may_change=True)
  r_precision_protocols: str = hparam(
      "paper,dmgan", "R-precision protocols at evaluation: 'paper' (true caption + 99 random "
      "ones of other images, R = 1), 'dmgan' (negatives of other classes / images, 10 folds); "
      "'' = none.", check=(lambda v: all(p in ("paper", "dmgan") for p in v.split(",") if p),
                           "must list protocols among paper, dmgan"), may_change=True)
  pretrain_damsm_first: bool = hparam(
      False, "Before training, pretrain the DAMSM (--mode=pretrain_damsm with the --damsm_* "
      "flags) when --damsm_dir holds none (the embedded digits job does).", may_change=True)
  eval_max_words: int = hparam(
      0, "Words per caption of the captions images are generated from at evaluation, sampling "
      "and serving (0 = the dataset's: CUB 25, COCO 20, the official eval_bird/eval_coco.yml; "
      "training keeps --max_words, CUB 18, COCO 12); longer captions are sub-sampled in order.",
      check=(lambda v: v >= 0, "must be >= 0"), may_change=True)
  damsm_term_class_mask: bool = hparam(
      False, "Official CUB code: same-class non-matching pairs are no negatives in G's L_DAMSM "
      "(needs a dataset with classes).")


def damsm_dir(cfg):
  return cfg.hparams.damsm_dir or os.path.join(cfg.model_dir, "damsm")


def run_vocabulary(cfg):
  """The run's vocabulary (<model_dir>/vocab.txt, written before training), else the dataset's."""
  path = os.path.join(cfg.model_dir, "vocab.txt")
  if os.path.exists(path):
    return Vocabulary.load(path)
  spec = data.get_spec(cfg.dataset)
  if not spec.has_captions:
    raise ValueError(f"AttnGAN needs a dataset with captions; --dataset={cfg.dataset} has none")
  return spec.vocabulary(cfg.data_dir, **dict(cfg.data_options))


@dataclasses.dataclass(frozen=True)
class FrozenDamsm:
  """Where the run's pretrained DAMSM is and what it is (checked once per process)."""
  path: str               # the DAMSM directory
  checkpoint: str         # its checkpoint prefix
  sha256: str
  config: dict            # its damsm_config.json


_FROZEN = {}  # (damsm_dir, vocab words) -> FrozenDamsm


def eagerly(fn):
  """fn() run eagerly, also while a TF1 graph is being built (in a helper thread, which has
  its own default graph and eager context)."""
  if tf.executing_eagerly():
    return fn()
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    return pool.submit(fn).result()


def load_frozen_damsm(cfg):
  """The run's pretrained DAMSM, checked against the run's vocabulary (damsm.load_damsm's clear
  errors when it is missing or was trained with another vocabulary)."""
  path = damsm_dir(cfg)
  vocab = run_vocabulary(cfg)
  key = (path, tuple(vocab.words))
  if key not in _FROZEN:
    def load():
      loaded = damsm.load_damsm(path, vocab=vocab)
      return FrozenDamsm(path, loaded.checkpoint_path, loaded.checkpoint_sha256,
                         dict(loaded.config))
    _FROZEN[key] = eagerly(load)
  return _FROZEN[key]


def text_encoder_config(config):
  """damsm_networks.TextEncoder arguments of a damsm_config.json."""
  return {"vocab_size": config["vocab_size"], "embedding_dim": config["word_dim"],
          "hidden_per_direction": config["embedding_dim"] // 2}


def _non_trainable():
  """A creator scope: variables created inside are never trainable (in no trainable list)."""
  def creator(next_creator, **kwargs):
    kwargs["trainable"] = False
    return next_creator(**kwargs)
  return tf.variable_creator_scope(creator)


class FrozenTextEncoder(damsm_networks.TextEncoder):
  """The DAMSM text encoder inside G: its variables are created non-trainable; in a TF1 graph
  with `checkpoint` given they start from the DAMSM checkpoint (damsm.restoring_from, the keys
  damsm.flat_variables writes; replica-safe), eagerly a GAN checkpoint restores them."""

  def __init__(self, checkpoint=None, **kwargs):
    super().__init__(name="text_encoder", **kwargs)
    self._checkpoint = checkpoint
    self._config = kwargs

  def _text_keys(self):
    """The flat key ('text_NNN') of each variable this encoder creates, in creation order."""
    def build():
      encoder = damsm_networks.TextEncoder(**self._config)
      encoder(tf.zeros([1, 2], tf.int32), tf.ones([1], tf.int32))
      return encoder
    return damsm.creation_keys(build, damsm.text_variables)

  def __call__(self, *args, **kwargs):
    if self.built:
      return super().__call__(*args, **kwargs)
    with contextlib.ExitStack() as scopes:
      scopes.enter_context(_non_trainable())
      if self._checkpoint and not tf.executing_eagerly():
        scopes.enter_context(damsm.restoring_from(self._checkpoint, self._text_keys()))
      return super().__call__(*args, **kwargs)


_IMAGE_ENCODERS = weakref.WeakKeyDictionary()  # graph -> the frozen DAMSM
_HELD_OUT = {}  # (dataset, ...) -> test_captions' arrays
_GENERATORS = weakref.WeakKeyDictionary()  # graph -> its generator (D encodes real captions)


def frozen_image_encoder(cfg):
  """The graph's frozen DAMSM (load_damsm in this graph: restored from its checkpoint, not
  trainable), built once per graph outside the networks' scopes; its image encoder scores G."""
  graph = tf.compat.v1.get_default_graph()
  if graph not in _IMAGE_ENCODERS:
    frozen = load_frozen_damsm(cfg)
    with tf.compat.v1.name_scope(""), tf.compat.v1.variable_scope(
        tf.compat.v1.VariableScope(False, name=""), auxiliary_name_scope=False):
      with _non_trainable():
        _IMAGE_ENCODERS[graph] = damsm.load_damsm(frozen.path, checkpoint=frozen.checkpoint)
  return _IMAGE_ENCODERS[graph]


def test_captions(cfg):
  """Every caption of the test split: {'all_captions' [M, K, T], 'all_caption_lengths' [M, K],
  'labels' [M] (zeros without classes)}, read once per process."""
  key = (cfg.dataset, cfg.data_dir, cfg.image_size, cfg.model_dir, eval_max_words(cfg),
         cfg.data_options)
  if key not in _HELD_OUT:
    def read():
      ds = data.load(cfg.dataset, data_dir=cfg.data_dir, split="test",
                     image_size=cfg.image_size, **_load_options(cfg))
      ds = ds.map(lambda e: {k: e.get(k, tf.constant(0, tf.int32)) for k in
                             ("all_captions", "all_caption_lengths", "labels")})
      rows = list(ds.as_numpy_iterator())
      if not rows:
        raise ValueError(f"the test split of {cfg.dataset} has no captions to sample from")
      return {k: np.stack([r[k] for r in rows]).astype(np.int32) for k in rows[0]}
    _HELD_OUT[key] = eagerly(read)
  return _HELD_OUT[key]


def _stateless_normal(seed, rows, dim, salt):
  def one(row):
    row_seed = tf.random.experimental.stateless_fold_in(seed, row)
    return tf.random.stateless_normal([dim], seed=tf.random.experimental.stateless_fold_in(
        row_seed, salt))
  return tf.map_fn(one, rows, fn_output_signature=tf.float32)


def _lengths_of(ids):
  """Real words of token ids [N, T] (0 is padding / end): [N] int32."""
  return tf.reduce_sum(tf.cast(tf.not_equal(ids, 0), tf.int32), axis=1)


class AttnGAN(ModelSpec):
  """AttnGAN: conditioning augmentation, G0/G1/G2 with word attention, per-stage D, DAMSM."""
  name = "attngan"
  description = "AttnGAN: word attention and DAMSM for text-to-image (Xu et al. 2018)"
  hparams_class = AttnGANHParams
  conditional = False  # conditioned on captions, not class labels
  has_attention_maps = True
  # Official: Adam 2e-4 (0.5, 0.999) for G and D; G's saved weights are its 0.999 EMA.
  run_defaults = {"generator_lr": 2e-4, "discriminator_lr": 2e-4, "beta1": 0.5, "beta2": 0.999,
                  "ema_decay": 0.999,
                  # Official trainer's step (engines/training_step.py): one noise and CA draw,
                  # each D steps on those fakes, then G's loss on them against the updated Ds;
                  # PyTorch Adam (eps 1e-8 on sqrt(v_hat)); EMA of parameters only; PyTorch BN's
                  # unbiased running variance.
                  "step_order": "discriminator_first", "step_fakes": "shared",
                  "adam_epsilon_form": "pytorch", "bn_moving_variance": "unbiased"}
  # --mode=sample with --captions_file: images and attention figures for given captions.
  modes = {"pretrain_damsm": damsm_pretrain.pretrain, "sample": attngan_sampling.run_sample}
  starting_modes = ("pretrain_damsm",)  # writes <model_dir>/damsm before any training
  multi_worker_modes = ("pretrain_damsm",)  # every worker runs it (damsm_replicas.py)

  # --- hyperparameters ------------------------------------------------------------------------
  def validate(self, hparams, image_size, dataset):
    if not dataset.has_captions:
      return (f"--model=attngan draws images from captions; --dataset={dataset.name} has "
              "none (use cub, coco or a captioned dataset).")
    if hparams.damsm_term_class_mask and not dataset.num_classes:
      return (f"--damsm_term_class_mask needs class labels; --dataset={dataset.name} has none.")
    return attngan_networks.check_sizes(image_size, hparams.branch_num)

  def z_dim(self, cfg):
    return cfg.hparams.z_dim

  def prepare(self, cfg):
    """With --pretrain_damsm_first: pretrains the DAMSM unless --damsm_dir holds one already
    (a finished or interrupted pretraining resumes: pretrain stops at --damsm_epochs); on one
    device whatever --distribution the training uses."""
    if cfg.hparams.pretrain_damsm_first:
      if cfg.distribution not in damsm_pretrain.ONE_DEVICE:
        logging.warning("AttnGAN: the DAMSM is pretrained on one device first "
                        "(--distribution=%s applies to the AttnGAN training)", cfg.distribution)
      damsm_pretrain.pretrain(cfg.replace(distribution="none"))

  # --- the authors' released weights (estimators/models/attngan_import.py) -------------------
  has_importer = True

  def read_release(self, paths):
    return attngan_import.read_release(paths)

  def import_weights(self, cfg, release):
    return attngan_import.import_weights(cfg, release, lambda: self.build_networks(cfg))

  # --- networks -------------------------------------------------------------------------------
  def make_generator(self, cfg, frozen=None):
    """G with the frozen text encoder; in a TF1 graph (training, evaluation graphs) the text
    encoder starts from the DAMSM checkpoint, eagerly (export, sampling) the GAN checkpoint
    restores it."""
    if frozen is None:
      frozen = load_frozen_damsm(cfg)
    text = FrozenTextEncoder(checkpoint=frozen.checkpoint, **text_encoder_config(frozen.config))
    hp = cfg.hparams
    generator = attngan_networks.Generator(
        text, cfg.image_size, branch_num=hp.branch_num, ngf=hp.gf_dim, z_dim=hp.z_dim,
        condition_dim=hp.condition_dim, r_num=hp.r_num, cross_replica=cfg.cross_replica_bn)
    if not tf.executing_eagerly():  # the graph's one generator (estimators.networks)
      _GENERATORS[tf.compat.v1.get_default_graph()] = generator
    return generator

  def make_discriminator(self, cfg):
    hp = cfg.hparams
    return attngan_networks.Discriminator(cfg.image_size, hp.branch_num, hp.df_dim,
                                          cross_replica=cfg.cross_replica_bn)

  # --- inputs ---------------------------------------------------------------------------------
  def generator_inputs(self, cfg, rows, seed, real):
    hp = cfg.hparams
    return {"noise": _stateless_normal(seed, rows, hp.z_dim, 1),
            "ca_noise": _stateless_normal(seed, rows, hp.condition_dim, 2),
            "captions": tf.cast(real["captions"], tf.int32),
            "caption_length": tf.cast(real["caption_length"], tf.int32),
            "class_ids": tf.cast(real["labels"], tf.int32)}

  def held_out_captions(self, cfg, num):
    """{'captions' [num, T], 'caption_length', 'image_ids', 'class_ids' [num]} from the test
    split, cycling through its images and their captions (row i: image i % M, caption
    (i // M) % K), in file order, with each caption's image index and class (0 without)."""
    test = test_captions(cfg)
    m, k = test["all_captions"].shape[:2]
    rows = np.arange(num)
    image, caption = rows % m, (rows // m) % k
    return {"captions": test["all_captions"][image, caption],
            "caption_length": test["all_caption_lengths"][image, caption],
            "image_ids": image.astype(np.int32), "class_ids": test["labels"][image]}

  def inputs_for_captions(self, cfg, ids, seed, truncation=None):
    """Sampling inputs for caption ids [N, T] (padded with 0): noise, CA noise, captions."""
    ids = np.asarray(ids, np.int32)
    num = ids.shape[0]
    base = super().sample_inputs(cfg, num, seed, truncation=truncation)
    ca = np.random.RandomState(seed + 7).standard_normal((num, cfg.hparams.condition_dim))
    return {"noise": base["noise"], "ca_noise": ca.astype(np.float32), "captions": ids}

  def build_inputs(self, cfg, num):
    """One-word captions (token 1): building G reads no held-out captions, so export works
    without the dataset (an imported run's data_dir may hold none)."""
    return self.inputs_for_captions(cfg, np.ones((num, 1), np.int32), seed=0)

  def sample_inputs(self, cfg, num, seed, truncation=None, labels=None):
    """Held-out test captions (with the image and class each belongs to, for R-precision)."""
    del labels
    held_out = self.held_out_captions(cfg, num)
    inputs = self.inputs_for_captions(cfg, held_out["captions"], seed, truncation)
    inputs.update(image_ids=held_out["image_ids"], class_ids=held_out["class_ids"])
    return inputs

  def fixed_inputs(self, cfg):
    return self.inputs_for_captions(cfg, self.held_out_captions(cfg, 16)["captions"],
                                    cfg.seed + 12345)

  def max_words(self, cfg):
    """Sampling from caption files: the evaluation length."""
    return eval_max_words(cfg)

  def grid_columns(self, cfg, num):
    return 4 if num % 4 == 0 else 1

  # --- forward passes -------------------------------------------------------------------------
  def generate(self, cfg, generator, inputs, training):
    captions = tf.cast(inputs["captions"], tf.int32)
    lengths = inputs.get("caption_length")
    lengths = _lengths_of(captions) if lengths is None else tf.cast(lengths, tf.int32)
    return generator(inputs["noise"], captions, lengths, inputs["ca_noise"], training=training)

  def stage_images(self, cfg, data_dict):
    """Every stage's images: G's outputs, or the real batch resized to each stage's size."""
    sizes = attngan_networks.stage_sizes(cfg.image_size, cfg.hparams.branch_num)
    if "stage_0" in data_dict:
      return [data_dict[f"stage_{k}"] for k in range(len(sizes))]
    real = data_dict["images"]
    return [real if s == cfg.image_size else
            tf.image.resize(real, [s, s], method="bilinear", antialias=True) for s in sizes]

  def discriminate(self, cfg, discriminator, data_dict, inputs, training):
    """{'stage_<k>': {'uncond', 'cond'} logits [B]} (+ official weighting, real images:
    'cond_wrong' [B - 1], image j with the sentence of example j + 1 of the global batch)."""
    if "sentence" in data_dict:  # generated: G's own sentence code
      sentence, wrong = data_dict["sentence"], None
    else:  # real: the same captions through this graph's G's frozen text encoder
      generator = _GENERATORS.get(tf.compat.v1.get_default_graph())
      if generator is None:
        raise ValueError("AttnGAN's discriminator encodes the real captions with the graph's "
                         "generator: build the generator first (TF-GAN does)")
      _, sentence = generator.encode_text(tf.cast(inputs["captions"], tf.int32),
                                          tf.cast(inputs["caption_length"], tf.int32))
      wrong = None
      if cfg.hparams.loss_weighting == "official":
        every, first = attngan_losses.global_batch(sentence)
        wrong = attngan_losses.wrong_sentences(every, first, tf.shape(sentence)[0])
    return discriminator(self.stage_images(cfg, data_dict), sentence, wrong, training=training)

  # --- losses ---------------------------------------------------------------------------------
  def damsm_term(self, cfg, outputs, class_ids):
    """lambda-free L_DAMSM of G's last stage against its captions (w0 + w1 + s0 + s1), over the
    global batch (the official code's one-GPU batch) in a multi-replica step."""
    hp = cfg.hparams
    regions, image_global = frozen_image_encoder(cfg).encode_images(outputs["images"])
    features, _ = attngan_losses.global_batch(
        {"words": outputs["words"], "sentence": outputs["sentence"], "regions": regions,
         "image_global": image_global})
    ids = {"lengths": outputs["caption_length"]}
    if hp.damsm_term_class_mask:
      ids["class_ids"] = class_ids
    ids, _ = attngan_losses.global_batch(ids)  # no gradient path: gathered on their own
    variant = damsm_ops.VARIANTS[hp.damsm_term_variant]
    return damsm_ops.damsm_loss(features["words"], features["sentence"], features["regions"],
                                features["image_global"], ids["lengths"], ids.get("class_ids"),
                                variant)

  def generator_loss(self, cfg, gan_model):
    hp = cfg.hparams
    fake = gan_model.discriminator_gen_outputs
    outputs = gan_model.generated_data
    scalars = {}
    adversarial = 0.0
    for k in range(hp.branch_num):
      term = attngan_losses.generator_stage_loss(fake[f"stage_{k}"], hp.loss_weighting)
      scalars[f"generator/adversarial_stage_{k}"] = term
      adversarial += term
    kl = kl_loss(outputs["mu"], outputs["logvar"])
    loss = adversarial + kl
    scalars["generator/kl"] = kl
    if hp.lambda_damsm:
      terms = self.damsm_term(cfg, outputs, gan_model.generator_inputs.get("class_ids"))
      loss += hp.lambda_damsm * terms.total
      scalars.update({"generator/damsm_w0": terms.w0, "generator/damsm_w1": terms.w1,
                      "generator/damsm_s0": terms.s0, "generator/damsm_s1": terms.s1})
    return loss, scalars

  def discriminator_loss(self, cfg, gan_model):
    hp = cfg.hparams
    real = gan_model.discriminator_real_outputs
    fake = gan_model.discriminator_gen_outputs
    loss, scalars = 0.0, {}
    for k in range(hp.branch_num):
      real_k = dict(real[f"stage_{k}"])
      if "cond_wrong" in real_k:  # the B - 1 pairs of the global batch
        real_k["cond_wrong"], _ = attngan_losses.global_batch(real_k["cond_wrong"])
      stage, terms = attngan_losses.discriminator_stage_loss(
          real_k, fake[f"stage_{k}"], hp.loss_weighting)
      loss += stage
      scalars[f"discriminator/stage_{k}"] = stage
      scalars[f"discriminator/mean_real_cond_logit_{k}"] = tf.reduce_mean(real[f"stage_{k}"]["cond"])
      scalars[f"discriminator/mean_fake_cond_logit_{k}"] = tf.reduce_mean(fake[f"stage_{k}"]["cond"])
    return loss, scalars

  # --- summaries ------------------------------------------------------------------------------
  def generator_summaries(self, cfg, generator):
    """Fixed-caption grids of every stage; per attention stage, sample 0's image then the maps
    of its top-5 words by attention mass (image, summaries' drawing) and those words (text)."""
    inputs = {k: tf.constant(v) for k, v in self.fixed_inputs(cfg).items()}
    outputs = self.generate(cfg, generator, inputs, training=False)
    num = int(outputs["images"].shape[0])
    for k in range(cfg.hparams.branch_num):
      summaries.add_image_grid(f"fixed_caption_grid_stage_{k}", outputs[f"stage_{k}"],
                               self.grid_columns(cfg, num))
    words = tf.constant(run_vocabulary(cfg).words)
    size = summaries.tile_size(cfg.image_size)
    with tf.compat.v1.name_scope(""):
      for k in range(1, cfg.hparams.branch_num):
        beta = outputs[f"attention_{k}"][0]  # [T, N]
        mass, top = tf.math.top_k(tf.reduce_mean(beta, axis=1), k=min(5, int(beta.shape[0])))
        # Figure 4: the stage's image, then the maps of its top words in the text's order.
        figure = summaries.token_figure(outputs[f"stage_{k}"][:1], tf.gather(beta, top)[None],
                                        size)
        summaries.add_figure(f"attention/words_stage_{k}", figure)
        caption = tf.cast(inputs["captions"][0], tf.int32)  # [T]
        ids = tf.gather(caption, top)
        listing = tf.strings.reduce_join(
            tf.gather(words, ids) + " " + tf.strings.as_string(mass, precision=3),
            separator=", ")  # the 5 words with the most attention mass, as in Figure 4
        tf.compat.v1.summary.text(f"attention/top_words_stage_{k}",
                                  tf.strings.join([tf.strings.reduce_join(
                                      tf.gather(words, tf.boolean_mask(caption, caption > 0)), separator=" "),
                                                   ": ", listing]))

  # --- evaluation -----------------------------------------------------------------------------
  def extra_metrics(self, cfg):
    protocols = [p for p in cfg.hparams.r_precision_protocols.split(",") if p]
    return RPrecisionMetrics(cfg, protocols) if protocols else None

  # --- serving --------------------------------------------------------------------------------
  def serving_signature(self, cfg):
    hp = cfg.hparams
    return {"noise": tf.TensorSpec([None, hp.z_dim], tf.float32, name="noise"),
            "captions": tf.TensorSpec([None, None], tf.int32, name="captions"),
            "ca_noise": tf.TensorSpec([None, hp.condition_dim], tf.float32, name="ca_noise")}

  def serving_outputs(self, cfg, outputs):
    served = {"images": outputs["images"]}
    for k in range(cfg.hparams.branch_num):
      served[f"stage_{k}"] = outputs[f"stage_{k}"]
    return served

  def serving_notes(self, cfg):
    return ("serving_default: noise [N, z_dim] float32, captions [N, T] int32 token ids of the "
            "run's vocab.txt (0 = padding; lengths are the non-zero ids), ca_noise [N, c_dim] "
            "float32 (the conditioning-augmentation draw, N(0, 1)) -> images (last stage) and "
            "stage_<k> [N, s_k, s_k, 3] in [-1, 1]. 'caption_strings': the same with captions "
            "as strings [N], tokenised with the saved vocabulary (unknown words dropped).\n")

  def extra_signatures(self, cfg, generator):
    signatures = dict(super().extra_signatures(cfg, generator))  # 'attention'
    tokenizer = CaptionTokenizer(run_vocabulary(cfg).words, eval_max_words(cfg))
    generator.caption_tokenizer = tokenizer  # tracked by G: saved with the SavedModel
    hp = cfg.hparams

    def caption_strings(captions, noise, ca_noise):
      ids = tokenizer(captions)
      outputs = self.generate(cfg, generator, {"noise": noise, "captions": ids,
                                               "ca_noise": ca_noise}, training=False)
      return {**self.serving_outputs(cfg, outputs), "captions": ids}
    signatures["caption_strings"] = tf.function(caption_strings, input_signature=[
        tf.TensorSpec([None], tf.string, name="captions"),
        tf.TensorSpec([None, hp.z_dim], tf.float32, name="noise"),
        tf.TensorSpec([None, hp.condition_dim], tf.float32, name="ca_noise")])
    return signatures

  # --- attention maps -------------------------------------------------------------------------
  def attention(self, cfg, generator, inputs):
    """(images, {'attention_stage_<k>': [B, T, N]}): each word's weights over stage k-1's
    feature map (a 'head' per word, padding words all zero)."""
    outputs = self.generate(cfg, generator, inputs, training=False)
    maps = {f"attention_stage_{k}": outputs[f"attention_{k}"]
            for k in range(1, cfg.hparams.branch_num)}
    return outputs["images"], maps

  def build_networks(self, cfg):
    """--dry_run: the networks with random weights when no DAMSM is there yet."""
    try:
      frozen = load_frozen_damsm(cfg)
    except (FileNotFoundError, ValueError):
      frozen = None
    if frozen is None:  # the text encoder's architecture from the DAMSM flags
      hp = cfg.hparams
      try:
        vocab_size = len(run_vocabulary(cfg))
      except (FileNotFoundError, ValueError) as e:  # --dry_run reads no data
        logging.warning("AttnGAN: no vocabulary readable (%s); the text encoder is counted "
                        "with a 2-word vocabulary", e)
        vocab_size = 2
      frozen = FrozenDamsm("", "", "", {"vocab_size": vocab_size,
                                        "word_dim": hp.damsm_word_dim,
                                        "embedding_dim": hp.damsm_embedding_dim})
    generator = self.make_generator(cfg, frozen)
    ids = np.ones([2, 4], np.int32)
    inputs = {k: tf.constant(v) for k, v in self.inputs_for_captions(cfg, ids, 0).items()}
    outputs = self.generate(cfg, generator, inputs, training=False)
    discriminator = self.make_discriminator(cfg)
    discriminator(self.stage_images(cfg, outputs), outputs["sentence"], training=False)
    return {"generator": generator, "discriminator": discriminator}


class RPrecisionMetrics:
  """R-precision of the evaluated images against the test split's captions, streamed: each
  batch's images and the captions they were drawn from are encoded by the scoring DAMSM and
  scored at once (eval/r_precision.py); the pool is every test caption, keyed by its image
  (paper protocol) and, on datasets with classes, its class (dmgan)."""

  def __init__(self, cfg, protocols, seed=0):
    from eval import r_precision as r_precision_lib  # pylint: disable=import-outside-toplevel
    path = cfg.hparams.r_precision_damsm_dir or damsm_dir(cfg)
    self.scorer = damsm.load_damsm(path, vocab=run_vocabulary(cfg))
    test = test_captions(cfg)
    m, k, t = test["all_captions"].shape
    pool = self._sentences(test["all_captions"].reshape(m * k, t),
                           test["all_caption_lengths"].reshape(m * k))
    has_classes = bool(data.get_spec(cfg.dataset).num_classes)
    self.keys = {"paper": "image_ids", "dmgan": "class_ids" if has_classes else "image_ids"}
    pool_keys = {"image_ids": np.repeat(np.arange(m), k),
                 "class_ids": np.repeat(test["labels"], k)}
    self.accumulators = {p: r_precision_lib.RPrecisionAccumulator(
        p, pool, pool_keys[self.keys[p]], seed) for p in protocols}

  def _sentences(self, ids, lengths, batch=500):
    out = [self.scorer.encode_text(ids[a:a + batch], lengths[a:a + batch])[1].numpy()
           for a in range(0, len(ids), batch)]
    return np.concatenate(out)

  def update(self, inputs, images):
    ids = np.asarray(inputs["captions"])
    lengths = np.sum(ids != 0, axis=1)
    _, image_global = self.scorer.encode_images(tf.convert_to_tensor(images, tf.float32))
    sentence = self._sentences(ids, lengths)
    for p, accumulator in self.accumulators.items():
      accumulator.update(image_global.numpy(), sentence, np.asarray(inputs[self.keys[p]]))

  def result(self):
    metrics, protocol = {}, {}
    for p, accumulator in self.accumulators.items():
      result = accumulator.result()
      metrics[f"r_precision_{p}"] = result.mean
      metrics[f"r_precision_{p}_std"] = result.std
      protocol[f"r_precision_{p}"] = {
          **result.protocol, "keys": self.keys[p], "caption_split": "test",
          "damsm_checkpoint": self.scorer.checkpoint_path,
          "damsm_sha256": self.scorer.checkpoint_sha256,
          "damsm_image_encoder": self.scorer.config.get("image_weights_source")}
    return metrics, protocol


def _load_options(cfg):
  """data.load options of the evaluation captions (as estimators.engines.input_fn.load_options,
  which this module cannot import: it imports the models): the run's vocab.txt once written,
  eval_max_words(cfg) words per caption."""
  options = dict(cfg.data_options)
  options.update(seed=cfg.seed, strict=cfg.strict_data, max_words=eval_max_words(cfg))
  vocab = os.path.join(cfg.model_dir, "vocab.txt")
  if os.path.exists(vocab):
    options["vocabulary"] = vocab
  return options


def eval_max_words(cfg):
  """T of the captions at evaluation, sampling and serving: --eval_max_words, else the
  dataset's (official eval_*.yml: CUB 25, COCO 20), else its training T."""
  spec = data.get_spec(cfg.dataset)
  return cfg.hparams.eval_max_words or spec.eval_max_words or spec.default_max_words


class CaptionTokenizer(tf.Module):
  """Caption strings [N] -> token ids [N, max_words] in TensorFlow ops, as data.text.tokenize:
  U+FFFD U+FFFD -> space, lowercase, runs of letters/digits/underscore, non-ASCII characters
  dropped from each, words outside the vocabulary dropped, the first max_words kept, 0-padded.
  (A token is a run of Unicode letters, digits and '_', as Python's str \\w.)"""

  def __init__(self, words, max_words):
    super().__init__(name="caption_tokenizer")
    self.max_words = int(max_words)
    keys = tf.constant(list(words[1:]), tf.string)
    values = tf.range(1, len(words), dtype=tf.int64)
    self.table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), -1)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def __call__(self, captions):
    text = tf.strings.regex_replace(captions, "\ufffd\ufffd", " ")
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"[^\pL\pN_]+", " ")
    text = tf.strings.regex_replace(text, r"[^\x00-\x7f]", "")
    tokens = tf.strings.split(tf.strings.strip(text))  # ragged [N, None]
    ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
    ids = tf.ragged.boolean_mask(ids, ids > 0)
    ids = ids[:, :self.max_words]
    return tf.cast(ids.to_tensor(0, shape=[None, self.max_words]), tf.int32)


register(AttnGAN())
