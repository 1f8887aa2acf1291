"""Loads the Inception network TF-GAN evaluates with, offline-safe, and fingerprints it.

The network is TF-GAN's TF-Hub module `tfgan/eval/inception/1` (`tfgan.eval.INCEPTION_TFHUB`):
called on images in [-1, 1] at 299x299 it returns `logits` [N, 1008] and `pool_3` [N, 2048].
`load_inception` looks for it in this order and uses the first one found:

  1. `inception_path`: a local directory holding the module (a SavedModel / TF-Hub module with
     those outputs). Given but missing or malformed is an error, never a fallback.
  2. The TF-Hub cache: `<cache>/<sha1 of the handle URL>`, where <cache> is the
     `tfhub_cache_dir` argument, else $TFHUB_CACHE_DIR, else TF-Hub's default
     (<system temp>/tfhub_modules). This is where a previous download put it.
  3. Downloading the handle into that cache, only when `allow_download` is True. A TCP probe of
     the handle's host (`network_timeout_s`) decides first, so an offline machine fails in
     seconds; during the download every socket read times out after `network_timeout_s`, so a
     stalled network fails instead of hanging.

Nothing else is ever substituted: when none is reachable, `InceptionUnavailableError` names the
three options. The returned `InceptionClassifier` carries `content_hash` (sha256 over the
module's files) and `source`, recorded with every metric.
"""
import contextlib
import hashlib
import os
import socket
import tempfile
import threading
import urllib.parse

import numpy as np
import tensorflow as tf
import tensorflow_gan as tfgan
import tensorflow_hub as tfhub  # also defines the absl flag --tfhub_cache_dir (do not redefine)

INCEPTION_TFHUB = tfgan.eval.INCEPTION_TFHUB  # https://tfhub.dev/tensorflow/tfgan/eval/inception/1
INCEPTION_IMAGE_SIZE = tfgan.eval.INCEPTION_DEFAULT_IMAGE_SIZE  # 299
LOGITS_DIM = 1008  # `logits`: 1001 ImageNet classes padded to 1008, as in the original graph
POOL_DIM = 2048  # `pool_3`: the FID features

# How images reach 299x299. 'tf1_bilinear' is tf.compat.v1.image.resize (no half-pixel centres),
# what TF-GAN's self_attention_estimator (the SAGAN reference) uses; 'bilinear' is TF2's
# tf.image.resize, used by TF-GAN's CIFAR example. FID moves by points between methods.
RESIZE_METHODS = ("tf1_bilinear", "bilinear")


class InceptionUnavailableError(RuntimeError):
  """No copy of the TF-GAN Inception module could be reached; the message lists the options."""


class InceptionClassifier:
  """Images [N, H, W, 3] in [-1, 1] -> {'logits': [N, C], 'pool_3': [N, D]} float32 numpy.

  Resizes to `image_size` with `resize_method`, runs the module, flattens its outputs. Any
  module with a `__call__` (or a single signature) returning those two keys works, which is
  how tests and benchmarks plug in stand-ins; `protocol` says which network it was.
  """

  def __init__(self, module, *, content_hash: str, source: str,
               resize_method: str = "tf1_bilinear", image_size: int = INCEPTION_IMAGE_SIZE):
    if resize_method not in RESIZE_METHODS:
      raise ValueError(f"resize_method must be one of {RESIZE_METHODS}, got {resize_method!r}")
    self._module = module  # keeps the loaded SavedModel's variables alive
    self._module_fn = _module_callable(module)
    self.content_hash = content_hash
    self.source = source
    self.resize_method = resize_method
    self.image_size = image_size
    self._forward = tf.function(
        self._forward_graph, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])

  @property
  def protocol(self) -> dict:
    return {"classifier_source": self.source, "classifier_hash": self.content_hash,
            "resize_method": self.resize_method, "classifier_image_size": self.image_size}

  def __call__(self, images) -> dict:
    outputs = self._forward(tf.convert_to_tensor(images, tf.float32))
    return {name: value.numpy() for name, value in outputs.items()}

  def _forward_graph(self, images):  # [N, H, W, 3] in [-1, 1]
    size = [self.image_size, self.image_size]
    if self.resize_method == "tf1_bilinear":
      images = tf.compat.v1.image.resize(images, size, method=tf.image.ResizeMethod.BILINEAR)
    else:
      images = tf.image.resize(images, size, method="bilinear")
    outputs = self._module_fn(images)  # [N, S, S, 3] -> dict
    missing = {"logits", "pool_3"} - set(outputs)
    if missing:
      raise ValueError(f"classifier outputs {sorted(outputs)} lack {sorted(missing)}")
    return {name: tf.reshape(tf.cast(outputs[name], tf.float32), [tf.shape(images)[0], -1])
            for name in ("logits", "pool_3")}


def load_inception(inception_path: str = None, tfhub_cache_dir: str = None, *,
                   allow_download: bool = True, network_timeout_s: float = 5.0,
                   resize_method: str = "tf1_bilinear",
                   handle: str = INCEPTION_TFHUB) -> InceptionClassifier:
  """Returns the TF-GAN Inception classifier from the first reachable source (module docstring).

  Args:
    inception_path: local module directory (the --inception_path flag); takes precedence.
    tfhub_cache_dir: TF-Hub cache directory; default $TFHUB_CACHE_DIR, then TF-Hub's default.
      (tensorflow_hub defines the absl flag --tfhub_cache_dir; callers pass its value here.)
    allow_download: whether option 3 (downloading `handle`) may be tried.
    network_timeout_s: TCP probe timeout and per-read timeout while downloading.
    resize_method: one of RESIZE_METHODS.
    handle: the TF-Hub handle; tests point it at an unreachable address.
  Raises:
    InceptionUnavailableError: nothing reachable, or what was found is not that network.
  """
  cache_dir = tfhub_cache_dir or os.environ.get("TFHUB_CACHE_DIR") or os.path.join(
      tempfile.gettempdir(), "tfhub_modules")
  cached = os.path.join(cache_dir, hashlib.sha1(handle.encode("utf8")).hexdigest())
  tried = []
  if inception_path:
    if not _is_saved_model_dir(inception_path):
      tried.append(f"--inception_path={inception_path}: no SavedModel (saved_model.pb) there")
      raise InceptionUnavailableError(_unavailable_message(handle, cached, tried))
    return _load_dir(inception_path, f"inception_path:{inception_path}", resize_method)
  if _is_saved_model_dir(cached):
    return _load_dir(cached, f"tfhub_cache:{cached}", resize_method)
  tried.append(f"TF-Hub cache: {cached} does not hold the module")
  if not allow_download:
    tried.append("downloading is disabled (allow_download=False)")
    raise InceptionUnavailableError(_unavailable_message(handle, cached, tried))
  host, port = _host_and_port(handle)
  if not _tcp_reachable(host, port, network_timeout_s):
    tried.append(f"network: {host}:{port} unreachable within {network_timeout_s:g} s")
    raise InceptionUnavailableError(_unavailable_message(handle, cached, tried))
  try:
    path = _download(handle, cache_dir, network_timeout_s)
  except Exception as e:  # pylint: disable=broad-except  (any failure: report all options)
    tried.append(f"download of {handle} failed: {type(e).__name__}: {e}")
    raise InceptionUnavailableError(_unavailable_message(handle, cached, tried)) from e
  return _load_dir(path, f"tfhub_download:{handle}", resize_method)


def directory_content_hash(path: str) -> str:
  """'sha256:<hex>' over every file under `path`: relative names, sizes and bytes, sorted."""
  digest = hashlib.sha256()
  for root, dirs, files in os.walk(path):
    dirs.sort()
    for name in sorted(files):
      full = os.path.join(root, name)
      rel = os.path.relpath(full, path).replace(os.sep, "/")
      digest.update(f"{rel}\0{os.path.getsize(full)}\0".encode("utf8"))
      with open(full, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):  # pylint: disable=cell-var-from-loop
          digest.update(chunk)
  return "sha256:" + digest.hexdigest()


def _load_dir(path, source, resize_method):
  try:
    module = tfhub.load(path)
  except Exception as e:  # pylint: disable=broad-except
    raise InceptionUnavailableError(
        f"{path} exists but does not load as a TF-Hub module / SavedModel: {e}") from e
  classifier = InceptionClassifier(module, content_hash=directory_content_hash(path),
                                   source=source, resize_method=resize_method)
  _check_is_tfgan_inception(classifier, path)
  return classifier


def _check_is_tfgan_inception(classifier, path):
  """One tiny batch through the network: the output shapes must be TF-GAN Inception's."""
  try:
    outputs = classifier(np.zeros([1, 8, 8, 3], np.float32))
  except Exception as e:  # pylint: disable=broad-except
    raise InceptionUnavailableError(
        f"the module at {path} does not run as the TF-GAN Inception network: {e}") from e
  shapes = {name: outputs[name].shape for name in ("logits", "pool_3")}
  if shapes != {"logits": (1, LOGITS_DIM), "pool_3": (1, POOL_DIM)}:
    raise InceptionUnavailableError(
        f"the module at {path} is not the TF-GAN Inception network: outputs {shapes}, expected "
        f"logits (N, {LOGITS_DIM}) and pool_3 (N, {POOL_DIM}). A different network (e.g. Keras "
        f"InceptionV3) gives numbers that are not IS/FID.")


def _module_callable(module):
  if callable(module):
    return module
  signatures = getattr(module, "signatures", {})
  for key in ("default", "serving_default"):
    if key in signatures:
      signature = signatures[key]
      (input_name,) = signature.structured_input_signature[1].keys()
      return lambda images: signature(**{input_name: images})
  raise ValueError("the module is neither callable nor has a 'default'/'serving_default' signature")


def _is_saved_model_dir(path):
  return os.path.isdir(path) and any(
      os.path.isfile(os.path.join(path, name)) for name in ("saved_model.pb", "saved_model.pbtxt"))


def _host_and_port(handle):
  parsed = urllib.parse.urlparse(handle)
  return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)


def _tcp_reachable(host, port, timeout_s):
  """True if a TCP connection to host:port opens within timeout_s (DNS included)."""
  reachable = []

  def probe():
    try:
      socket.create_connection((host, port), timeout=timeout_s).close()
      reachable.append(True)
    except OSError:
      pass

  thread = threading.Thread(target=probe, daemon=True)  # getaddrinfo ignores socket timeouts
  thread.start()
  thread.join(timeout_s)
  return bool(reachable)


@contextlib.contextmanager
def _socket_timeout(seconds):
  previous = socket.getdefaulttimeout()
  socket.setdefaulttimeout(seconds)
  try:
    yield
  finally:
    socket.setdefaulttimeout(previous)


def _download(handle, cache_dir, timeout_s):
  """Resolves `handle` into `cache_dir` with TF-Hub's resolver; returns the module directory."""
  previous = os.environ.get("TFHUB_CACHE_DIR")
  os.environ["TFHUB_CACHE_DIR"] = cache_dir  # TF-Hub reads the cache location from here
  try:
    with _socket_timeout(timeout_s):
      return tfhub.resolve(handle)
  finally:
    if previous is None:
      del os.environ["TFHUB_CACHE_DIR"]
    else:
      os.environ["TFHUB_CACHE_DIR"] = previous


def _unavailable_message(handle, cached, tried):
  return (
      "The Inception network for IS/FID/KID (TF-GAN's TF-Hub module) is not reachable.\n"
      + "".join(f"  - {line}\n" for line in tried)
      + "Give it one of these ways:\n"
      f"  1. --inception_path=DIR: a local copy of the module (SavedModel with outputs logits "
      f"[N, {LOGITS_DIM}] and pool_3 [N, {POOL_DIM}]), e.g. {handle}?tf-hub-format=compressed "
      f"downloaded elsewhere and unpacked into DIR;\n"
      f"  2. TFHUB_CACHE_DIR=DIR with the unpacked module in DIR/{os.path.basename(cached)} "
      f"(the sha1 of the handle URL);\n"
      f"  3. network access to the TF-Hub handle {handle} (downloads into the TF-Hub cache).\n"
      "No other network is substituted: its scores would not be IS/FID.")
