"""bench/eval.py (named apart from eval/'s tests): its flags and presets, the memory table from
given subprocess results, and its pure helpers (no classifier is built, nothing is timed)."""
import math
import os
import re
import subprocess
import types

from absl import flags
import numpy as np
import pytest

from bench import eval as eval_bench
from bench import run_all

MEMORY_NAME = "peak RSS, 1000 samples (stand-in, subset 1000)"  # the widest row name: 46


def _flags(argv):
  fv = eval_bench.define_flags(flags.FlagValues())
  fv(["bench/eval.py"] + argv)
  return fv


def test_flags_are_defined_only_when_asked():
  # run.py and bench/r_precision.py also define --batch_size: defining at import would clash
  assert "memory_samples" not in flags.FLAGS and "throughput_samples" not in flags.FLAGS


def test_defaults_are_the_documented_full_settings():
  assert run_all.BENCHMARKS["eval"].full == []
  fv = _flags(run_all.BENCHMARKS["eval"].full)
  # docstring: 5k vs 50k memory runs on subsets of 5000; KID / P-R subset 10000 by default
  assert fv.memory_samples == ["5000", "50000"] and fv.memory_real_samples == 5000
  assert (fv.memory_feature_subset_size, fv.feature_subset_size) == (5000, 10_000)
  assert (fv.throughput_samples, fv.rounds, fv.batch_size, fv.image_size) == (256, 2, 64, 32)
  assert fv.parts == ["memory", "throughput"] and fv.memory_child == 0
  assert fv.inception_path is None
  # the usage line's example values are the defaults
  for name in ("throughput_samples", "memory_samples"):
    shown = re.search(rf"--{name}=([\d,]+)", eval_bench.__doc__).group(1)
    assert shown == ",".join(map(str, np.atleast_1d(fv[name].value))), name


def test_quick_preset_is_smaller_and_keeps_the_subset_within_the_smallest_run():
  fv = _flags(run_all.BENCHMARKS["eval"].quick)
  assert fv.memory_samples == ["1000", "5000"] and fv.memory_real_samples == 1000
  assert (fv.throughput_samples, fv.rounds, fv.memory_feature_subset_size) == (128, 2, 1000)
  for preset in (fv, _flags([])):  # "at most the smallest sample count"
    assert preset.memory_feature_subset_size <= min(int(n) for n in preset.memory_samples)


@pytest.mark.parametrize("argv, error", [
    (["--rounds=two"], flags.IllegalFlagValueError),
    (["--memory_child=1.5"], flags.IllegalFlagValueError),
    (["--memory_sample=10"], flags.UnrecognizedFlagError)])
def test_bad_flags_are_refused(argv, error):
  with pytest.raises(error):
    _flags(argv)


def test_memory_table_from_the_child_results(monkeypatch, capsys):
  monkeypatch.setattr(eval_bench, "FLAGS", _flags(run_all.BENCHMARKS["eval"].quick
                                                  + ["--parts=memory"]))
  commands = []
  results = {"1000": "RESULT 1000 500 8 3", "5000": "RESULT 5000 520 8 12"}

  def run(cmd, **kwargs):
    assert kwargs["check"]
    commands.append(cmd[1:])
    count = cmd[2].split("=")[1]
    return types.SimpleNamespace(stdout=f"a log line\n{results[count]}\n")
  monkeypatch.setattr(subprocess, "run", run)
  eval_bench.main([])
  script = os.path.abspath(eval_bench.__file__)
  assert commands == [[script, f"--memory_child={n}", "--feature_subset_size=1000",
                       "--memory_real_samples=1000", "--batch_size=64", "--image_size=32"]
                      for n in (1000, 5000)]
  assert len(MEMORY_NAME) == 46
  assert capsys.readouterr().out.splitlines() == [
      "| measurement" + " " * 35 + " | value |",
      "|" + "-" * 48 + "|-------|",
      f"| {MEMORY_NAME} | 500 MB (feature subsets 8 MB, 3 s) |",
      f"| {MEMORY_NAME.replace('1000 samples', '5000 samples')} | "
      "520 MB (feature subsets 8 MB, 12 s) |",
      "| peak RSS 5000 vs 1000" + " " * 25 + " | +4.0% (target within 10%) |"]  # 520 / 500 - 1


def test_random_images_are_seeded_and_in_the_generator_range():
  a = eval_bench._random_images(np.random.RandomState(3), 2, 4)
  assert a.shape == (2, 4, 4, 3) and a.dtype == np.float32
  assert np.all(np.abs(a) < 1)  # tanh of a normal: the generator's [-1, 1] output range
  np.testing.assert_array_equal(a, eval_bench._random_images(np.random.RandomState(3), 2, 4))


def test_timed_classifier_passes_through_and_adds_up_its_seconds():
  calls = []

  class Inner:
    content_hash, protocol = "sha256:x", {"resize": "tf1_bilinear"}

    def __call__(self, images):
      calls.append(images)
      return {"logits": images * 2}
  timed = eval_bench._TimedClassifier(Inner())
  assert (timed.content_hash, timed.protocol, timed.seconds) == (
      "sha256:x", {"resize": "tf1_bilinear"}, 0.0)
  assert timed(np.ones(3))["logits"].tolist() == [2.0, 2.0, 2.0]
  timed(np.zeros(1))
  assert len(calls) == 2 and math.isfinite(timed.seconds) and timed.seconds > 0
