"""bench/attention.py (named apart from any attention_test.py): the a*N + b*N^2 extrapolation, the
budget skip and the table, with the per-(layer, size) subprocesses replaced by given numbers."""
import json
import os
import subprocess
import types

import pytest

from bench import attention
from bench import run_all

# (layer, size) -> (ms, peak MB) the fake subprocess reports. ylg_dense grows as 300/4096 * N +
# 300/(4096*3072) * N^2 MB (100 MB at 32x32, 700 at 64x64, so 1200 + 6400 = 7600 at 128x128);
# ylg_sparse grows linearly in N (800 MB at 128x128, under the 1 GB budget, so it is run).
MEASURED = {("ylg_dense", 32): (10, 100), ("ylg_dense", 64): (40, 700),
            ("ylg_sparse", 32): (20, 50), ("ylg_sparse", 64): (80, 200),
            ("ylg_sparse", 128): (320, 800)}


@pytest.fixture
def fake_runs(monkeypatch):
  commands = []

  def run(cmd, **kwargs):
    assert kwargs["check"] and kwargs["capture_output"]
    commands.append(cmd[2:])  # after python and bench/attention.py
    ms, mb = MEASURED[(cmd[3], int(cmd[4]))]
    return types.SimpleNamespace(stdout="a TF log line\n" + json.dumps({"ms": ms, "peak_mb": mb}))
  monkeypatch.setattr(subprocess, "run", run)
  return commands


def test_extrapolate_fits_linear_plus_quadratic_in_pixels():
  assert attention._extrapolate([(32, 100.0), (64, 700.0)], 128) == pytest.approx(7600)
  assert attention._extrapolate([(32, 10.0), (64, 40.0)], 128) == pytest.approx(160)
  # only the last two points count
  assert attention._extrapolate([(16, 1e6), (32, 100.0), (64, 700.0)], 128) == pytest.approx(7600)
  # a fit that falls below the larger measurement is floored at it (here -5400 -> 50)
  assert attention._extrapolate([(32, 100.0), (64, 50.0)], 128) == 50.0


def test_over_budget_run_is_estimated_not_made_and_marked(fake_runs, capsys):
  # the full preset is the module's defaults: 32, 64, 128; batch 8; C = 256; 3 timed steps
  assert run_all.BENCHMARKS["attention"].full == []
  attention.main(run_all.BENCHMARKS["attention"].full
                 + ["--layers=ylg_dense,ylg_sparse", "--mem_budget_gb=1"])
  rest = ["--batch=8", "--channels=256", "--steps=3"]
  assert fake_runs == [["--one", "ylg_dense", "32"] + rest, ["--one", "ylg_sparse", "32"] + rest,
                       ["--one", "ylg_dense", "64"] + rest, ["--one", "ylg_sparse", "64"] + rest,
                       ["--one", "ylg_sparse", "128"] + rest]  # no ylg_dense at 128
  out = capsys.readouterr().out
  assert "batch 8, 256 channels, keys pooled 2x2, forward+backward;" in out
  assert "budget 1.0 GB" in out
  table = [l for l in out.splitlines() if l.startswith("|")]
  assert table == [
      "| layer | 32x32 time (ms) | 32x32 peak (MB) | 64x64 time (ms) | 64x64 peak (MB) | "
      "128x128 time (ms) | 128x128 peak (MB) |",
      "|---|---:|---:|---:|---:|---:|---:|",
      "| ylg_dense | 10 | 100 | 40 | 700 | 160 est. | 7,600 est. |",
      "| ylg_sparse | 20 | 50 | 80 | 200 | 320 | 800 |"]
  assert out.endswith(
      "\n32x32: ylg_sparse / ylg_dense = 2.00x time, 0.50x peak memory"
      "\n64x64: ylg_sparse / ylg_dense = 2.00x time, 0.29x peak memory"
      "\n128x128: ylg_sparse / ylg_dense = 2.00x time, 0.11x peak memory (dense estimated)\n")


def test_quick_preset_runs_32_and_64_with_two_steps(fake_runs, capsys):
  assert run_all.BENCHMARKS["attention"].quick == ["--sizes=32,64", "--steps=2"]
  attention.main(run_all.BENCHMARKS["attention"].quick
                 + ["--layers=ylg_sparse", "--mem_budget_gb=1"])
  assert fake_runs == [["--one", "ylg_sparse", s, "--batch=8", "--channels=256", "--steps=2"]
                       for s in ("32", "64")]
  assert "| ylg_sparse | 20 | 50 | 80 | 200 |" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--batch=eight"], ["--mem_budget_gb=lots"],
                                  ["--one", "ylg_dense"], ["--steps=2.5"]])
def test_bad_arguments_are_refused_before_any_run(fake_runs, argv):
  with pytest.raises(SystemExit) as e:
    attention.main(argv)
  assert e.value.code == 2 and fake_runs == []


def test_non_integer_size_is_refused_before_any_run(fake_runs):
  with pytest.raises(ValueError):
    attention.main(["--sizes=32,big", "--mem_budget_gb=1"])
  assert fake_runs == []


def test_an_unknown_layer_is_refused_before_any_run(fake_runs, capsys):
  with pytest.raises(SystemExit) as exit_info:
    attention.main(["--layers=ylg_sparse,ylg_sprase", "--sizes=32"])
  assert exit_info.value.code == 2 and not fake_runs  # nothing measured
  assert "unknown 'ylg_sprase'; choose among sagan_1head" in capsys.readouterr().err


def test_alternate_table_has_medians_ranges_and_ratios_to_each_dense_layer():
  times = {"ylg_sparse": ([30.0, 10.0, 20.0], [5.0, 4.0, 3.0]),
           "ylg_sparse_baseline": ([40.0, 40.0, 40.0], [8.0, 8.0, 8.0]),
           "ylg_dense": ([100.0, 300.0, 200.0], [40.0, 40.0, 40.0]),
           "ylg_dense_official": ([250.0, 150.0, 400.0], [80.0, 80.0, 80.0])}
  out = attention.format_alternate(times, 64, 8, 256, (1.5, 2.25))
  assert out.splitlines()[0] == ("64x64, batch 8, 256 channels, forward+backward of the whole "
                                 "layer; 3 rounds "
                                 "alternating in one process; " + str(os.cpu_count())
                                 + " CPU cores, load average 1.5 -> 2.2")
  assert "| ylg_sparse | 20 | 10 - 30 | 4 |" in out
  core = attention.format_alternate(times, 64, 8, 256, (1.5, 2.25), core=True)
  assert "forward+backward of the attention core only (theta, phi, g -> heads' output)" in core
  assert "| ylg_dense_official | 250 | 150 - 400 | 80 |" in out
  assert "ylg_sparse / ylg_dense = 0.100x wall time, 0.100x CPU time (medians)" in out
  assert "ylg_sparse / ylg_dense_official = 0.080x wall time, 0.050x CPU time (medians)" in out
  assert "ylg_sparse_baseline / ylg_dense = 0.200x wall time, 0.200x CPU time (medians)" in out


def test_baseline_layer_comes_from_the_other_tree(tmp_path):
  """--baseline loads DIR's ylg_attention.py over DIR's ylg_sparse.py (here copies of this tree's
  with a marker), not this tree's."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(attention.__file__)))
  (tmp_path / "tfgan_attention").mkdir()
  for name in ("ylg_attention.py", "ylg_sparse.py"):
    with open(os.path.join(root, "tfgan_attention", name), encoding="utf-8") as f:
      text = f.read()
    (tmp_path / "tfgan_attention" / name).write_text(text + f"\nMARKER = {name!r}\n")
  cls = attention._baseline_ylg(str(tmp_path))
  assert cls.__name__ == "YLGAttention"
  assert cls.call.__globals__["MARKER"] == "ylg_attention.py"
  assert cls.call.__globals__["sparse_attention"].__globals__["MARKER"] == "ylg_sparse.py"


def test_core_steps_of_sparse_and_dense_compute_the_same_gradients():
  """--core: the sparse core and both dense cores (the -inf mask; the official additive mask
  with its head transposes) give the same summed gradients w.r.t. theta, phi and g."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  x = tf.zeros([2, 8, 8, 64])
  got = {name: float(attention._traced_core_step(name, x)(x))  # pylint: disable=protected-access
         for name in attention.ALTERNATE}
  assert got["ylg_sparse"] != 0.0
  assert got["ylg_dense"] == pytest.approx(got["ylg_sparse"], rel=1e-4, abs=1e-3)
  assert got["ylg_dense_official"] == pytest.approx(got["ylg_sparse"], rel=1e-4, abs=1e-3)
