"""YLGAttention: dense path against numpy, sparse path against dense (outputs, gradients, maps)."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan_attention import SelfAttention, YLGAttention, densify_attention, ylg_masks
from tfgan_attention.ylg_sparse import build_sparse_plan, sparse_attention


def _layers(x, **kw):
  """A sparse and a dense layer with the same weights and a non-zero gate."""
  tf.keras.utils.set_random_seed(3)
  sparse = YLGAttention(implementation="sparse", **kw)
  sparse(x)
  sparse.sigma.assign(0.7)
  dense = YLGAttention(implementation="dense", **kw)
  dense(x)
  dense.set_weights(sparse.get_weights())
  return sparse, dense


def _run(layer, x, w):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y, attn = layer(x, training=False, return_attention=True)
    loss = tf.reduce_sum(y * w)
  return y, attn, tape.gradient(loss, [x] + layer.trainable_variables)


def _assert_close(a, b):
  """Agreement to 1e-5 relative to the tensor's scale."""
  a, b = np.asarray(a), np.asarray(b)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(b).max()))


def test_dense_matches_numpy_masked_attention():
  x = np.random.RandomState(0).randn(2, 8, 8, 64).astype(np.float32)
  for interleave in (False, True):
    tf.keras.utils.set_random_seed(1)
    layer = YLGAttention(implementation="dense", interleave_heads=interleave)
    layer(x)
    layer.sigma.assign(0.6)
    y, attn = layer(x, return_attention=True)
    conv = lambda t, l: t.astype(np.float64) @ l.normalized_kernel(False).numpy()[0, 0]
    pool = lambda t: t.reshape(2, 4, 2, 4, 2, -1).max(axis=(2, 4))
    theta = conv(x, layer.theta).reshape(2, 64, 8, 1)  # [B, Nq, heads, 1]
    phi = pool(conv(x, layer.phi)).reshape(2, 16, 8, 1)  # [B, Nk, heads, 1]
    g = pool(conv(x, layer.g)).reshape(2, 16, 8, 4)  # [B, Nk, heads, 4]
    masks = ylg_masks((4, 4), (8, 8))  # [8, 64, 16]
    logits = np.einsum("bqhd,bkhd->bhqk", theta, phi)
    a = np.where(masks > 0, np.exp(logits - logits.max(-1, keepdims=True)), 0.0)
    a /= a.sum(-1, keepdims=True)
    o = np.einsum("bhqk,bkhd->bqhd", a, g)  # [B, Nq, heads, 4]
    o = (o.transpose(0, 1, 3, 2) if interleave else o).reshape(2, 8, 8, 32)
    np.testing.assert_allclose(attn.numpy(), a, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(y.numpy(), x + 0.6 * conv(o, layer.attn_out), rtol=1e-4, atol=1e-5)
    assert attn.numpy()[masks[None].repeat(2, 0) == 0].max() == 0.0  # excluded exactly


@pytest.mark.parametrize("shape,kw", [
    ((2, 8, 8, 64), {}),  # 64 queries on a 4x4 key grid, s = 4, official tiling
    ((2, 8, 8, 64), {"stride": 2}),
    ((2, 8, 8, 64), {"nonsquare": "shift"}),
    ((2, 8, 8, 64), {"esa": False}),
    ((2, 8, 8, 64), {"layout": "strided"}),
    ((1, 8, 4, 64), {}),  # rectangular: 4x2 keys, n = 8, s = 2
])
def test_sparse_matches_dense_outputs_gradients_and_maps(shape, kw):
  x = tf.constant(np.random.RandomState(1).randn(*shape).astype(np.float32))
  w = tf.constant(np.random.RandomState(2).randn(*shape).astype(np.float32))
  sparse, dense = _layers(x, **kw)
  y_s, attn_s, grads_s = _run(sparse, x, w)
  y_d, attn_d, grads_d = _run(dense, x, w)
  _assert_close(y_s, y_d)
  assert len(grads_s) == 6  # x, theta, phi, g, attn_out kernels, sigma
  for gs, gd in zip(grads_s, grads_d):
    assert np.abs(gd).max() > 0
    _assert_close(gs, gd)
  nk = shape[1] * shape[2] // 4
  _assert_close(densify_attention(attn_s, nk), attn_d)
  weights, key_index = attn_s.weights.numpy(), attn_s.key_index.numpy()
  assert np.all(weights[:, key_index < 0] == 0)
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("layout", ["ylg", "strided", "strided_original"])
def test_sparse_function_on_square_masks(layout):
  """Nq == Nk (f = 1) on a 4x4 grid: against numpy, and gradients against dense masked attention."""
  rs = np.random.RandomState(5)
  theta, phi, g = (tf.constant(rs.randn(2, 8, 16, d).astype(np.float32)) for d in (3, 3, 5))
  plan = build_sparse_plan((4, 4), (4, 4), layout=layout)
  masks = ylg_masks((4, 4), layout=layout) > 0  # [8, 16, 16]
  dense = lambda q, k, v: tf.matmul(
      tf.nn.softmax(tf.where(masks, tf.matmul(q, k, transpose_b=True), -np.inf)), v)
  grads = []
  for fn in (lambda q, k, v: sparse_attention(q, k, v, plan), dense):
    with tf.GradientTape() as tape:
      tape.watch([theta, phi, g])
      out = fn(theta, phi, g)  # [2, 8, 16, 5]
      loss = tf.reduce_sum(out ** 2)
    grads.append(tape.gradient(loss, [theta, phi, g]))
    logits = np.einsum("bhqd,bhkd->bhqk", theta.numpy(), phi.numpy())
    a = np.where(masks, np.exp(logits - logits.max(-1, keepdims=True)), 0.0)
    _assert_close(out, np.einsum("bhqk,bhkd->bhqd", a / a.sum(-1, keepdims=True), g.numpy()))
  for gs, gd in zip(*grads):
    _assert_close(gs, gd)


def test_sparse_graph_has_no_quadratic_tensor():
  """At 32x32 queries / 16x16 keys no tensor of the sparse graph reaches B*8*Nq*Nk / 8 elements."""
  spec = tf.TensorSpec([1, 32, 32, 64], tf.float32)
  sizes = {}
  for impl in ("sparse", "dense"):
    layer = YLGAttention(implementation=impl)
    layer.build(spec.shape)
    grad = lambda x, l=layer: tf.gradients(tf.reduce_sum(l(x)), x)
    graph = tf.function(grad, autograph=False).get_concrete_function(spec).graph
    sizes[impl] = max(int(np.prod(t.shape)) for op in graph.get_operations()
                      for t in op.outputs if t.shape.is_fully_defined())
  quadratic = 8 * 1024 * 256
  assert sizes["dense"] >= quadratic
  assert sizes["sparse"] < quadratic // 8


def test_sparse_gradient_has_no_segment_sum_or_slice_gradient():
  """Index permutations differentiate to gathers (tf.gather's own gradient is an
  UnsortedSegmentSum); the mask is added, not selected; head groups are split, not sliced: the
  only slice gradients are the column sets' keys and values (n = 64 keys, not Nq = 256)."""
  spec = tf.TensorSpec([2, 16, 16, 64], tf.float32)
  layer = YLGAttention()
  layer.build(spec.shape)
  grad = lambda x: tf.gradients(tf.reduce_sum(layer(x, training=True)), x)
  graph = tf.function(grad, autograph=False).get_concrete_function(spec).graph
  kinds = {op.type for op in graph.get_operations()}
  assert "GatherV2" in kinds and "Softmax" in kinds
  assert not kinds & {"UnsortedSegmentSum", "SelectV2"}
  slice_grads = [op.outputs[0].shape for op in graph.get_operations()
                 if op.type == "StridedSliceGrad"]
  assert slice_grads and all(s[2] == 64 for s in slice_grads)  # [B, heads, n, d]


def test_drop_in_for_self_attention():
  x = tf.random.normal([2, 8, 8, 64])
  ylg, sagan = YLGAttention(), SelfAttention(num_heads=8)
  y = ylg(x)
  sagan(x)
  np.testing.assert_allclose(y.numpy(), x.numpy())  # sigma starts at 0: identity
  names = lambda l: sorted(v.name.split("/", 1)[1] for v in l.variables)
  assert names(ylg) == names(sagan)  # same sub-layers and variables: checkpoints interchange
  assert sum(int(np.prod(v.shape)) for v in ylg.trainable_variables) == (
      2 * 64 * 8 + 2 * 64 * 32 + 1)
  # Unknown batch size inside a tf.function.
  f = tf.function(ylg, input_signature=[tf.TensorSpec([None, 8, 8, 64], tf.float32)])
  assert f(x).shape == (2, 8, 8, 64)


def test_official_additive_mask_equal_for_moderate_logits_leaks_for_large():
  x = np.random.RandomState(3).randn(1, 8, 8, 64).astype(np.float32)
  tf.keras.utils.set_random_seed(2)
  exclude = YLGAttention(implementation="dense")
  exclude(x)
  additive = YLGAttention(implementation="dense", masking="official_additive")
  additive(x)
  additive.set_weights(exclude.get_weights())
  masks = ylg_masks((4, 4), (8, 8))[None] > 0
  for scale, leaks in ((1.0, False), (300.0, True)):
    a_ex = exclude(scale * x, return_attention=True)[1].numpy()
    a_add = additive(scale * x, return_attention=True)[1].numpy()
    assert a_ex[~masks].max() == 0.0
    assert (a_add[~masks].max() > 1e-3) == leaks
    if not leaks:
      np.testing.assert_allclose(a_add, a_ex, rtol=1e-6, atol=1e-7)


def test_bad_configurations_fail_clearly():
  x = tf.zeros([1, 8, 8, 64])
  with pytest.raises(ValueError, match="only the dense"):
    YLGAttention(masking="official_additive")
  with pytest.raises(ValueError, match="implementation must be"):
    YLGAttention(implementation="blocked")
  with pytest.raises(ValueError, match="unknown head layout"):
    YLGAttention(layout="diagonal")
  for impl in ("sparse", "dense"):
    with pytest.raises(ValueError, match="without any key"):
      YLGAttention(layout="fixed", implementation=impl)(x)
  with pytest.raises(ValueError, match="divide the 16 key positions"):
    YLGAttention(stride=3)(x)
  with pytest.raises(ValueError, match="divisible by 8"):
    YLGAttention()(tf.zeros([1, 8, 8, 32]))
