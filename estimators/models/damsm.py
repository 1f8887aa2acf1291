"""The DAMSM (AttnGAN, Xu et al. 2018, sec. 3.2): its hyperparameters, its saved form, the
frozen encoders AttnGAN trains against, and R-precision of generated images. Pretraining
(`--mode=pretrain_damsm`) is estimators/models/damsm_pretrain.py.

Public surface (AttnGAN's module inherits `DamsmHParams`):
  DamsmHParams         the DAMSM hyperparameters, flags prefixed `damsm_` (paper defaults)
  config_dict, build_encoders, flat_variables   the DAMSM directory's format (below)
  load_damsm(dir)      -> Damsm: the restored encoders, eagerly or inside a TF1 graph (every
                       replica of a tf.distribute strategy too: `restoring_from`)
  r_precision_record   R-precision of generated images per protocol, a metrics.jsonl record

The DAMSM directory (`--damsm_dir`, default <model_dir>/damsm) holds:
  ckpt-<epoch>.index/.data-*, checkpoint   the encoders (+ Adam and the epoch, for resume); every
      encoder variable is saved under a flat key `text_NNN` / `image_NNN` in a fixed order
      (`ordered_weights`), so a TF1 graph can restore them by key (`restoring_from`)
  vocab.txt            the vocabulary the text encoder's ids index (data.text.Vocabulary)
  damsm_config.json    encoder choice (and its Inception: 'keras' or 'torchvision'), dimensions,
      vocabulary size and sha256, image weights source, loss variant, and the name and shape
      of every saved variable
  metrics.jsonl        one line per epoch: train and held-out loss terms, top-1 retrieval
  train/, eval/        TensorBoard scalars

Variants (tfgan_attention.damsm): `--damsm_variant=paper` (default) uses the flags as given;
`official` is the released code's setting: gamma1 = 4, eq. 10 without 1/gamma2, same-class
non-matching pairs masked out as negatives (datasets with classes: CUB, digits; COCO has none),
Inception BN in batch-statistics mode during pretraining (its `.train()` quirk). Each of these is
also its own flag, usable with `paper`.
"""
import dataclasses
import hashlib
import json
import os
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from data import text as text_lib
from estimators.model_registry import POSITIVE, hparam
from estimators.models import damsm_networks
from eval import r_precision as r_precision_lib
from tfgan_attention import damsm as damsm_lib

CONFIG_FILE = "damsm_config.json"
VOCAB_FILE = "vocab.txt"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_PREFIX = "ckpt"
RANDOM_WEIGHTS_NOTE = ("Inception-v3 with RANDOM weights (no --damsm_inception_weights given): "
                       "its features carry no ImageNet knowledge; never report numbers from it "
                       "as Inception-based")
_ENCODERS = ("inception_v3", "small_cnn")
_BN_MODES = damsm_networks.BATCH_NORM_MODES


@dataclasses.dataclass(frozen=True)
class DamsmHParams:
  """DAMSM hyperparameters (paper sec. 3.2 / 4; official code values where the paper is silent).

  AttnGAN's hyperparameters inherit these, so `--model=attngan --mode=pretrain_damsm` works.
  """
  damsm_gamma1: float = hparam(5.0, "DAMSM eq. 9: attention sharpness over regions (paper 5; "
                               "the official code 4, which --damsm_variant=official uses).",
                               check=POSITIVE)
  damsm_gamma2: float = hparam(5.0, "DAMSM eq. 10: weight of the best-matching word (paper 5).",
                               check=POSITIVE)
  damsm_gamma3: float = hparam(10.0, "DAMSM eq. 11: posterior smoothing (paper 10).",
                               check=POSITIVE)
  damsm_inverse_gamma2: bool = hparam(True, "DAMSM eq. 10's 1/gamma2 exponent (paper); false = "
                                      "the official words_loss, which omits it.")
  damsm_class_masks: bool = hparam(False, "Exclude same-class non-matching pairs as negatives "
                                   "(official CUB code; needs a dataset with classes).")
  damsm_inception_bn: str = hparam("inference", "Inception BN during DAMSM pretraining: "
                                   "'inference' (frozen, the paper) or 'batch_statistics' (the "
                                   "official .train() quirk: batch statistics, drifting moving "
                                   "averages).", choices=_BN_MODES)
  damsm_variant: str = hparam("paper", "DAMSM loss variant: 'paper' (the flags as given) or "
                              "'official' (gamma1 4, no 1/gamma2, class masks when the dataset "
                              "has classes, Inception BN batch statistics).",
                              choices=("paper", "official"))
  damsm_batch_size: int = hparam(48, "DAMSM pretraining batch M (official 48; the paper says "
                                 "50).", check=POSITIVE)
  damsm_embedding_dim: int = hparam(256, "D: the common word/region/sentence feature size "
                                    "(BiLSTM 2 x D/2).", check=(lambda v: v > 0 and v % 2 == 0,
                                                                 "must be positive and even"))
  damsm_word_dim: int = hparam(300, "Word-embedding size of the text encoder (official 300).",
                               check=POSITIVE)
  damsm_words_num: int = hparam(18, "Words per caption in DAMSM pretraining, longer captions "
                                "sub-sampled (CUB 18, COCO 15).", check=POSITIVE)
  damsm_image_encoder: str = hparam("inception_v3", "DAMSM image encoder: 'inception_v3' (the "
                                    "paper's, frozen) or 'small_cnn' (trainable, for tiny "
                                    "images such as the digits; never Inception).",
                                    choices=_ENCODERS)
  damsm_inception_weights: str = hparam("", "Local Keras InceptionV3 no-top weights file "
                                        "(.h5); '' = random weights (the run says so).",
                                        may_change=True)
  damsm_inception: str = hparam("keras", "inception_v3 encoder's network: 'keras' "
                                "(keras.applications.InceptionV3) or 'torchvision' (the one the "
                                "official code ran: 3x3 average pools count the zero padding, BN "
                                "with a learned scale, eps 0.001; the import of the authors' "
                                "image_encoder .pth chooses it: README 'Released weights').",
                                choices=damsm_networks.INCEPTION_VARIANTS)
  damsm_cnn_width: int = hparam(32, "small_cnn: channels of its first conv (then x2, x4).",
                                check=POSITIVE)
  damsm_image_size: int = hparam(299, "Image size the pretraining reads (official 299: resize "
                                 "to 355, random crop 299, flip; Inception resizes to 299 "
                                 "anyway).", check=POSITIVE)
  damsm_lr: float = hparam(0.002, "DAMSM Adam learning rate (official 0.002, betas 0.5, "
                           "0.999).", check=POSITIVE)
  damsm_lr_decay: float = hparam(0.98, "Per-epoch lr factor, applied while lr > lr0/10 "
                                 "(official 0.98).", check=(lambda v: 0 < v <= 1,
                                                            "must be in (0, 1]"))
  damsm_rnn_grad_clip: float = hparam(0.25, "Global-norm clip of the text encoder's gradients "
                                      "(official 0.25; 0 = none).",
                                      check=(lambda v: v >= 0, "must be >= 0"))
  damsm_reset_adam_each_epoch: bool = hparam(False, "Official quirk: Adam is rebuilt every "
                                             "epoch (moments and step reset).")
  damsm_epochs: int = hparam(600, "DAMSM pretraining epochs (official max 600; released "
                             "encoders: epoch 200 CUB, 100 COCO).", check=POSITIVE,
                             may_change=True)
  damsm_eval_examples: int = hparam(0, "Held-out examples scored per epoch (0 = the whole "
                                    "test split, in full batches).",
                                    check=(lambda v: v >= 0, "must be >= 0"),
                                    may_change=True)
  damsm_dir: str = hparam("", "DAMSM directory to write (pretrain) or read (AttnGAN, "
                          "R-precision); '' = <model_dir>/damsm.", may_change=True)

  def resolved(self) -> "DamsmHParams":
    """The effective settings: the official variant's values, or the flags as given."""
    if self.damsm_variant != "official":
      return self
    return dataclasses.replace(self, damsm_gamma1=4.0, damsm_inverse_gamma2=False,
                               damsm_class_masks=True, damsm_inception_bn="batch_statistics")

  def loss_variant(self) -> damsm_lib.DamsmVariant:
    h = self.resolved()
    return damsm_lib.DamsmVariant(name=self.damsm_variant, gamma1=h.damsm_gamma1,
                                  gamma2=h.damsm_gamma2, gamma3=h.damsm_gamma3,
                                  inverse_gamma2=h.damsm_inverse_gamma2)


_OFFICIAL_FIXED = {"damsm_gamma1": (5.0, 4.0), "damsm_inverse_gamma2": (True, False),
                   "damsm_class_masks": (False, True),
                   "damsm_inception_bn": ("inference", "batch_statistics")}


def validate_damsm(hparams: DamsmHParams) -> Optional[str]:
  """Why these DAMSM settings contradict each other, or None (ModelSpec.validate calls it)."""
  if hparams.damsm_variant == "official":
    for name, allowed in _OFFICIAL_FIXED.items():
      if getattr(hparams, name) not in allowed:
        return (f"--damsm_variant=official fixes {name} to {allowed[1]!r}; drop --{name} or use "
                f"--damsm_variant=paper with the options you want.")
  if hparams.damsm_inception_weights and hparams.damsm_image_encoder != "inception_v3":
    return "--damsm_inception_weights needs --damsm_image_encoder=inception_v3."
  if hparams.damsm_inception_weights and hparams.damsm_inception == "torchvision":
    return ("--damsm_inception=torchvision takes its weights from an imported official "
            "image_encoder .pth (--mode=import_weights), not --damsm_inception_weights.")
  if (hparams.damsm_image_encoder == "small_cnn"
      and hparams.damsm_image_size % 8):
    return (f"--damsm_image_encoder=small_cnn needs --damsm_image_size divisible by 8, got "
            f"{hparams.damsm_image_size}.")
  return None


def damsm_dir_of(cfg) -> str:
  return cfg.hparams.damsm_dir or os.path.join(cfg.model_dir, "damsm")


# --- networks and their saved form -------------------------------------------------------------

def build_encoders(config: Dict[str, object], training_bn: Optional[str] = None):
  """(TextEncoder, image encoder) as damsm_config.json describes them, with variables.

  training_bn: the Inception BN mode to build with (pretraining); None = inference (frozen use).
  """
  text_encoder = damsm_networks.TextEncoder(
      config["vocab_size"], embedding_dim=config["word_dim"],
      hidden_per_direction=config["embedding_dim"] // 2, name="damsm_text_encoder")
  if config["image_encoder"] == "inception_v3":
    image_encoder = damsm_networks.InceptionImageEncoder(
        feature_dim=config["embedding_dim"], weights_path=config.get("inception_weights_path"),
        batch_norm_mode=training_bn or "inference",
        inception=config.get("inception", "keras"),
        width_divisor=config.get("inception_width_divisor", 1), name="damsm_image_encoder")
  else:
    width = config["cnn_width"]
    image_encoder = damsm_networks.SmallCNNImageEncoder(
        feature_dim=config["embedding_dim"], widths=(width, 2 * width, 4 * width),
        name="damsm_image_encoder")
  size, words = config["image_size"], config["words_num"]
  text_encoder(tf.zeros([1, words], tf.int32), tf.ones([1], tf.int32))
  image_encoder(tf.zeros([1, size, size, 3]))
  return text_encoder, image_encoder


def _leaf_layers(layer):
  """Layers without sublayers, depth first in construction order (independent of trainable)."""
  children = [l for l in getattr(layer, "layers", [])]
  if not children:
    return [layer]
  return [leaf for child in children for leaf in _leaf_layers(child)]


def ordered_weights(model):
  """Every variable of `model` in a fixed order: Keras' `weights` order changes when layers are
  frozen (the BN modes), this one does not."""
  seen, out = set(), []
  for leaf in _leaf_layers(model):
    for v in leaf.weights:
      if id(v) not in seen:
        seen.add(id(v))
        out.append(v)
  missing = [v.name for v in model.weights if id(v) not in seen]
  if missing:
    raise AssertionError(f"variables outside the leaf layers of {model.name}: {missing[:3]}")
  return out


def flat_variables(text_encoder, image_encoder) -> Dict[str, tf.Variable]:
  """{'text_NNN' | 'image_NNN': variable}: the checkpoint keys of the encoders."""
  return {**text_variables(text_encoder),
          **{f"image_{i:03d}": v for i, v in enumerate(ordered_weights(image_encoder))}}


def text_variables(text_encoder) -> Dict[str, tf.Variable]:
  """{'text_NNN': variable}: the checkpoint keys of a text encoder (also G's frozen one)."""
  return {f"text_{i:03d}": v for i, v in enumerate(ordered_weights(text_encoder))}


def variable_table(flat):
  """damsm_config.json's 'variables': {flat key: {'name', 'shape'}}."""
  return {k: {"name": v.name, "shape": list(v.shape)} for k, v in flat.items()}


def weights_source(h):
  if h.damsm_image_encoder == "small_cnn":
    return "small_cnn: trainable CNN from random init (not Inception)"
  if h.damsm_inception_weights:
    return f"inception_v3: {os.path.abspath(h.damsm_inception_weights)}"
  return "inception_v3: random weights (no --damsm_inception_weights)"


def config_dict(cfg, vocab, use_masks) -> dict:
  """damsm_config.json of a DAMSM pretrained (or written) with cfg's DAMSM settings."""
  h = cfg.hparams.resolved()
  return {
      "image_encoder": h.damsm_image_encoder,
      "embedding_dim": h.damsm_embedding_dim,
      "word_dim": h.damsm_word_dim,
      "words_num": h.damsm_words_num,
      "image_size": h.damsm_image_size,
      "cnn_width": h.damsm_cnn_width,
      "inception": h.damsm_inception,
      "inception_weights_path": (os.path.abspath(h.damsm_inception_weights)
                                 if h.damsm_inception_weights else None),
      "image_weights_source": weights_source(h),
      "inception_bn_in_pretraining": h.damsm_inception_bn,
      "vocab_size": len(vocab),
      "vocab_sha256": vocabulary_sha256(vocab),
      "dataset": cfg.dataset,
      "loss": dataclasses.asdict(cfg.hparams.loss_variant()),
      "class_masks": use_masks,
  }


def checkpoint_sha256(prefix: str) -> str:
  """sha256 over a checkpoint's .index and data files (names sorted)."""
  directory, base = os.path.split(prefix)
  names = sorted(n for n in os.listdir(directory or ".")
                 if n == base + ".index" or n.startswith(base + ".data-"))
  digest = hashlib.sha256()
  for name in names:
    with open(os.path.join(directory, name), "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        digest.update(block)
  return "sha256:" + digest.hexdigest()


def vocabulary_sha256(vocab: text_lib.Vocabulary) -> str:
  return "sha256:" + hashlib.sha256(("\n".join(vocab.words) + "\n").encode()).hexdigest()


def checkpoint_key(flat_key: str) -> str:
  """The key a tf.train.Checkpoint(**flat) stores `flat_key` ('text_000') under."""
  return f"{flat_key}/.ATTRIBUTES/VARIABLE_VALUE"


def creation_keys(build: Callable, keys_of: Callable) -> List[Optional[str]]:
  """The flat checkpoint key of each variable `build()` creates, in creation order (None: one
  the checkpoint does not hold); `keys_of(build())` is {flat key: variable}. Found by building
  once in a scratch graph (Keras' `weights` order is not its creation order)."""
  created = []

  def record(next_creator, **kwargs):
    created.append(next_creator(**kwargs))
    return created[-1]
  with tf.Graph().as_default(), tf.variable_creator_scope(record):
    key_of = {id(v): k for k, v in keys_of(build()).items()}
  return [key_of.get(id(v)) for v in created]


def restoring_from(prefix: str, keys: Sequence[Optional[str]]):
  """A creator scope for a TF1 graph: the i-th variable created inside starts from the value
  checkpoint `prefix` holds under keys[i] (its initial value reads the checkpoint, so the
  graph's initialiser loads it and a later Saver restore overrides it).

  Unlike tf.compat.v1.train.init_from_checkpoint this makes no merge_call: under a
  tf.distribute strategy every replica would have to make that call at the same point, and the
  replica that made it alone paused half-way through building G while the next replica built
  the rest and got the wrong variables (README: AttnGAN under --distribution=mirrored)."""
  shapes = dict(tf.train.list_variables(prefix))
  pending = list(keys)

  def creator(next_creator, **kwargs):
    if not pending:
      raise DamsmMismatchError(f"the encoders create more variables than the {len(keys)} "
                               f"restored from {prefix}")
    key = pending.pop(0)
    if key is not None:
      dtype = tf.as_dtype(kwargs.get("dtype") or tf.float32).base_dtype
      shape = shapes[checkpoint_key(key)]

      def initial_value():
        with tf.device("/cpu:0"):  # RestoreV2 runs on the CPU (as init_from_checkpoint's)
          value = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=[checkpoint_key(key)],
                                       shape_and_slices=[""], dtypes=[dtype])[0]
        return tf.ensure_shape(value, shape)
      kwargs["initial_value"] = initial_value
    return next_creator(**kwargs)
  return tf.variable_creator_scope(creator)


# --- the restored DAMSM ------------------------------------------------------------------------

class DamsmNotFoundError(FileNotFoundError):
  """No usable DAMSM checkpoint where one was expected."""


class DamsmMismatchError(ValueError):
  """A DAMSM checkpoint that does not fit (vocabulary, variables)."""


@dataclasses.dataclass
class Damsm:
  """A pretrained DAMSM, frozen (inference mode, no trainable variables).

  text_encoder, image_encoder: Keras models with the restored weights (in a TF1 graph: variables
  whose initialisers read the checkpoint). vocab: data.text.Vocabulary. config: damsm_config.json.
  checkpoint_path: the prefix read; checkpoint_sha256: its hash (record it with every score).
  """
  text_encoder: tf.keras.Model
  image_encoder: tf.keras.Model
  vocab: text_lib.Vocabulary
  config: dict
  checkpoint_path: str
  checkpoint_sha256: str

  def encode_text(self, ids, lengths):
    """ids [B, T] int, lengths [B] -> (words [B, D, T] (0 at padding), sentence [B, D])."""
    words, sentence = self.text_encoder(tf.cast(ids, tf.int32), tf.cast(lengths, tf.int32),
                                        training=False)  # [B, T, D], [B, D]
    return tf.transpose(words, [0, 2, 1]), sentence

  def encode_images(self, images):
    """images [B, S, S, 3] in [-1, 1] -> (regions [B, H, W, D], global [B, D])."""
    return self.image_encoder(images, training=False)

  @property
  def embedding_dim(self) -> int:
    return int(self.config["embedding_dim"])

  @property
  def variant(self) -> damsm_lib.DamsmVariant:
    """The loss variant the DAMSM was pretrained with (G's DAMSM term may reuse it)."""
    return damsm_lib.DamsmVariant(**self.config["loss"])

  @property
  def class_masks(self) -> bool:
    """Whether pretraining masked same-class negatives (official CUB)."""
    return bool(self.config.get("class_masks"))


def _read_config(damsm_dir: str) -> dict:
  path = os.path.join(damsm_dir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise DamsmNotFoundError(
        f"no pretrained DAMSM in {damsm_dir!r} ({CONFIG_FILE} missing): run "
        f"--mode=pretrain_damsm first, or pass --damsm_dir=<a DAMSM directory>")
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def load_damsm(damsm_dir: str, vocab: Optional[text_lib.Vocabulary] = None,
               checkpoint: Optional[str] = None) -> Damsm:
  """The DAMSM saved in `damsm_dir` (its latest checkpoint, or `checkpoint`), frozen.

  Eagerly the weights are restored at once. Inside a TF1 graph (an estimator's model_fn) the
  encoders' variables are created in that graph with initial values that read the checkpoint
  (`restoring_from`), so the graph's variable initialiser (the estimator's Scaffold) loads
  them, in every replica of a tf.distribute strategy; they are not trainable.

  Args:
    vocab: the vocabulary the caller's token ids use; it must equal the DAMSM's.
  Raises:
    DamsmNotFoundError: no damsm_config.json / checkpoint in damsm_dir.
    DamsmMismatchError: another vocabulary, or a checkpoint without the variables the config
      lists.
  """
  config = _read_config(damsm_dir)
  saved_vocab = text_lib.Vocabulary.load(os.path.join(damsm_dir, VOCAB_FILE))
  if vocabulary_sha256(saved_vocab) != config["vocab_sha256"]:
    raise DamsmMismatchError(f"{damsm_dir}/{VOCAB_FILE} is not the vocabulary the DAMSM was "
                             f"trained with ({CONFIG_FILE} records {config['vocab_sha256']})")
  if vocab is not None and vocab != saved_vocab:
    differ = next((i for i, (a, b) in enumerate(zip(vocab.words, saved_vocab.words)) if a != b),
                  min(len(vocab), len(saved_vocab)))
    raise DamsmMismatchError(
        f"the DAMSM in {damsm_dir} was trained with another vocabulary ({len(saved_vocab)} "
        f"words, {config['vocab_sha256']}) than this run's ({len(vocab)} words, "
        f"{vocabulary_sha256(vocab)}; first difference at id {differ}): pretrain a DAMSM on "
        f"this dataset (--mode=pretrain_damsm) or pass the --damsm_dir of one that matches")
  prefix = checkpoint or tf.train.latest_checkpoint(damsm_dir)
  if not prefix or not tf.io.gfile.exists(prefix + ".index"):
    raise DamsmNotFoundError(
        f"no DAMSM checkpoint in {damsm_dir!r}: run --mode=pretrain_damsm first (it may have "
        f"stopped before its first epoch ended), or pass --damsm_dir")
  graph_mode = not tf.executing_eagerly()
  if graph_mode:  # initial values read from the checkpoint (no merge_call: replica-safe)
    keys = creation_keys(lambda: build_encoders(dict(config, inception_weights_path=None)),
                         lambda encoders: flat_variables(*encoders))
    with restoring_from(prefix, keys):
      text_encoder, image_encoder = build_encoders(config)
  else:
    text_encoder, image_encoder = build_encoders(config)
  flat = flat_variables(text_encoder, image_encoder)
  saved = dict(tf.train.list_variables(prefix))
  expected = config["variables"]
  for key, var in flat.items():
    ckpt_key = checkpoint_key(key)
    if key not in expected or ckpt_key not in saved or list(saved[ckpt_key]) != list(var.shape):
      raise DamsmMismatchError(
          f"DAMSM checkpoint {prefix} does not hold variable {key} ({var.name}, shape "
          f"{list(var.shape)}) of the encoders {CONFIG_FILE} describes "
          f"(found {saved.get(ckpt_key)}); was it written by another version?")
  if len(flat) != len(expected):
    raise DamsmMismatchError(f"{CONFIG_FILE} lists {len(expected)} variables, the encoders "
                             f"have {len(flat)}")
  for model in (text_encoder, image_encoder):
    model.trainable = False
  if graph_mode:
    for var in flat.values():  # variables built trainable stay out of the train op's lists
      trainable = tf.compat.v1.get_collection_ref(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)
      if var in trainable:
        trainable.remove(var)
  else:
    tf.train.Checkpoint(**flat).read(prefix).expect_partial().assert_existing_objects_matched()
  return Damsm(text_encoder, image_encoder, saved_vocab, config, prefix,
               checkpoint_sha256(prefix))


# --- R-precision of generated images -----------------------------------------------------------

def _sentence_features(damsm, ids, lengths, batch_size):
  out = []
  for a in range(0, len(ids), batch_size):
    out.append(damsm.encode_text(ids[a:a + batch_size], lengths[a:a + batch_size])[1].numpy())
  return np.concatenate(out) if out else np.zeros((0, damsm.embedding_dim), np.float32)


def r_precision_record(damsm: Damsm, batches: Iterable, pool_ids, pool_lengths, pool_keys, *,
                       caption_split: str, protocols: Sequence[str] = ("paper", "dmgan"),
                       protocol_keys: Optional[Dict[str, str]] = None, seed: int = 0,
                       text_batch_size: int = 500) -> dict:
  """R-precision of generated images under each protocol, streamed, as a metrics.jsonl record.

  Args:
    damsm: the scoring DAMSM (may differ from the one the generator trained against).
    batches: iterable of dicts, one per batch of generated images: 'images' [B, S, S, 3] in
      [-1, 1], 'captions' [B, T] ids and 'caption_length' [B] they were generated from, and the
      keys of their true captions: 'image_ids' [B] (paper: negatives from other images) and,
      for dmgan on a dataset with classes, 'class_ids' [B]. Nothing but the current batch and
      one float per image is held, so 30,000 images take the memory of 3,000.
    pool_ids, pool_lengths: the candidate captions [P, T], [P] (e.g. every test caption);
    pool_keys: {'image_ids': [P], 'class_ids': [P]} keys of the pool captions.
    caption_split: which captions these are (recorded), e.g. 'test'.
    protocol_keys: protocol -> which key ('image_ids' or 'class_ids') says "mismatching";
      default paper: image_ids; dmgan: class_ids when given, else image_ids.
  Returns:
    {'metrics': {'r_precision_<p>': mean, 'r_precision_<p>_std': std, ...},
     'protocol': {'r_precision_<p>': {protocol description, damsm_checkpoint, damsm_sha256,
                  caption_split, ...}}}: merge into a metrics.jsonl record.
  """
  keys_for = {"paper": "image_ids",
              "dmgan": "class_ids" if pool_keys.get("class_ids") is not None else "image_ids"}
  keys_for.update(protocol_keys or {})
  pool = _sentence_features(damsm, np.asarray(pool_ids), np.asarray(pool_lengths),
                            text_batch_size)  # [P, D]
  accumulators = {p: r_precision_lib.RPrecisionAccumulator(
      p, pool, np.asarray(pool_keys[keys_for[p]]), seed) for p in protocols}
  for batch in batches:
    _, image_global = damsm.encode_images(tf.convert_to_tensor(batch["images"], tf.float32))
    _, sentence = damsm.encode_text(batch["captions"], batch["caption_length"])
    image_global, sentence = image_global.numpy(), sentence.numpy()
    for p, acc in accumulators.items():
      acc.update(image_global, sentence, np.asarray(batch[keys_for[p]]))
  record = {"metrics": {}, "protocol": {}}
  for p, acc in accumulators.items():
    result = acc.result()
    record["metrics"][f"r_precision_{p}"] = result.mean
    record["metrics"][f"r_precision_{p}_std"] = result.std
    record["protocol"][f"r_precision_{p}"] = {
        **result.protocol, "keys": keys_for[p], "caption_split": caption_split,
        "damsm_checkpoint": damsm.checkpoint_path, "damsm_sha256": damsm.checkpoint_sha256,
        "damsm_image_encoder": damsm.config.get("image_weights_source")}
  return record
