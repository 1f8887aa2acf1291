"""bench/attngan_step.py: CUB settings from the config file, and a tiny real run of all three rows
whose printed DAMSM share is the one of its rows' median step times."""
import pytest

from bench import attngan_step


def test_full_settings_are_configs_attngan_cub():
  s = attngan_step.settings(full=True)
  assert (s["image_size"], s["batch_size"], s["branch_num"], s["max_words"]) == (256, 20, 3, 18)
  assert (s["gf_dim"], s["df_dim"], s["r_num"], s["z_dim"], s["condition_dim"]) == (
      32, 64, 2, 100, 100)
  assert (s["damsm_batch_size"], s["damsm_image_size"], s["damsm_image_encoder"]) == (
      48, 299, "inception_v3")
  assert s["lambda_damsm"] == 5.0 and s["vocab_size"] == attngan_step.CUB_VOCAB_SIZE
  assert attngan_step.settings(full=True, overrides=["batch_size=10"])["batch_size"] == 10


@pytest.mark.parametrize("overrides", [["nonsense=1"], ["batch_size"], ["gf_dim=wide"],
                                       ["image_size=48"], ["batch_size=1"]])
def test_bad_settings_fail_at_start(overrides):
  with pytest.raises(ValueError):
    attngan_step.settings(full=False, overrides=overrides)


@pytest.mark.slow
def test_tiny_run_has_positive_speeds_and_the_damsm_share_of_its_rows(capsys):
  results = attngan_step.main([
      "--steps=3", "--warmup=1", "--set=image_size=16", "--set=branch_num=2",
      "--set=gf_dim=4", "--set=df_dim=4", "--set=batch_size=2", "--set=z_dim=8",
      "--set=condition_dim=4", "--set=damsm_image_encoder=inception_v3",
      "--set=damsm_image_size=75", "--set=damsm_batch_size=2", "--set=damsm_embedding_dim=8",
      "--set=damsm_word_dim=6"])
  out = capsys.readouterr().out
  assert set(results) == set(attngan_step.PARTS)
  for part, r in results.items():
    assert "error" not in r, (part, r)
    assert r["timed_steps"] == 3 and r["images_per_sec"] > 0 and r["peak_rss_mb"] > 100
  assert results["attngan"]["batch"] == 2 and results["damsm_pretrain"]["batch"] == 2
  with_, without = results["attngan"]["median_step_s"], results["attngan_no_damsm"]["median_step_s"]
  share = attngan_step.damsm_share(results)
  # the share of the rows' own medians; its sign is a timing (not asserted: no wall-clock asserts)
  assert share == pytest.approx(1.0 - without / with_, rel=1e-12, abs=1e-12), results
  by_total = 1.0 - (results["attngan"]["images_per_sec"] /
                    results["attngan_no_damsm"]["images_per_sec"])
  assert f"share of the AttnGAN step (1 - median step without L_DAMSM / with it): " \
         f"{100 * share:.0f}% (from the timed totals instead: {100 * by_total:.0f}%;" in out
  assert out.count("| AttnGAN step, 2 stages to 16 px") == 2
