"""The run config flows one way through estimators/engines/ (issue #24 item 6), traced while a
tiny SAGAN's training run is set up on each engine (tests/engine_calls.py)."""
import importlib
import sys

import pytest

from estimators.testing import tiny_config
from tests import engine_calls

# Downstream order: a module may call only modules of a higher rank (plan.py resolves the config,
# build.py hands it to one adapter, the adapter to the shared train op, which calls the model's
# pieces and the optimisers; precision, cluster facts and the step declaration are leaves).
RANK = {"engines/build": 0, "engines/plan": 1, "engines/tpu": 2, "engines/in_graph": 3,
        "engines/distribute": 3, "engines/gan_estimator": 3, "engines/train_op": 4,
        "engines/model_pieces": 5, "engines/optimizers": 5, "engines/input_fn": 5,
        "engines/precision": 6, "engines/cluster": 6, "engines/training_step": 6}
TPU_STEP = dict(step_order="discriminator_first", generator_bn_updates="both_steps")
TINY = dict(gf_dim=2, df_dim=4, z_dim=4, batch_size=2, attention_resolution=8)


@pytest.mark.parametrize("engine, overrides", [
    ("in_graph", {}),
    pytest.param("distribute", dict(distribution="one_device"), marks=pytest.mark.slow),
    pytest.param("gan_estimator", dict(engine="gan_estimator"), marks=pytest.mark.slow),
    pytest.param("tpu", dict(use_tpu=True, **TPU_STEP), marks=pytest.mark.slow),
])
def test_the_config_goes_one_way_from_plan_to_adapter_to_train_op(tmp_path, engine, overrides):
  cfg = tiny_config(tmp_path, **TINY, **overrides)
  variables, transitions = engine_calls.trace(lambda: engine_calls.build_train_graph(cfg))
  assert variables > 50  # the train graph was built: G, D, their Adam slots
  assert engine_calls.both_ways(transitions) == {}
  against = [(a, b) for a, b in transitions if RANK[a] >= RANK[b]]
  assert not against, f"calls against the flow: {against}"
  assert ("engines/build", "engines/plan") in transitions
  assert ("engines/build", f"engines/{engine}") in transitions
  in_graph = engine in ("in_graph", "distribute")
  assert ((f"engines/{engine}", "engines/train_op") in transitions) == in_graph
  assert {a for a, _ in transitions} <= set(RANK)


def test_the_tracer_counts_a_call_back_into_the_caller(tmp_path, monkeypatch):
  """a.outer -> b.middle -> a.inner (through a lambda of another file in between): two
  transitions, one pair both ways."""
  (tmp_path / "mod_a.py").write_text(
      "import mod_b\n\ndef inner():\n  return 1\n\n"
      "def outer():\n  return mod_b.middle(lambda: inner())\n")
  (tmp_path / "mod_b.py").write_text("def middle(callback):\n  return callback() + 1\n")
  monkeypatch.syspath_prepend(str(tmp_path))
  mod_a = importlib.import_module("mod_a")
  names = {str(tmp_path / "mod_a.py"): "a", str(tmp_path / "mod_b.py"): "b"}
  result, transitions = engine_calls.trace(mod_a.outer, module_of=names.get)
  sys.modules.pop("mod_a"), sys.modules.pop("mod_b")
  assert result == 2
  # the lambda is in mod_a's file too: b -> a (lambda), then a -> a (inner) is not a transition
  assert transitions == [("a", "b"), ("b", "a")]
  assert engine_calls.both_ways(transitions) == {("a", "b"): (1, 1)}
