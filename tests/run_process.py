"""`python run.py ARGS` for the end-to-end tests, without paying TensorFlow's import each time.

A fresh interpreter spends 3-5 s importing TensorFlow, TF-GAN and the project before run.py parses
a flag, and the end-to-end tests start run.py dozens of times. `run_py` keeps what a user's
command has, a process of its own (own flags, graph, logging, exit code, stdout and stderr), and
drops the import: a multiprocessing fork server imports `run` once per test process (it runs no
TensorFlow op, so it holds no thread pool a fork could break) and forks a child per call, which
runs exactly what run.py's `__main__` runs: `app.run(run.main, flags_parser=run.parse_flags)`.

A test that needs an environment of its own (TF_CONFIG, log levels read at import) or signals
(kill -9) starts `python run.py` itself.
"""
import multiprocessing
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONTEXT = None


def _context():
  global _CONTEXT  # pylint: disable=global-statement
  if _CONTEXT is None:
    if ROOT not in sys.path:
      sys.path.insert(0, ROOT)
    _CONTEXT = multiprocessing.get_context("forkserver")
    _CONTEXT.set_forkserver_preload(["run"])
  return _CONTEXT


def _main(argv, stdout_path, stderr_path, setup):
  """The child: run.py's __main__ with its output in two files (after `setup()`, if given)."""
  os.chdir(ROOT)
  sys.stdout.flush()
  sys.stderr.flush()
  for fd, path in ((1, stdout_path), (2, stderr_path)):
    os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
  from absl import app  # pylint: disable=import-outside-toplevel
  import run  # pylint: disable=import-outside-toplevel
  if setup is not None:
    setup()
  sys.argv = list(argv)
  app.run(run.main, argv=list(argv), flags_parser=run.parse_flags)


def run_py(*args, timeout=600, check=True, setup=None):
  """subprocess.CompletedProcess of `python run.py *args` in a forked child (see the docstring).

  `setup`: a module-level function the child calls first (e.g. to register a model that a test
  defines), as a script that does that and then runs run.py's main would.

  Raises:
    AssertionError: check and a non-zero exit (the output's tail in the message).
    subprocess.TimeoutExpired: the child ran longer than `timeout` (a hang guard; it is killed).
  """
  argv = [os.path.join(ROOT, "run.py"), *args]
  with tempfile.TemporaryDirectory() as tmp:
    out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
    child = _context().Process(target=_main, args=(argv, out, err, setup))
    child.start()
    child.join(timeout)
    if child.exitcode is None:
      child.kill()
      child.join()
      raise subprocess.TimeoutExpired(["run.py", *args], timeout)
    proc = subprocess.CompletedProcess(["run.py", *args], child.exitcode,
                                       open(out, encoding="utf-8", errors="replace").read(),
                                       open(err, encoding="utf-8", errors="replace").read())
  if check and proc.returncode:
    raise AssertionError(f"run.py {args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
  return proc
