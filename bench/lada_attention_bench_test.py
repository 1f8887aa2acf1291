"""bench/lada_attention.py (the test is named apart from tfgan_attention/lada_attention_test.py):
the dense-memory estimate and the skip path (no subprocess runs)."""
from bench import lada_attention


def test_dense_estimate_is_quadratic_and_uses_measurements():
  # 3 float32 [8, 4, 4096, 4096] tensors = 3 * 2 GiB
  assert lada_attention.dense_estimate_mb(4096, 8, 4, []) == 6144
  # a measured 500 MB at N = 1024 scales by 16 at N = 4096
  assert lada_attention.dense_estimate_mb(4096, 8, 4, [(1024, 500.0)]) == 8000


def test_dense_runs_over_budget_are_skipped_and_said_so(capsys):
  lada_attention.main(["--layers=dense", "--tokens=1024,16384", "--mem_budget_gb=0.01"])
  out = capsys.readouterr().out
  assert "| dense | skipped (est. 0.4 GB) | - | skipped (est. 96.0 GB) | - |" in out
  assert "dense at N=16384 not run: estimated peak 96.0 GB > memory budget 0.0 GB" in out
