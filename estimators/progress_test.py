"""Progress text, rates, the bar vs plain-line display, and the training hook on every engine."""
import numpy as np
import pytest
import tensorflow as tf

from estimators import progress
from estimators.engines.build import build_estimator
from estimators.engines.input_fn import make_train_input_fn
from estimators.testing import tiny_config


class FakeConsole:
  """Records what a Console would show: ('live', text), ('end',), ('line', text)."""

  def __init__(self, is_tty, interval=30.0):
    self.is_tty = is_tty
    self.progress_interval = interval
    self.start_time = 0.0
    self.shown = []

  def show_live(self, text):
    self.shown.append(("live", text))

  def end_live(self):
    self.shown.append(("end",))

  def line(self, text):
    self.shown.append(("line", text))


class Clock:
  def __init__(self, now=0.0):
    self.now = now

  def __call__(self):
    return self.now


def test_durations():
  assert [progress.format_duration(s) for s in (None, 0, 7.4, 65, 3599, 3600 * 2 + 180,
                                                 86400 + 3600 * 4)] == [
      "?", "0s", "7s", "1m05s", "59m59s", "2h03m", "1d04h"]


def test_train_and_count_text():
  assert progress.train_text(120, 1500, 3.61, 32, 52.0,
                             {"loss/generator": 0.69314, "loss/discriminator": 1.3863},
                             with_bar=True) == (
      "train step 120/1500 [#-------------------] 8% | 3.61 steps/s, 116 images/s | "
      "elapsed 52s, ETA 6m22s | D loss 1.386, G loss 0.6931")
  assert progress.train_text(1, 20, None, 8, 3.0, {}) == (
      "train step 1/20 5% | ? steps/s | elapsed 3s, ETA ?")
  assert progress.train_text(20, 20, 2.0, 8, 9.0, {"loss": 0.5}) == (
      "train step 20/20 100% | 2.00 steps/s, 16.0 images/s | elapsed 9s, ETA 0s | loss 0.5")
  assert [progress.format_rate(r) for r in (1789.6, 67.54, 8.434, 0.0512)] == [
      "1790", "67.5", "8.43", "0.05"]
  assert progress.count_text("eval step 500", 400, 1000, "samples", 96.2, 4.2, True) == (
      "eval step 500: 400/1000 samples [########------------] 40% | 96.2 samples/s | "
      "elapsed 4s, ETA 6s")


def test_rate_ignores_the_time_before_the_first_update_and_slides():
  meter = progress.RateMeter(window=10.0)
  meter.update(1, 100.0)  # the first step, after 100 s of graph building
  assert meter.rate() is None
  meter.update(11, 105.0)
  assert meter.rate() == pytest.approx(2.0)
  meter.update(31, 110.0)
  meter.update(131, 120.0)   # faster now: the rate is over the last 10 s only
  assert meter.rate() == pytest.approx((131 - 31) / 10.0)


def test_plain_lines_every_interval_and_the_last_state_at_close():
  console, clock = FakeConsole(is_tty=False, interval=30.0), Clock(0.0)
  reporter = progress.Reporter(console, clock)
  for t, text in ((10, "a"), (31, "b"), (40, "c"), (62, "d"), (70, "e")):
    clock.now = t
    reporter.update(text)
  reporter.close()
  # The interval starts at the first update (after the graph is built), not at creation.
  assert console.shown == [("line", "c"), ("line", "e")]
  reporter.close()  # nothing new: no repeated line
  assert console.shown == [("line", "c"), ("line", "e")]


def test_terminal_bar_redraws_in_place_at_most_five_times_a_second():
  console, clock = FakeConsole(is_tty=True), Clock(0.0)
  reporter = progress.Reporter(console, clock)
  for t, text in ((0.0, "a"), (0.1, "b"), (0.25, "c"), (0.3, "d")):
    clock.now = t
    reporter.update(text)
  reporter.finish("final")
  assert console.shown == [("live", "a"), ("live", "c"), ("live", "final"), ("end",)]
  reporter.close()  # again (after an error): nothing more
  assert console.shown == [("live", "a"), ("live", "c"), ("live", "final"), ("end",)]


def test_track_counts_units_and_yields_everything(monkeypatch):
  console, clock = FakeConsole(is_tty=False, interval=0.0), Clock(0.0)
  monkeypatch.setattr(progress.console_lib, "get", lambda: console)

  def batches():
    for n in (100, 100, 50):
      clock.now += 1.0
      yield [0] * n
  assert [len(b) for b in progress.track(batches(), 250, "eval step 5", clock=clock)] == [
      100, 100, 50]
  assert [text for _, text in console.shown] == [
      "eval step 5: 200/250 samples 80% | 100 samples/s | elapsed 2s, ETA 0s",
      "eval step 5: 250/250 samples 100% | 75.0 samples/s | elapsed 3s, ETA 0s"]


def test_nothing_is_shown_without_an_installed_console(monkeypatch):
  monkeypatch.setattr(progress.console_lib, "get", lambda: None)
  assert list(progress.track(iter([[1], [2]]), 2, "eval")) == [[1], [2]]
  assert progress.train_hooks(tiny_config("/tmp/unused")) == []


def test_estimator_loss_is_the_fallback():
  with tf.Graph().as_default() as graph:
    loss = tf.constant(1.0, name="total")
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.LOSSES, tf.constant(2.0))
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.LOSSES, loss)
    assert progress.loss_tensors(graph) == {"loss": loss}
    with tf.compat.v1.name_scope(""):
      g = tf.compat.v1.summary.scalar("loss/generator", tf.constant(3.0))
      tf.compat.v1.summary.scalar("loss", loss)
    assert list(progress.loss_tensors(graph)) == ["loss/generator"]
    assert progress.loss_tensors(graph)["loss/generator"] is g.op.inputs[1]


@pytest.mark.slow
@pytest.mark.parametrize("engine,losses", [
    ("in_graph", ["D loss", "G loss"]),      # the default single-device in-graph step
    ("gan_estimator", ["D loss", "G loss"]),  # TF-GAN's GANEstimator (sequential hook steps)
    ("one_device", ["D loss", "G loss"]),    # the tf.distribute in-graph step
    ("tpu", ["loss"]),                       # TPUGANEstimator on CPU: the estimator's loss
])
def test_the_hook_reports_every_engine(tmp_path, engine, losses):
  kwargs = {"in_graph": {}, "gan_estimator": {"engine": "gan_estimator"},
            "one_device": {"distribution": "one_device"}, "tpu": {"use_tpu": True, "step_order": "discriminator_first",
                     "generator_bn_updates": "both_steps"}}[engine]
  cfg = tiny_config(tmp_path / "run", max_steps=2, **kwargs)
  console = FakeConsole(is_tty=True)
  console.start_time = __import__("time").time()
  hook = progress.TrainProgressHook(console, cfg.max_steps, cfg.batch_size)
  build_estimator(cfg).train(make_train_input_fn(cfg), max_steps=2, hooks=[hook])
  assert console.shown[-1] == ("end",)
  final = console.shown[-2][1]
  assert final.startswith("train step 2/2 [####################] 100% | ")
  assert " images/s | elapsed " in final and ", ETA 0s | " in final
  shown = dict(part.rsplit(" ", 1) for part in final.split(" | ")[-1].split(", "))
  assert list(shown) == losses
  assert all(np.isfinite(float(value)) and float(value) != 0.0 for value in shown.values())
  assert console.shown[0][1].startswith("train step 1/2 [")  # drawn from the first step on
