"""bench/setup_vs_official.py: contenders, alternating fresh-process runs, the table (the
subprocesses replaced by given numbers)."""
import pytest

from bench import setup_vs_official


def test_ylg_is_compared_with_the_official_ylg_code_only_when_given():
  assert setup_vs_official.contenders(None) == [("sagan", "tfgan_example"),
                                                ("ylg_sagan", "tfgan_example")]
  assert setup_vs_official.contenders("/ylg")[1] == ("ylg_sagan", "ylg_official")


def test_rounds_alternate_ours_and_official_and_report_medians(monkeypatch, capsys):
  calls = []
  totals = {"ours": iter([30.0, 10.0, 20.0]), "official": iter([4.0, 6.0, 5.0])}

  def run(argv):
    side = "ours" if argv[0] == "bench.setup_time" else "official"
    calls.append((side, argv[1]))
    return {"total": next(totals[side])}
  monkeypatch.setattr(setup_vs_official, "_run", run)
  setup_vs_official.main(["--models=sagan", "--rounds=3"])
  assert calls == [("ours", "--one=sagan:paper"), ("official", "--one=tfgan_example")] * 3
  table = [l for l in capsys.readouterr().out.splitlines() if l.startswith("|")]
  assert table[2] == "| sagan | 20.0 | tfgan_example | 5.0 | 4.00x |"


def test_a_failed_run_is_reported_in_its_row(monkeypatch, capsys):
  monkeypatch.setattr(setup_vs_official, "_run", lambda argv: {"error": "exit 1: boom"})
  setup_vs_official.main(["--models=sagan"])
  assert "| sagan | FAILED | tfgan_example | exit 1: boom | |" in capsys.readouterr().out
  with pytest.raises(SystemExit):
    setup_vs_official.main(["--models=attngan"])
