"""bench/attngan_official.py: bad official paths refused at start, rounds tabled with their
ratios and medians; bench/setup_time.py's official row (no torch here: the driver itself is run
by hand, see the README)."""
import argparse
import os

import pytest

from bench import attngan_official, setup_time


def _checkout(tmp_path):
  code = tmp_path / "AttnGAN" / "code"
  (code / "miscc").mkdir(parents=True)
  for name in ("model.py", "miscc/losses.py", "miscc/config.py", "GlobalAttention.py"):
    (code / name).write_text("")
  return str(tmp_path / "AttnGAN")


def test_official_paths_checked(tmp_path):
  top = _checkout(tmp_path)
  assert attngan_official.official_code_dir(top) == os.path.join(top, "code")
  os.remove(os.path.join(top, "code", "miscc", "losses.py"))
  with pytest.raises(ValueError, match="no code/miscc/losses.py"):
    attngan_official.official_code_dir(top)
  with pytest.raises(ValueError, match="no such executable"):
    attngan_official.check_python(str(tmp_path / "nopython"))
  assert os.path.isfile(attngan_official.DRIVER)


def test_main_refuses_a_bad_checkout_before_running_anything(tmp_path, capsys):
  with pytest.raises(SystemExit):
    attngan_official.main([f"--official_dir={tmp_path}", "--official_python=/bin/sh"])
  assert "not a taoxugit/AttnGAN checkout" in capsys.readouterr().err


def test_rounds_tabled_with_ratios_and_medians():
  def side(ips, rss, setup=None):
    return dict({"images_per_sec": ips, "median_step_s": 4 / ips, "peak_rss_mb": rss},
                **({"setup_to_first_step_s": setup} if setup else {}))
  rounds = [{"ours": side(1.2, 4000), "official": side(1.0, 5000, 6.0)},
            {"ours": side(1.0, 4200), "official": side(0.8, 4000, 8.0)},
            {"ours": side(0.9, 4400), "official": side(0.9, 4600, 7.0)}]
  median = attngan_official.summarise(rounds)
  assert median["ours"]["images_per_sec"] == 1.0 and median["official"]["peak_rss_mb"] == 4600
  table = attngan_official.format_table(rounds, 4)
  assert "| 1 | 1.200 | 1.000 | 1.20x | 4,000 | 5,000 | 0.80x |" in table
  assert "| median | 1.000 | 0.900 | 1.11x | 4,200 | 4,600 | 0.91x |" in table
  assert "median 7.0 s" in table
  rounds[1]["official"] = {"error": "exit 1: no torch"}
  assert "| median | FAILED: exit 1: no torch |" in attngan_official.format_table(rounds, 4)


def test_setup_time_official_row(tmp_path):
  none = argparse.Namespace(official_dir=None, official_python=None)
  assert setup_time.official_row(none) is None
  with pytest.raises(ValueError, match="go together"):
    setup_time.official_row(argparse.Namespace(official_dir=_checkout(tmp_path),
                                               official_python=None))
  row = setup_time.official_row(argparse.Namespace(official_dir=str(tmp_path / "AttnGAN"),
                                                   official_python="/bin/sh"))
  assert row == (str(tmp_path / "AttnGAN" / "code"), "/bin/sh")
  official = {**{p: None for p in setup_time.PHASES}, "total": 6.0}
  ours = {**{p: 1.0 for p in setup_time.PHASES}, "total": 7.0}
  (median,) = setup_time.median_results([[official], [dict(official, total=5.0)],
                                         [dict(official, total=9.0)]])
  assert median["total"] == 6.0 and median["graph"] is None
  table = setup_time.format_table([("attngan", "paper"), ("attngan", "official")], [ours, median])
  assert "| attngan | official code, CUB config | - | - | - | - | - | - | - | 6.0 |" in table
  assert "| attngan | attngan_cub.cfg | 1.0 |" in table
