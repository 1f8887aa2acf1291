"""The scoreboard's rows for a run of the authors' imported weights (imported.json) and for
StackGAN's CUB Inception score, from records shaped as the evaluation writes them."""
import os

import numpy as np
import pytest

from estimators import run_dir, weights_import
from estimators.config import GANConfig
from eval import scoreboard
from eval import stackgan_inception
from eval.scoreboard_test import _append, _rows, _write_config


def _stackgan_cub_result(seed):
  """metrics and protocol as eval.stackgan_inception.StackGANInceptionScore records them (its
  classifier replaced by fixed predictions: the record's format is what this test is about)."""
  class Fixed(stackgan_inception.StackGANInception):
    def __init__(self):  # pylint: disable=super-init-not-called
      self.source = "/models/birds_valid299/model.ckpt-5000"
      self.content_hash = "sha256:" + "c" * 64
      self.averaged, self.num_classes = True, 51

    def predictions(self, images_uint8):
      return np.random.RandomState(seed).dirichlet(np.ones(50) * 0.2, len(images_uint8))

  score = stackgan_inception.StackGANInceptionScore(Fixed(), splits=10)
  score.update(np.zeros([30_000, 1, 1, 3], np.float32))
  return score.result()


def test_imported_attngan_run_is_the_authors_weights_with_the_evaluation_protocol(tmp_path):
  assert scoreboard.IMPORTED_JSON == weights_import.IMPORTED_JSON
  config = GANConfig(dataset="cub", image_size=256, num_classes=0).to_dict()
  config["model"] = {"name": "attngan", "hparams": {"damsm_weight": 5.0}}
  path = str(tmp_path / "authors")
  os.makedirs(path)
  run_dir.write_run_config(path, config)
  run_dir.atomic_write_json(os.path.join(path, weights_import.IMPORTED_JSON), {
      "model": "attngan", "import_from": ["/rel/bird_AttnGAN2.pth"],
      "files": [{"path": "/rel/bird_AttnGAN2.pth", "bytes": 10, "sha256": "d" * 64}],
      "release": {}, "directory": path, "checkpoint": "model.ckpt-0", "step": 0,
      "variables": {}, "left_out": {}})
  stackgan_metrics, stackgan_protocol = _stackgan_cub_result(seed=1)
  rp_protocol = {"name": "paper", "candidates": 100, "r": 1, "keys": "image_ids",
                 "damsm_sha256": "e" * 64}
  _append(path, 0, {"inception_score_10split_mean": 3.2, "inception_score_10split_std": 0.1,
                    **stackgan_metrics, "r_precision_paper": 0.6712,
                    "r_precision_paper_std": 0.047, "r_precision_dmgan": 0.7,
                    "r_precision_dmgan_std": 0.01},
          num_generated=30_000, real_dataset="cub", real_split="test", model="attngan",
          r_precision_paper=rp_protocol, **stackgan_protocol)
  rows = _rows(path)
  assert [r[0] for r in rows] == [f"{path} (authors' weights)"] * 2
  is_row, rp_row = rows
  value = stackgan_metrics["stackgan_cub_is_10split_mean"]
  assert value > 1.5 and is_row[4] == (
      f"{value:.2f} ± {stackgan_metrics['stackgan_cub_is_10split_std']:.2f} "
      f"(stackgan_cub_is_10split_mean)")
  assert is_row[3].startswith("4.36 ± 0.03")
  for text in ("samples: paper 30,000 / run 30,000, 29,952 scored",
               "Inception: paper StackGAN's Inception-v3 fine-tuned on CUB birds (not the "
               "ImageNet network) / run StackGAN's CUB Inception-v3 from /models/birds_valid299/"
               "model.ckpt-5000 (sha256:cccccccccccc…, ExponentialMovingAverage, 50 classes)",
               "IS splits: paper 10 / run 10",
               "run authors' weights (released step 0: bird_AttnGAN2.pth sha256 dddddddddddd), "
               "not trained here"):
    assert text in is_row[6], (text, is_row[6])
  assert "TF-GAN's ImageNet Inception" not in is_row[6]
  assert rp_row[4] == "67.12 ± 4.70 (r_precision_paper)"
  assert ("retrieval: paper the pretrained DAMSM encoders; true caption + 99 random mismatching "
          "ones, R = 1 / run paper (100 candidates, negatives by image_ids, DAMSM "
          "eeeeeeeeeeeeeeeeeee…)") in rp_row[6]
  # Without StackGAN's classifier the CUB row falls back to TF-GAN's IS and says it is another one.
  _append(path, 0, {"inception_score_10split_mean": 3.3, "inception_score_10split_std": 0.1},
          num_generated=30_000, real_dataset="cub", real_split="test")
  os.rename(os.path.join(path, "metrics.jsonl"), os.path.join(path, "all.jsonl"))
  with open(os.path.join(path, "all.jsonl"), encoding="utf8") as f:
    last = f.read().strip().split("\n")[-1]
  with open(os.path.join(path, "metrics.jsonl"), "w", encoding="utf8") as f:
    f.write(last + "\n")
  is_row = _rows(path)[0]
  assert is_row[4] == "3.30 ± 0.10 (inception_score_10split_mean)"
  assert "the run's IS is on TF-GAN's ImageNet Inception, not the paper's network" in is_row[6]


def test_unreadable_imported_json_is_an_error_naming_it(tmp_path):
  path = _write_config(tmp_path / "bad", dataset="imagenet", image_size=128)
  with open(os.path.join(path, "imported.json"), "w", encoding="utf8") as f:
    f.write("{not json")
  with pytest.raises(scoreboard.ScoreboardError, match="imported.json is not readable JSON"):
    scoreboard.read_run(path)
