"""Reads PyTorch .pth files into numpy without PyTorch and without executing their pickles.

Both serializations torch.save has written (facts verified in torch/serialization.py and
torch/_utils.py of the 0.3/0.4 era and of today; see the README "Released weights"):

  zip (torch >= 1.6): '<archive>/data.pkl' is the object pickle; '<archive>/data/<key>' holds the
    raw little-endian bytes of storage <key> ('<archive>/byteorder' may say 'big'); a storage is
    the persistent id ('storage', torch.<Type>Storage, key, location, numel).
  legacy (torch 0.3/0.4, Python 2.7: the papers' 2018 releases such as AttnGAN's .pth files):
    pickles of the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001 and sys_info,
    then the object pickle, whose persistent ids are ('storage', torch.<Type>Storage, root_key,
    location, root_numel, view_metadata or None), then the pickled list of storage keys, then per
    key an int64 element count and the raw bytes. Text is Python 2 str (byte strings).

Tensors are `torch._utils._rebuild_tensor(storage, offset, size, stride)` or `_rebuild_tensor_v2(
..., requires_grad, backward_hooks[, metadata])`; several tensors may share one storage at
different offsets and strides. CUDA storages (location 'cuda:N', type torch.cuda.<Type>Storage in
some files) are read as CPU data.

Allowed globals: collections.OrderedDict, torch._utils._rebuild_tensor(_v2), torch._utils.
_rebuild_parameter, torch.Size, torch(.cuda).<Type>Storage. Any other global is refused before
anything is imported or called (restricted_pickle.RefusedGlobalError names the file and global).

  state = torch_files.load_state_dict("bird_AttnGAN2.pth")   # {key: numpy array}
"""
import collections
import io
import struct
import zipfile

import numpy as np

from estimators.importers import restricted_pickle
from estimators.importers.restricted_pickle import UnsafePickleError

MAGIC_NUMBER = 0x1950a86a20f9469cfc6c
PROTOCOL_VERSION = 1001
_LEGACY_HEADER = b"\x80\x02\x8a\x0a"  # PROTO 2, LONG1 of 10 bytes: the pickled magic number
_ZIP_HEADER = b"PK\x03\x04"

# Storage type name -> little-endian numpy dtype. BFloat16 is read as uint16 and widened to float32.
STORAGE_DTYPES = {"DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2",
                  "BFloat16Storage": "<u2", "LongStorage": "<i8", "IntStorage": "<i4",
                  "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
                  "BoolStorage": "?"}


class TorchFileError(UnsafePickleError):
  """A .pth file that is not what it should be (format, truncation, tensor/storage mismatch)."""


class _StorageType:
  """What the global torch.<Type>Storage resolves to: a name and a dtype, nothing callable."""

  def __init__(self, global_name):
    self.global_name = global_name
    self.dtype = np.dtype(STORAGE_DTYPES[global_name.rsplit(".", 1)[1]])
    self.bfloat16 = global_name.endswith("BFloat16Storage")


class _Storage:
  """A storage named by a persistent id; `array` (1-D) is filled once its bytes are read."""

  def __init__(self, storage_type, key, numel, location):
    self.type, self.key, self.numel, self.location = storage_type, key, int(numel), location
    self.array = None
    self.base, self.base_offset = None, 0  # a legacy storage view: base[offset:offset + numel]

  def values(self, path):
    if self.base is not None:
      return self.base.values(path)[self.base_offset:self.base_offset + self.numel]
    if self.array is None:
      raise TorchFileError(f"{path}: storage {self.key!r} is used by a tensor but its data is not "
                           "in the file (truncated or corrupt file)")
    return self.array


class _TensorRef:
  """A tensor as the pickle describes it; becomes a numpy array once storages are read."""

  def __init__(self, storage, offset, size, stride):
    self.storage, self.offset = storage, offset
    self.size, self.stride = size, stride


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  """torch._utils._rebuild_tensor and _rebuild_tensor_v2 (requires_grad, hooks are dropped)."""
  if not isinstance(storage, _Storage):
    raise TypeError(f"_rebuild_tensor expects a storage, got {type(storage).__name__}")
  return _TensorRef(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused):
  """torch._utils._rebuild_parameter(data, requires_grad, backward_hooks): the data."""
  return data


def _allowed_globals():
  allowed = {"collections.OrderedDict": collections.OrderedDict,
             "torch._utils._rebuild_tensor": _rebuild_tensor,
             "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
             "torch._utils._rebuild_parameter": _rebuild_parameter,
             "torch.Size": tuple}
  for module in ("torch", "torch.cuda"):
    for name in STORAGE_DTYPES:
      allowed[f"{module}.{name}"] = _StorageType(f"{module}.{name}")
  return allowed


ALLOWED_GLOBALS = tuple(sorted(_allowed_globals()))


def _text(value):
  return restricted_pickle.decode_text(value)


class _PersistentStorages:
  """persistent_load for both formats: storage persistent ids -> shared _Storage objects."""

  def __init__(self, path, legacy):
    self.path, self.legacy = path, legacy
    self.storages = {}  # key -> _Storage (roots)

  def __call__(self, pid):
    if not isinstance(pid, tuple) or not pid or _text(pid[0]) != "storage":
      raise TorchFileError(f"{self.path}: unknown persistent id {pid!r} (only 'storage' ids are "
                           "expected in a file of tensors)")
    expected = 6 if self.legacy else 5
    if len(pid) != expected:
      raise TorchFileError(f"{self.path}: storage id {pid!r} has {len(pid)} fields, the "
                           f"{'legacy' if self.legacy else 'zip'} format has {expected}")
    storage_type, key, location, numel = pid[1], _text(pid[2]), _text(pid[3]), pid[4]
    if not isinstance(storage_type, _StorageType):
      raise TorchFileError(f"{self.path}: storage {key!r} has type {storage_type!r}, not a "
                           "torch storage type")
    root = self.storages.setdefault(key, _Storage(storage_type, key, numel, location))
    if root.numel != int(numel) or root.type is not storage_type:
      raise TorchFileError(f"{self.path}: storage {key!r} is described twice differently")
    view = pid[5] if self.legacy else None
    if view is None:
      return root
    view_key, offset, view_numel = view  # a storage view of torch < 0.4: root[offset:offset+n]
    if int(offset) + int(view_numel) > root.numel:
      raise TorchFileError(f"{self.path}: storage view {_text(view_key)!r} [{offset}, "
                           f"{int(offset) + int(view_numel)}) exceeds storage {key!r} of "
                           f"{root.numel} elements")
    storage = _Storage(storage_type, _text(view_key), view_numel, location)
    storage.base, storage.base_offset = root, int(offset)
    return storage


def _set_storage_bytes(path, storage, raw, byteorder="little"):
  dtype = storage.type.dtype
  if byteorder == "big":
    dtype = dtype.newbyteorder(">")
  need = storage.numel * dtype.itemsize
  if len(raw) < need:
    raise TorchFileError(f"{path}: storage {storage.key!r} needs {need} bytes ({storage.numel} x "
                         f"{dtype.itemsize}) but the file holds {len(raw)}: it is truncated "
                         "(download it again)")
  array = np.frombuffer(raw, dtype=dtype, count=storage.numel).astype(dtype.newbyteorder("="))
  if storage.type.bfloat16:  # the high 16 bits of a float32
    array = (array.astype(np.uint32) << 16).view(np.float32)
  storage.array = array


# A tensor may view its storage with zero or overlapping strides (torch's expand) and so hold more
# elements than the storage; above this many, such a tensor is refused rather than materialised.
MAX_REPEATED_ELEMENTS = 1 << 26


def _materialize(path, ref):
  """A _TensorRef -> an owned, C-contiguous numpy array, after checking it fits its storage."""
  values = ref.storage.values(path)
  size, stride, offset = ref.size, ref.stride, int(ref.offset)
  if len(size) != len(stride) or any(int(s) < 0 for s in size + stride) or offset < 0:
    raise TorchFileError(f"{path}: tensor of size {size}, stride {stride}, offset {offset} on "
                         f"storage {ref.storage.key!r} is malformed")
  if any(int(s) == 0 for s in size):
    return np.zeros(size, values.dtype)
  needed = offset + sum((int(s) - 1) * int(st) for s, st in zip(size, stride)) + 1
  if needed > values.size:
    raise TorchFileError(f"{path}: tensor of size {size}, stride {stride}, offset {offset} needs "
                         f"{needed} elements of storage {ref.storage.key!r}, which holds "
                         f"{values.size}: the file is corrupt")
  elements = int(np.prod([int(s) for s in size], dtype=np.int64))
  if elements > max(values.size, MAX_REPEATED_ELEMENTS):
    raise TorchFileError(f"{path}: tensor of size {size}, stride {stride} repeats storage "
                         f"{ref.storage.key!r} ({values.size} elements) into {elements} elements; "
                         f"refused (more than {MAX_REPEATED_ELEMENTS}: no released weight is an "
                         "expanded view, and a hostile file could exhaust memory this way)")
  item = values.dtype.itemsize
  view = np.lib.stride_tricks.as_strided(values[offset:], shape=size,
                                         strides=[int(st) * item for st in stride])
  return np.array(view, copy=True, order="C")


def _tensors_to_arrays(path, obj):
  if isinstance(obj, _TensorRef):
    return _materialize(path, obj)
  if isinstance(obj, _Storage):
    return obj.values(path).copy()
  if isinstance(obj, dict):
    out = collections.OrderedDict() if isinstance(obj, collections.OrderedDict) else {}
    for k, v in obj.items():
      out[k] = _tensors_to_arrays(path, v)
    return out
  if isinstance(obj, list):
    return [_tensors_to_arrays(path, x) for x in obj]
  if isinstance(obj, tuple):
    return tuple(_tensors_to_arrays(path, x) for x in obj)
  return obj


def _load_zip(path, data):
  try:
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
  except zipfile.BadZipFile as e:
    raise TorchFileError(f"{path}: a zip file that cannot be read ({e}): truncated or corrupt "
                         "(download it again)") from e
  pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
  if len(pickles) != 1:
    raise TorchFileError(f"{path}: a zip file but not a torch.save file: expected one "
                         f"'<archive>/data.pkl', found {pickles or 'none'} (a TorchScript "
                         "archive or another format?)")
  prefix = pickles[0][:-len("data.pkl")]
  byteorder = "little"
  try:
    if prefix + "byteorder" in names:
      byteorder = archive.read(prefix + "byteorder").decode("ascii").strip()
    storages = _PersistentStorages(path, legacy=False)
    obj = restricted_pickle.unpickle(io.BytesIO(archive.read(pickles[0])), path=path,
                                     allowed=_allowed_globals(), persistent_load_fn=storages,
                                     python2_text=False)
    for key, storage in storages.storages.items():
      record = f"{prefix}data/{key}"
      if record not in names:
        raise TorchFileError(f"{path}: storage {key!r} has no record {record!r}")
      need = storage.numel * storage.type.dtype.itemsize
      declared = archive.getinfo(record).file_size
      if declared > need:  # torch writes exactly `need` bytes; refuse before decompressing
        raise TorchFileError(f"{path}: record {record!r} declares {declared} bytes where storage "
                             f"{key!r} needs {need}: not a torch.save file, or corrupt")
      _set_storage_bytes(path, storage, archive.read(record), byteorder)
  except (zipfile.BadZipFile, EOFError, OSError) as e:  # a CRC or truncated-member error
    raise TorchFileError(f"{path}: a record of the zip cannot be read ({e}): truncated or corrupt "
                         "(download it again)") from e
  return _tensors_to_arrays(path, obj)


def _load_legacy(path, data):
  f = io.BytesIO(data)
  plain = dict(path=path, allowed={}, python2_text=True)
  magic = restricted_pickle.unpickle(f, **plain)
  if magic != MAGIC_NUMBER:
    raise TorchFileError(f"{path}: bad magic number {magic!r} (expected {MAGIC_NUMBER:#x}): not a "
                         "torch.save file, or corrupt")
  version = restricted_pickle.unpickle(f, **plain)
  if version != PROTOCOL_VERSION:
    raise TorchFileError(f"{path}: torch serialization protocol {version!r}; this reader knows "
                         f"{PROTOCOL_VERSION} (torch 0.3 to 1.5) and the zip format")
  sys_info = restricted_pickle.unpickle(f, **plain)
  if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
    raise TorchFileError(f"{path}: written on a big-endian machine; only little-endian legacy "
                         "files are supported")
  storages = _PersistentStorages(path, legacy=True)
  obj = restricted_pickle.unpickle(f, path=path, allowed=_allowed_globals(),
                                   persistent_load_fn=storages, python2_text=True)
  keys = restricted_pickle.unpickle(f, **plain)
  if not isinstance(keys, list):
    raise TorchFileError(f"{path}: expected the list of storage keys after the object, found "
                         f"{type(keys).__name__}: corrupt file")
  for key in keys:
    key = str(key)
    if key not in storages.storages:
      raise TorchFileError(f"{path}: the file stores storage {key!r} that no tensor uses: corrupt")
    storage = storages.storages[key]
    header = f.read(8)
    if len(header) < 8:
      raise TorchFileError(f"{path}: the file ends before storage {key!r}: it is truncated "
                           "(download it again)")
    (count,) = struct.unpack("<q", header)
    if count != storage.numel:
      raise TorchFileError(f"{path}: storage {key!r} holds {count} elements, its tensors were "
                           f"saved with {storage.numel}: corrupt file")
    _set_storage_bytes(path, storage, f.read(count * storage.type.dtype.itemsize))
  return _tensors_to_arrays(path, obj)


def load(path):
  """The object torch.save wrote to `path`, tensors as numpy arrays (C order, CPU).

  Raises:
    restricted_pickle.RefusedGlobalError: the file names a global other than ALLOWED_GLOBALS.
    TorchFileError: not a torch file, truncated, or a tensor larger than its storage.
  """
  with open(path, "rb") as f:
    data = f.read()
  if data.startswith(_ZIP_HEADER):
    return _load_zip(path, data)
  if data.startswith(_LEGACY_HEADER):
    return _load_legacy(path, data)
  if len(data) > 262 and data[257:262] == b"ustar":
    raise TorchFileError(f"{path}: the tar format of torch < 0.1.10 is not supported; load and "
                         "re-save it with a torch of that era")
  raise TorchFileError(f"{path}: not a torch.save file (starts with {data[:8]!r}; expected a zip "
                       f"archive or the pickled magic number {MAGIC_NUMBER:#x})")


def load_state_dict(path):
  """A state_dict file -> {key: numpy array}; anything else is an error naming what is wrong."""
  obj = load(path)
  if not isinstance(obj, dict):
    raise TorchFileError(f"{path}: expected a state_dict (a dict of tensors), found "
                         f"{type(obj).__name__}")
  bad = {k: type(v).__name__ for k, v in obj.items()
         if not isinstance(k, str) or not isinstance(v, np.ndarray)}
  if bad:
    raise TorchFileError(f"{path}: not a flat state_dict: these entries are not tensors "
                         f"{dict(sorted(bad.items(), key=str))}")
  return dict(obj)
