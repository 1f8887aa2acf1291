"""What a person sees on the console, and the run's full log in <model_dir>/log.txt (issue 16).

run.py calls `capture_native_stderr()` before TensorFlow is imported and `install()` once flags
are parsed. From then on:

  console (real stderr/stdout)   results, the summary, `error:` lines, tracebacks, progress (one
                                 in-place bar on a terminal, plain lines otherwise), warnings
                                 logged by this project's code (data skipped, a checkpoint that
                                 does not match, quirk options, stand-in weights), any ERROR
  <model_dir>/log.txt            all of the above plus every INFO record and TensorFlow's
                                 Python and C++ chatter (deprecations, RunConfig, grappler),
                                 appended on each run (resume) under a header line

TensorFlow's C++ side writes to file descriptor 2, not to sys.stderr: fd 2 becomes a pipe that
a forked router process reads line by line (known harmless lines and C++ INFO/WARNING: log only;
anything else: log and console; it outlives a crash of the run), while sys.stderr is rebound to
a duplicate of the real stderr. `--verbosity` (absl's) or
`--log_to_console` bring everything back onto the console. Library code never needs this
module: without `install()`, nothing is filtered and no progress is drawn.
"""
import atexit
import faulthandler
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# TensorFlow C++ log lines: "2026-12-01 10:28:08.112936: E tensorflow/core/...cc:961] ...".
_NATIVE_LOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) \S+:\d+\] ")
# Native lines known to be harmless although logged at ERROR: a grappler pass that fails is
# skipped and the graph runs unoptimised by it ("remapper failed: INVALID_ARGUMENT: Mutation::
# Apply error: fanout ... exist for missing node ..."); GPU builds register CUDA factories twice.
KNOWN_NATIVE_NOISE = (
    re.compile(r"grappler/optimizers/meta_optimizer\.cc:\d+\] \w+ failed: "),
    re.compile(r"Unable to register (cuDNN|cuFFT|cuBLAS) factory: Attempting to register"),
)
_CONTINUATION_SECS = 0.5  # a non-log line this soon after a native log line continues it


def is_known_noise(line):
  return any(p.search(line) for p in KNOWN_NATIVE_NOISE)


def from_project(record):
  """Whether a log record comes from this project's code, not from TensorFlow (its 'tensorflow'
  logger, or absl logging called in its files) or another library."""
  if record.name == "tensorflow" or record.name.startswith("tensorflow."):
    return False
  path = os.path.abspath(record.pathname or "")
  if record.name == "py.warnings":  # a Python warning: "<file>:<line>: <Category>: <message>"
    path = os.path.abspath(record.getMessage().split(":", 1)[0])
  return path.startswith(ROOT + os.sep) and "site-packages" not in path


class RunLog:
  """The log file. Text written before its directory exists is held back (the last
  `MAX_PENDING` writes) and written when the directory appears (the run creates it), so a run
  that fails at start leaves nothing behind. A remote directory (gs://...) gets no log: it
  cannot be appended to."""

  MAX_PENDING = 20_000

  def __init__(self):
    self._lock = threading.RLock()
    self._pending = []
    self._path = None
    self._file = None
    self._remote = False
    self.closed = False

  def set_path(self, path):
    with self._lock:
      self._remote = "://" in path
      self._path = None if self._remote else path
      if self._remote:
        self._pending = []
      self._try_open()

  @property
  def path(self):
    return self._path

  def _try_open(self):
    if self._file is None and self._path and os.path.isdir(os.path.dirname(self._path) or "."):
      self._file = open(  # pylint: disable=consider-using-with
          self._path, "a", encoding="utf-8", errors="replace")
      self._file.write("".join(self._pending))
      self._file.flush()
      self._pending = []

  def write(self, text):
    with self._lock:
      if self.closed or not text or self._remote:
        return
      if self._file is None:
        self._pending.append(text)
        if len(self._pending) > self.MAX_PENDING:
          del self._pending[:len(self._pending) - self.MAX_PENDING]
        self._try_open()
      else:
        self._file.write(text)
        self._file.flush()

  def close(self):
    with self._lock:
      self._try_open()
      if self._file is not None:
        self._file.close()
      self.closed = True


class Console:
  """The real terminal streams, the live progress line drawn on stderr, and the run log."""

  def __init__(self, stderr, stdout):
    self.stderr = stderr           # the real stderr (a duplicate of the original fd 2)
    self.stdout = stdout
    self.log = RunLog()
    self.is_tty = _isatty(stderr) and os.environ.get("TERM") != "dumb"
    self.verbose = True            # before install(): every line reaches the console
    self.installed = False
    self.captured = False          # fd 2 goes to the router process
    self.start_time = time.time()
    self.progress_interval = 30.0  # seconds between plain progress lines
    self._lock = threading.RLock()
    self._live = ""                # the progress bar's text, "" when none is active
    self._live_shown = False

  # The live (in-place) progress line: terminals only.
  def show_live(self, text):
    with self._lock:
      self._live = text
      self._draw()

  def _width(self):
    """$COLUMNS, else the terminal's width (0 on a pseudo-terminal nobody sized), else 100."""
    if os.environ.get("COLUMNS", "").isdigit():
      return int(os.environ["COLUMNS"])
    try:
      return os.get_terminal_size(self.stderr.fileno()).columns or 100
    except (AttributeError, OSError, ValueError):
      return 100

  def _draw(self):
    self.stderr.write("\r" + self._live[:max(10, self._width() - 1)] + "\x1b[K")
    self.stderr.flush()
    self._live_shown = True

  def end_live(self):
    """Leaves the bar's last state as an ordinary line (and in the log)."""
    with self._lock:
      if self._live:
        if not self._live_shown:
          self._draw()
        self.stderr.write("\n")
        self.stderr.flush()
        self.log.write(self._live + "\n")
      self._live, self._live_shown = "", False

  def write(self, stream, text, log=True):
    """Writes text to a real stream around the live bar (cleared first, redrawn after a full
    line) and copies it to the log."""
    with self._lock:
      if self._live_shown:
        self.stderr.write("\r\x1b[K")
        self.stderr.flush()
        self._live_shown = False
      if stream is not self.stdout:
        self.stdout.flush()  # keep stdout and stderr in order when both go to one file
      stream.write(text)
      stream.flush()
      if self._live and text.endswith("\n"):
        self._draw()
    if log:
      self.log.write(text)

  def line(self, text):
    """One plain line on the console's stderr and in the log."""
    self.write(self.stderr, text.rstrip("\n") + "\n")


class _Stream(io.TextIOBase):
  """sys.stdout / sys.stderr after capture: the console's real stream, bar-aware, logged."""

  def __init__(self, console, stream):
    super().__init__()
    self._console = console
    self._stream = stream

  def write(self, s):
    self._console.write(self._stream, s)
    return len(s)

  def flush(self):
    self._stream.flush()

  def isatty(self):
    return _isatty(self._stream)

  def fileno(self):
    return self._stream.fileno()

  @property
  def encoding(self):
    return self._stream.encoding

  def __getattr__(self, name):  # buffer, errors, ...: the real stream's
    return getattr(self._stream, name)


def _isatty(stream):
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False


_CONSOLE = None


def get():
  """The installed Console, or None (library use: no progress, nothing filtered)."""
  return _CONSOLE if _CONSOLE is not None and _CONSOLE.installed else None


_CONTROL = "\x00console "  # a line the parent writes to fd 2 to tell the router its policy


def capture_native_stderr():
  """Makes fd 2 a pipe read by a router process, and sys.stdout / sys.stderr the console's
  streams (the real ones, bar-aware, copied to the log).

  Call before TensorFlow is imported (its import already logs from C++). The router is a forked
  child, so what a C++ CHECK failure or a segfault writes just before the process dies still
  reaches the console and the log. Lines before `install()` go to the console; afterwards
  through the policy (module docstring). At exit fd 2 is restored first, so anything written
  during interpreter shutdown still shows, and the router is given 2 s to finish.
  """
  global _CONSOLE  # pylint: disable=global-statement
  if _CONSOLE is not None:
    return _CONSOLE
  sys.stdout.flush()
  sys.stderr.flush()
  try:
    real_fd = os.dup(2)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
  except OSError:  # no stderr, no pipes, no fork: leave fd 2 alone
    return None
  if pid == 0:  # the router: nothing of the parent's runs here (os._exit, no atexit)
    os.close(write_fd)
    try:
      signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
      _route_native(read_fd, real_fd)
    finally:
      os._exit(0)  # pylint: disable=protected-access
  os.close(read_fd)
  real_stderr = io.TextIOWrapper(io.FileIO(real_fd, "w", closefd=True), encoding="utf-8",
                                 errors="backslashreplace", line_buffering=True)
  _CONSOLE = Console(real_stderr, sys.stdout)
  os.dup2(write_fd, 2)
  os.close(write_fd)
  _CONSOLE.captured = True
  sys.stderr = _Stream(_CONSOLE, real_stderr)
  sys.stdout = _Stream(_CONSOLE, _CONSOLE.stdout)
  faulthandler.enable(file=real_stderr)  # a Python stack on SIGSEGV/SIGABRT, on the console
  atexit.register(_restore, _CONSOLE, real_fd, pid)
  return _CONSOLE


def _route_native(read_fd, real_fd):
  """The router's loop: each line written to fd 2 goes to the log, and to the console unless
  it is chatter (TF C++ INFO/WARNING lines, known harmless errors) on a quiet console."""
  console = os.fdopen(real_fd, "w", encoding="utf-8", errors="replace")
  clear = "\r\x1b[K" if console.isatty() and os.environ.get("TERM") != "dumb" else ""
  log, verbose = RunLog(), True
  last_native, last_hidden = 0.0, False
  with open(read_fd, "r", encoding="utf-8", errors="replace", closefd=True) as pipe:
    for line in pipe:
      if line.startswith(_CONTROL):
        policy = json.loads(line[len(_CONTROL):])
        verbose = policy["verbose"]
        log.set_path(policy["log"])
        continue
      match = _NATIVE_LOG.match(line)
      now = time.time()
      if match:
        hidden = is_known_noise(line) or match.group(1) in "IW"
        last_native, last_hidden = now, hidden
      else:  # a message's second line ("To enable the following instructions: ...")
        hidden = last_hidden and now - last_native < _CONTINUATION_SECS
      if verbose or not hidden:
        console.write(clear + line)  # over the parent's progress bar, redrawn at its next step
        console.flush()
      log.write(line)
  log.close()


def _restore(console, real_fd, router_pid):
  try:
    sys.stdout.flush()
    console.end_live()
    os.dup2(real_fd, 2)  # fd 2 is the terminal again: the router sees the end of its pipe
  except OSError:
    pass
  deadline = time.time() + 2.0
  while time.time() < deadline:
    try:
      if os.waitpid(router_pid, os.WNOHANG)[0]:
        break
    except ChildProcessError:
      break
    time.sleep(0.01)
  console.log.close()


class _ConsoleHandler(logging.Handler):
  """Log records on the console: everything at or above `level` when verbose; otherwise this
  project's warnings and anything at ERROR or above."""

  def __init__(self, console, level):
    super().__init__(logging.DEBUG)
    self._console = console
    self._level = level

  def emit(self, record):
    try:
      if self._console.verbose:
        if record.levelno < self._level:
          return
      elif not (record.levelno >= logging.ERROR
                or (record.levelno >= logging.WARNING and from_project(record))):
        return
      self._console.write(self._console.stderr, self.format(record) + "\n", log=False)
    except Exception:  # pylint: disable=broad-except
      self.handleError(record)


class _ShortFormatter(logging.Formatter):
  """'warning: <message>' on the console, 'error (tensorflow): ...' for a library's record (the
  long absl prefix with time and file:line is in the log)."""

  def format(self, record):
    source = "" if from_project(record) else f" ({record.name})"
    text = f"{record.levelname.lower()}{source}: {record.getMessage()}"
    if record.exc_info:
      text += "\n" + self.formatException(record.exc_info)
    return text


class _LogHandler(logging.Handler):
  def __init__(self, console, level):
    super().__init__(level)
    self._console = console

  def emit(self, record):
    try:
      self._console.log.write(self.format(record) + "\n")
    except Exception:  # pylint: disable=broad-except
      self.handleError(record)


def standard_level(absl_verbosity):
  """absl --verbosity (-3 fatal .. 0 info, 1 debug, >1 vlog) -> a Python logging level."""
  if absl_verbosity <= 1:
    return {-3: logging.CRITICAL, -2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO,
            1: logging.DEBUG}.get(absl_verbosity, logging.CRITICAL)
  return logging.DEBUG - (absl_verbosity - 1)


def install(model_dir, *, verbosity=None, log_to_console=False, filename="log.txt",
            argv=None, progress_interval=30.0):
  """Sets the console policy and starts <model_dir>/<filename> (appended).

  verbosity: absl's --verbosity when the user gave it (None: quiet console). With it, or with
  log_to_console, the console shows every record at that level (INFO by default) and every
  native line; the log always holds INFO and up (DEBUG too when asked for).
  """
  console = capture_native_stderr() or Console(sys.stderr, sys.stdout)
  global _CONSOLE  # pylint: disable=global-statement
  _CONSOLE = console
  level = standard_level(verbosity) if verbosity is not None else logging.INFO
  console.verbose = verbosity is not None or log_to_console
  console.progress_interval = progress_interval
  path = os.path.join(model_dir, filename)
  console.log.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: "
                    f"{' '.join(argv or sys.argv)}\n")
  console.log.set_path(path)
  if console.captured:  # the router's policy, in one write (atomic on a pipe)
    os.write(2, (_CONTROL + json.dumps({"verbose": console.verbose, "log": path}) + "\n").encode())
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  root = logging.getLogger()
  for handler in list(root.handlers):
    root.removeHandler(handler)
  for name in ("tensorflow", "absl"):  # TF's own stderr handler printed every record twice
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
      logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
  file_handler = _LogHandler(console, min(level, logging.INFO))
  file_handler.setFormatter(absl_logging.PythonFormatter())
  console_handler = _ConsoleHandler(console, level)
  console_handler.setFormatter(absl_logging.PythonFormatter() if console.verbose
                               else _ShortFormatter())
  root.addHandler(file_handler)
  root.addHandler(console_handler)
  root.setLevel(min(level, logging.INFO))
  logging.captureWarnings(True)  # Python warnings (tf.data's UserWarning, ...) by the same rules
  console.installed = True
  return console
