"""bench/tfgan_example.py: settings and engine-variant parsing, turn-taking, the table."""
import threading

import pytest

from bench import tfgan_example


def test_settings_and_variants_parse_and_reject_bad_input():
  assert tfgan_example.parse_settings("16:8, 32:16") == [(16, 8), (32, 16)]
  for bad in ("16", "12:8", "16:0", "a:8", ""):
    with pytest.raises(ValueError):
      tfgan_example.parse_settings(bad)
  assert tfgan_example.parse_variants("default,gan_estimator+xla") == [
      ("default", {}), ("gan_estimator+xla", {"engine": "gan_estimator", "xla": True})]
  with pytest.raises(ValueError, match="unknown"):
    tfgan_example.parse_variants("fast")


def test_turns_interleave_steps_one_contender_at_a_time():
  turns = tfgan_example.Turns(["a", "b", "c"])
  log, lock = [], threading.Lock()

  def contender(name, steps):
    turns.acquire(name)
    for i in range(steps):
      if i:
        turns.release(name)
        turns.acquire(name)
      with lock:
        log.append(name)
    turns.release(name, finished=True)
  threads = [threading.Thread(target=contender, args=(n, k)) for n, k in
             (("c", 3), ("b", 1), ("a", 3))]
  for t in threads:
    t.start()
  for t in threads:
    t.join(timeout=10)
  assert log == ["a", "b", "c", "a", "c", "a", "c"]


def test_table_gives_the_ratio_at_the_median_step():
  rows = [((16, 8), "TF-GAN example", 10.0, 9.0, 800.0, None),
          ((16, 8), "default", 12.5, 11.0, 640.0, 1.25)]
  lines = tfgan_example.format_table(rows).splitlines()
  assert lines[2] == "| 16 | 8 | TF-GAN example | 800 | 10.0 | 9.0 | 1.00 (reference) |"
  assert lines[3] == "| 16 | 8 | default | 640 | 12.5 | 11.0 | 1.25x |"
