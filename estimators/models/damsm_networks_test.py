"""DAMSM encoders: shapes, exact parameter counts, masking by length, weights-file loading."""
import numpy as np
import pytest
import tensorflow as tf

from estimators.models import damsm_networks as dn


def _count(variables):
  return sum(int(np.prod(v.shape)) for v in variables)


def test_text_encoder_shapes_and_parameter_count():
  encoder = dn.TextEncoder(vocab_size=50)
  words, sentence = encoder(tf.ones([3, 7], tf.int32), [7, 3, 1])
  assert words.shape == (3, 7, 256) and sentence.shape == (3, 256)
  lstm = 4 * 128 * (300 + 128) + 4 * 128  # one direction: kernel, recurrent kernel, one bias
  assert _count(encoder.trainable_variables) == 50 * 300 + 2 * lstm


def test_text_features_do_not_depend_on_padding_tokens():
  tf.keras.utils.set_random_seed(0)
  encoder = dn.TextEncoder(vocab_size=30, embedding_dim=8, hidden_per_direction=6)
  rng = np.random.RandomState(0)
  tokens = rng.randint(1, 30, size=(4, 9))
  lengths = np.array([9, 4, 1, 6])
  other = tokens.copy()
  for i, n in enumerate(lengths):
    tokens[i, n:] = 0
    other[i, n:] = rng.randint(1, 30, size=9 - n)  # garbage instead of padding
  words_a, sentence_a = encoder(tokens, lengths)
  words_b, sentence_b = encoder(other, lengths)
  np.testing.assert_array_equal(sentence_a.numpy(), sentence_b.numpy())
  np.testing.assert_array_equal(words_a.numpy(), words_b.numpy())
  for i, n in enumerate(lengths):
    assert np.all(words_a.numpy()[i, n:] == 0.0)
    # The same caption alone and unpadded gives the same features (a packed sequence).
    w, s = encoder(tokens[i:i + 1, :n], lengths[i:i + 1])
    np.testing.assert_allclose(s.numpy(), sentence_a.numpy()[i:i + 1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.numpy(), words_a.numpy()[i:i + 1, :n], rtol=1e-5, atol=1e-6)


def test_sentence_is_last_forward_state_and_first_backward_state():
  tf.keras.utils.set_random_seed(1)
  encoder = dn.TextEncoder(vocab_size=20, embedding_dim=5, hidden_per_direction=4)
  tokens = np.array([[3, 7, 2, 0, 0]])
  words, sentence = encoder(tokens, [3])
  words, sentence = words.numpy()[0], sentence.numpy()[0]
  np.testing.assert_allclose(sentence[:4], words[2, :4], rtol=1e-6)  # forward after token 2
  np.testing.assert_allclose(sentence[4:], words[0, 4:], rtol=1e-6)  # backward after token 0


def test_dropout_only_in_training():
  tf.keras.utils.set_random_seed(2)
  encoder = dn.TextEncoder(vocab_size=20, embedding_dim=16, hidden_per_direction=4)
  tokens = np.array([[3, 7, 2, 5]])
  _, s1 = encoder(tokens, [4])
  _, s2 = encoder(tokens, [4])
  _, s3 = encoder(tokens, [4], training=True)
  np.testing.assert_array_equal(s1.numpy(), s2.numpy())
  assert not np.allclose(s1.numpy(), s3.numpy())


def test_small_cnn_encoder_shapes_and_parameter_count():
  encoder = dn.make_image_encoder("small_cnn", widths=(8, 16, 32))
  regions, global_ = encoder(tf.zeros([2, 32, 32, 3]))
  assert regions.shape == (2, 8, 8, 256) and global_.shape == (2, 256)
  convs = (27 * 8 + 8) + (72 * 16 + 16) + (144 * 32 + 32)
  assert _count(encoder.trainable_variables) == convs + 16 * 256 + 32 * 256 + 256
  with pytest.raises(ValueError, match="divisible by 8"):
    encoder(tf.zeros([1, 12, 12, 3]))
  with pytest.raises(ValueError, match="unknown DAMSM image encoder"):
    dn.make_image_encoder("resnet")


def test_inception_encoder_shapes_frozen_base_and_weights_file(tmp_path):
  tf.keras.utils.set_random_seed(3)
  encoder = dn.InceptionImageEncoder()
  images = tf.random.uniform([1, 32, 32, 3], -1.0, 1.0)
  regions, global_ = encoder(images)
  assert regions.shape == (1, 17, 17, 256) and global_.shape == (1, 256)
  assert not encoder.pretrained
  # Only the new layers train: 1x1 conv 768 -> 256 without bias, Dense 2048 -> 256 with bias.
  assert _count(encoder.trainable_variables) == 768 * 256 + 2048 * 256 + 256
  path = str(tmp_path / "inception_notop.h5")
  encoder.inception.save_weights(path)
  loaded = dn.InceptionImageEncoder(weights_path=path)
  assert loaded.pretrained
  x = tf.image.resize(images, [299, 299])
  for a, b in zip(encoder.inception(x), loaded.inception(x)):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
  with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
    dn.InceptionImageEncoder(weights_path=str(tmp_path / "missing.h5"))
  # Inference mode (default): training=True changes nothing, BN statistics stay put.
  bn = [l for l in encoder.inception.layers if isinstance(l, tf.keras.layers.BatchNormalization)]
  before = bn[-1].moving_mean.numpy().copy()
  np.testing.assert_array_equal(encoder(images, training=True)[1].numpy(), global_.numpy())
  np.testing.assert_array_equal(bn[-1].moving_mean.numpy(), before)
  # The official quirk: batch statistics in training, moving statistics drift, nothing trains.
  quirk = dn.InceptionImageEncoder(weights_path=path, batch_norm_mode="batch_statistics")
  quirk_bn = [l for l in quirk.inception.layers
              if isinstance(l, tf.keras.layers.BatchNormalization)]
  batch = tf.random.uniform([2, 32, 32, 3], -1.0, 1.0)
  inference_out = quirk(batch)[0].numpy()
  before = quirk_bn[-1].moving_mean.numpy().copy()
  assert not np.allclose(quirk(batch, training=True)[0].numpy(), inference_out)
  assert not np.allclose(quirk_bn[-1].moving_mean.numpy(), before)
  assert _count(quirk.trainable_variables) == 768 * 256 + 2048 * 256 + 256
  assert _count(quirk.weights) == _count(encoder.weights)
  with pytest.raises(ValueError, match="batch_norm_mode"):
    dn.InceptionImageEncoder(batch_norm_mode="train")


def test_directions_and_layers_start_from_different_random_weights():
  encoder = dn.TextEncoder(vocab_size=10, embedding_dim=6, hidden_per_direction=6)
  encoder(tf.ones([1, 2], tf.int32), [2])
  fwd, bwd = encoder.rnn.forward_layer, encoder.rnn.backward_layer
  assert not np.allclose(fwd.cell.kernel.numpy(), bwd.cell.kernel.numpy())
  assert not np.allclose(fwd.cell.recurrent_kernel.numpy()[:, :6], fwd.cell.kernel.numpy()[:, :6])


# --- inception="torchvision": the official encoder's Inception-v3 -----------------------------

def _avg_pool_counting_padding(x):
  """numpy F.avg_pool2d(x, 3, 1, padding=1), count_include_pad=True, on NHWC."""
  b, h, w, c = x.shape
  padded = np.zeros((b, h + 2, w + 2, c), x.dtype)
  padded[:, 1:-1, 1:-1] = x
  out = np.zeros_like(x)
  for i in range(h):
    for j in range(w):
      out[:, i, j] = padded[:, i:i + 3, j:j + 3].sum(axis=(1, 2)) / 9.0
  return out


def test_the_torchvision_encoder_resizes_with_corners_aligned_as_torch_0_3():
  image = np.arange(2 * 3 * 3, dtype=np.float32).reshape(1, 2, 3, 3)  # [1, H=2, W=3, 3]
  aligned = dn.resize_to_inception(image, "torchvision").numpy()
  half = dn.resize_to_inception(image, "keras").numpy()
  assert aligned.shape == half.shape == (1, 299, 299, 3)
  # Output pixel (i, j) samples input (i (H - 1) / 298, j (W - 1) / 298): corners exact.
  for i, j in ((0, 0), (298, 298), (0, 298), (149, 149), (100, 37)):
    y, x = i * 1 / 298, j * 2 / 298
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    y1, x1 = min(y0 + 1, 1), min(x0 + 1, 2)
    fy, fx = y - y0, x - x0
    expected = ((1 - fy) * (1 - fx) * image[0, y0, x0] + (1 - fy) * fx * image[0, y0, x1]
                + fy * (1 - fx) * image[0, y1, x0] + fy * fx * image[0, y1, x1])
    np.testing.assert_allclose(aligned[0, i, j], expected, rtol=1e-5, atol=1e-5)
  # Half-pixel centres (the Keras variant) clamp the borders instead: another image.
  np.testing.assert_allclose(half[0, 0, 0], image[0, 0, 0])
  assert np.abs(half[0, 149, 149] - aligned[0, 149, 149]).max() < 1e-4  # the centre agrees
  assert np.abs(half - aligned).max() > 0.5


def test_torchvision_average_pool_counts_the_zero_padding():
  x = np.random.RandomState(0).uniform(0.5, 1.5, (2, 5, 6, 3)).astype(np.float32)
  got = dn.ZeroPaddedAveragePool3x3()(x).numpy()
  np.testing.assert_allclose(got, _avg_pool_counting_padding(x), rtol=1e-6)
  # Keras' 'same' pool divides by the valid pixels: the corners differ (4 of 9 pixels valid).
  keras = tf.keras.layers.AveragePooling2D(3, 1, "same")(x).numpy()
  np.testing.assert_allclose(got[:, 0, 0], keras[:, 0, 0] * 4 / 9, rtol=1e-6)
  np.testing.assert_allclose(got[:, 2, 2], keras[:, 2, 2], rtol=1e-6)


def test_torchvision_basic_conv_has_bn_scale_and_eps_0_001():
  rng = np.random.RandomState(1)
  inputs = tf.keras.Input((6, 6, 3))
  model = tf.keras.Model(inputs, dn._basic_conv(inputs, "Conv2d_1a_3x3", 4, 3, stride=2))
  conv, bn = model.get_layer("Conv2d_1a_3x3.conv"), model.get_layer("Conv2d_1a_3x3.bn")
  assert bn.scale and bn.center and bn.epsilon == 1e-3 and not conv.use_bias
  kernel = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
  gamma, beta, mean = (rng.normal(size=4).astype(np.float32) for _ in range(3))
  var = rng.uniform(0.5, 2, 4).astype(np.float32)
  conv.set_weights([kernel])
  bn.set_weights([gamma, beta, mean, var])
  x = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
  y = np.zeros((2, 2, 2, 4), np.float32)  # valid 3x3 stride 2: 6 -> 2
  for i in range(2):
    for j in range(2):
      y[:, i, j] = np.einsum("bhwc,hwco->bo", x[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3], kernel)
  want = np.maximum(gamma * (y - mean) / np.sqrt(var + 1e-3) + beta, 0)
  np.testing.assert_allclose(model(x, training=False).numpy(), want, rtol=1e-4, atol=1e-5)


def test_torchvision_inception_shapes_and_names():
  net = dn.torchvision_inception_v3(width_divisor=16)
  local, last = net.outputs
  assert tuple(local.shape) == (None, 17, 17, 768 // 16)
  assert tuple(last.shape) == (None, 8, 8, 2048 // 16)
  convs = [l.name for l in net.layers if isinstance(l, tf.keras.layers.Conv2D)]
  bns = [l for l in net.layers if isinstance(l, tf.keras.layers.BatchNormalization)]
  assert len(convs) == len(bns) == 94  # the BasicConv2d modules of Conv2d_1a_3x3 .. Mixed_7c
  assert all(b.scale and b.epsilon == 1e-3 for b in bns)
  pools = [l for l in net.layers if isinstance(l, dn.ZeroPaddedAveragePool3x3)]
  assert len(pools) == 9  # Mixed_5b-d, 6b-e, 7b, 7c
  with pytest.raises(ValueError, match="from an imported official"):
    dn.InceptionImageEncoder(inception="torchvision", weights_path="x.h5")
