"""restricted_pickle reads plain Python 2 pickles (AttnGAN's captions.pickle) and refuses globals."""
import pickle

import pytest

from estimators.importers import restricted_pickle
from estimators.importers import torch_file_writer as w

_CALLS = []


def _record(*args):
  _CALLS.append(args)


def _write_python2(path, obj):
  """A protocol-2 pickle with text as Python 2 str, as AttnGAN's Python 2 code wrote it."""
  import io  # pylint: disable=import-outside-toplevel
  buf = io.BytesIO()
  w._Writer(buf, legacy=True, python2_text=True).dump(obj)  # pylint: disable=protected-access
  with open(path, "wb") as f:
    f.write(buf.getvalue())


def test_captions_pickle_of_python2_reads_as_python3_text(tmp_path):
  train = [[3, 1, 4, 1, 5], [9, 2, 6]]
  test = [[5, 3, 5, 8]]
  ixtoword = {0: "<end>", 1: "a", 2: "bird", 3: "with", 4: "red", 5: "wings"}
  wordtoix = {v: k for k, v in ixtoword.items()}
  path = str(tmp_path / "captions.pickle")
  _write_python2(path, [train, test, ixtoword, wordtoix])
  assert b"U\x04bird" in open(path, "rb").read()  # byte strings in the file, as Python 2 wrote
  got = restricted_pickle.load(path)
  assert got == [train, test, ixtoword, wordtoix]
  assert all(type(k) is str for k in got[3]) and all(type(v) is str for v in got[2].values())


def test_python3_pickles_keep_their_types(tmp_path):
  path = str(tmp_path / "p3.pickle")
  obj = {"text": "ä", "raw": b"\x00\xff", "nested": [(1, 2.5, None, True)]}
  with open(path, "wb") as f:
    pickle.dump(obj, f, protocol=4)
  assert restricted_pickle.load(path, python2_text=False) == obj


@pytest.mark.parametrize("module,name", [("os", "system"), ("posix", "system"),
                                         ("builtins", "eval"), ("builtins", "set"),
                                         ("collections", "OrderedDict")])
def test_every_global_is_refused_by_default(tmp_path, module, name):
  marker = tmp_path / "pwned"
  path = str(tmp_path / "captions.pickle")
  _write_python2(path, [[1, 2], w.Reduce(w.Global(module, name), (f"touch {marker}",))])
  with pytest.raises(restricted_pickle.RefusedGlobalError) as e:
    restricted_pickle.load(path)
  assert f"refused the global {module}.{name}" in str(e.value) and path in str(e.value)
  assert not marker.exists()


def test_python3_protocol4_stack_global_is_refused_and_not_called(tmp_path):
  path = str(tmp_path / "evil.pickle")

  class Evil:
    def __reduce__(self):
      return _record, ("called",)
  with open(path, "wb") as f:
    pickle.dump([Evil()], f, protocol=4)  # STACK_GLOBAL, not GLOBAL
  _CALLS.clear()
  with pytest.raises(restricted_pickle.RefusedGlobalError, match=f"{__name__}._record"):
    restricted_pickle.load(path)
  assert _CALLS == []


def test_allowed_globals_are_served_from_the_table_only(tmp_path):
  path = str(tmp_path / "a.pickle")
  _write_python2(path, w.Reduce(w.Global("collections", "OrderedDict"), ([["k", 1]],)))
  got = restricted_pickle.load(path, allowed={"collections.OrderedDict": dict})
  assert got == {"k": 1} and type(got) is dict  # the table's object, not the real import


def test_truncated_and_non_pickle_files(tmp_path):
  path = str(tmp_path / "captions.pickle")
  _write_python2(path, [[1, 2, 3]] * 50)
  raw = open(path, "rb").read()
  with open(path, "wb") as f:
    f.write(raw[:len(raw) // 2])
  with pytest.raises(restricted_pickle.UnsafePickleError, match="truncated"):
    restricted_pickle.load(path)
  with open(path, "wb") as f:
    f.write(b"\x80\x02Q.")  # BINPERSID with an empty stack: corrupt
  with pytest.raises(restricted_pickle.UnsafePickleError, match=path):
    restricted_pickle.load(path)


def test_persistent_ids_are_refused_in_a_plain_pickle(tmp_path):
  path = str(tmp_path / "p.pickle")
  with open(path, "wb") as f:
    f.write(b"\x80\x02X\x03\x00\x00\x00abcQ.")  # BINUNICODE 'abc', BINPERSID, STOP
  with pytest.raises(restricted_pickle.UnsafePickleError, match="persistent id 'abc'"):
    restricted_pickle.load(path)
