"""Reproduction scoreboard: each run's best evaluation beside the paper's number for its experiment.

  python -m eval.scoreboard RUN_DIR [RUN_DIR ...]     # a markdown table on stdout
  python -m eval.scoreboard --experiments             # the paper numbers it knows

A run directory is read as run.py writes it, straight from the JSON files (this module imports
neither estimators nor TensorFlow): `run_config.json` ({"config": GANConfig.to_dict(), ...}: the
model's name and hyperparameters under config.model, dataset and image size beside them; the
pre-registry flat layout is read too) picks the experiment, `metrics.jsonl` (one record per
evaluation, eval.metrics_log) gives the best value of each metric over all records: the lowest
FID, the highest IS / R-precision, as the papers report their best (SAGAN Table 1 caption, YLG
sec. 4 "we report the best performance obtained"), with the step it was reached at.

Every number in EXPERIMENTS is copied from the paper texts in ../shared/papers, with the table or
section it comes from. A row spells out how the run's evaluation differs from the paper's
protocol (generated samples, real reference and its size, Inception network, IS splits,
truncation, training length) and which of the paper's settings the run changed. It never puts a
digits-classifier metric (digits_fid, digits_score) or a stand-in classifier's value next to a
paper's Inception number: the cell says why instead. Runs that match no experiment are listed as
such.
"""
import argparse
import dataclasses
import json
import math
import os
import re
import sys
from typing import Callable, List, Optional, Sequence, Tuple

RUN_CONFIG = "run_config.json"
METRICS_FILE = "metrics.jsonl"


class ScoreboardError(ValueError):
  """A run directory that cannot be read; the message says which file and what to do."""


# --- what the papers report --------------------------------------------------------------------


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
# R-precision as a fraction in [0, 1] (eval.r_precision); the paper prints percent.
R_PRECISION = Metric("R-precision (%)", (r"r_precision_paper_mean", r"r_precision.*_mean",
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
# norm divides by max(1, sigma) and whose G uses batch statistics at evaluation (the hparams'
# help texts in estimators/models/sagan.py).
_YLG_SETTINGS = _SAGAN_SETTINGS[:2] + _SAGAN_SETTINGS[4:7] + (
    Setting("hparams", "sn_bound", "tfgan", "official code"),
    Setting("hparams", "bn_inference", "batch", "official code"))
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
def _attngan(dataset, lam, inception, spread, r_precision, r_spread, classifier):
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
      numbers=(PaperNumber(IS_SPLITS, inception, spread, f"AttnGAN Table 2 ({row}) / Table 3",
                           protocol, note),
               PaperNumber(R_PRECISION, r_precision, r_spread, f"AttnGAN Table 2 ({row})",
                           r_protocol, note)))


_ATTNGAN = (
    _attngan("cub", 5, 4.36, 0.03, 67.82, 4.43,
             "StackGAN's Inception-v3 fine-tuned on CUB birds (not the ImageNet network)"),
    _attngan("coco", 50, 25.89, 0.47, 85.47, 3.69,
             "ImageNet Inception-v3 through StackGAN's IS code (10 splits)"),
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


# --- reading a run directory -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Run:
  path: str
  model: str
  dataset: str
  image_size: int
  hparams: dict
  config: dict
  records: Tuple[dict, ...]


def read_run(path: str) -> Run:
  """The run's configuration and evaluation records; ScoreboardError when it is not a run."""
  if not os.path.isdir(path):
    raise ScoreboardError(f"{path}: no such directory; pass the --model_dir of a run.py run")
  config_path = os.path.join(path, RUN_CONFIG)
  if not os.path.isfile(config_path):
    raise ScoreboardError(
        f"{path} has no {RUN_CONFIG}: not a run directory (run.py writes it before training "
        f"starts); pass the --model_dir of a run")
  try:
    with open(config_path, encoding="utf8") as f:
      document = json.load(f)
  except (OSError, ValueError) as e:
    raise ScoreboardError(f"{config_path} is not readable JSON ({e}); restore it or rerun "
                          f"run.py with the same flags to rewrite it") from e
  config = document.get("config") if isinstance(document, dict) else None
  if not isinstance(config, dict) or "model" not in config or "dataset" not in config:
    raise ScoreboardError(f"{config_path} lacks config.model / config.dataset: not the file "
                          f"run.py writes")
  model = config["model"]
  if isinstance(model, dict):  # GANConfig.to_dict: {"name", "hparams"}
    name, hparams = model.get("name"), model.get("hparams") or {}
  else:  # before the model registry: a flat config, hyperparameters beside the run settings
    name, hparams = model, config
  records = tuple(_read_metrics(os.path.join(path, METRICS_FILE)))
  return Run(path=path, model=str(name), dataset=str(config["dataset"]),
             image_size=int(config.get("image_size") or 0), hparams=dict(hparams),
             config=config, records=records)


def _read_metrics(path):
  if not os.path.exists(path):
    return []
  records = []
  with open(path, encoding="utf8") as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except ValueError as e:
        raise ScoreboardError(f"{path} line {number} is not JSON ({e}); remove or repair that "
                              f"line (eval.metrics_log writes whole lines atomically)") from e
      if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
        raise ScoreboardError(f"{path} line {number} has no 'metrics' object: not an "
                              f"eval.metrics_log record")
      records.append(record)
  return records


# --- matching and scoring -----------------------------------------------------------------------


def _value_at(run: Run, where: str, key: str):
  if where == "hparams":
    return run.hparams.get(key, _MISSING)
  if where == "config":
    return run.config.get(key, _MISSING)
  options = run.config.get("data_options") or ()
  if not isinstance(options, dict):  # GANConfig keeps them as sorted (key, value) pairs
    options = dict(tuple(pair) for pair in options)
  return options.get(key, _MISSING)


_MISSING = object()


def matching_experiments(run: Run) -> List[Experiment]:
  """The experiments whose model, dataset, image size and defining hyperparameters the run has."""
  found = []
  for experiment in EXPERIMENTS:
    if (run.model != experiment.model or run.dataset not in experiment.datasets
        or run.image_size != experiment.image_size):
      continue
    values = [_value_at(run, c.where, c.key) for c in experiment.conditions]
    if all(v is not _MISSING and c.test(v) for c, v in zip(experiment.conditions, values)):
      found.append(experiment)
  return found


def _same(a, b):
  if isinstance(a, bool) or isinstance(b, bool):
    return a is b
  if isinstance(a, (int, float)) and isinstance(b, (int, float)):
    return math.isclose(a, b, rel_tol=1e-9)
  if isinstance(a, str) and isinstance(b, str) and "," in a + b:  # DiffAugment policies
    return sorted(a.replace(" ", "").split(",")) == sorted(b.replace(" ", "").split(","))
  return a == b


def changed_settings(run: Run, experiment: Experiment) -> List[str]:
  out = []
  for s in experiment.settings:
    value = _value_at(run, s.where, s.key)
    shown = "not set" if value is _MISSING else repr(value)
    if value is _MISSING or not _same(value, s.value):
      out.append(f"{s.key} {shown} (paper {s.value!r}, {s.source})")
  return out


@dataclasses.dataclass(frozen=True)
class Best:
  """The run's best value of a paper metric, or why there is none."""
  value: Optional[float] = None
  key: str = ""
  record: Optional[dict] = None
  num_records: int = 0
  refused: str = ""         # why no number is shown
  notes: Tuple[str, ...] = ()


def _is_standin(record):
  protocol = record.get("protocol") or {}
  return (protocol.get("classifier_source") == "standin"
          or str(protocol.get("classifier_hash", "")).startswith("standin:"))


def best_value(records: Sequence[dict], metric: Metric) -> Best:
  """The best value of `metric` over the records, by its direction, among records of one
  classifier (the latest record's); refuses digits-classifier and stand-in values."""
  for pattern in metric.keys:
    keyed = [r for r in records
             for k in [_first_key(r["metrics"], pattern)] if k is not None]
    if keyed:
      break
  else:
    digits = sorted({k for r in records for k in r["metrics"]
                     if k.startswith(DIGITS_PREFIX) and r["metrics"][k] is not None})
    if digits and metric.inception:
      return Best(refused=(
          f"refused: this run recorded only digits-classifier metrics ({', '.join(digits)}); "
          f"the paper's {metric.name} is on Inception-v3 and the two are not comparable. "
          f"Evaluate with the TF-GAN Inception (--inception_path) to fill this cell."))
    if not records:
      return Best(refused="no evaluations yet (no metrics.jsonl): run --mode=eval or "
                          "train_and_eval")
    if any(re.fullmatch(p, k) for r in records for k in r["metrics"] for p in metric.keys):
      return Best(refused=f"{metric.name} is null (undefined) in every record")
    return Best(refused=f"no {metric.name} in metrics.jsonl ({len(records)} records)")
  notes = []
  real = [r for r in keyed if not _is_standin(r)]
  if not real:
    return Best(refused=f"refused: every {metric.name} here is from the stand-in classifier "
                        f"(random weights; tests only), not Inception")
  if len(real) < len(keyed):
    notes.append(f"{len(keyed) - len(real)} stand-in-classifier records ignored")
  latest = real[-1]["protocol"].get("classifier_hash") if real[-1].get("protocol") else None
  same = [r for r in real if (r.get("protocol") or {}).get("classifier_hash") == latest]
  if len(same) < len(real):
    notes.append(f"{len(real) - len(same)} records from another classifier ignored "
                 f"(best over the {len(same)} with the latest one's, {_short_hash(latest)})")
  values = [(r["metrics"][_first_key(r["metrics"], pattern)], r) for r in same]
  values = [(v, r) for v, r in values if math.isfinite(v)]
  if not values:
    return Best(refused=f"{metric.name} is not finite in any record")
  pick = min if metric.lower_is_better else max
  value, record = pick(values, key=lambda vr: vr[0])
  return Best(value=value, key=_first_key(record["metrics"], pattern), record=record,
              num_records=len(values), notes=tuple(notes))


def _first_key(metrics, pattern):
  for key in sorted(metrics):
    if re.fullmatch(pattern, key) and metrics[key] is not None:
      return key
  return None


def _short_hash(value):
  value = str(value)
  return value[:19] + "…" if len(value) > 20 else value


def _count(n):
  return "not stated" if n is None else f"{n:,}"


def _splits_of(key, protocol):
  """IS splits of the metric key the run's value came from."""
  m = re.fullmatch(r"inception_score_(\d+)split_mean", key)
  if m:
    return int(m.group(1))
  if key == "inception_score":
    return 1
  return protocol.get("is_splits")


def _millions(n):
  return f"{n / 1e6:.3g}M" if n >= 1_000_000 else f"{n:,}"


def protocol_differences(number: PaperNumber, best: Best, batch_size=None) -> List[str]:
  """The paper's protocol next to the run's, aspect by aspect ('paper X / run Y')."""
  paper, record = number.protocol, best.record or {}
  run = record.get("protocol") or {}
  out = [f"samples: paper {_count(paper.num_generated)} / run {_count(run.get('num_generated'))}"]
  reference = (f"{run.get('real_dataset', '?')}/{run.get('real_split', '?')}, "
               f"{_count(run.get('num_real'))} images")
  out.append(f"reference: paper {paper.reference} / run {reference}")
  if number.metric is R_PRECISION:
    rp = run.get("r_precision") or {}
    out.append(f"retrieval: paper {paper.classifier} / run "
               f"{rp.get('name', 'protocol not recorded')}")
  else:
    source = run.get("classifier_source", "not recorded")
    out.append(f"Inception: paper {paper.classifier} / run TF-GAN Inception module from "
               f"{source} ({_short_hash(run.get('classifier_hash', '?'))}, "
               f"{run.get('resize_method', '?')} resize)")
  if number.metric.name == "IS":
    splits = _splits_of(best.key, run)
    paper_splits = "not stated" if paper.is_splits is None else (
        "1 (TF-GAN, no splits)" if paper.is_splits == 1 else str(paper.is_splits))
    run_splits = "1 (TF-GAN, no splits)" if splits == 1 else str(splits)
    out.append(f"IS splits: paper {paper_splits} / run {run_splits}")
  truncation = run.get("truncation")
  out.append(f"truncation: paper {paper.truncation} / run "
             f"{'none' if truncation in (None, 0) else truncation}")
  step = record.get("step")
  seen = ""
  if step is not None and batch_size:
    seen = f" (step {step:,} x batch {batch_size} = {_millions(step * batch_size)} images seen)"
  out.append(f"training: paper {paper.training} / run best of {best.num_records} "
             f"evaluations{seen}")
  if run.get("ema_weights"):
    out.append("run evaluated the EMA generator")
  return out


# --- the table -----------------------------------------------------------------------------------

HEADER = ("run", "paper experiment", "metric", "paper", "this run (best)", "step",
          "protocol: paper / this run; settings the run changed")


def _fmt(value, spread=None):
  text = f"{value:.2f}"
  return text + (f" ± {spread:.2f}" if spread is not None else "")


def _cell(text):
  return str(text).replace("|", "\\|").replace("\n", " ")


def rows_for(run: Run) -> List[Tuple[str, ...]]:
  """The scoreboard rows of one run: one per paper number of each matching experiment."""
  experiments = matching_experiments(run)
  if not experiments:
    return [(run.path, f"no paper experiment matches ({run.model} on {run.dataset} at "
                       f"{run.image_size} px with these hyperparameters)", "", "", "", "",
             _unmatched_hint(run))]
  rows = []
  for experiment in experiments:
    changed = changed_settings(run, experiment)
    for number in experiment.numbers:
      best = best_value(run.records, number.metric)
      paper = f"{_fmt(number.value, number.spread)} ({number.source})"
      metric = number.metric.name
      if best.refused:
        rows.append((run.path, experiment.name, metric, paper, best.refused, "", ""))
        continue
      value = best.value * number.metric.scale
      record = best.record
      spread = None  # the run's +/- when the metric has one (IS over splits, R-precision)
      if best.key.endswith("_mean") and record["metrics"].get(best.key[:-5] + "_std") is not None:
        spread = record["metrics"][best.key[:-5] + "_std"] * number.metric.scale
      step = record.get("step")
      details = protocol_differences(number, best, run.config.get("batch_size")) + list(best.notes)
      if number.note:
        details.append(number.note)
      if changed:
        details.append("settings changed: " + ", ".join(changed))
      rows.append((run.path, experiment.name, metric, paper,
                   f"{_fmt(value, spread)} ({best.key})",
                   "SavedModel (no step)" if step is None else f"{step:,}", "; ".join(details)))
  return rows


def _unmatched_hint(run):
  known = sorted({f"{e.model} on {'/'.join(e.datasets)} at {e.image_size} px"
                  for e in EXPERIMENTS if e.model == run.model})
  if not known:
    return f"the papers report no experiment of model {run.model!r}"
  return "known: " + "; ".join(known) + " (python -m eval.scoreboard --experiments)"


def markdown_table(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
  return "\n".join(lines)


def scoreboard(run_dirs: Sequence[str]) -> str:
  """The markdown table for these run directories (all read first: a bad one fails early)."""
  runs = [read_run(path) for path in run_dirs]
  return markdown_table([row for run in runs for row in rows_for(run)])


def experiments_table() -> str:
  rows = []
  for e in EXPERIMENTS:
    for n in e.numbers:
      match = ", ".join([e.model, "/".join(e.datasets), f"{e.image_size} px"]
                        + [c.wanted for c in e.conditions])
      rows.append((e.name, match, n.metric.name, _fmt(n.value, n.spread), n.source,
                   f"{_count(n.protocol.num_generated)} generated vs {n.protocol.reference}; "
                   f"{n.protocol.classifier}"))
  return markdown_table(rows, ("experiment", "a run matches when", "metric", "paper", "source",
                               "paper protocol"))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m eval.scoreboard",
      description="Each run's best evaluation next to the paper's number for its experiment.")
  parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR", help="run.py --model_dir(s)")
  parser.add_argument("--experiments", action="store_true",
                      help="print the paper numbers the scoreboard knows and how runs match them")
  args = parser.parse_args(argv)
  if args.experiments:
    print(experiments_table())
    if not args.run_dirs:
      return 0
    print()
  if not args.run_dirs:
    parser.error("give at least one RUN_DIR (or --experiments)")
  try:
    print(scoreboard(args.run_dirs))
  except ScoreboardError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
