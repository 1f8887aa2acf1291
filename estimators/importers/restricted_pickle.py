"""Unpickling that never runs code: plain containers only, every global refused unless allowed.

A pickle is a program: its GLOBAL opcodes import any callable (os.system, builtins.eval) and its
REDUCE opcodes call them. The only way for a pickle to reach a callable is `find_class` (GLOBAL,
STACK_GLOBAL, INST, OBJ and the copyreg extension codes all go through it) or `persistent_load`.
`RestrictedUnpickler` overrides both: a global is served only from the `allowed` table (by its
"module.name"), anything else raises `RefusedGlobalError` naming the file and the global, before
anything is imported or called.

Files written by Python 2 (the 2018 releases of the papers' authors, e.g. AttnGAN's
`captions.pickle` and its `.pth` files) store text as byte strings. `load` reads them with
encoding="bytes" and then decodes every byte string to str (UTF-8, else Latin-1), dict keys
included, so ['a', 'bird'] and {'bird': 3} come back as Python 3 text.

  from estimators.importers import restricted_pickle
  train, test, ixtoword, wordtoix = restricted_pickle.load("captions.pickle")
"""
import collections
import pickle


class UnsafePickleError(pickle.UnpicklingError, ValueError):
  """A pickle that cannot be read without running code, or is not a pickle at all."""


class RefusedGlobalError(UnsafePickleError):
  """The pickle names a global (a class or function) that is not on the allowed list."""

  def __init__(self, path, global_name, allowed):
    self.path = path
    self.global_name = global_name
    allowed_text = ", ".join(sorted(allowed)) if allowed else "none"
    super().__init__(
        f"{path}: refused the global {global_name}: this reader imports and calls nothing but "
        f"the allowed globals ({allowed_text}). The file is not the plain data it should be; "
        "do not load it with pickle or torch.load either, and get the file from its original "
        "source.")


class RestrictedUnpickler(pickle.Unpickler):
  """pickle.Unpickler that serves globals only from `allowed` ({"module.name": object}) and
  persistent ids only through `persistent_load_fn` (refused when None)."""

  def __init__(self, file, *, path, allowed=None, persistent_load_fn=None, encoding="ASCII"):
    super().__init__(file, encoding=encoding)
    self.path = path
    self.allowed = dict(allowed or {})
    self.persistent_load_fn = persistent_load_fn

  def find_class(self, module, name):
    global_name = f"{module}.{name}"
    if global_name in self.allowed:
      return self.allowed[global_name]
    raise RefusedGlobalError(self.path, global_name, self.allowed)

  def persistent_load(self, pid):
    if self.persistent_load_fn is None:
      raise UnsafePickleError(f"{self.path}: the pickle refers to external data (persistent id "
                              f"{pid!r}); a plain pickle has none")
    return self.persistent_load_fn(pid)


def decode_text(obj):
  """Byte strings (Python 2 str) -> str, recursively through dicts (keys too), lists, tuples."""
  if isinstance(obj, bytes):
    try:
      return obj.decode("utf-8")
    except UnicodeDecodeError:
      return obj.decode("latin-1")
  if isinstance(obj, dict):
    items = [(decode_text(k), decode_text(v)) for k, v in obj.items()]
    return collections.OrderedDict(items) if isinstance(obj, collections.OrderedDict) else dict(
        items)
  if isinstance(obj, list):
    return [decode_text(x) for x in obj]
  if isinstance(obj, tuple):
    return tuple(decode_text(x) for x in obj)
  return obj


def unpickle(file, *, path, allowed=None, persistent_load_fn=None, python2_text=True):
  """One pickle from an open binary file, restricted as RestrictedUnpickler.

  python2_text: read byte strings as bytes and decode them (decode_text); False keeps the
  pickle's own types (for pickles written by Python 3).
  """
  unpickler = RestrictedUnpickler(file, path=path, allowed=allowed,
                                  persistent_load_fn=persistent_load_fn,
                                  encoding="bytes" if python2_text else "ASCII")
  try:
    obj = unpickler.load()
  except UnsafePickleError:
    raise
  except EOFError as e:
    raise UnsafePickleError(f"{path}: the file ends inside a pickle: it is truncated (download "
                            "it again)") from e
  except (pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError, AttributeError,
          MemoryError, UnicodeDecodeError) as e:
    raise UnsafePickleError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from e
  return decode_text(obj) if python2_text else obj


def load(path, allowed=None, python2_text=True):
  """The object of the pickle file `path`, built from plain containers and `allowed` globals only.

  Args:
    path: a pickle file (any protocol, Python 2 or 3).
    allowed: {"module.name": object} globals the pickle may use; default none (only dicts, lists,
      tuples, str, bytes, numbers, booleans and None can be read).
    python2_text: decode byte strings to str (the Python 2 files this is for store text that way).
  Raises:
    RefusedGlobalError: the pickle names any other global (nothing was imported or called).
    UnsafePickleError: truncated, not a pickle, or it refers to external (persistent) data.
  """
  with open(path, "rb") as f:
    return unpickle(f, path=path, allowed=allowed, python2_text=python2_text)
