"""bench/setup_time.py: rows parsed and checked, phases tabled, medians over rounds (the real
tiny run is bench/run_all_test.py's)."""
import pytest

from bench import setup_time


def test_rows_are_parsed_and_bad_ones_refused():
  assert setup_time.parse_rows("sagan:tiny, attngan:paper") == [("sagan", "tiny"),
                                                                ("attngan", "paper")]
  for bad in ("sagan", "sagan:huge", "gpt:tiny", ""):
    with pytest.raises(ValueError):
      setup_time.parse_rows(bad)


def test_any_registered_model_takes_the_tiny_preset(monkeypatch):
  from estimators import model_registry  # pylint: disable=import-outside-toplevel
  from estimators.models import get_model  # pylint: disable=import-outside-toplevel
  monkeypatch.setitem(model_registry.MODELS, "sagan_copy", get_model("sagan"))
  assert setup_time.parse_rows("sagan_copy:tiny") == [("sagan_copy", "tiny")]
  assert setup_time._paper_dataset("sagan_copy") == "digits"  # pylint: disable=protected-access
  with pytest.raises(ValueError, match="no paper config of sagan_copy is known"):
    setup_time.parse_rows("sagan_copy:paper")


def test_medians_per_phase_and_failures_kept():
  phases = setup_time.PHASES + ("total",)
  one = {p: 1.0 for p in phases}
  rounds = [[dict(one, total=7.0), {"error": "exit 1: boom"}],
            [dict(one, total=9.0), one],
            [dict(one, total=20.0), one]]
  first, second = setup_time.median_results(rounds)
  assert first["total"] == 9.0 and first["graph"] == 1.0
  assert second == {"error": "exit 1: boom"}
  table = setup_time.format_table([("sagan", "tiny"), ("attngan", "paper")], [first, second])
  assert "| sagan | tiny (estimators/testing.py) | 1.0 | 1.0 | 1.0 | 1.0 | 1.0 | 1.0 | 1.0 | 9.0 |" \
      in table
  assert "| attngan | attngan_cub.cfg | FAILED: exit 1: boom |" in table
