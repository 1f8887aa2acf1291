"""bench/train_step.py: config parsing, and a tiny real GANEstimator run that is timed right."""
import math

import pytest

from bench import train_step


def test_parse_configs_fills_df_and_attention_defaults():
  configs = train_step.parse_configs("sagan:32:16:16, ylg_sagan:128:64/32:256:16")
  assert configs == [train_step.Config("sagan", 32, 16, 16, 16, 16),
                     train_step.Config("ylg_sagan", 128, 64, 32, 256, 16)]
  assert train_step.config_text(configs[1]) == "ylg_sagan:128:64/32:256:16"
  assert train_step.parse_configs(train_step.FULL_CONFIGS) == [
      train_step.Config("sagan", 128, 64, 64, 256, 64),
      train_step.Config("ylg_sagan", 128, 64, 64, 256, 32)]


@pytest.mark.parametrize("text", ["sagan:32:16", "biggan:32:16:16", "sagan:48:16:16",
                                  "sagan:32:0:16", ""])
def test_parse_configs_rejects_bad_configs(text):
  with pytest.raises(ValueError):
    train_step.parse_configs(text)


@pytest.mark.slow
def test_tiny_run_times_exactly_the_requested_steps():
  config = train_step.Config("sagan", 32, 8, 8, 8, 16)
  result = train_step.run_one(config, steps=3, warmup=1, num_classes=10)
  assert result["timed_steps"] == 3
  assert math.isfinite(result["steps_per_sec"]) and result["steps_per_sec"] > 0
  assert result["images_per_sec"] == pytest.approx(8 * result["steps_per_sec"])
  assert result["seconds"] == pytest.approx(3 / result["steps_per_sec"])
  assert result["setup_seconds"] > 0 and result["peak_rss_mb"] > 100
  assert result["distribution"] == "none" and result["mixed_precision"] is False


def test_format_table_keeps_failed_configs():
  configs = train_step.parse_configs("sagan:32:8:8,ylg_sagan:32:8:8")
  ok = dict(timed_steps=3, steps_per_sec=2.0, images_per_sec=16.0, median_step_ms=500.0,
            setup_seconds=12.0, peak_rss_mb=700.0)
  table = train_step.format_table(configs, [ok, {"error": "exit 1: ValueError: a|b"}])
  lines = table.splitlines()
  assert len(lines) == 4 and lines[2].startswith("| sagan | 32 px | 8 / 8 | 16x16 | 8 | 3 | 2.00 |")
  assert "FAILED: exit 1: ValueError: a/b" in lines[3]


def test_models_without_sagan_widths_keep_their_paper_widths():
  configs = train_step.parse_configs("ladagan:32:paper:16")
  assert configs == [train_step.Config("ladagan", 32, None, None, 16, None)]
  assert train_step.config_text(configs[0]) == "ladagan:32:paper:16"
  with pytest.raises(ValueError, match="ladagan has no gf_dim"):
    train_step.parse_configs("ladagan:32:16:16")
  with pytest.raises(ValueError, match="LadaGAN builds"):
    train_step.parse_configs("ladagan:48:paper:16")


@pytest.mark.slow
def test_a_caption_model_gets_captions_and_its_settings(tmp_path):
  """AttnGAN through run_one: the first embedded dataset it accepts (digits_captions), random
  captions of its vocabulary, --set's hyperparameters and a DAMSM from --set=damsm_dir."""
  from estimators.models import attngan_test  # pylint: disable=import-outside-toplevel
  from estimators.testing import tiny_config  # pylint: disable=import-outside-toplevel
  from bench import train_step as bench_train_step  # pylint: disable=import-outside-toplevel
  tiny = {k: v for k, v in attngan_test.TINY.items() if k not in ("model", "batch_size")}
  attngan_test.write_random_damsm(tiny_config(tmp_path / "owner", **attngan_test.TINY,
                                              damsm_dir=str(tmp_path / "damsm")))
  pairs = [f"{k}={v}" for k, v in tiny.items() if k not in ("image_size", "num_classes")]
  overrides = bench_train_step.parse_settings_for("attngan", pairs + [
      f"damsm_dir={tmp_path / 'damsm'}"])
  config = bench_train_step.parse_configs("attngan:16:paper:4")[0]
  result = bench_train_step.run_one(config, steps=1, warmup=1, overrides=overrides)
  assert result["timed_steps"] == 1 and result["images_per_sec"] > 0
  ds = bench_train_step._dataset_fn(tiny_config(tmp_path, **attngan_test.TINY))()  # pylint: disable=protected-access
  element = next(iter(ds))
  assert element["captions"].shape == (16,) and 8 <= int(element["caption_length"]) <= 16
  assert int(element["captions"].numpy().max()) < 65  # the digits vocabulary's 65 words
