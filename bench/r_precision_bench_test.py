"""bench/r_precision.py (named apart from eval/r_precision_test.py): its flags and presets, the
random captions, and the table from given subprocess results (no DAMSM is built)."""
import os
import subprocess
import sys
import types

from absl import flags
import numpy as np
import pytest

from bench import r_precision as r_precision_bench
from bench import run_all


def _flags(argv):
  fv = r_precision_bench.define_flags(flags.FlagValues())
  fv(["bench/r_precision.py"] + argv)
  return fv


def test_defaults_are_the_documented_settings_and_quick_streams_10x_too():
  assert "pool" not in flags.FLAGS  # defined when run, not on import (--batch_size clashes)
  assert run_all.BENCHMARKS["r_precision"].full == []
  full = _flags(run_all.BENCHMARKS["r_precision"].full)
  # docstring: 3,000 vs 30,000 images against a pool of 30,000 captions, batches of 100
  assert (full.images, full.pool, full.batch_size, full.words, full.child) == (
      ["3000", "30000"], 30_000, 100, 18, 0)
  quick = _flags(run_all.BENCHMARKS["r_precision"].quick)
  assert (quick.images, quick.pool, quick.batch_size) == (["300", "3000"], 3000, 100)
  for preset in (full, quick):  # "10x more images"; the pool holds a caption per image
    small, large = (int(n) for n in preset.images)
    assert large == 10 * small and large <= preset.pool


@pytest.mark.parametrize("argv, error", [(["--pool=abc"], flags.IllegalFlagValueError),
                                         (["--words=1e3"], flags.IllegalFlagValueError),
                                         (["--image=300"], flags.UnrecognizedFlagError)])
def test_bad_flags_are_refused(argv, error):
  with pytest.raises(error):
    _flags(argv)


def test_captions_are_padded_with_zeros_after_their_length(monkeypatch):
  monkeypatch.setattr(r_precision_bench, "FLAGS", _flags([]))
  ids, lengths = r_precision_bench._captions(np.random.RandomState(0), 500)
  assert ids.shape == (500, 18) and ids.dtype == lengths.dtype == np.int32
  assert lengths.min() == 4 and lengths.max() == 18  # 4..WORDS_NUM words, both ends drawn
  np.testing.assert_array_equal((ids != 0).sum(axis=1), lengths)  # words first, then zeros
  assert ids.max() < r_precision_bench.VOCAB == 5450


def test_table_from_the_child_results(monkeypatch, capsys):
  monkeypatch.setattr(r_precision_bench, "FLAGS",
                      _flags(run_all.BENCHMARKS["r_precision"].quick))
  calls = []
  # VmHWM in kB, seconds, R-precision paper, dmgan: 614400 kB = 600 MB, 634880 kB = 620 MB
  results = {"300": "614400 12.5 0.01 0.0133", "3000": "634880 101.0 0.011 0.0099"}

  def run(cmd, **kwargs):
    calls.append((cmd[1:], kwargs["cwd"]))
    return types.SimpleNamespace(stdout="a log line\n" + results[cmd[3].split("=")[1]] + "\n")
  monkeypatch.setattr(subprocess, "run", run)
  r_precision_bench.main([])
  root = os.path.dirname(os.path.dirname(os.path.abspath(r_precision_bench.__file__)))
  assert calls == [(["-m", "bench.r_precision", f"--child={n}", "--pool=3000", "--batch_size=100",
                     "--words=18"], root) for n in (300, 3000)]
  out = capsys.readouterr().out
  assert out.startswith("Pool of 3,000 captions, both protocols, batches of 100;")
  assert out.splitlines()[-4:] == [
      "| generated images | peak RSS (MB) | vs first | time (s) | R-prec paper | R-prec dmgan |",
      "|---:|---:|---:|---:|---:|---:|",
      "| 300 | 600 | 1.000 | 12.5 | 0.0100 | 0.0133 |",
      "| 3,000 | 620 | 1.033 | 101.0 | 0.0110 | 0.0099 |"]  # 620 / 600


def test_a_pool_too_small_for_99_negatives_is_refused_before_any_child():
  problem = r_precision_bench.pool_problem(50)
  # 50 captions of 5 images: 40 belong to other images, far from the 99 negatives a query needs
  assert problem == ("--pool=50 is too small: a query needs 99 mismatching captions and the "
                     "pool holds 40 with another image; use --pool=109 or more")
  assert r_precision_bench.pool_problem(109) is None  # 11 images: 99 captions of the others
  assert "another image" in r_precision_bench.pool_problem(108)
  assert r_precision_bench.pool_problem(30_000) is None and r_precision_bench.pool_problem(
      3000) is None  # the presets
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run([sys.executable, "-m", "bench.r_precision", "--pool=50", "--images=10"],
                        cwd=root, capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0 and "use --pool=109 or more" in proc.stderr + proc.stdout
  assert "Traceback" not in proc.stderr  # refused by the parent, no child ran and failed
