"""torch_files reads both torch.save formats exactly and refuses everything else, without torch.

Files are written in the official formats by torch_file_writer (its bytes are checked by hand in
torch_file_writer_test); expected arrays are computed here by indexing the storage values
independently of the reader's strided view."""
import collections
import os
import zipfile

import numpy as np
import pytest

from estimators.importers import restricted_pickle
from estimators.importers import torch_file_writer as w
from estimators.importers import torch_files

_CALLS = []


def _record(*args):
  """A callable a hostile pickle might name; the reader must never call it."""
  _CALLS.append(args)


def _by_index(values, offset, size, stride):
  """out[idx] = values[offset + sum(idx * stride)], element by element."""
  out = np.empty(size, values.dtype)
  for idx in np.ndindex(*size):
    out[idx] = values[offset + sum(i * s for i, s in zip(idx, stride))]
  return out


def _random_state(rng):
  """A small G-like state_dict: distinct random values per key, several dtypes."""
  arrays = collections.OrderedDict([
      ("module.fc.weight", rng.standard_normal((6, 4)).astype(np.float32)),
      ("conv.weight", rng.standard_normal((3, 2, 3, 3)).astype(np.float32)),
      ("bn.running_mean", rng.standard_normal(3).astype(np.float32)),
      ("bn.running_var", rng.uniform(0.5, 2.0, 3).astype(np.float64)),
      ("emb.weight", rng.standard_normal((5, 2)).astype(np.float16)),
      ("bn.num_batches_tracked", np.array(12345678901, np.int64)),
  ])
  tensors = collections.OrderedDict(
      (k, w.contiguous_tensor(v, key=str(i))) for i, (k, v) in enumerate(arrays.items()))
  return arrays, tensors


@pytest.mark.parametrize("archive", ["archive", "bird_AttnGAN2"])
def test_zip_format_reads_every_tensor_exactly(tmp_path, archive):
  arrays, tensors = _random_state(np.random.default_rng(0))
  path = str(tmp_path / "g.pth")
  w.write_zip(path, tensors, archive=archive)
  with zipfile.ZipFile(path) as z:  # the layout torch >= 1.6 writes
    assert f"{archive}/data.pkl" in z.namelist() and f"{archive}/data/0" in z.namelist()
  got = torch_files.load_state_dict(path)
  assert list(got) == list(arrays)
  for key, value in arrays.items():
    assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
    np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_legacy_python2_file_with_cuda_storage_shared_by_strided_tensors(tmp_path):
  rng = np.random.default_rng(1)
  shared = w.Storage(rng.standard_normal(40).astype(np.float32), key="94251593341104",
                     module="torch.cuda", location="cuda:0")
  own = rng.standard_normal((4, 3)).astype(np.float32)
  state = collections.OrderedDict([
      # rows 2.. of the storage as a [3, 5] matrix, contiguous
      ("rnn.weight_ih_l0", w.Tensor(shared, 2, (3, 5), (5, 1), rebuild="_rebuild_tensor")),
      # a transposed (non-contiguous) [4, 3] view further on
      ("rnn.weight_hh_l0", w.Tensor(shared, 20, (4, 3), (1, 4), rebuild="_rebuild_tensor")),
      ("fc.weight", w.contiguous_tensor(own, key="94251593340000", location="cuda:0")),
  ])
  path = str(tmp_path / "text_encoder200.pth")
  w.write_legacy(path, state)
  raw = open(path, "rb").read()
  assert raw.startswith(b"\x80\x02\x8a\x0a")  # the pickled magic number
  assert b"U\x10rnn.weight_ih_l0" in raw  # a Python 2 str key (SHORT_BINSTRING), not unicode
  assert b"ctorch.cuda\nFloatStorage\n" in raw and b"ctorch._utils\n_rebuild_tensor\n" in raw

  got = torch_files.load_state_dict(path)
  assert list(got) == ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "fc.weight"]
  assert all(isinstance(k, str) for k in got)
  np.testing.assert_array_equal(got["rnn.weight_ih_l0"], _by_index(shared.data, 2, (3, 5), (5, 1)))
  np.testing.assert_array_equal(got["rnn.weight_hh_l0"], _by_index(shared.data, 20, (4, 3), (1, 4)))
  np.testing.assert_array_equal(got["fc.weight"], own)
  assert got["rnn.weight_hh_l0"].flags.c_contiguous  # owned copies, not views into the file


def test_legacy_storage_view_and_rebuild_tensor_v2_and_parameter(tmp_path):
  root = w.Storage(np.arange(10, 30, dtype=np.float32), key="1")
  view = w.Storage(root.data[5:15], key="2", view_of=root, view_offset=5)
  param = w.Reduce(w.Global("torch._utils", "_rebuild_parameter"),
                   (w.Tensor(root, 1, (2, 2), (2, 1)), True, collections.OrderedDict()))
  obj = {"view": w.Tensor(view, 3, (2, 3), (3, 1)), "param": param, "step": 7, "names": ["a"]}
  path = str(tmp_path / "mixed.pth")
  w.write_legacy(path, obj)
  got = torch_files.load(path)
  # the view starts at root element 5; the tensor at view element 3: root elements 8..13
  np.testing.assert_array_equal(got["view"], np.arange(18, 24, dtype=np.float32).reshape(2, 3))
  np.testing.assert_array_equal(got["param"], np.array([[11, 12], [13, 14]], np.float32))
  assert got["step"] == 7 and got["names"] == ["a"]


def test_bfloat16_storage_is_widened_to_float32(tmp_path):
  values = np.array([1.0, -2.5, 3.140625, 0.0], np.float32)  # exactly representable in bf16
  bits = (values.view(np.uint32) >> 16).astype(np.uint16)
  storage = w.Storage(bits, key="0", type_name="BFloat16Storage")
  path = str(tmp_path / "bf16.pth")
  w.write_zip(path, {"w": w.Tensor(storage, 0, (4,), (1,))})
  got = torch_files.load_state_dict(path)["w"]
  assert got.dtype == np.float32
  np.testing.assert_array_equal(got, values)


@pytest.mark.parametrize("module,name", [("os", "system"), ("posix", "system"),
                                         ("builtins", "eval"), ("__builtin__", "eval"),
                                         ("torch", "load"), ("numpy.core.multiarray", "_reconstruct")])
@pytest.mark.parametrize("writer", [w.write_legacy, w.write_zip])
def test_refuses_any_other_global_before_running_it(tmp_path, module, name, writer):
  marker = tmp_path / "pwned"
  payload = w.Reduce(w.Global(module, name), (f"touch {marker}",))
  path = str(tmp_path / "evil.pth")
  writer(path, collections.OrderedDict([("fc.weight", w.contiguous_tensor(np.ones(2), "0")),
                                        ("x", payload)]))
  with pytest.raises(restricted_pickle.RefusedGlobalError) as e:
    torch_files.load(path)
  assert f"{module}.{name}" in str(e.value) and path in str(e.value)
  assert e.value.global_name == f"{module}.{name}"
  assert not marker.exists()


def test_a_refused_callable_is_never_called(tmp_path):
  path = str(tmp_path / "evil.pth")
  w.write_legacy(path, {"x": w.Reduce(w.Global(__name__, "_record"), ("called",))})
  _CALLS.clear()
  with pytest.raises(restricted_pickle.RefusedGlobalError, match="_record"):
    torch_files.load(path)
  assert _CALLS == []
  _record("self-check")  # the callable itself works: it was not called because it was refused
  assert _CALLS == [("self-check",)]


def test_truncated_files_are_clear_errors(tmp_path):
  _, tensors = _random_state(np.random.default_rng(2))
  full = str(tmp_path / "full.pth")
  w.write_legacy(full, tensors)
  raw = open(full, "rb").read()
  cut = str(tmp_path / "cut.pth")
  # inside the object pickle, inside the storage-key list / first header, inside the last storage
  for n in (60, len(raw) // 2, len(raw) - 3):
    with open(cut, "wb") as f:
      f.write(raw[:n])
    with pytest.raises(restricted_pickle.UnsafePickleError, match="truncated") as e:
      torch_files.load(cut)
    assert cut in str(e.value)

  zpath = str(tmp_path / "full_zip.pth")
  w.write_zip(zpath, tensors)
  zraw = open(zpath, "rb").read()
  with open(cut, "wb") as f:
    f.write(zraw[:len(zraw) - 30])
  with pytest.raises(torch_files.TorchFileError, match="truncated or corrupt"):
    torch_files.load(cut)


def test_bad_magic_number_and_other_formats(tmp_path):
  path = str(tmp_path / "bad.pth")
  raw = w.legacy_bytes({"x": w.contiguous_tensor(np.ones(2, np.float32), "0")})
  magic = w.MAGIC_NUMBER.to_bytes(10, "little")
  with open(path, "wb") as f:
    f.write(raw.replace(magic, (w.MAGIC_NUMBER + 1).to_bytes(10, "little"), 1))
  with pytest.raises(torch_files.TorchFileError, match="bad magic number"):
    torch_files.load(path)
  with open(path, "wb") as f:
    f.write(b"\x89HDF\r\n\x1a\n" + bytes(100))
  with pytest.raises(torch_files.TorchFileError, match="not a torch.save file"):
    torch_files.load(path)


def test_a_tensor_larger_than_its_storage_is_an_error(tmp_path):
  storage = w.Storage(np.arange(5, dtype=np.float32), key="7")
  for writer in (w.write_legacy, w.write_zip):
    path = str(tmp_path / f"big_{writer.__name__}.pth")
    writer(path, {"w": w.Tensor(storage, 1, (2, 3), (3, 1))})  # needs 1 + 3 + 2 + 1 = 7
    with pytest.raises(torch_files.TorchFileError, match=r"needs 7 elements of storage '7', "
                       r"which holds 5"):
      torch_files.load(path)


def test_a_tensor_that_repeats_its_storage_beyond_the_cap_is_refused(tmp_path):
  storage = w.Storage(np.arange(3, dtype=np.float32), key="4")
  for writer in (w.write_legacy, w.write_zip):
    path = str(tmp_path / f"expanded_{writer.__name__}.pth")
    writer(path, {"small": w.Tensor(storage, 0, (2, 3), (0, 1)),        # 6 elements: read
                  "bomb": w.Tensor(storage, 0, (1 << 20, 1 << 20), (0, 0))})
    with pytest.raises(torch_files.TorchFileError,
                       match=r"repeats storage '4' \(3 elements\) into 1099511627776 elements"):
      torch_files.load(path)
    writer(path, {"small": w.Tensor(storage, 0, (2, 3), (0, 1))})
    np.testing.assert_array_equal(torch_files.load(path)["small"], [[0, 1, 2], [0, 1, 2]])


def test_a_zip_record_larger_than_its_storage_is_refused_before_it_is_read(tmp_path):
  path = str(tmp_path / "long.pth")
  w.write_zip(path, {"w": w.contiguous_tensor(np.arange(6, dtype=np.float32), "0")})
  with zipfile.ZipFile(path) as z:
    records = {n: z.read(n) for n in z.namelist()}
  records["archive/data/0"] += bytes(1 << 20)
  os.remove(path)
  with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
    for n, data in records.items():
      z.writestr(n, data)
  with pytest.raises(torch_files.TorchFileError,
                     match=r"declares 1048600 bytes where storage '0' needs 24"):
    torch_files.load(path)


def test_a_storage_shorter_than_its_id_says_is_an_error(tmp_path):
  path = str(tmp_path / "short.pth")
  w.write_zip(path, {"w": w.contiguous_tensor(np.arange(6, dtype=np.float32), "0")})
  with zipfile.ZipFile(path) as z:
    records = {n: z.read(n) for n in z.namelist()}
  records["archive/data/0"] = records["archive/data/0"][:-4]
  os.remove(path)
  with zipfile.ZipFile(path, "w") as z:
    for n, data in records.items():
      z.writestr(n, data)
  with pytest.raises(torch_files.TorchFileError, match=r"needs 24 bytes .* holds 20"):
    torch_files.load(path)


def test_load_state_dict_names_entries_that_are_not_tensors(tmp_path):
  path = str(tmp_path / "ckpt.pth")
  w.write_zip(path, {"w": w.contiguous_tensor(np.ones(2, np.float32), "0"), "epoch": 3})
  with pytest.raises(torch_files.TorchFileError, match="'epoch': 'int'"):
    torch_files.load_state_dict(path)


def test_the_tar_format_of_early_torch_is_named(tmp_path):
  import tarfile  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "old.pth")
  member = tmp_path / "sys_info"
  member.write_bytes(b"\x80\x02}q\x00.")
  with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
    tar.add(str(member), arcname="sys_info")
  with pytest.raises(torch_files.TorchFileError, match="tar format of torch < 0.1.10"):
    torch_files.load(path)


def test_python2_ordered_dict_with_metadata_attribute(tmp_path):
  """torch 0.4 state_dicts carry `_metadata` on the OrderedDict; Python 2 pickled it as
  REDUCE(OrderedDict, ([[key, value], ...],)) followed by BUILD with the instance dict."""
  value = np.arange(4, dtype=np.float32)
  items = [["fc.weight", w.contiguous_tensor(value, "0")]]
  state = w.Reduce(w.Global("collections", "OrderedDict"), (items,),
                   state={"_metadata": w.Reduce(w.Global("collections", "OrderedDict"),
                                                ([["", {"version": 1}]],))})
  path = str(tmp_path / "g.pth")
  w.write_legacy(path, state)
  import io  # pylint: disable=import-outside-toplevel
  import pickletools  # pylint: disable=import-outside-toplevel
  f = io.BytesIO(open(path, "rb").read())
  for _ in range(3):  # magic number, protocol version, sys_info
    list(pickletools.genops(f))
  assert "BUILD" in [op.name for op, _, _ in pickletools.genops(f)]  # the instance dict is there
  got = torch_files.load_state_dict(path)
  assert list(got) == ["fc.weight"]
  np.testing.assert_array_equal(got["fc.weight"], value)
