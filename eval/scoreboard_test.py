"""The scoreboard reads run directories in the formats run.py writes and lays out the right rows.

run_config.json is written by the real writer (estimators.run_dir.write_run_config of
GANConfig.to_dict()), and metrics.jsonl by eval.metrics_log.append_jsonl, with records made by
the real eval.evaluate.evaluate (tiny stand-in network) or shaped as run_eval writes them; so a
format change in either breaks these tests instead of the scoreboard silently.
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from data import registry
from estimators import run_dir
from estimators.config import GANConfig
from eval import evaluate as evaluate_lib
from eval import inception
from eval import metrics_log
from eval import scoreboard
from eval import standin_classifier


def _write_config(path, **changes):
  """run_config.json as run.py writes it: GANConfig.to_dict() with the dataset's resolved loader
  options (defaults included) through estimators.run_dir.write_run_config."""
  hparams = changes.pop("hparams", {})
  given = changes.pop("data_options", {})
  if registry.is_registered(changes.get("dataset", "digits")):
    changes["data_options"] = tuple(
        registry.resolved_options(changes.get("dataset", "digits"), given).items())
  cfg = GANConfig(model_dir=str(path), **changes)
  if hparams:
    cfg = cfg.with_hparams(**hparams)
  os.makedirs(path, exist_ok=True)
  run_dir.write_run_config(str(path), cfg.to_dict(), ["run.py"])
  return str(path)


def _protocol(step, **changes):
  """A protocol as estimators.evaluation.run_eval + eval.evaluate record it."""
  protocol = {"checkpoint_step": step, "seed": 1000, "ema_weights": False, "truncation": None,
              "model": "sagan", "source": f"model.ckpt-{step}",
              "classifier_source": "tfhub_cache:/cache/abc",
              "classifier_hash": "sha256:" + "a" * 64,
              "resize_method": "tf1_bilinear", "classifier_image_size": 299,
              "num_generated": 10_000, "num_real": 50_000, "num_real_requested": 50_000,
              "real_dataset": "imagenet", "real_split": "train", "is_splits": 10}
  protocol.update(changes)
  return protocol


def _append(path, step, metrics, **protocol):
  metrics_log.append_jsonl(os.path.join(path, "metrics.jsonl"),
                           {"step": step, "time": "2026-12-01T12:00:00Z", "metrics": metrics,
                            "protocol": _protocol(step, **protocol), "timing": {}})


def _rows(path):
  return scoreboard.rows_for(scoreboard.read_run(path))


def _row(rows, experiment, metric, paper_value):
  found = [r for r in rows if r[1] == experiment and r[2] == metric
           and r[3].startswith(f"{paper_value:.2f}")]
  assert len(found) == 1, (experiment, metric, rows)
  return found[0]


def _classifier(source="inception_path:/models/inception", content_hash="sha256:" + "b" * 64):
  return inception.InceptionClassifier(standin_classifier.StandinModule(16, 8, seed=0),
                                       content_hash=content_hash, source=source, image_size=8)


def _evaluate(classifier, step, seed):
  """One record from the real evaluate(): 20 generated vs 16 real tiny images."""
  rng = np.random.RandomState(seed)
  fake = rng.uniform(-1, 1, [20, 8, 8, 3]).astype(np.float32) * (0.2 + 0.2 * seed)
  real = tf.data.Dataset.from_tensor_slices(
      {"images": np.random.RandomState(99).uniform(-1, 1, [16, 8, 8, 3]).astype(np.float32)})
  result = evaluate_lib.evaluate(
      [fake[:10], fake[10:]], real, classifier, num_samples=20,
      cache_key_parts={"dataset": "imagenet", "split": "train"},
      provenance={"seed": 1000, "checkpoint_step": step, "ema_weights": False,
                  "truncation": None, "model": "sagan"},
      num_real_samples=16, splits=10, batch_size=8, feature_subset_size=8)
  return result.to_record()


def test_real_writers_sagan_headline_best_fid_and_is_with_their_steps(tmp_path):
  path = _write_config(tmp_path / "sagan", dataset="imagenet", image_size=128, batch_size=256)
  classifier = _classifier()
  records = [_evaluate(classifier, step, seed) for seed, step in enumerate([1000, 2000, 3000])]
  for record in records:
    metrics_log.append_jsonl(os.path.join(path, "metrics.jsonl"), record)
  fids = [r["metrics"]["fid"] for r in records]
  scores = [r["metrics"]["inception_score_10split_mean"] for r in records]
  assert len(set(fids)) == 3 and len(set(scores)) == 3  # the test distinguishes the records

  rows = _rows(path)
  # The paper defaults (attention at 64x64, one head) are SAGAN's Table 1 feat64 model and no
  # other experiment: two rows, FID and IS.
  assert [(r[1], r[2]) for r in rows] == [("SAGAN Table 1: SAGAN feat64", "FID"),
                                          ("SAGAN Table 1: SAGAN feat64", "IS")]
  fid_row, is_row = rows
  assert fid_row[3] == "18.65 (SAGAN Table 1)"
  best = int(np.argmin(fids))
  assert fid_row[4] == f"{fids[best]:.2f} (fid)"
  assert fid_row[5] == f"{[1000, 2000, 3000][best]:,}"
  assert is_row[3] == "52.52 (SAGAN Table 1)"
  best = int(np.argmax(scores))
  std = records[best]["metrics"]["inception_score_10split_std"]
  assert is_row[4] == f"{scores[best]:.2f} ± {std:.2f} (inception_score_10split_mean)"
  assert is_row[5] == f"{[1000, 2000, 3000][best]:,}"
  # Protocol differences spelled out from the record the real evaluate() wrote.
  details = fid_row[6]
  assert "samples: paper 50,000 / run 20" in details
  assert ("reference: paper ImageNet (LSVRC2012), split and count not stated / run "
          "imagenet/train, 16 images") in details
  assert "run TF-GAN Inception module from inception_path:/models/inception" in details
  assert "truncation: paper none / run none" in details
  assert ("training: paper best over 1M iterations (Table 1 caption) / run best of 3 "
          "evaluations") in details
  assert "IS splits: paper not stated / run 10" in is_row[6]
  # GANConfig's defaults are SAGAN's sec. 5 settings; the published numbers used batch
  # statistics in G at evaluation (the authors' code), this suite's default is moving averages.
  assert details.endswith("; settings changed: bn_inference 'moving' (paper 'batch', official "
                          "code)")


def test_markdown_table_and_cli(tmp_path, capsys):
  path = _write_config(tmp_path / "run", dataset="imagenet128", image_size=128)
  _append(path, 500, {"fid": 40.0, "inception_score": 10.0, "inception_score_10split_mean": 9.5,
                      "inception_score_10split_std": 0.25})
  assert scoreboard.main([path]) == 0
  lines = capsys.readouterr().out.strip().split("\n")
  assert lines[0] == ("| run | paper experiment | metric | paper | this run (best) | step | "
                      "protocol: paper / this run; settings the run changed |")
  assert lines[1] == "|---|---|---|---|---|---|---|"
  assert len(lines) == 4
  cells = [c.strip() for c in lines[2].split(" | ")]
  assert cells[1:6] == ["SAGAN Table 1: SAGAN feat64", "FID", "18.65 (SAGAN Table 1)",
                        "40.00 (fid)", "500"]
  assert "9.50 ± 0.25 (inception_score_10split_mean)" in lines[3]


def test_ylg_ablation_rows_tfgan_inception_score_and_changed_settings(tmp_path):
  path = _write_config(tmp_path / "noesa", model="ylg_sagan", dataset="imagenet", image_size=128,
                       batch_size=64, hparams={"attention_resolution": 32, "ylg_esa": False,
                                               "gf_dim": 32})
  _append(path, 1000, {"fid": 30.5, "inception_score": 20.1, "inception_score_10split_mean": 19.0,
                       "inception_score_10split_std": 0.3})
  _append(path, 2000, {"fid": 25.0, "inception_score": 19.0, "inception_score_10split_mean": 21.0,
                       "inception_score_10split_std": 0.3})
  _append(path, 3000, {"fid": 27.0, "inception_score": 22.5, "inception_score_10split_mean": 20.0,
                       "inception_score_10split_std": 0.3}, truncation=2.0)
  rows = _rows(path)
  assert {r[1] for r in rows} == {"YLG Table 1: YLG - No ESA"}
  fid = _row(rows, "YLG Table 1: YLG - No ESA", "FID", 17.47)
  assert (fid[4], fid[5]) == ("25.00 (fid)", "2,000")
  assert "step 2,000 x batch 64 = 128,000 images seen" in fid[6]
  # YLG's code reports TF-GAN's one-value Inception score: that key is preferred.
  score = _row(rows, "YLG Table 1: YLG - No ESA", "IS", 51.09)
  assert (score[4], score[5]) == ("22.50 (inception_score)", "3,000")
  assert "IS splits: paper 1 (TF-GAN, no splits) / run 1 (TF-GAN, no splits)" in score[6]
  assert "truncation: paper none / run 2.0" in score[6]
  assert score[6].endswith(
      "settings changed: gf_dim 32 (paper 64, official code), sn_bound 'paper' (paper 'tfgan', "
      "official code)")  # YLG's code evaluates with BN moving statistics, as the run does


def test_sagan_at_32_matches_table1_feat32_and_ylg_baseline_row(tmp_path):
  path = _write_config(tmp_path / "s32", dataset="imagenet", image_size=128,
                       hparams={"attention_resolution": 32, "num_heads": 8})
  _append(path, 10, {"fid": 50.0, "inception_score": 5.0})
  rows = _rows(path)
  assert {r[1] for r in rows} == {"YLG Table 1: SAGAN, 8 heads"}
  path = _write_config(tmp_path / "s32one", dataset="imagenet", image_size=128,
                       hparams={"attention_resolution": 32})
  _append(path, 10, {"fid": 50.0, "inception_score": 5.0})
  rows = _rows(path)
  assert [r[1] for r in rows] == ["SAGAN Table 1: SAGAN feat32"] * 2 + [
      "YLG Table 1: SAGAN, 1 head"] * 2
  assert _row(rows, "SAGAN Table 1: SAGAN feat32", "FID", 18.28)[4] == "50.00 (fid)"
  assert "quotes SAGAN's published feat64 headline" in _row(
      rows, "YLG Table 1: SAGAN, 1 head", "FID", 18.65)[6]


def test_ablation_rows_of_sagan_table1(tmp_path):
  expected = {("none", 64): (22.96, 42.87), ("residual", 8): (42.13, 23.17),
              ("residual", 32): (27.33, 38.50), ("self_attention", 16): (22.14, 45.94)}
  for (kind, size), (paper_fid, paper_is) in expected.items():
    path = _write_config(tmp_path / f"{kind}{size}", dataset="imagenet", image_size=128,
                         hparams={"attention_type": kind, "attention_resolution": size})
    _append(path, 1, {"fid": 99.0, "inception_score_10split_mean": 3.0})
    rows = _rows(path)
    assert len(rows) == 2, rows
    assert rows[0][2:4] == ("FID", f"{paper_fid:.2f} (SAGAN Table 1)")
    assert rows[1][2:4] == ("IS", f"{paper_is:.2f} (SAGAN Table 1)")


def test_digits_classifier_metrics_are_refused_next_to_inception_numbers(tmp_path):
  path = _write_config(tmp_path / "digits_metrics", dataset="imagenet", image_size=128)
  # The record shape run_eval writes for digits metrics (see runs/digits_sagan/metrics.jsonl).
  metrics_log.append_jsonl(os.path.join(path, "metrics.jsonl"), {
      "step": 1500, "time": "2026-12-01T12:24:03Z",
      "metrics": {"digits_fid": 77.88809741597547, "digits_score": 6.751377257200538},
      "protocol": {"checkpoint_step": 1500, "digits": {
          "classifier": "digits_classifier_d22a96f28b159005", "features": "fc128",
          "num_generated": 1000, "num_real": 1438, "real_split": "digits/train",
          "score_splits": 1}, "ema_weights": False, "model": "sagan", "num_generated": 1000,
          "seed": 1000, "source": "runs/digits_sagan/model.ckpt-1500", "truncation": None},
      "timing": {"total_seconds": 2.51}})
  rows = _rows(path)
  assert len(rows) == 2
  assert [(r[1], r[2], r[3]) for r in rows] == [
      ("SAGAN Table 1: SAGAN feat64", "FID", "18.65 (SAGAN Table 1)"),
      ("SAGAN Table 1: SAGAN feat64", "IS", "52.52 (SAGAN Table 1)")]
  for row, name in zip(rows, ("FID", "IS")):
    assert row[4] == (
        f"refused: this run recorded only digits-classifier metrics (digits_fid, digits_score); "
        f"the paper's {name} is on Inception-v3 and the two are not comparable. Evaluate with "
        f"the TF-GAN Inception (--inception_path) to fill this cell.")
    assert "77.89" not in " ".join(row) and "6.75" not in " ".join(row)
    assert row[5:] == ("", "")


def test_standin_classifier_values_are_refused(tmp_path):
  path = _write_config(tmp_path / "standin", dataset="imagenet", image_size=128)
  metrics_log.append_jsonl(os.path.join(path, "metrics.jsonl"), _evaluate(
      standin_classifier.standin_classifier(logits_dim=16, pool_dim=8, image_size=8), 7, 0))
  rows = _rows(path)
  assert [r[4] for r in rows] == [
      "refused: every FID here is from the stand-in classifier (random weights; tests only), "
      "not Inception",
      "refused: every IS here is from the stand-in classifier (random weights; tests only), "
      "not Inception"]


def test_best_is_taken_among_records_of_the_latest_classifier(tmp_path):
  path = _write_config(tmp_path / "two", dataset="imagenet", image_size=128)
  _append(path, 100, {"fid": 5.0}, classifier_hash="sha256:" + "1" * 64)
  _append(path, 200, {"fid": 9.0}, classifier_hash="sha256:" + "2" * 64)
  _append(path, 300, {"fid": 8.0}, classifier_hash="sha256:" + "2" * 64)
  fid = _row(_rows(path), "SAGAN Table 1: SAGAN feat64", "FID", 18.65)
  assert (fid[4], fid[5]) == ("8.00 (fid)", "300")
  assert "1 records from another classifier ignored (best over the 2" in fid[6]


def test_ladagan_rows_by_dataset_bcr_and_protocol(tmp_path):
  path = _write_config(tmp_path / "cifar", model="ladagan", dataset="cifar10", image_size=32,
                       hparams={"bcr_weight": 1.0})
  _append(path, 10, {"fid": 12.0})
  rows = _rows(path)
  assert [(r[1], r[3]) for r in rows] == [
      ("LadaGAN CIFAR-10 (bCR)", "3.29 (LadaGAN Table IV (also Tables II, III))")]
  # run.py applies LadaGAN's run_defaults (Adam 2e-4, betas 0.5/0.99); GANConfig's own defaults
  # here are SAGAN's, and the cutout the paper adds for CIFAR-10 is not in the default policy.
  assert ("settings changed: generator_lr 0.0001 (paper 0.0002, LadaGAN sec. IV-A), "
          "discriminator_lr 0.0004 (paper 0.0002, LadaGAN sec. IV-A), beta1 0.0 (paper 0.5, "
          "LadaGAN sec. IV-A), beta2 0.9 (paper 0.99, LadaGAN sec. IV-A), diffaugment "
          "'color,translation' (paper 'color,translation,cutout', LadaGAN sec. IV-A)") in rows[0][6]
  path = _write_config(tmp_path / "cifar0", model="ladagan", dataset="cifar10", image_size=32)
  _append(path, 10, {"fid": 12.0})
  assert [r[1] for r in _rows(path)] == ["LadaGAN CIFAR-10 (no bCR)"]

  path = _write_config(tmp_path / "celeba", model="ladagan", dataset="celeba", image_size=64,
                       generator_lr=2e-4, discriminator_lr=2e-4, beta1=0.5, beta2=0.99,
                       data_options={"resize_to_square": True})
  _append(path, 4000, {"fid": 6.5}, num_generated=19_962, num_real=19_962, real_split="test",
          real_dataset="celeba")
  rows = _rows(path)
  assert [(r[3], r[4]) for r in rows] == [
      ("2.89 (LadaGAN Table IV (19k column; also Table II))", "6.50 (fid)"),
      ("1.81 (LadaGAN Table IV (50k column))", "6.50 (fid)")]
  assert "samples: paper 19,962 / run 19,962" in rows[0][6]
  assert ("reference: paper CelebA test split, all 19,962 images / run celeba/test, 19,962 "
          "images") in rows[0][6]
  assert "samples: paper 50,000 / run 19,962" in rows[1][6]
  assert "training: paper 72M images seen (Table V)" in rows[0][6]
  assert "settings changed" not in rows[0][6]


def test_runs_matching_no_experiment_are_listed_as_such(tmp_path):
  path = _write_config(tmp_path / "digits", dataset="digits", image_size=32)
  _append(path, 1500, {"digits_fid": 77.9})
  path_128 = _write_config(tmp_path / "celeba32", model="ladagan", dataset="celeba",
                           image_size=32)
  table = scoreboard.scoreboard([path, path_128])
  lines = table.split("\n")
  assert len(lines) == 4
  assert (f"| {path} | no paper experiment matches (sagan on digits at 32 px with these "
          f"hyperparameters) |") in lines[2]
  assert "known: sagan on imagenet/imagenet128 at 128 px" in lines[2]
  assert "77.9" not in table
  assert "no paper experiment matches (ladagan on celeba at 32 px" in lines[3]


def test_run_without_evaluations(tmp_path):
  path = _write_config(tmp_path / "fresh", dataset="imagenet", image_size=128)
  rows = _rows(path)
  assert [r[4] for r in rows] == ["no evaluations yet (no metrics.jsonl): run --mode=eval or "
                                  "train_and_eval"] * 2


def test_pre_registry_flat_run_config_is_read(tmp_path):
  path = tmp_path / "old"
  os.makedirs(path)
  flat = {"model": "ylg_sagan", "dataset": "imagenet", "image_size": 128, "batch_size": 256,
          "attention_resolution": 32, "attention_type": "self_attention", "num_heads": 1,
          "ylg_layout": "strided", "ylg_esa": True, "generator_lr": 1e-4,
          "discriminator_lr": 4e-4, "gf_dim": 64, "df_dim": 64, "z_dim": 128}
  (path / "run_config.json").write_text(json.dumps({"config": flat, "versions": {}}))
  _append(str(path), 5, {"fid": 33.0})
  assert {r[1] for r in _rows(str(path))} == {"YLG Table 1: YLG - Strided"}


def test_bad_directories_fail_with_what_to_do(tmp_path, capsys):
  with pytest.raises(scoreboard.ScoreboardError, match=r"no such directory; pass the --model_dir"):
    scoreboard.read_run(str(tmp_path / "missing"))
  os.makedirs(tmp_path / "empty")
  with pytest.raises(scoreboard.ScoreboardError,
                     match=r"empty has no run_config.json: not a run directory"):
    scoreboard.read_run(str(tmp_path / "empty"))
  os.makedirs(tmp_path / "broken")
  (tmp_path / "broken" / "run_config.json").write_text("{not json")
  with pytest.raises(scoreboard.ScoreboardError, match=r"run_config.json is not readable JSON"):
    scoreboard.read_run(str(tmp_path / "broken"))
  (tmp_path / "broken" / "run_config.json").write_text('{"argv": []}')
  with pytest.raises(scoreboard.ScoreboardError, match=r"lacks config.model / config.dataset"):
    scoreboard.read_run(str(tmp_path / "broken"))
  path = _write_config(tmp_path / "torn", dataset="imagenet", image_size=128)
  _append(path, 1, {"fid": 3.0})
  with open(os.path.join(path, "metrics.jsonl"), "a", encoding="utf8") as f:
    f.write('{"step": 2, "metr\n')
  with pytest.raises(scoreboard.ScoreboardError, match=r"metrics.jsonl line 2 is not JSON"):
    scoreboard.read_run(path)
  # The CLI reads every directory first: nothing is printed for the good one, exit status 2.
  good = _write_config(tmp_path / "good", dataset="imagenet", image_size=128)
  assert scoreboard.main([good, str(tmp_path / "empty")]) == 2
  out, err = capsys.readouterr()
  assert out == "" and err.startswith("error: ") and "has no run_config.json" in err


def test_experiments_listing_holds_every_headline():
  table = scoreboard.experiments_table()
  for text in ("| SAGAN Table 1: SAGAN feat64 |", "| 18.65 |", "| 52.52 |", "| 15.94 |",
               "| 57.22 |", "| 4.36 ± 0.03 |", "| 67.82 ± 4.43 |", "| 25.89 ± 0.47 |",
               "| 85.47 ± 3.69 |", "| 3.29 |", "| 2.89 |", "| 1.81 |", "| 4.48 |", "| 5.08 |"):
    assert text in table, text
  # 9 SAGAN Table 1 models + 5 YLG rows, two numbers each; AttnGAN 2 x 2; LadaGAN 7.
  assert len(table.split("\n")) == 2 + 28 + 4 + 7


def test_attngan_rows_r_precision_in_percent_with_its_spread(tmp_path):
  # The AttnGAN model is not registered yet: its run_config.json is the real writer's output
  # with the model entry swapped (the layout GANConfig.to_dict gives every model).
  config = GANConfig(dataset="cub", image_size=256, num_classes=0).to_dict()
  config["model"] = {"name": "attngan", "hparams": {"damsm_weight": 5.0}}
  path = str(tmp_path / "attngan")
  os.makedirs(path)
  run_dir.write_run_config(path, config)
  _append(path, 100, {"inception_score_10split_mean": 3.9, "inception_score_10split_std": 0.05,
                      "r_precision_paper_mean": 0.5512, "r_precision_paper_std": 0.049},
          num_generated=30_000, real_dataset="cub", real_split="test",
          r_precision={"name": "paper", "num_negatives": 99})
  _append(path, 200, {"inception_score_10split_mean": 4.1, "inception_score_10split_std": 0.04,
                      "r_precision_paper_mean": 0.5, "r_precision_paper_std": 0.05},
          num_generated=30_000, real_dataset="cub", real_split="test",
          r_precision={"name": "paper", "num_negatives": 99})
  rows = _rows(path)
  assert [(r[1], r[2], r[3], r[4], r[5]) for r in rows] == [
      ("AttnGAN CUB (AttnGAN2, lambda=5)", "IS", "4.36 ± 0.03 (AttnGAN Table 2 (top six rows) / "
       "Table 3)", "4.10 ± 0.04 (inception_score_10split_mean)", "200"),
      ("AttnGAN CUB (AttnGAN2, lambda=5)", "R-precision (%)", "67.82 ± 4.43 (AttnGAN Table 2 "
       "(top six rows))", "55.12 ± 4.90 (r_precision_paper_mean)", "100")]
  assert "Inception: paper StackGAN's Inception-v3 fine-tuned on CUB" in rows[0][6]
  assert "IS splits: paper 10 / run 10" in rows[0][6]
  assert "retrieval: paper the pretrained DAMSM encoders; true caption + 99 random mismatching " \
         "ones, R = 1 / run paper" in rows[1][6]
  assert "samples: paper 30,000 / run 30,000" in rows[1][6]


def test_cli_imports_no_tensorflow(tmp_path):
  """The README promises an answer in a fraction of a second: no TensorFlow import."""
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  code = ("import sys; from eval import scoreboard; "
          "print(scoreboard.main(['--experiments']) or 'tensorflow' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                       check=True).stdout
  assert out.strip().split("\n")[-1] == "False"
  assert "| SAGAN Table 1: SAGAN feat64 |" in out


def test_missing_or_null_metrics_say_so(tmp_path):
  path = _write_config(tmp_path / "nulls", dataset="imagenet", image_size=128)
  _append(path, 1, {"fid": None, "kid_mean": 0.1})
  assert [r[4] for r in _rows(path)] == ["FID is null (undefined) in every record",
                                         "no IS in metrics.jsonl (1 records)"]


def test_ladagan_128px_rows_and_conv_discriminator_ablation(tmp_path):
  path = _write_config(tmp_path / "lsun", model="ladagan", dataset="lsun", image_size=128)
  _append(path, 10, {"fid": 40.0})
  assert [(r[1], r[3][:4]) for r in _rows(path)] == [("LadaGAN LSUN bedroom 128", "5.08"),
                                                     ("LadaGAN LSUN bedroom 128", "4.60")]
  path = _write_config(tmp_path / "ffhq", model="ladagan", dataset="ffhq", image_size=128)
  _append(path, 10, {"fid": 40.0})
  rows = _rows(path)
  assert [(r[1], r[3][:4]) for r in rows] == [("LadaGAN FFHQ 128", "4.48")]
  assert "resize_to_square False (paper True" in rows[0][6]
  # The conv-discriminator rows of Table II are ablations, not the headline experiment.
  path = _write_config(tmp_path / "convd", model="ladagan", dataset="ffhq", image_size=128,
                       hparams={"d_type": "conv"})
  assert "no paper experiment matches" in _rows(path)[0][1]


def test_at_most_one_experiment_of_a_table_matches_any_sagan_or_ylg_run():
  for model in ("sagan", "ylg_sagan"):
    for kind in ("self_attention", "residual", "none"):
      for size in (8, 16, 32, 64):
        for heads in (1, 8):
          for layout in ("ylg", "strided"):
            for esa in (True, False):
              hparams = {"attention_type": kind, "attention_resolution": size}
              hparams.update({"num_heads": heads} if model == "sagan" else
                             {"ylg_layout": layout, "ylg_esa": esa})
              run = scoreboard.Run("r", model, "imagenet", 128, hparams, {}, ())
              names = [e.name for e in scoreboard.matching_experiments(run)]
              for table in ("SAGAN Table 1", "YLG Table 1"):
                assert len([n for n in names if n.startswith(table)]) <= 1, (hparams, names)

