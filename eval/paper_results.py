"""What the papers report: each experiment's numbers, where they come from, how they were measured.

The reproduction scoreboard (eval.scoreboard) puts a run's best evaluation beside these. Every
number is copied from the paper texts in ../shared/papers and cites its table or section; a
protocol fact the paper leaves out but the authors' code fixes says "official code" /
"authors' code" (../shared/REFERENCE_NOTES.md).

  Experiment   a model on a dataset at an image size, plus the hyperparameters that make it this
               row of the paper's table (Condition), the paper settings a run may change and still
               be it (Setting, listed when changed), and its PaperNumbers
  PaperNumber  a value (+/- spread) of a Metric, its source, and the Protocol that produced it
  Metric       which metrics.jsonl keys hold the same quantity, and its direction
"""
import dataclasses
from typing import Callable, Optional, Tuple



@dataclasses.dataclass(frozen=True)
class Metric:
  """A paper metric and the metrics.jsonl keys that hold the same quantity (first found wins)."""
  name: str                 # as printed: "FID", "IS", "R-precision (%)"
  keys: Tuple[str, ...]     # metrics.jsonl keys, in order of preference (regexes)
  lower_is_better: bool
  scale: float = 1.0        # run value * scale is in the paper's unit (R-precision: 100)
  inception: bool = True    # computed on Inception-v3 (a digits-classifier value never stands in)


# Metrics of eval.digits_quality: a small digits classifier's features and logits, a different
# space from Inception-v3's; never shown next to a paper's Inception number.
DIGITS_PREFIX = "digits_"


FID = Metric("FID", ("fid",), True)
# IS with the Salimans et al. protocol (S splits, mean) preferred, else TF-GAN's one-value score.
IS_SPLITS = Metric("IS", (r"inception_score_10split_mean", r"inception_score_\d+split_mean",
                          "inception_score"), False)
# IS as TF-GAN computes it (no splits), what the YLG code (built on TF-GAN) reports.
IS_TFGAN = Metric("IS", ("inception_score", r"inception_score_10split_mean",
                         r"inception_score_\d+split_mean"), False)
# IS on StackGAN's CUB-finetuned Inception-v3 (eval.stackgan_inception, --is_classifier=
# stackgan_cub), what AttnGAN's CUB number is; else the ImageNet Inception's (a different number).
IS_STACKGAN_CUB = Metric("IS", (r"stackgan_cub_is_10split_mean", r"stackgan_cub_is_\d+split_mean")
                         + IS_SPLITS.keys, False)
STACKGAN_CUB_PREFIX = "stackgan_cub_is_"
# R-precision as a fraction in [0, 1] (eval.r_precision); the paper prints percent. AttnGAN's
# evaluation writes r_precision_<protocol> and r_precision_<protocol>_std (protocol 'paper' first).
R_PRECISION = Metric("R-precision (%)", (r"r_precision_paper_mean", "r_precision_paper",
                                         r"r_precision.*_mean", r"r_precision_[a-z0-9]+",
                                         "r_precision"), False, scale=100.0, inception=False)


@dataclasses.dataclass(frozen=True)
class Protocol:
  """How a paper computed its number (None: the paper does not say)."""
  num_generated: Optional[int]
  reference: str            # the real reference, in words
  num_real: Optional[int]   # real images in the reference (None: not stated / the whole split)
  real_split: Optional[str]
  classifier: str           # which Inception (or encoder), in words
  is_splits: Optional[int] = None
  truncation: str = "none"
  training: str = ""        # how long, and which checkpoint was reported


@dataclasses.dataclass(frozen=True)
class PaperNumber:
  metric: Metric
  value: float
  spread: Optional[float]   # the paper's +/-
  source: str               # "SAGAN Table 1"
  protocol: Protocol
  note: str = ""


@dataclasses.dataclass(frozen=True)
class Condition:
  """A hyperparameter or run setting a run must have to BE the experiment (else: another one)."""
  where: str                # "hparams" | "config"
  key: str
  test: Callable[[object], bool]
  wanted: str               # in words, for --experiments


def equals(where, key, value):
  return Condition(where, key, lambda v: v == value, f"{key}={value!r}")


@dataclasses.dataclass(frozen=True)
class Setting:
  """A paper setting a run may change and still be the experiment (listed when it differs)."""
  where: str                # "hparams" | "config" | "data_options"
  key: str
  value: object
  source: str               # where the paper (or official code) says so


@dataclasses.dataclass(frozen=True)
class Experiment:
  name: str
  model: str
  datasets: Tuple[str, ...]
  image_size: int
  conditions: Tuple[Condition, ...]
  numbers: Tuple[PaperNumber, ...]
  settings: Tuple[Setting, ...] = ()


# SAGAN (Zhang et al. 2019), sec. 5 "Evaluation metrics": "50k samples are randomly generated for
# each model to compute the Inception score and FID"; Inception-v3 (refs [26] Salimans et al.,
# [8] Heusel et al.), which implementation and which real images are not stated. Table 1 caption:
# "trained for one million iterations, and the best IS and FID are reported".
_SAGAN_PROTOCOL = Protocol(
    num_generated=50_000, reference="ImageNet (LSVRC2012), split and count not stated",
    num_real=None, real_split=None,
    classifier="Inception-v3 as in Salimans et al. / Heusel et al., implementation not stated",
    is_splits=None, training="best over 1M iterations (Table 1 caption)")
# YLG (Daras et al. 2020), sec. 4 and Table 1: SAGAN's setting, trained up to 1.5M steps on TPU
# v3-8, "we report the best performance obtained"; YLG's best FID at 865k (sec. 4). Sample count
# and reference not stated; the authors' code evaluates with TF-GAN (tfgan.eval, TF-Hub
# inception/1), whose Inception score has no splits (../shared/REFERENCE_NOTES.md "Metrics").
_YLG_PROTOCOL = Protocol(
    num_generated=None, reference="ImageNet, split and count not stated", num_real=None,
    real_split=None,
    classifier="TF-GAN Inception (TF-Hub tfgan/eval/inception/1) in the authors' code",
    is_splits=1, training="best over up to 1.5M steps (sec. 4)")
# SAGAN's settings: Adam beta1 0, beta2 0.9, lr D 4e-4, G 1e-4 (sec. 5); widths gf = df = 64 and
# z 128 as TF-GAN's self_attention_estimator (the official code, REFERENCE_NOTES).
_SAGAN_SETTINGS = (
    Setting("config", "generator_lr", 1e-4, "SAGAN sec. 5"),
    Setting("config", "discriminator_lr", 4e-4, "SAGAN sec. 5"),
    Setting("config", "beta1", 0.0, "SAGAN sec. 5"),
    Setting("config", "beta2", 0.9, "SAGAN sec. 5"),
    Setting("hparams", "gf_dim", 64, "official code"),
    Setting("hparams", "df_dim", 64, "official code"),
    Setting("hparams", "z_dim", 128, "official code"),
    # The SAGAN authors' code has no BN moving averages: its numbers used batch statistics.
    Setting("hparams", "bn_inference", "batch", "official code"),
)
# YLG sec. 4: "1e-4 learning rate for generator and 4e-4 for the discriminator", every other
# hyperparameter SAGAN's. Its numbers come from the TF-GAN-based official code, whose spectral
# norm divides by max(1, sigma) and whose G generates and evaluates with training=False, i.e. BN
# moving statistics (tfgan.tpu.batch_norm; checked by running YLG's generate_images.py), this
# suite's default --bn_inference=moving (the hparams' help texts in estimators/models/sagan.py).
_YLG_SETTINGS = _SAGAN_SETTINGS[:2] + _SAGAN_SETTINGS[4:7] + (
    Setting("hparams", "sn_bound", "tfgan", "official code"),
    Setting("hparams", "bn_inference", "moving", "official code"))
_IMAGENET = ("imagenet", "imagenet128")

# SAGAN Table 1: FID / IS of each attention placement (one head).
_SAGAN_TABLE1 = (  # (attention_type, feature-map size or None, FID, IS)
    ("none", None, 22.96, 42.87),
    ("self_attention", 8, 22.98, 43.15),
    ("self_attention", 16, 22.14, 45.94),
    ("self_attention", 32, 18.28, 51.43),
    ("self_attention", 64, 18.65, 52.52),
    ("residual", 8, 42.13, 23.17),
    ("residual", 16, 22.40, 44.49),
    ("residual", 32, 27.33, 38.50),
    ("residual", 64, 28.82, 38.96),
)


def _sagan_table1():
  experiments = []
  for attention_type, size, fid, inception in _SAGAN_TABLE1:
    label = {"none": "no attention", "self_attention": f"SAGAN feat{size}",
             "residual": f"residual block feat{size}"}[attention_type]
    conditions = [equals("hparams", "attention_type", attention_type),
                  equals("hparams", "num_heads", 1)]
    if size is not None:
      conditions.append(equals("hparams", "attention_resolution", size))
    note = "= Table 2 headline" if size == 64 and attention_type == "self_attention" else ""
    experiments.append(Experiment(
        name=f"SAGAN Table 1: {label}", model="sagan", datasets=_IMAGENET, image_size=128,
        conditions=tuple(conditions), settings=_SAGAN_SETTINGS,
        numbers=(PaperNumber(FID, fid, None, "SAGAN Table 1", _SAGAN_PROTOCOL, note),
                 PaperNumber(IS_SPLITS, inception, None, "SAGAN Table 1", _SAGAN_PROTOCOL, note))))
  return experiments


# YLG Table 1 (ImageNet 128): FID / Inception. YLG's SAGAN has its attention at the 32x32 map
# (sec. 3.3 "Non-Square Attention": query image 32x32, key image 16x16). Its 1-head row repeats
# SAGAN's published headline (18.65 / 52.52, SAGAN Table 2, which is SAGAN's feat64 model).
_YLG_TABLE1 = (  # (row label, model, hparam conditions, FID, IS, note)
    ("SAGAN, 1 head", "sagan", {"num_heads": 1}, 18.65, 52.52,
     "YLG quotes SAGAN's published feat64 headline (SAGAN Table 2) for this row"),
    ("SAGAN, 8 heads", "sagan", {"num_heads": 8}, 20.09, 46.01, ""),
    ("YLG-SAGAN", "ylg_sagan", {"ylg_layout": "ylg", "ylg_esa": True}, 15.94, 57.22,
     "best FID at 865k steps (sec. 4)"),
    ("YLG - No ESA", "ylg_sagan", {"ylg_layout": "ylg", "ylg_esa": False}, 17.47, 51.09, ""),
    ("YLG - Strided", "ylg_sagan", {"ylg_layout": "strided", "ylg_esa": True}, 16.64, 55.21, ""),
)


def _ylg_table1():
  experiments = []
  for label, model, hparams, fid, inception, note in _YLG_TABLE1:
    conditions = [equals("hparams", "attention_type", "self_attention"),
                  equals("hparams", "attention_resolution", 32)]
    conditions += [equals("hparams", k, v) for k, v in hparams.items()]
    experiments.append(Experiment(
        name=f"YLG Table 1: {label}", model=model, datasets=_IMAGENET, image_size=128,
        conditions=tuple(conditions), settings=_YLG_SETTINGS,
        numbers=(PaperNumber(FID, fid, None, "YLG Table 1", _YLG_PROTOCOL, note),
                 PaperNumber(IS_TFGAN, inception, None, "YLG Table 1", _YLG_PROTOCOL, note))))
  return experiments


# AttnGAN (Xu et al. 2018) sec. 4 "Evaluation": IS "following Zhang et al. [31]" (StackGAN) and
# R-precision with R = 1 among the true caption and 99 random mismatching ones, both from 30,000
# images generated from unseen (test) captions; Table 2 / Table 3 give the best IS with its
# R-precision, mean +/- std. StackGAN's IS is 10 splits; for CUB its Inception is fine-tuned on
# birds, for COCO it is the ImageNet one (REFERENCE_NOTES "AttnGAN", evaluation).
def _attngan(dataset, lam, inception, spread, r_precision, r_spread, classifier, is_metric):
  protocol = Protocol(
      num_generated=30_000, reference=f"{dataset.upper()} test captions (generation input)",
      num_real=None, real_split="test", classifier=classifier, is_splits=10,
      training="best epoch (Table 2 caption, Figure 3)")
  r_protocol = dataclasses.replace(
      protocol, classifier="the pretrained DAMSM encoders; true caption + 99 random mismatching "
      "ones, R = 1")
  row = "top six rows" if dataset == "cub" else "last row"
  note = f"AttnGAN2, lambda = {lam}; run hparams are not checked for lambda"
  return Experiment(
      name=f"AttnGAN {dataset.upper()} (AttnGAN2, lambda={lam})", model="attngan",
      datasets=(dataset,), image_size=256, conditions=(),
      numbers=(PaperNumber(is_metric, inception, spread, f"AttnGAN Table 2 ({row}) / Table 3",
                           protocol, note),
               PaperNumber(R_PRECISION, r_precision, r_spread, f"AttnGAN Table 2 ({row})",
                           r_protocol, note)))


_ATTNGAN = (
    _attngan("cub", 5, 4.36, 0.03, 67.82, 4.43,
             "StackGAN's Inception-v3 fine-tuned on CUB birds (not the ImageNet network)",
             IS_STACKGAN_CUB),
    _attngan("coco", 50, 25.89, 0.47, 85.47, 3.69,
             "ImageNet Inception-v3 through StackGAN's IS code (10 splits)", IS_SPLITS),
)


# LadaGAN (Morales-Juarez & Fuentes-Pineda) sec. IV-B: FID on "a pre-trained Inception-v3
# network [41]" (implementation not stated); CIFAR-10: all training images vs 50k generated;
# CelebA: test images vs 19,962 generated; FFHQ: 50k generated vs the complete training set;
# LSUN bedroom: 50k training images vs 50k generated. Sec. IV-F / Table IV add CelebA 50k
# generated vs the whole training set and LSUN-128 30k vs 30k.
_LADA_CLASSIFIER = ("Inception-v3, implementation not stated (sec. IV-B; the official README "
                    "once named pytorch-fid, PyTorch with the TF FID weights)")


def _lada_protocol(num_generated, reference, num_real, split, images_seen):
  """images_seen: Table V "It. x BS" of the resolution (32: 68M, 64: 72M, 128: 53M)."""
  return Protocol(num_generated=num_generated, reference=reference, num_real=num_real,
                  real_split=split, classifier=_LADA_CLASSIFIER,
                  training=f"{images_seen} images seen (Table V)")


def _lada_settings(diffaugment, bcr_weight, square_resize):
  """Sec. IV-A: Adam (0.5, 0.99), lr 2e-4 for G and the Ladaformer D; the augmentation and bCR
  of each dataset; sec. IV-A resizes every image to the square (no crop)."""
  settings = [Setting("config", "generator_lr", 2e-4, "LadaGAN sec. IV-A"),
              Setting("config", "discriminator_lr", 2e-4, "LadaGAN sec. IV-A"),
              Setting("config", "beta1", 0.5, "LadaGAN sec. IV-A"),
              Setting("config", "beta2", 0.99, "LadaGAN sec. IV-A"),
              Setting("hparams", "diffaugment", diffaugment, "LadaGAN sec. IV-A"),
              Setting("hparams", "bcr_weight", bcr_weight, "LadaGAN sec. IV-A")]
  if square_resize:
    settings.append(Setting("data_options", "resize_to_square", True,
                            "LadaGAN sec. IV-A resizes, the official code without a crop"))
  return tuple(settings)


_LADA_D = equals("hparams", "d_type", "lada")
_LADAGAN = (
    Experiment(
        name="LadaGAN CIFAR-10 (bCR)", model="ladagan", datasets=("cifar10",), image_size=32,
        conditions=(_LADA_D, Condition("hparams", "bcr_weight", lambda v: v > 0, "bcr_weight>0")),
        settings=_lada_settings("color,translation,cutout", 1.0, False),
        numbers=(PaperNumber(FID, 3.29, None, "LadaGAN Table IV (also Tables II, III)",
                             _lada_protocol(50_000, "CIFAR-10 training set, all images", 50_000,
                                            "train", "68M")),)),
    Experiment(
        name="LadaGAN CIFAR-10 (no bCR)", model="ladagan", datasets=("cifar10",), image_size=32,
        conditions=(_LADA_D, equals("hparams", "bcr_weight", 0.0)),
        settings=_lada_settings("color,translation,cutout", 0.0, False),
        numbers=(PaperNumber(FID, 4.88, None, "LadaGAN Table III (w/o bCR, 100% data, 50k)",
                             _lada_protocol(50_000, "CIFAR-10 training set, all images", 50_000,
                                            "train", "68M")),)),
    Experiment(
        name="LadaGAN CelebA 64", model="ladagan", datasets=("celeba",), image_size=64,
        conditions=(_LADA_D,), settings=_lada_settings("color,translation", 0.0, True),
        numbers=(PaperNumber(FID, 2.89, None, "LadaGAN Table IV (19k column; also Table II)",
                             _lada_protocol(19_962, "CelebA test split, all 19,962 images",
                                            19_962, "test", "72M")),
                 PaperNumber(FID, 1.81, None, "LadaGAN Table IV (50k column)",
                             _lada_protocol(50_000, "CelebA training split, all 162,770 images",
                                            162_770, "train", "72M")))),
    Experiment(
        name="LadaGAN FFHQ 128", model="ladagan", datasets=("ffhq",), image_size=128,
        conditions=(_LADA_D,), settings=_lada_settings("color,translation,cutout", 0.1, True),
        numbers=(PaperNumber(FID, 4.48, None, "LadaGAN Table IV",
                             _lada_protocol(50_000, "FFHQ, the complete training set (70k)",
                                            70_000, "train", "53M"),
                             "Table IV's caption says 70k samples, its column header 50k"),)),
    Experiment(
        name="LadaGAN LSUN bedroom 128", model="ladagan", datasets=("lsun",), image_size=128,
        conditions=(_LADA_D,), settings=_lada_settings("color,translation", 0.0, True),
        numbers=(PaperNumber(FID, 5.08, None, "LadaGAN Table IV (30k column)",
                             _lada_protocol(30_000, "LSUN bedroom, 30k random training images",
                                            30_000, "train", "53M")),
                 PaperNumber(FID, 4.60, None, "LadaGAN Table II (Lada D, {1024,512,256})",
                             _lada_protocol(50_000, "LSUN bedroom, 50k random training images",
                                            50_000, "train", "53M")))),
)

EXPERIMENTS: Tuple[Experiment, ...] = (tuple(_sagan_table1()) + tuple(_ylg_table1()) + _ATTNGAN
                                       + _LADAGAN)
