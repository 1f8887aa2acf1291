"""Inception loading paths with a stand-in module the test builds (never real weights)."""
import hashlib
import os
import shutil
import socket
import threading

import numpy as np
import pytest
import tensorflow as tf

from eval import inception
from eval import standin_classifier

UNREACHABLE_HANDLE = "https://192.0.2.1/tensorflow/tfgan/eval/inception/1"  # TEST-NET-1


@pytest.fixture(scope="module")
def standin_dir(tmp_path_factory):
  return standin_classifier.save_standin_module(str(tmp_path_factory.mktemp("standin") / "m"))


def _assert_names_all_options(message, handle=inception.INCEPTION_TFHUB):
  assert "--inception_path" in message
  assert "TFHUB_CACHE_DIR" in message
  assert f"network access to the TF-Hub handle {handle}" in message


def test_load_from_inception_path(standin_dir):
  classifier = inception.load_inception(inception_path=standin_dir, allow_download=False)
  assert classifier.source == f"inception_path:{standin_dir}"
  assert classifier.content_hash == inception.directory_content_hash(standin_dir)
  images = np.random.RandomState(0).uniform(-1, 1, size=(3, 32, 32, 3)).astype(np.float32)
  outputs = classifier(images)
  assert outputs["logits"].shape == (3, 1008) and outputs["pool_3"].shape == (3, 2048)
  module = tf.saved_model.load(standin_dir)
  resized = tf.compat.v1.image.resize(images, [299, 299], method=tf.image.ResizeMethod.BILINEAR)
  expected = module(resized)
  np.testing.assert_allclose(outputs["logits"], expected["logits"].numpy(), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(outputs["pool_3"], expected["pool_3"].numpy().reshape(3, 2048),
                             rtol=1e-5, atol=1e-5)


def test_resize_methods_differ_and_are_recorded(standin_dir):
  tf1 = inception.load_inception(inception_path=standin_dir, resize_method="tf1_bilinear")
  tf2 = inception.load_inception(inception_path=standin_dir, resize_method="bilinear")
  image = np.random.RandomState(1).uniform(-1, 1, size=(1, 7, 7, 3)).astype(np.float32)
  assert not np.allclose(tf1(image)["pool_3"], tf2(image)["pool_3"])
  assert tf2.protocol["resize_method"] == "bilinear"
  with pytest.raises(ValueError, match="resize_method"):
    inception.load_inception(inception_path=standin_dir, resize_method="nearest")


@pytest.mark.parametrize("via_env", [False, True])
def test_load_from_tfhub_cache(standin_dir, tmp_path, monkeypatch, via_env):
  sha1 = hashlib.sha1(inception.INCEPTION_TFHUB.encode("utf8")).hexdigest()
  shutil.copytree(standin_dir, tmp_path / sha1)
  if via_env:
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    classifier = inception.load_inception(allow_download=False)
  else:
    monkeypatch.delenv("TFHUB_CACHE_DIR", raising=False)
    classifier = inception.load_inception(tfhub_cache_dir=str(tmp_path), allow_download=False)
  assert classifier.source == f"tfhub_cache:{tmp_path / sha1}"
  assert classifier.content_hash == inception.directory_content_hash(standin_dir)  # same bytes


def test_content_hash_changes_with_any_file(standin_dir, tmp_path):
  copy = tmp_path / "copy"
  shutil.copytree(standin_dir, copy)
  before = inception.directory_content_hash(str(copy))
  assert before.startswith("sha256:")
  with open(copy / "fingerprint.txt", "w") as f:
    f.write("x")
  assert inception.directory_content_hash(str(copy)) != before


def test_missing_inception_path_is_an_error_not_a_fallback(standin_dir, tmp_path):
  sha1 = hashlib.sha1(inception.INCEPTION_TFHUB.encode("utf8")).hexdigest()
  shutil.copytree(standin_dir, tmp_path / sha1)  # a usable cache must not be used instead
  with pytest.raises(inception.InceptionUnavailableError) as e:
    inception.load_inception(inception_path=str(tmp_path / "nope"),
                             tfhub_cache_dir=str(tmp_path))
  _assert_names_all_options(str(e.value))


def test_other_network_is_refused(tmp_path):
  wrong = standin_classifier.save_standin_module(str(tmp_path / "small"), logits_dim=1000,
                                                 pool_dim=2048)
  with pytest.raises(inception.InceptionUnavailableError, match="not the TF-GAN Inception"):
    inception.load_inception(inception_path=wrong)


def test_offline_without_download_fails_at_once(tmp_path, offline):
  with pytest.raises(inception.InceptionUnavailableError) as e:
    inception.load_inception(tfhub_cache_dir=str(tmp_path), allow_download=False)
  assert offline == []  # not even a probe of the network
  assert "downloading is disabled (allow_download=False)" in str(e.value)
  _assert_names_all_options(str(e.value))


def test_unreachable_network_fails_after_one_probe_bounded_by_the_timeout(tmp_path, monkeypatch):
  """A network whose DNS lookup or connect hangs (the probe never returns by itself): the probe
  is given up after network_timeout_s and nothing is downloaded."""
  probes, downloads, release = [], [], threading.Event()

  def hanging_connect(address, timeout=None):
    probes.append((address, timeout))
    release.wait(60)  # hang guard (300x the timeout): then it connects, and the download below
    return socket.socket()  # would be tried, failing the test, if the probe waited for this

  def download(*args):
    downloads.append(args)
    raise OSError("no download in this test")
  monkeypatch.setattr(socket, "create_connection", hanging_connect)
  monkeypatch.setattr(inception, "_download", download)
  try:
    with pytest.raises(inception.InceptionUnavailableError) as e:
      inception.load_inception(tfhub_cache_dir=str(tmp_path), handle=UNREACHABLE_HANDLE,
                               network_timeout_s=0.2)
  finally:
    release.set()
  assert probes == [(("192.0.2.1", 443), 0.2)] and downloads == []
  assert "network: 192.0.2.1:443 unreachable within 0.2 s" in str(e.value)
  _assert_names_all_options(str(e.value), UNREACHABLE_HANDLE)
  assert not os.listdir(tmp_path)  # nothing half-downloaded left behind


class _TarballServer:
  """A local HTTP server standing in for tfhub.dev: serves a tarball, or stalls until closed."""

  def __init__(self, payload: bytes = None):
    import http.server  # pylint: disable=import-outside-toplevel
    import threading  # pylint: disable=import-outside-toplevel
    self.release = threading.Event()
    outer = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):  # pylint: disable=invalid-name
        if payload is None:
          outer.release.wait(60)  # a network that accepts and never answers
          return
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

      def log_message(self, *args):
        pass

    self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.server.daemon_threads = True
    threading.Thread(target=self.server.serve_forever, daemon=True).start()
    self.handle = f"http://127.0.0.1:{self.server.server_address[1]}/tfgan/eval/inception/1"

  def close(self):
    self.release.set()
    self.server.shutdown()
    self.server.server_close()


def _tarball(directory):
  import io  # pylint: disable=import-outside-toplevel
  import tarfile  # pylint: disable=import-outside-toplevel
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
    for name in os.listdir(directory):
      tar.add(os.path.join(directory, name), arcname=name)
  return buffer.getvalue()


def test_download_goes_through_tfhub_into_the_cache(standin_dir, tmp_path):
  server = _TarballServer(_tarball(standin_dir))
  try:
    classifier = inception.load_inception(tfhub_cache_dir=str(tmp_path), handle=server.handle)
  finally:
    server.close()
  sha1 = hashlib.sha1(server.handle.encode("utf8")).hexdigest()
  assert classifier.source == f"tfhub_download:{server.handle}"
  assert classifier.content_hash == inception.directory_content_hash(standin_dir)
  again = inception.load_inception(tfhub_cache_dir=str(tmp_path), handle=server.handle,
                                   allow_download=False)  # server gone: the cache serves it
  assert again.source == f"tfhub_cache:{tmp_path / sha1}"


def test_stalled_download_fails_by_the_read_timeout(tmp_path):
  server = _TarballServer(payload=None)  # answers nothing for 60 s (60x the read timeout)
  try:
    with pytest.raises(inception.InceptionUnavailableError) as e:
      inception.load_inception(tfhub_cache_dir=str(tmp_path), handle=server.handle,
                               network_timeout_s=1.0)
  finally:
    server.close()
  assert f"download of {server.handle} failed: TimeoutError: timed out" in str(e.value)
  _assert_names_all_options(str(e.value), server.handle)
