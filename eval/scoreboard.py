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

The paper numbers, each with the table or section it is copied from, are in eval.paper_results.
A row spells out how the run's evaluation differs from the paper's protocol (generated samples,
real reference and its size, Inception network, IS splits, truncation, training length) and which
of the paper's settings the run changed. It never puts a digits-classifier metric (digits_fid,
digits_score) or a stand-in classifier's value next to a paper's Inception number: the cell says
why instead. Runs that match no experiment are listed as such.

A run directory holding `imported.json` (--mode=import_weights) holds the authors' released
weights: it is labelled "authors' weights", its training line names the released files and step
instead of this project's training, and the protocol line is the evaluation done here (classifier,
sample count, splits, R-precision protocol), next to the paper's. AttnGAN's CUB IS is matched to
`stackgan_cub_is_*` (StackGAN's fine-tuned Inception, --is_classifier=stackgan_cub) first; a
TF-GAN Inception value stands in only with a line saying it is another network's.
"""
import argparse
import dataclasses
import json
import math
import os
import re
import sys
from typing import List, Optional, Sequence, Tuple

from eval.paper_results import (DIGITS_PREFIX, EXPERIMENTS, IS_STACKGAN_CUB, R_PRECISION,
                                STACKGAN_CUB_PREFIX, Experiment, Metric, PaperNumber)

RUN_CONFIG = "run_config.json"
METRICS_FILE = "metrics.jsonl"
IMPORTED_JSON = "imported.json"  # --mode=import_weights: the run holds the authors' weights
AUTHORS_WEIGHTS = "authors' weights"


class ScoreboardError(ValueError):
  """A run directory that cannot be read; the message says which file and what to do."""


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
  imported: Optional[dict] = None  # imported.json: the released files the weights came from


def read_run(path: str) -> Run:
  """The run's configuration and evaluation records; ScoreboardError when it is not a run."""
  if not os.path.isdir(path):
    raise ScoreboardError(f"{path}: no such directory; pass the --model_dir of a run.py run")
  config_path = os.path.join(path, RUN_CONFIG)
  if not os.path.isfile(config_path):
    raise ScoreboardError(
        f"{path} has no {RUN_CONFIG}: not a run directory (run.py writes it before training "
        f"starts); pass the --model_dir of a run")
  document = _read_json(config_path, "restore it or rerun run.py with the same flags to "
                                     "rewrite it")
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
             config=config, records=records, imported=_read_imported(path))


def _read_json(path, remedy):
  try:
    with open(path, encoding="utf8") as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ScoreboardError(f"{path} is not readable JSON ({e}); {remedy}") from e


def _read_imported(path):
  imported_path = os.path.join(path, IMPORTED_JSON)
  if not os.path.isfile(imported_path):
    return None
  imported = _read_json(imported_path, "rerun --mode=import_weights into a fresh --model_dir "
                                       "to rewrite it")
  if not isinstance(imported, dict):
    raise ScoreboardError(f"{imported_path} is not the object --mode=import_weights writes")
  return imported


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


def _classifier_id(record, pattern):
  """What computed the value: StackGAN's checkpoint for its IS, else the Inception's hash."""
  protocol = record.get("protocol") or {}
  if pattern.startswith(STACKGAN_CUB_PREFIX):
    return (protocol.get("stackgan_cub") or {}).get("checkpoint_sha256")
  return protocol.get("classifier_hash")


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
  latest = _classifier_id(real[-1], pattern)
  same = [r for r in real if _classifier_id(r, pattern) == latest]
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
  m = re.fullmatch(r"(?:inception_score|stackgan_cub_is)_(\d+)split_mean", key)
  if m:
    return int(m.group(1))
  if key == "inception_score":
    return 1
  return protocol.get("is_splits")


def _millions(n):
  return f"{n / 1e6:.3g}M" if n >= 1_000_000 else f"{n:,}"


def _retrieval(key, protocol):
  """The run's R-precision protocol for the metric key (r_precision_<name>[_mean])."""
  m = re.fullmatch(r"r_precision_([a-z0-9]+?)(?:_mean)?", key)
  rp = (protocol.get(f"r_precision_{m.group(1)}") if m else None) or protocol.get(
      "r_precision") or {}
  if not rp:
    return "protocol not recorded"
  details = [f"{rp['candidates']} candidates" if "candidates" in rp else None,
             f"negatives by {rp['keys']}" if "keys" in rp else None,
             f"DAMSM {_short_hash(rp['damsm_sha256'])}" if rp.get("damsm_sha256") else None]
  details = [d for d in details if d]
  return rp.get("name", "unnamed") + (f" ({', '.join(details)})" if details else "")


def _released_files(imported):
  files = imported.get("files") or []
  names = [os.path.basename(str(f.get("path", "?"))) + (
      f" sha256 {str(f['sha256'])[:12]}" if f.get("sha256") else "") for f in files]
  return ", ".join(names) or "files not recorded"


def protocol_differences(number: PaperNumber, best: Best, batch_size=None,
                         imported: Optional[dict] = None) -> List[str]:
  """The paper's protocol next to the run's, aspect by aspect ('paper X / run Y')."""
  paper, record = number.protocol, best.record or {}
  run = record.get("protocol") or {}
  stackgan = run.get("stackgan_cub") or {} if best.key.startswith(STACKGAN_CUB_PREFIX) else None
  samples = _count(run.get("num_generated"))
  if stackgan is not None:
    samples = (f"{_count(stackgan.get('num_generated'))}, {_count(stackgan.get('num_scored'))} "
               f"scored (whole batches of 64, as StackGAN's script)")
  out = [f"samples: paper {_count(paper.num_generated)} / run {samples}"]
  reference = (f"{run.get('real_dataset', '?')}/{run.get('real_split', '?')}, "
               f"{_count(run.get('num_real'))} images")
  out.append(f"reference: paper {paper.reference} / run {reference}")
  if number.metric is R_PRECISION:
    out.append(f"retrieval: paper {paper.classifier} / run {_retrieval(best.key, run)}")
  elif stackgan is not None:
    out.append(f"Inception: paper {paper.classifier} / run StackGAN's CUB Inception-v3 from "
               f"{stackgan.get('checkpoint', 'not recorded')} "
               f"({_short_hash(stackgan.get('checkpoint_sha256', '?'))}, "
               f"{stackgan.get('weights', '?')}, {stackgan.get('classes', '?')} classes)")
  else:
    source = run.get("classifier_source", "not recorded")
    out.append(f"Inception: paper {paper.classifier} / run TF-GAN Inception module from "
               f"{source} ({_short_hash(run.get('classifier_hash', '?'))}, "
               f"{run.get('resize_method', '?')} resize)")
    if number.metric is IS_STACKGAN_CUB:
      out.append("the run's IS is on TF-GAN's ImageNet Inception, not the paper's network: "
                 "evaluate with --is_classifier=stackgan_cub to compare")
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
  if imported is not None:
    released = imported.get("step")
    out.append(f"training: paper {paper.training} / run {AUTHORS_WEIGHTS} (released step "
               f"{'not stated' if released is None else f'{released:,}'}: "
               f"{_released_files(imported)}), not trained here")
  else:
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
  label = f"{run.path} ({AUTHORS_WEIGHTS})" if run.imported is not None else run.path
  if not experiments:
    return [(label, f"no paper experiment matches ({run.model} on {run.dataset} at "
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
        rows.append((label, experiment.name, metric, paper, best.refused, "", ""))
        continue
      value = best.value * number.metric.scale
      record = best.record
      spread = None  # the run's +/- when the metric has one (IS over splits, R-precision)
      std_key = (best.key[:-5] if best.key.endswith("_mean") else best.key) + "_std"
      if record["metrics"].get(std_key) is not None:
        spread = record["metrics"][std_key] * number.metric.scale
      step = record.get("step")
      details = protocol_differences(number, best, run.config.get("batch_size"),
                                     run.imported) + list(best.notes)
      if number.note:
        details.append(number.note)
      if changed:
        details.append("settings changed: " + ", ".join(changed))
      rows.append((label, experiment.name, metric, paper,
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
