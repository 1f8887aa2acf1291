"""Writes files in PyTorch's two serializations without PyTorch, so tests can make official files.

What each format holds (verified against torch/serialization.py and torch/_utils.py, see the
README "Released weights"):

  legacy (torch 0.3/0.4, Python 2.7; the 2018 releases): five pickles then raw storages:
    pickle(0x1950a86a20f9469cfc6c) pickle(1001) pickle(sys_info) pickle(obj) pickle(keys)
    then per key, in the order of `keys`: int64 little-endian element count, the raw bytes.
    Tensors in obj: REDUCE torch._utils._rebuild_tensor(storage, offset, size, stride)
    (0.4: _rebuild_tensor_v2(..., requires_grad, backward_hooks)); a storage is a persistent id
    ('storage', torch.FloatStorage, root_key, location, root_numel, view_metadata), location
    'cpu' or 'cuda:N'; Python 2 str (SHORT_BINSTRING/BINSTRING) for every text.
  zip (torch >= 1.6): a zip archive '<name>/data.pkl', '<name>/data/<key>' (raw bytes),
    '<name>/version', '<name>/byteorder'; persistent id ('storage', torch.FloatStorage, key,
    location, numel); _rebuild_tensor_v2.

Objects to write: `Storage`, `Tensor` (a view into a storage: offset, size, stride),
`OrderedDict`, and `Global` / `Reduce` to name any other global (for refusal tests).
"""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
PROTOCOL_VERSION = 1001

_STORAGE_NAMES = {np.dtype("float64"): "DoubleStorage", np.dtype("float32"): "FloatStorage",
                  np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage",
                  np.dtype("int32"): "IntStorage", np.dtype("int16"): "ShortStorage",
                  np.dtype("int8"): "CharStorage", np.dtype("uint8"): "ByteStorage",
                  np.dtype("bool"): "BoolStorage"}


class Global:
  """Pickled as GLOBAL 'module\\nname\\n' (callable only so pickle accepts it in REDUCE)."""

  def __init__(self, module, name):
    self.module, self.name = module, name

  def __call__(self, *args):
    raise TypeError("a stand-in for pickling only")


class Reduce:
  """Pickled as func(*args): the global `func`, the args tuple, REDUCE (then `state`, BUILD)."""

  def __init__(self, func, args, state=None):
    self.func, self.args, self.state = func, tuple(args), state

  def __reduce__(self):
    return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


class Py2Str(bytes):
  """A Python 2 str: pickled as SHORT_BINSTRING / BINSTRING, as Python 2 wrote text."""


class Storage:
  """A 1-D typed storage. module 'torch.cuda' names a CUDA storage type; location 'cuda:0'.

  type_name overrides the name taken from the dtype (e.g. 'BFloat16Storage' for uint16 bits).
  view_of: a root Storage this one is a view of, at view_offset (torch < 0.4 storage views;
  legacy format only: the persistent id names the root and carries (key, offset, numel)).
  """

  def __init__(self, data, key, module="torch", location="cpu", type_name=None, view_of=None,
               view_offset=0):
    self.data = np.ascontiguousarray(np.asarray(data).reshape(-1))
    self.key, self.module, self.location = str(key), module, location
    self.type_name = type_name or _STORAGE_NAMES[self.data.dtype]
    self.view_of, self.view_offset = view_of, int(view_offset)


class Tensor:
  """A tensor: a view of `storage` at `offset` (elements) with `size` and `stride` (elements)."""

  def __init__(self, storage, offset, size, stride, rebuild="_rebuild_tensor_v2"):
    self.storage, self.offset = storage, int(offset)
    self.size, self.stride = tuple(size), tuple(stride)
    self.rebuild = rebuild


def contiguous_tensor(array, key, **storage_kwargs):
  """A Tensor owning a new storage with `array`'s values (C order)."""
  array = np.asarray(array)
  strides = tuple(int(np.prod(array.shape[i + 1:])) for i in range(array.ndim))
  return Tensor(Storage(array, key, **storage_kwargs), 0, array.shape, strides)


class _Writer(pickle._Pickler):  # pylint: disable=protected-access  (the Python pickler can be extended)
  """Protocol 2 pickler that writes Global, Py2Str and torch persistent ids as torch does."""

  def __init__(self, file, legacy, python2_text):
    super().__init__(file, protocol=2)
    self.legacy = legacy
    self.python2_text = python2_text
    self.storages = {}  # key -> Storage, in first-use order

  def text(self, s):
    return Py2Str(s.encode("utf-8")) if self.python2_text else s

  def save(self, obj, save_persistent_id=True):
    if isinstance(obj, Global):
      self.write(pickle.GLOBAL + obj.module.encode() + b"\n" + obj.name.encode() + b"\n")
    elif isinstance(obj, Py2Str):
      n = len(obj)
      self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256
                  else pickle.BINSTRING + struct.pack("<i", n)) + bytes(obj))
    elif isinstance(obj, str) and self.python2_text:
      self.save(self.text(obj))
    elif isinstance(obj, Tensor):
      args = (obj.storage, obj.offset, obj.size, obj.stride)
      if obj.rebuild == "_rebuild_tensor_v2":
        args += (False, Reduce(Global("collections", "OrderedDict"), ()))
      self.save(Reduce(Global("torch._utils", obj.rebuild), args))
    elif isinstance(obj, collections.OrderedDict) and self.python2_text:
      # Python 2's OrderedDict.__reduce__: OrderedDict([[key, value], ...]).
      self.save(Reduce(Global("collections", "OrderedDict"), ([[k, v] for k, v in obj.items()],)))
    else:
      super().save(obj, save_persistent_id)

  def persistent_id(self, obj):
    if not isinstance(obj, Storage):
      return None
    root = obj.view_of or obj
    self.storages.setdefault(root.key, root)
    pid = ("storage", Global(obj.module, obj.type_name), self.text(root.key),
           self.text(obj.location), int(root.data.size))
    if not self.legacy:
      return pid
    view = None if obj.view_of is None else (self.text(obj.key), obj.view_offset, obj.data.size)
    return pid + (view,)


def legacy_bytes(obj, python2_text=True, sys_info=None):
  """The bytes torch.save wrote before 1.6 (_use_new_zipfile_serialization=False)."""
  buf = io.BytesIO()
  writer = _Writer(buf, legacy=True, python2_text=python2_text)
  info = sys_info if sys_info is not None else {
      "protocol_version": PROTOCOL_VERSION, "little_endian": True,
      "type_sizes": {"short": 2, "int": 4, "long": 8}}
  for header in (MAGIC_NUMBER, PROTOCOL_VERSION, info):
    writer.dump(header)
    writer.memo.clear()
  writer.dump(obj)
  keys = sorted(writer.storages)  # torch sorts the keys (str of the storage's address)
  writer.memo.clear()
  writer.dump([writer.text(k) for k in keys])
  for key in keys:
    data = writer.storages[key].data
    buf.write(struct.pack("<q", data.size))
    buf.write(data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes())
  return buf.getvalue()


def write_legacy(path, obj, **kwargs):
  with open(path, "wb") as f:
    f.write(legacy_bytes(obj, **kwargs))


def write_zip(path, obj, archive="archive"):
  """A torch >= 1.6 zip file (records stored uncompressed, as torch writes them)."""
  buf = io.BytesIO()
  writer = _Writer(buf, legacy=False, python2_text=False)
  writer.dump(obj)
  with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
    z.writestr(f"{archive}/data.pkl", buf.getvalue())
    z.writestr(f"{archive}/byteorder", "little")
    for key, storage in writer.storages.items():
      z.writestr(f"{archive}/data/{key}", storage.data.astype(
          storage.data.dtype.newbyteorder("<"), copy=False).tobytes())
    z.writestr(f"{archive}/version", "3\n")
