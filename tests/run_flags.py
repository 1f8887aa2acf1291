"""run.py's flags parsed in the test's own process, as `python run.py ARGS` parses them (the run
directory's saved settings included), for tests that need the resulting GANConfig or call run.py's
modes in process. The `run_flags` fixture (conftest.py) unparses them after each test."""
import run


def run_config(*args):
  """The GANConfig of `python run.py *args`; run.FLAGS keep the parse until `reset()`."""
  run.FLAGS.unparse_flags()
  try:
    run.FLAGS(run.rerun_argv(["run.py", *args]))
    return run.config_from_flags()
  except Exception:
    run.FLAGS.unparse_flags()
    raise


def reset():
  run.FLAGS.unparse_flags()
