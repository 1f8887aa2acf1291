"""SAGAN-128 with sn_bound="tfgan" computes what TF-GAN's own example networks compute (issue #19).

TF-GAN's `self_attention_estimator` generator and discriminator (imported from the installed
wheel) are built in a TF1 graph at gf = df = 16, 10 classes, attention at feat32; this project's
networks are built eagerly. Every weight is drawn here and copied into both, paired by role (the
variable's name, translated), not by creation order: TF-GAN creates a conditional BN's beta before
its gamma, this project gamma before beta. The power-iteration vectors are set to each kernel's
exact leading singular vector on each side (TF-GAN keeps u on a kernel's input side, this project
on its output side), so both use the true sigma. With the weights drawn so that kernels have sigma
both above and below 1 (the attention 1x1 convolutions too) and the attention gates non-zero, the
outputs agree to float32 round-off only when the bound is W / max(1, sigma) for convolutions,
linears and the class embedding and W / sigma inside the attention block, which the controls at
the end show.
"""
import re

import numpy as np
import pytest
import tensorflow as tf

import estimators.compat  # noqa: F401  (TF-GAN 2.1.0 needs inspect.getargspec)
from estimators.models.sagan_networks import Discriminator, Generator
from tfgan_attention.self_attention import SelfAttention
from tfgan_attention.spectral_norm import SNConv2D, SNDense, SNEmbedding

SIZE, WIDTH, CLASSES, BATCH, Z = 128, 16, 10, 2, 128
LABELS = np.array([3, 7], np.int32)


def _our_name(tfgan_name):
  """This project's variable name for a TF-GAN variable name (both without ':0').

  generator/g_block2/snconv1/snconv1/kernel -> generator/g_block2/snconv1/kernel
  generator/g_snh0/dense/kernel             -> generator/g_snh0/kernel
  generator/g_block2/cbn_0/beta             -> generator/g_block2/cbn_0/cbn/beta
  generator/g_ops/sn_conv_theta/weights     -> generator/g_ops/sn_conv_theta/kernel
  generator/g_ops/sigma_ratio               -> generator/g_ops/sigma
  discriminator/d_embedding/embedding_map   -> discriminator/d_embedding/embeddings
  """
  parts = []
  for part in tfgan_name.split("/"):
    if part == "dense" or (parts and parts[-1] == part):
      continue
    parts.append(part)
  leaf = {"weights": "kernel", "sigma_ratio": "sigma", "embedding_map": "embeddings"}
  parts[-1] = leaf.get(parts[-1], parts[-1])
  if re.fullmatch(r"cbn_\d", parts[-2]):
    parts.insert(-1, "cbn")
  return "/".join(parts)


def _build_tfgan():
  """TF-GAN's networks in a TF1 graph: (graph, tensors, {variable name: variable})."""
  # pylint: disable=import-outside-toplevel
  from tensorflow_gan.examples.self_attention_estimator import discriminator as tfgan_d
  from tensorflow_gan.examples.self_attention_estimator import generator as tfgan_g
  graph = tf.Graph()
  with graph.as_default():
    z = tf.compat.v1.placeholder(tf.float32, [BATCH, Z])
    y = tf.compat.v1.placeholder(tf.int32, [BATCH])
    x = tf.compat.v1.placeholder(tf.float32, [BATCH, SIZE, SIZE, 3])
    images_train, _ = tfgan_g.generator(z, y, WIDTH, CLASSES, training=True)
    images_infer, _ = tfgan_g.generator(z, y, WIDTH, CLASSES, training=False)  # shared variables
    logits, _ = tfgan_d.discriminator(x, y, WIDTH, CLASSES)
    tensors = dict(z=z, y=y, x=x, images_train=images_train, images_infer=images_infer,
                   logits=logits[:, 0])
    variables = {v.name[:-2]: v for v in tf.compat.v1.global_variables()}
  return graph, tensors, variables


def _build_ours(bound):
  g = Generator(SIZE, WIDTH, CLASSES, attention_resolution=32, sn_bound=bound)
  d = Discriminator(SIZE, WIDTH, CLASSES, attention_resolution=32, sn_bound=bound)
  d(g(tf.zeros([BATCH, Z]), LABELS), LABELS)  # build
  return g, d


def _draw(name, shape, rng):
  """Weights with every role visibly non-trivial; kernels' sigmas spread around 1."""
  leaf = name.rsplit("/", 1)[-1]
  if leaf in ("kernel", "embeddings"):
    k = rng.uniform(-1, 1, shape)
    m = k.reshape(-1, shape[-1]) if leaf == "kernel" else k.T
    return k * rng.uniform(0.5, 1.6) / np.linalg.svd(m, compute_uv=False)[0]  # sigma 0.5..1.6
  if leaf == "gamma":
    return 1.0 + 0.2 * rng.standard_normal(shape)
  if leaf in ("beta", "bias", "moving_mean"):
    return 0.1 * rng.standard_normal(shape)
  if leaf == "moving_variance":
    return rng.uniform(0.5, 2.0, shape)
  if leaf == "sigma":  # the attention gate, zero at initialisation: open it
    return np.float64(rng.uniform(0.5, 1.0))
  raise AssertionError(f"no rule to draw {name}")


def _matrix(name, value):
  """The matrix a kernel variable is normalised as, [K, C_out] (embedding: its transpose)."""
  return value.T if name.endswith(("embedding_map", "embeddings")) else (
      value.reshape(-1, value.shape[-1]))


def _sn_layers(nets):
  """{our kernel variable name: (SN layer, inside an attention block)}."""
  found = {}
  for net in nets:
    inside = {id(m) for a in net.submodules if isinstance(a, SelfAttention) for m in a.submodules}
    for m in net.submodules:
      if isinstance(m, (SNConv2D, SNDense, SNEmbedding)):
        var = m.embeddings if isinstance(m, SNEmbedding) else m.kernel
        found[var.name[:-2]] = (m, id(m) in inside)
  return found


def _their_u(kernel_name, tfgan_vars):
  """TF-GAN's persistent u for a kernel: '<scope>/<kernel>/spectral_normalize/...' (the class
  embedding is normalised inside its own scope: '<scope>/spectral_normalize/...')."""
  if kernel_name.endswith("embedding_map"):
    key = kernel_name.rsplit("/", 1)[0] + "/spectral_normalize/"
  else:
    key = "/" + kernel_name + "/spectral_normalize/"
  (u,) = [v for n, v in tfgan_vars.items() if "spectral_norm_u" in n and key in n]
  return u


def copy_weights(nets, tfgan_vars, rng):
  """Draws each of our variables and assigns it, paired by role (name) with TF-GAN's; sets each
  side's u to the exact leading singular vector of its kernel (TF-GAN: left, [K, 1]; ours: right,
  [1, C_out]). Returns ({TF-GAN variable name: value to load}, {our kernel name: (sigma, inside
  an attention block)})."""
  ours = {v.name[:-2]: v for net in nets for v in net.variables if not v.name.endswith("sn_u:0")}
  theirs = {_our_name(n): n for n in tfgan_vars if "spectral_norm_u" not in n}
  assert len(theirs) == len(tfgan_vars) - len(_sn_layers(nets))  # the translation is one-to-one
  assert sorted(theirs) == sorted(ours), set(theirs) ^ set(ours)
  layers = _sn_layers(nets)
  loads, sigmas = {}, {}
  for name in sorted(ours):  # a fixed order: the draws do not depend on dict order
    their_var = tfgan_vars[theirs[name]]
    value = _draw(name, ours[name].shape, rng).astype(np.float32)
    ours[name].assign(value)
    loads[theirs[name]] = value.reshape(their_var.shape)
    if name in layers:
      left, s, right_t = np.linalg.svd(_matrix(name, value).astype(np.float64),
                                       full_matrices=False)
      layer, in_attention = layers[name]
      layer.u.assign(right_t[:1].astype(np.float32))
      loads[_their_u(theirs[name], tfgan_vars).name[:-2]] = left[:, :1].astype(np.float32)
      sigmas[name] = (s[0], in_attention)
  assert sorted(loads) == sorted(tfgan_vars)  # every TF-GAN variable gets a value
  return loads, sigmas


def _set_bound(nets, outside, inside):
  for layer, in_attention in _sn_layers(nets).values():
    layer.bound = inside if in_attention else outside


@pytest.mark.filterwarnings("ignore:`tf.layers")  # TF-GAN's example builds with tf.layers
def test_sagan128_with_tfgan_bound_matches_tfgan_example_networks():
  graph, t, tfgan_vars = _build_tfgan()
  g, d = nets = _build_ours("tfgan")
  rng = np.random.RandomState(0)
  z = rng.standard_normal([BATCH, Z]).astype(np.float32)
  x = rng.uniform(-1, 1, [BATCH, SIZE, SIZE, 3]).astype(np.float32)
  # Why pairing goes by name: the two sides create a conditional BN's variables in opposite orders.
  theirs_order, ours_order = list(tfgan_vars), [v.name[:-2] for v in g.variables]
  cbn = "generator/g_block1/cbn_0/"
  assert theirs_order.index(cbn + "beta") < theirs_order.index(cbn + "gamma")
  assert ours_order.index(cbn + "cbn/gamma") < ours_order.index(cbn + "cbn/beta")
  loads, sigmas = copy_weights(nets, tfgan_vars, rng)
  with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run([tfgan_vars[name].assign(value) for name, value in loads.items()])
    feed = {t["z"]: z, t["y"]: LABELS, t["x"]: x}
    theirs = sess.run({k: t[k] for k in ("images_train", "images_infer", "logits")}, feed)

  # The draws exercise both sides of 1 everywhere the bound could matter.
  outside = [s for s, a in sigmas.values() if not a]
  inside = [s for s, a in sigmas.values() if a]
  assert (len(outside), len(inside)) == (21 - 4 + 23 - 4, 8)  # G 21, D 23 SN kernels; 4 + 4 1x1
  assert min(outside) < 0.9 and max(outside) > 1.1
  assert sum(s < 1 for s in inside) >= 2 and sum(s > 1 for s in inside) >= 2

  moving = [v for v in g.non_trainable_variables if "moving_" in v.name]

  def run():
    """Our outputs; G's training call updates its BN moving averages (TF-GAN's graph leaves its
    update ops unrun), so they are put back for the next call."""
    infer = g(z, LABELS, training=False).numpy()
    saved = [v.numpy() for v in moving]
    train = g(z, LABELS, training=True).numpy()
    for v, value in zip(moving, saved):
      v.assign(value)
    return dict(images_train=train, images_infer=infer, logits=d(x, LABELS, training=True).numpy())

  ours = run()
  diffs = {k: float(np.abs(ours[k] - theirs[k]).max()) for k in ours}
  print("max |ours - TF-GAN| with sn_bound='tfgan':", diffs,
        "; max |logit|:", float(np.abs(theirs["logits"]).max()))
  assert np.abs(theirs["images_train"]).max() > 0.1  # not saturated to nothing
  # Float32 round-off, measured: scaling every G weight by 1 +- 6e-8 (half an ulp) moves the
  # training-mode output by 2.2e-5 (batch statistics of 2 examples amplify it through 11 BNs);
  # the observed differences are of that size (training) or far below it (inference).
  np.testing.assert_allclose(ours["images_train"], theirs["images_train"], atol=1e-4, rtol=0)
  np.testing.assert_allclose(ours["images_infer"], theirs["images_infer"], atol=1e-5, rtol=0)
  np.testing.assert_allclose(ours["logits"], theirs["logits"], rtol=1e-5,
                             atol=1e-5 * float(np.abs(theirs["logits"]).max()))

  # Controls: the paper's bound everywhere, or TF-GAN's also inside the attention block, differ.
  for outside_bound, inside_bound in (("paper", "paper"), ("tfgan", "tfgan")):
    _set_bound(nets, outside_bound, inside_bound)
    other = run()
    print(f"  control G/D outside attention {outside_bound}, inside {inside_bound}:",
          {k: float(np.abs(other[k] - theirs[k]).max()) for k in ours})
    for k in ours:
      assert np.abs(other[k] - theirs[k]).max() > 100 * max(diffs[k], 1e-6), (
          outside_bound, inside_bound, k)
  _set_bound(nets, "tfgan", "paper")
