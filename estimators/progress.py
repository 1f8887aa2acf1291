"""Progress of the long modes on the console (issue 16): a bar redrawn in place on a terminal,
a plain line every `Console.progress_interval` seconds (and at the end) otherwise.

  train step 120/1500 [#-------------------] 8% | 3.61 steps/s, 116 images/s |
      elapsed 52s, ETA 6m22s | D loss 1.386, G loss 0.6931
  eval step 500: 400/1000 samples [########------------] 40% | 96.2 samples/s | elapsed 4s, ETA 6s

`train_hooks(cfg)` gives the session hook every engine (GANEstimator, the tf.distribute step,
TPUGANEstimator) trains with; it reads the losses under the model-neutral tags
(estimators.losses.TAGS) or, when a model has none, the estimator's loss. `track()` wraps any
iterable of batches (evaluation, sampling, a model's own modes). Both show nothing unless run.py
installed the console (estimators.console), and training progress only on the chief.
"""
import collections
import time

import tensorflow as tf

from estimators import console as console_lib
from estimators.engines import cluster
from estimators.losses import TAGS

LOSS_NAMES = {TAGS["generator"]: "G loss", TAGS["discriminator"]: "D loss", "loss": "loss"}
_REDRAW_SECS = 0.2  # terminal bar refresh


def format_duration(seconds):
  """'7s', '6m05s', '2h03m', '1d04h'; '?' when unknown."""
  if seconds is None:
    return "?"
  s = int(round(seconds))
  if s < 60:
    return f"{s}s"
  m, s = divmod(s, 60)
  if m < 60:
    return f"{m}m{s:02d}s"
  h, m = divmod(m, 60)
  if h < 24:
    return f"{h}h{m:02d}m"
  d, h = divmod(h, 24)
  return f"{d}d{h:02d}h"


def format_rate(per_sec):
  """Three significant digits without an exponent: '1790', '67.5', '8.43'."""
  if per_sec >= 100:
    return f"{per_sec:.0f}"
  return f"{per_sec:.1f}" if per_sec >= 10 else f"{per_sec:.2f}"


def bar(fraction, width=20):
  filled = min(width, max(0, int(fraction * width)))
  return "[" + "#" * filled + "-" * (width - filled) + "]"


class RateMeter:
  """Counts per second over the last `window` seconds of updates. The first update is the
  reference point, so the time before it (graph building, the first step's optimisation) never
  counts."""

  def __init__(self, window=120.0):
    self._window = window
    self._points = collections.deque()

  def update(self, count, now):
    self._points.append((now, count))
    while len(self._points) > 2 and now - self._points[1][0] >= self._window:
      self._points.popleft()

  def rate(self):
    if len(self._points) < 2:
      return None
    (t0, c0), (t1, c1) = self._points[0], self._points[-1]
    return (c1 - c0) / (t1 - t0) if t1 > t0 and c1 > c0 else None


def train_text(step, max_steps, steps_per_sec, batch_size, elapsed, losses, with_bar=False):
  fraction = step / max_steps if max_steps else 0.0
  eta = 0.0 if step >= max_steps else (
      (max_steps - step) / steps_per_sec if steps_per_sec else None)
  parts = [f"train step {step}/{max_steps}" + (f" {bar(fraction)}" if with_bar else "")
           + f" {fraction:.0%}"]
  parts.append(f"{format_rate(steps_per_sec)} steps/s, "
               f"{format_rate(steps_per_sec * batch_size)} images/s"
               if steps_per_sec else "? steps/s")
  parts.append(f"elapsed {format_duration(elapsed)}, ETA {format_duration(eta)}")
  if losses:
    parts.append(", ".join(f"{LOSS_NAMES.get(tag, tag)} {value:.4g}"
                           for tag, value in sorted(losses.items())))
  return " | ".join(parts)


def count_text(label, done, total, unit, per_sec, elapsed, with_bar=False):
  fraction = done / total if total else 0.0
  eta = 0.0 if done >= total else ((total - done) / per_sec if per_sec else None)
  return " | ".join([
      f"{label}: {done}/{total} {unit}" + (f" {bar(fraction)}" if with_bar else "")
      + f" {fraction:.0%}",
      f"{format_rate(per_sec)} {unit}/s" if per_sec else f"? {unit}/s",
      f"elapsed {format_duration(elapsed)}, ETA {format_duration(eta)}"])


class Reporter:
  """One progress display on the console: the bar on a terminal, plain lines otherwise."""

  def __init__(self, console, clock=time.time):
    self._console = console
    self._clock = clock
    self._last = None  # when the display last changed
    self._text = None
    self._printed = True
    self._closed = False
    self.with_bar = console.is_tty

  def due(self, now=None):
    """Whether an update now would be shown: a terminal's bar at once and then at most every
    0.2 s; a plain line one interval after the first update (not counting the graph building
    before it) and after each line."""
    now = self._clock() if now is None else now
    if self._last is None:
      return self.with_bar
    interval = _REDRAW_SECS if self.with_bar else self._console.progress_interval
    return now - self._last >= interval

  def update(self, text, now=None):
    """Shows `text` when due; otherwise it is kept for `close`."""
    now = self._clock() if now is None else now
    self._text, self._printed = text, False
    if self._last is None and not self.with_bar:
      self._last = now  # the first plain line comes one interval from here
      return
    if not self.due(now):
      return
    self._last = now
    if self.with_bar:
      self._console.show_live(text)
    else:
      self._console.line(text)
    self._printed = True

  def finish(self, text):
    """Shows the final `text` and closes."""
    self._text, self._printed = text, False
    self.close()

  def close(self):
    """The last state stays on the console: the bar as a finished line, or one plain line.
    Closing again shows nothing more."""
    if self._closed:
      return
    self._closed = True
    if self.with_bar:
      if self._text is not None:
        self._console.show_live(self._text)
      self._console.end_live()
    elif self._text is not None and not self._printed:
      self._console.line(self._text)
      self._printed = True


def loss_tensors(graph=None):
  """{tag: scalar tensor} of the losses to show: the model-neutral tags' summaries, else the
  estimator's loss ('loss' summary or the last of the LOSSES collection)."""
  graph = graph or tf.compat.v1.get_default_graph()
  found = {}
  for item in graph.get_collection(tf.compat.v1.GraphKeys.SUMMARIES):
    op = getattr(item, "op", item)
    if op.type != "ScalarSummary":
      continue
    tag = tf.get_static_value(op.inputs[0])
    tag = tag.item() if hasattr(tag, "item") else tag
    tag = tag.decode() if isinstance(tag, bytes) else tag
    if tag in LOSS_NAMES:
      found[tag] = op.inputs[1]
  if any(tag in found for tag in TAGS.values()):
    found.pop("loss", None)
  elif not found:
    losses = graph.get_collection(tf.compat.v1.GraphKeys.LOSSES)
    if losses:
      found["loss"] = losses[-1]
  return found


class TrainProgressHook(tf.estimator.SessionRunHook):
  """Training progress toward max_steps. Each step also fetches the loss scalars (which the step
  computes anyway); the global step is read after the first step (the rate's reference point)
  and whenever the display is due."""

  def __init__(self, console, max_steps, batch_size, fetch_losses=True, clock=time.time):
    self._console = console
    self._max_steps = max_steps
    self._batch_size = batch_size
    self._fetch_losses = fetch_losses
    self._clock = clock
    self._reporter = Reporter(console, clock)
    self._meter = RateMeter()
    self._losses = {}
    self._started = False

  def begin(self):
    self._global_step = tf.compat.v1.train.get_global_step()
    self._loss_tensors = loss_tensors() if self._fetch_losses else {}

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs(self._loss_tensors) if self._loss_tensors else None

  def after_run(self, run_context, run_values):
    self._losses = dict(run_values.results or {})
    now = self._clock()
    if not self._started or self._reporter.due(now):
      step = int(run_context.session.run(self._global_step))
      self._reporter.update(self._text(step, now), now)  # shown when due
      self._started = True

  def end(self, session):
    self._reporter.finish(self._text(int(session.run(self._global_step)), self._clock()))

  def close(self):
    """Ends the display when training stopped with an error (`end` is not called then), so
    the error prints below the last progress state."""
    self._reporter.close()

  def _text(self, step, now):
    self._meter.update(step, now)
    return train_text(step, self._max_steps, self._meter.rate(), self._batch_size,
                      now - self._console.start_time, self._losses, self._reporter.with_bar)


def train_hooks(cfg):
  """[TrainProgressHook] for run.py's chief, [] in library use and on other workers."""
  console = console_lib.get()
  if console is None or not cluster.is_chief():
    return []
  # On a real TPU the losses live inside the device loop; only the step is read there.
  return [TrainProgressHook(console, cfg.max_steps, cfg.batch_size, fetch_losses=not cfg.tpu)]


def track(iterable, total, label, unit="samples", count=len, clock=time.time):
  """Yields `iterable`'s items, showing `label: done/total unit` with rate and ETA; `count(item)`
  is how many units an item holds (a batch's length)."""
  console = console_lib.get()
  if console is None:
    yield from iterable
    return
  reporter, meter = Reporter(console, clock), RateMeter()
  start, done = clock(), 0
  try:
    for item in iterable:
      yield item
      done += count(item)
      now = clock()
      meter.update(done, now)
      reporter.update(count_text(label, done, total, unit, meter.rate(), now - start,
                                 reporter.with_bar), now)
  finally:
    reporter.close()
