"""bench/run_all.py: one markdown report with every selected section, failures kept, atomic write."""
import os

import pytest

from bench import run_all

TABLE = "header line\n\n| a | b |\n|---|---:|\n| x | 1 |\n"


def _fake_outcome(name, status="ok", stdout=TABLE, stderr=""):
  return run_all.Outcome(name, ["python", "-m", f"bench.{name}", "--x=1"], status, 1.5,
                         "0.1 -> 0.2", stdout, stderr)


@pytest.fixture
def fake_runs(monkeypatch):
  """Replaces the subprocesses and the machine probe; records what would have run."""
  calls = []
  outcomes = {
      "attention": _fake_outcome("attention"),
      "train_step": _fake_outcome("train_step", "FAILED (exit 1)", stdout="",
                                  stderr="Traceback ...\nValueError: no GPU | here\n"),
      "eval": _fake_outcome("eval", stdout="plain text\n  aligned   columns\n"),
      "data": _fake_outcome("data"),
  }

  def fake_run(name, args, timeout):
    calls.append((name, args, timeout))
    return outcomes[name]
  monkeypatch.setattr(run_all, "run_benchmark", fake_run)
  monkeypatch.setattr(run_all, "machine_info", lambda: [("CPU cores (os.cpu_count)", "2")])
  return calls


def test_report_has_every_selected_section_and_records_failures(fake_runs, tmp_path, capsys):
  out = tmp_path / "sub" / "results.md"
  assert run_all.main(["--only=attention,train_step,eval", f"--out={out}",
                       "--args=eval=--rounds=3 --parts=throughput"]) == 1
  report = out.read_text()
  assert capsys.readouterr().out.strip() == report.strip()
  assert [c[0] for c in fake_runs] == ["attention", "train_step", "eval"]
  assert fake_runs[2][1] == run_all.BENCHMARKS["eval"].quick + ["--rounds=3", "--parts=throughput"]
  assert "## data" not in report
  for name in ("attention", "train_step", "eval"):
    assert report.count(f"## {name}: ") == 1
  assert "| attention | ok | 2 s | 0.1 -> 0.2 |" in report
  assert "| train_step | FAILED (exit 1): ValueError: no GPU / here | 2 s |" in report
  assert "| x | 1 |" in report                                   # a markdown table stays markdown
  assert "```\nplain text\n  aligned   columns\n```" in report  # other output is fenced
  assert "| CPU cores (os.cpu_count) | 2 |" in report
  assert os.listdir(out.parent) == ["results.md"]               # no temporary file left behind


def test_full_passes_paper_scale_presets(fake_runs, tmp_path):
  assert run_all.main(["--only=attention,data", "--full", f"--out={tmp_path / 'r.md'}"]) == 0
  assert fake_runs == [("attention", run_all.BENCHMARKS["attention"].full, 86400.0),
                       ("data", run_all.BENCHMARKS["data"].full, 86400.0)]


@pytest.mark.parametrize("argv", [["--only=attention,gpu"], ["--args=nothing"],
                                  ["--args=gpu=--x"]])
def test_bad_selection_fails_at_start(argv):
  with pytest.raises(SystemExit):
    run_all.parse_args(argv)


def test_run_benchmark_reports_a_real_failure_and_a_timeout():
  failed = run_all.run_benchmark("train_step", ["--configs=sagan:48:8:8"], timeout=60)
  assert failed.status == "FAILED (exit 2)"
  assert "sagan builds [32, 64, 128] px images, not 48" in run_all._last_error_line(
      failed.stderr)
  slow = run_all.run_benchmark("train_step", [], timeout=0.5)
  assert slow.status.startswith("TIMED OUT") and slow.seconds < 30


# Run for real by their own tests (train_step_test, attngan_step_test), so not again here.
COVERED_ELSEWHERE = ("train_step", "attngan_step")


@pytest.mark.slow
def test_real_run_of_every_benchmark_at_tiny_settings(tmp_path):
  out = tmp_path / "results.md"
  selected = [name for name in run_all.BENCHMARKS if name not in COVERED_ELSEWHERE]
  code = run_all.main([
      f"--out={out}", "--timeout=600", f"--only={','.join(selected)}",
      "--args=attention=--sizes=32 --layers=sagan_1head,ylg_sparse --channels=64 --steps=1",
      "--args=tfgan_example=--settings=8:2 --warmup=1 --steps=1",
      "--args=step_breakdown=--configs=sagan:32:8:8 --num_classes=10 --warmup=1 --untraced=1 "
      "--traced=1",
      "--args=eval=--parts=memory --memory_samples=100,200 --memory_real_samples=100 "
      "--memory_feature_subset_size=100 --batch_size=50",
      "--args=data=--num_images=8 --passes=1",
      "--args=setup_time=--rows=sagan:tiny",
      "--args=lada_attention=--tokens=64,256 --steps=1",
      "--args=r_precision=--images=100,200 --pool=300"])
  report = out.read_text()
  assert code == 0, report
  for name in selected:
    assert f"| {name} | ok |" in report and report.count(f"## {name}: ") == 1
  assert len(selected) == len(run_all.BENCHMARKS) - 2 and "## train_step" not in report
  assert "| sagan_1head |" in report
  assert "| sagan | tiny (estimators/testing.py) |" in report
  assert "peak RSS, 200 samples" in report and "imagenet TFRecord shards" in report
