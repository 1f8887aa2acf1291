"""bench/lada_official.py: the official directory check, the ratio at the median step, the tables
(the official code itself is not part of the project: the bench runs it from --official_dir)."""
import pytest

from bench import lada_official


def test_a_directory_without_the_official_modules_is_refused_naming_what_is_missing(tmp_path):
  (tmp_path / "model.py").write_text("")
  with pytest.raises(ValueError, match="missing trainer.py, utils.py, diffaug.py"):
    lada_official.check_official_dir(str(tmp_path))
  with pytest.raises(SystemExit):
    lada_official.main([f"--official_dir={tmp_path}"])


def test_ratio_is_against_the_faster_official_contender_at_the_median_step():
  results = {"official_xla": ("", [2.0, 2.0, 9.0], 100.0, 1.5),     # median 2.0 s: 8 images/s
             "official_no_xla": ("", [1.6, 1.6, 1.7], 90.0, 1.9),   # median 1.6 s: 10 images/s
             "default": ("", [1.25, 5.0, 1.0], 50.0, 1.25)}         # median 1.25 s: 12.8 images/s
  rows = lada_official.rows_of(16, results)
  assert [(r[1], round(r[2], 3), r[4]) for r in rows[:2]] == [
      ("official_xla", 8.0, None), ("official_no_xla", 10.0, None)]
  assert rows[2][4] == pytest.approx(1.28)
  lines = lada_official.format_table(rows).splitlines()
  assert lines[2] == "| 16 | official_xla | 2,000 | 8.00 | - | 100 | 1.50 |"
  assert lines[4] == "| 16 | ours default | 1,250 | 12.80 | 1.28x | 50 | 1.25 |"


def test_setup_table_gives_medians_and_the_ratio_to_the_official():
  totals = {"official": [10.0, 12.0, 11.0], "ours": [20.0, 24.0, 22.0]}
  last = {"official": {"start": 3.0, "total": 11.0}, "ours": {"graph": 5.0, "total": 22.0}}
  lines = lada_official.format_setup(totals, last).splitlines()
  assert lines[2] == "| official | start 3.0 | 11.0 | 1.00x |"
  assert lines[3] == "| ours | graph 5.0 | 22.0 | 2.00x |"


def test_compare_interleaves_contenders_and_keeps_the_timed_steps(monkeypatch):
  log = []

  def fake_train(name):
    def train(*args):
      hook, total = args[-1], args[-2]
      for _ in range(total):
        hook.before_run(None)
        log.append(name)
      hook.end(None)
      return name
    return train
  monkeypatch.setattr(lada_official, "train_official", fake_train("official"))
  monkeypatch.setattr(lada_official, "train_ours", fake_train("ours"))
  results = lada_official.compare("unused", 16, ["official_no_xla"], ["default"], steps=2,
                                  warmup=1)
  assert log == ["official", "ours"] * 3
  assert {n: (d, len(s)) for n, (d, s, *_) in results.items()} == {
      "official_no_xla": ("official", 2), "default": ("ours", 2)}
  assert all(r[3] >= 0.0 for r in results.values())  # CPU seconds per wall second


def test_breakdown_table_puts_both_sides_buckets_and_op_types_side_by_side():
  sides = {"official_no_xla": ({"MatMul": 30.0, "Conv2D": 10.0, "Mul": 1.0},
                               {"D forward": 25.0, "G forward": 16.0}, 41.0),
           "ours": ({"MatMul": 20.0, "FusedBatchNormV3": 2.0}, {"D forward": 22.0}, 22.0)}
  lines = lada_official.format_breakdown(sides, top=2).splitlines()
  assert lines[0] == "| bucket | official_no_xla ms/step | ours ms/step |"
  assert lines[2:5] == ["| D forward | 25.0 | 22.0 |", "| G forward | 16.0 | 0.0 |",
                        "| total | 41.0 | 22.0 |"]
  assert lines[8:] == ["| MatMul | 30.0 | 20.0 |", "| Conv2D | 10.0 | 0.0 |",
                       "| 2 other types | 1.0 | 2.0 |"]
