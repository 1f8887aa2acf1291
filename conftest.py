"""Pytest setup shared by every test module: quiet TensorFlow logs, no GPU, the `offline`
fixture, and the schedule of `make test`'s two workers (pytest-xdist).

`make test` runs `pytest -n 2 --dist loadscope`: each test module goes whole to one of two worker
processes, so a module-scoped fixture (a tiny trained run read by many tests) is built once. xdist
would hand out modules largest-test-count first; a module with few but long tests handed out last
leaves one core idle at the end. So the workers take modules longest first, by the per-module
seconds recorded in `tests/durations.json` (modules not in it go first: new modules are often the
heavy ones). `pytest --store-durations` updates that file with the modules of the run it ends;
the order only affects how soon the run ends, never what runs or passes.
"""
import json
import os
import socket
import sys
import types

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# What run.py sets at start, before TensorFlow's first device: --xla compiles on a CPU too.
os.environ["TF_XLA_FLAGS"] = " ".join(
    [f for f in os.environ.get("TF_XLA_FLAGS", "").split() if f != "--tf_xla_cpu_global_jit"]
    + ["--tf_xla_cpu_global_jit"])

DURATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests", "durations.json")


def _module(nodeid):
  return nodeid.split("::", 1)[0]


def _recorded_durations():
  try:
    with open(DURATIONS) as f:
      return {k: float(v) for k, v in json.load(f).items()}
  except (OSError, ValueError):
    return {}


def pytest_addoption(parser):
  parser.addoption("--store-durations", action="store_true",
                   help=f"write each module's total test seconds to {DURATIONS} at the end "
                        "(the longest-first order of `make test`'s workers)")


_SECONDS = {}  # module -> seconds of this run


def pytest_runtest_logreport(report):
  """Sums setup + call + teardown per module (on the xdist controller: from every worker)."""
  _SECONDS[_module(report.nodeid)] = _SECONDS.get(_module(report.nodeid), 0.0) + report.duration


ROOT = os.path.dirname(os.path.abspath(__file__))
PACKAGES = ("tfgan_attention", "estimators", "data", "eval", "bench")
_IMPORTED = set()  # project modules imported by this run's processes (workers report theirs)


def project_modules():
  """Every source module of the project (tests and __main__ excluded), as dotted names."""
  names = {"run"}
  for package in PACKAGES:
    for dirpath, _, files in os.walk(os.path.join(ROOT, package)):
      for f in files:
        if f.endswith(".py") and not f.endswith("_test.py") and f != "__main__.py":
          rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].replace(os.sep, ".")
          names.add(rel.removesuffix(".__init__"))
  return names


def _imported_here():
  return {name for name in project_modules() if name in sys.modules}


def pytest_testnodedown(node, error):
  """xdist controller: a worker's imported project modules."""
  del error
  _IMPORTED.update(getattr(node, "workeroutput", {}).get("imported_modules", ()))


def pytest_terminal_summary(terminalreporter, config):
  """Says which project modules no test of this run imported (`make test-quick` must touch
  every module: run.py, each library and model module)."""
  if hasattr(config, "workerinput") or config.getoption("collectonly"):
    return
  whole_suite = config.args_source == pytest.Config.ArgsSource.TESTPATHS
  if whole_suite and not config.getoption("keyword"):  # the whole suite, or its quick subset
    missing = sorted(project_modules() - _IMPORTED - _imported_here())
    terminalreporter.write_line(
        "project modules imported by no test of this run: " + (", ".join(missing) or "none"))


def pytest_sessionfinish(session):
  if hasattr(session.config, "workerinput"):  # an xdist worker: report what it imported
    session.config.workeroutput["imported_modules"] = sorted(_imported_here())
    return
  if not session.config.getoption("--store-durations"):
    return
  if not _SECONDS:
    return
  merged = {**_recorded_durations(), **{k: round(v, 1) for k, v in _SECONDS.items()}}
  tmp = f"{DURATIONS}.tmp-{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(merged, f, indent=0, sort_keys=True)
    f.write("\n")
  os.replace(tmp, DURATIONS)


def pytest_xdist_make_scheduler(config, log):
  """LoadScope scheduling (a module to one worker) that hands out the longest modules first."""
  if config.getvalue("dist") != "loadscope":
    return None
  from xdist.scheduler import LoadScopeScheduling  # pylint: disable=import-outside-toplevel

  class LongestFirst(LoadScopeScheduling):
    """Orders the work queue once, before the first module is handed out."""
    _ordered = False

    def _assign_work_unit(self, node):
      if not self._ordered:
        recorded = _recorded_durations()
        unknown = max(recorded.values(), default=0.0) + 1.0
        order = sorted(self.workqueue.items(),
                       key=lambda item: -recorded.get(_module(item[0]), unknown))
        self.workqueue.clear()
        self.workqueue.update(order)
        self._ordered = True
      super()._assign_work_unit(node)

  return LongestFirst(config, log)

class _UntouchableTfds(types.ModuleType):
  """Stands in for tensorflow_datasets: any use of it is recorded and fails."""

  def __init__(self, attempts):
    super().__init__("tensorflow_datasets")
    self._attempts = attempts

  def __getattr__(self, name):
    if name.startswith("__"):
      raise AttributeError(name)
    self._attempts.append(f"tensorflow_datasets.{name}")
    raise AssertionError(f"tensorflow_datasets.{name} used by a test that must stay offline")


@pytest.fixture
def offline(monkeypatch):
  """A machine without network or TFDS: every DNS lookup, TCP connect and use of
  tensorflow_datasets is recorded in the returned list and fails (OSError / AssertionError).
  A test asserts the list is empty to show a code path never tried to reach the network."""
  attempts = []

  def refuse(what):
    def call(*args, **kwargs):
      attempts.append(f"{what}{args[1:] if what == 'socket.connect' else args}")
      raise OSError(f"{what}: the network is off in this test")
    return call
  monkeypatch.setattr(socket, "getaddrinfo", refuse("socket.getaddrinfo"))
  monkeypatch.setattr(socket, "create_connection", refuse("socket.create_connection"))
  monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", _UntouchableTfds(attempts))
  return attempts


@pytest.fixture
def run_flags():
  """tests/run_flags.run_config: run.py's flags parsed in this process, unparsed after the test."""
  from tests import run_flags as parsed  # pylint: disable=import-outside-toplevel
  yield parsed.run_config
  parsed.reset()
