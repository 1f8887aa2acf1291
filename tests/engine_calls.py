"""How often a training run's set-up crosses between the engine modules (issue #24 item 6).

  python -m tests.engine_calls            # prints the transitions of a tiny SAGAN's set-up

Traced (sys.settrace: every new Python frame): what a training run does before its first step,
as run.py and experiment.run_train do it: the start-up checks (`validate`), the estimator
(`build_estimator`), then its train graph (the estimator's model_fn in TRAIN mode on the
training input). A call into an engine module counts as a transition when the nearest engine
frame below it (TensorFlow's and TF-GAN's frames skipped: TF-GAN calls generator_fn) is in
another engine module; a module body running (an import) is no call. Reported: the transitions in order, their count, and the module pairs
that call each other both ways (the config going back and forth).
"""
import collections
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINE_DIR = os.path.join(ROOT, "estimators", "engines")


def engine_module(filename):
  """'engines/<name>' for a file of estimators/engines/, else None."""
  path = os.path.abspath(filename)
  if os.path.dirname(path) == ENGINE_DIR and path.endswith(".py"):
    return "engines/" + os.path.basename(path)[:-3]
  return None


def trace(fn, module_of=engine_module):
  """(fn(), [(caller module, callee module)] of every cross-module call while fn ran)."""
  transitions = []

  def module(code):  # a module's body running is an import, not a call of the run
    return None if code.co_name == "<module>" else module_of(code.co_filename)

  def tracer(frame, event, arg):  # pylint: disable=unused-argument
    callee = module(frame.f_code)
    if callee is None:
      return None  # (no line tracing: settrace's global function sees only new frames)
    caller, back = None, frame.f_back
    while back is not None and caller is None:
      caller = module(back.f_code)
      back = back.f_back
    if caller is not None and caller != callee:
      transitions.append((caller, callee))
    return None

  previous = sys.gettrace()
  sys.settrace(tracer)
  try:
    result = fn()
  finally:
    sys.settrace(previous)
  return result, transitions


def both_ways(transitions):
  """Module pairs with calls in both directions: {(a, b): (calls a->b, calls b->a)}, a < b."""
  counts = collections.Counter(transitions)
  return {(a, b): (counts[(a, b)], counts[(b, a)]) for a, b in counts
          if a < b and counts[(b, a)]}


def build_train_graph(cfg, dataset_fn=None):
  """What a training run builds before its first step: the start-up checks, the estimator and
  its train graph. Returns the graph's global variables' count."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from estimators.engines import build, plan  # pylint: disable=import-outside-toplevel
  from estimators.engines.input_fn import make_train_input_fn  # pylint: disable=C0415
  plan.resolve(cfg)  # run.py's start-up checks
  estimator = build.build_estimator(cfg)
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.train.get_or_create_global_step()
    dataset = make_train_input_fn(cfg, dataset_fn)()
    features, labels = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
    estimator.model_fn(features, labels, tf.estimator.ModeKeys.TRAIN, estimator.config)
    return len(tf.compat.v1.global_variables())


def report(cfg):
  _, transitions = trace(lambda: build_train_graph(cfg))
  lines = [f"{a} -> {b}" for a, b in transitions]
  lines.append(f"{len(transitions)} cross-module calls; both ways: {both_ways(transitions)}")
  return "\n".join(lines)


if __name__ == "__main__":
  import tempfile  # pylint: disable=import-outside-toplevel
  from estimators.testing import tiny_config  # pylint: disable=import-outside-toplevel
  with tempfile.TemporaryDirectory() as tmp:
    print(report(tiny_config(tmp, gf_dim=2, df_dim=4, z_dim=4, batch_size=2,
                             attention_resolution=8)))
