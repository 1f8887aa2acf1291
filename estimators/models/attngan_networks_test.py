"""AttnGAN networks: stage shapes, per-example padding masks inside G, the frozen text encoder,
the official discriminator layout."""
import numpy as np
import pytest
import tensorflow as tf

from estimators.models import attngan_losses, attngan_networks, damsm_networks


def _generator(image_size=32, branch_num=3, vocab=20):
  text = damsm_networks.TextEncoder(vocab, embedding_dim=6, hidden_per_direction=4,
                                    name="text_encoder")
  return attngan_networks.Generator(text, image_size, branch_num=branch_num, ngf=4, z_dim=5,
                                    condition_dim=3, r_num=1)


def _inputs(lengths, t=7, vocab=20, seed=0):
  rng = np.random.RandomState(seed)
  b = len(lengths)
  ids = rng.randint(1, vocab, size=(b, t)).astype(np.int32)
  for i, n in enumerate(lengths):
    ids[i, n:] = 0
  return (tf.constant(rng.standard_normal((b, 5)), tf.float32), tf.constant(ids),
          tf.constant(lengths, tf.int32), tf.constant(rng.standard_normal((b, 3)), tf.float32))


@pytest.mark.parametrize("image_size,branch_num,sizes", [(32, 3, (8, 16, 32)), (32, 2, (16, 32)),
                                                          (16, 1, (16,))])
def test_stage_shapes_and_attention_maps(image_size, branch_num, sizes):
  g = _generator(image_size, branch_num)
  out = g(*_inputs([3, 7]), training=True)
  assert [tuple(out[f"stage_{k}"].shape) for k in range(branch_num)] == [
      (2, s, s, 3) for s in sizes]
  assert out["images"] is out[f"stage_{branch_num - 1}"]
  for k in range(1, branch_num):  # stage k attends over stage k-1's map
    assert tuple(out[f"attention_{k}"].shape) == (2, 7, sizes[k - 1] ** 2)
  assert tuple(out["mu"].shape) == tuple(out["logvar"].shape) == (2, 3)
  assert float(tf.reduce_max(tf.abs(out["images"]))) <= 1.0


def test_padding_words_get_exactly_zero_attention_for_every_example():
  g = _generator(32, 3)
  lengths = [2, 7, 4, 1]
  out = g(*_inputs(lengths), training=False)
  for k in (1, 2):
    beta = out[f"attention_{k}"].numpy()  # [B, T, N]
    for b, n in enumerate(lengths):
      assert np.all(beta[b, n:] == 0.0), (k, b)
      assert np.all(beta[b, :n].sum(axis=0) > 0)
      np.testing.assert_allclose(beta[b].sum(axis=0), 1.0, atol=1e-5)


def test_the_text_encoder_is_frozen_inside_g():
  g = _generator(16, 2)
  with tf.GradientTape() as tape:
    out = g(*_inputs([3, 5]), training=True)
    loss = tf.reduce_mean(out["images"]) + tf.reduce_mean(out["mu"])
  text_vars = {id(v) for v in g.text_encoder.variables}
  assert text_vars and not text_vars & {id(v) for v in g.trainable_variables}
  grads = tape.gradient(loss, g.text_encoder.variables)
  assert all(grad is None for grad in grads)  # stop_gradient: nothing reaches the encoder
  assert len(g.trainable_variables) > 10


@pytest.mark.parametrize("size,blocks,widths", [(64, 0, [2, 4, 8, 16]),
                                                (128, 1, [2, 4, 8, 16, 32]),
                                                (256, 2, [2, 4, 8, 16, 32, 64])])
def test_discriminator_layout_follows_d_net64_128_256(size, blocks, widths):
  stage = attngan_networks.StageDiscriminator(size, ndf=2)
  code = stage.code(tf.zeros([1, size, size, 3]), training=False)
  assert [c.filters for c in stage.convs] == widths  # down to 4x4, doubling from ndf
  assert stage.bns[0] is None and all(bn is not None for bn in stage.bns[1:])  # no BN first
  assert len(stage.blocks) == blocks and code.shape == (1, 4, 4, 16)  # back to 8 ndf
  assert stage.unconditional(code).shape == (1,)
  assert stage.conditional(code, tf.zeros([1, 6])).shape == (1,)


def test_discriminator_returns_the_matching_structure():
  d = attngan_networks.Discriminator(32, branch_num=2, ndf=2)
  images = [tf.zeros([3, 16, 16, 3]), tf.zeros([3, 32, 32, 3])]
  out = d(images, tf.ones([3, 6]), tf.zeros([2, 6]), training=True)
  assert sorted(out) == ["stage_0", "stage_1"]
  assert sorted(out["stage_1"]) == ["cond", "cond_wrong", "uncond"]
  assert out["stage_0"]["cond"].shape == (3,) and out["stage_0"]["cond_wrong"].shape == (2,)
  assert "cond_wrong" not in d(images, tf.ones([3, 6]))["stage_0"]


def test_sizes_that_cannot_be_built_are_named():
  assert attngan_networks.stage_sizes(256, 3) == (64, 128, 256)
  assert attngan_networks.check_sizes(256, 3) is None
  assert "power-of-two" in attngan_networks.check_sizes(48, 2)
  assert "power-of-two" in attngan_networks.check_sizes(16, 3)  # first stage 4 px


def _leaky(x):
  return np.where(x > 0, x, 0.2 * x)


def test_mismatched_pairs_run_on_b_minus_1_rows_with_their_own_bn_statistics():
  """Official COND_DNET(real_features[:B-1], conditions[1:B]) in training mode: the joint BN
  normalises over those B - 1 rows only (numpy below) and its moving statistics take them after
  the matching pairs' B rows (PyTorch momentum 0.1)."""
  rng = np.random.RandomState(0)
  batch, dim = 4, 6
  stage = attngan_networks.StageDiscriminator(16, ndf=2)
  images = tf.constant(rng.uniform(-1, 1, [batch, 16, 16, 3]), tf.float32)
  sentence = rng.standard_normal([batch, dim]).astype(np.float32)
  wrong = attngan_losses.wrong_sentences(tf.constant(sentence))  # [B - 1, D]
  out = stage(images, tf.constant(sentence), wrong, training=True)
  assert out["cond_wrong"].shape == (batch - 1,)

  def conditional(rows, sentences):  # numpy: conv -> BN over the rows given -> LReLU -> conv
    tiled = np.tile(sentences[:, None, None, :], [1, 4, 4, 1])
    joint = stage.joint_conv(tf.constant(np.concatenate([code[:rows], tiled], -1))).numpy()
    mean, var = joint.mean((0, 1, 2)), joint.var((0, 1, 2))
    bn = stage.joint_bn
    x = _leaky(bn.gamma.numpy() * (joint - mean) / np.sqrt(var + 1e-5) + bn.beta.numpy())
    kernel, bias = (w.numpy() for w in stage.cond.weights)
    return np.einsum("bhwc,hwc->b", x, kernel[..., 0]) + bias[0], mean, var
  code = stage.code(images, training=True).numpy()  # as in the call: the B images' statistics
  expected, mean_wrong, var_wrong = conditional(batch - 1, sentence[1:])
  np.testing.assert_allclose(out["cond_wrong"].numpy(), expected, rtol=1e-4, atol=1e-5)
  # Normalising over all B rows (the wrap-around pair included) gives other logits.
  padded = np.concatenate([sentence[1:], sentence[:1]])
  all_rows, _, _ = conditional(batch, padded)
  assert np.abs(all_rows[:batch - 1] - expected).max() > 1e-3
  _, mean_real, _ = conditional(batch, sentence)
  moving = 0.9 * (0.1 * mean_real) + 0.1 * mean_wrong  # matching pairs first, then wrong
  np.testing.assert_allclose(stage.joint_bn.moving_mean.numpy(), moving, rtol=1e-4, atol=1e-6)
