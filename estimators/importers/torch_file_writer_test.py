"""The writer emits the bytes torch.save wrote, checked against hand-assembled opcodes."""
import io
import struct
import zipfile

import numpy as np

from estimators.importers import torch_file_writer as w


def test_legacy_header_pickles_are_torchs_magic_version_and_python2_sys_info():
  raw = w.legacy_bytes({})
  magic = b"\x80\x02\x8a\x0a" + (0x1950a86a20f9469cfc6c).to_bytes(10, "little") + b"."
  version = b"\x80\x02M" + struct.pack("<H", 1001) + b"."  # BININT2
  assert raw.startswith(magic + version)
  rest = raw[len(magic + version):]
  assert rest.startswith(b"\x80\x02}")  # sys_info: a dict ...
  assert b"U\x0dlittle_endian\x88" in rest  # ... with Python 2 str keys; NEWTRUE


def test_legacy_tensor_opcodes_and_storage_block():
  data = np.array([1.5, -2.0, 3.25], np.float32)
  storage = w.Storage(data, key="42", module="torch.cuda", location="cuda:0")
  raw = w.legacy_bytes([w.Tensor(storage, 1, (2,), (1,), rebuild="_rebuild_tensor")])
  # REDUCE(_rebuild_tensor, (storage pid, offset, size, stride)); the pid is
  # ('storage', torch.cuda.FloatStorage, '42', 'cuda:0', 3, None) with Python 2 str
  pid = (b"U\x07storage" + b"ctorch.cuda\nFloatStorage\n" + b"U\x0242" + b"U\x06cuda:0" +
         b"K\x03" + b"N")
  assert b"ctorch._utils\n_rebuild_tensor\n" in raw
  assert pid in raw
  keys_then_block = (b"\x80\x02]q\x00U\x0242a." + struct.pack("<q", 3) + data.tobytes())
  assert raw.endswith(keys_then_block)


def test_zip_records():
  buf = io.BytesIO()
  w.write_zip(buf, {"w": w.contiguous_tensor(np.arange(3, dtype=np.int64), key="0")},
              archive="g")
  with zipfile.ZipFile(buf) as z:
    assert sorted(z.namelist()) == ["g/byteorder", "g/data.pkl", "g/data/0", "g/version"]
    assert z.read("g/data/0") == np.arange(3, dtype="<i8").tobytes()
    pkl = z.read("g/data.pkl")
  assert b"ctorch._utils\n_rebuild_tensor_v2\n" in pkl and b"ctorch\nLongStorage\n" in pkl
  assert pkl.startswith(b"\x80\x02")
