"""WordAttention against a per-example numpy computation that slices each caption to its length."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan_attention.word_attention import WordAttention, masked_softmax


def _numpy_word_attention(image, words, lengths, kernel):
  """Eq. 2 one example at a time, padding words cut off (so they cannot enter)."""
  b, h, w, c = image.shape
  t = words.shape[1]
  context = np.zeros((b, h * w, c))
  attention = np.zeros((b, t, h * w))
  for i in range(b):
    n = lengths[i]
    projected = words[i, :n] @ kernel  # [n, C]
    logits = image[i].reshape(h * w, c) @ projected.T  # [N, n]
    beta = np.exp(logits - logits.max(1, keepdims=True))
    beta /= beta.sum(1, keepdims=True)
    context[i] = beta @ projected
    attention[i, :n] = beta.T
  return context.reshape(b, h, w, c), attention


def _inputs(seed, b=3, t=5, h=2, w=3, c=4, d=6):
  rng = np.random.RandomState(seed)
  return (rng.randn(b, h, w, c).astype(np.float32), rng.randn(b, t, d).astype(np.float32))


def test_matches_numpy_per_example_with_different_lengths():
  tf.keras.utils.set_random_seed(0)
  image, words = _inputs(1)
  lengths = np.array([5, 2, 4])
  layer = WordAttention()
  context, attention = layer(image, words, lengths)
  context_np, attention_np = _numpy_word_attention(
      image.astype(np.float64), words.astype(np.float64), lengths, layer.project.kernel.numpy())
  assert context.shape == (3, 2, 3, 4) and attention.shape == (3, 5, 6)
  np.testing.assert_allclose(attention.numpy(), attention_np, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(context.numpy(), context_np, rtol=1e-4, atol=1e-5)


def test_padding_words_get_exactly_zero_attention_for_every_example():
  tf.keras.utils.set_random_seed(0)
  image, words = _inputs(2, b=4, t=6)
  lengths = np.array([1, 6, 3, 2])
  layer = WordAttention()
  _, attention = layer(image, words, lengths)
  attention = attention.numpy()  # [B, T, N]
  for i, n in enumerate(lengths):
    assert np.all(attention[i, n:] == 0.0), i  # exactly zero, not merely small
    np.testing.assert_allclose(attention[i, :n].sum(0), 1.0, rtol=1e-6)  # per pixel
  # Padding content cannot matter: rewrite every padding word and compare.
  noisy = words.copy()
  for i, n in enumerate(lengths):
    noisy[i, n:] = 1e3 * np.random.RandomState(i).randn(*noisy[i, n:].shape)
  context_a, _ = layer(image, words, lengths)
  context_b, _ = layer(image, noisy, lengths)
  np.testing.assert_array_equal(context_a.numpy(), context_b.numpy())


def test_each_example_of_a_batch_equals_that_example_alone():
  """The official mask tiling (upstream issue 93) would give example i the mask of another."""
  tf.keras.utils.set_random_seed(0)
  image, words = _inputs(3, b=3)
  lengths = np.array([2, 5, 3])
  layer = WordAttention()
  context, attention = layer(image, words, lengths)
  for i in range(3):
    c_i, a_i = layer(image[i:i + 1], words[i:i + 1], lengths[i:i + 1])
    np.testing.assert_allclose(context.numpy()[i:i + 1], c_i.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(attention.numpy()[i:i + 1], a_i.numpy(), rtol=1e-5, atol=1e-7)


def test_no_bias_no_scaling_and_parameter_count():
  layer = WordAttention()
  image = np.zeros((1, 1, 1, 4), np.float32)
  image[..., 0] = 1.0
  words = np.zeros((1, 2, 3), np.float32)
  layer(image, words, [2])
  assert [v.shape for v in layer.trainable_variables] == [(3, 4)]  # U only: D * C, no bias
  kernel = np.zeros((3, 4), np.float32)
  kernel[0, 0] = 1.0
  layer.project.kernel.assign(kernel)
  words[0, 0, 0] = 3.0  # logits [3, 0]: unscaled softmax gives e^3 / (e^3 + 1)
  _, attention = layer(image, words, [2])
  np.testing.assert_allclose(attention.numpy()[0, :, 0], [np.e ** 3 / (np.e ** 3 + 1),
                                                          1 / (np.e ** 3 + 1)], rtol=1e-6)


def test_empty_caption_gives_zero_context_and_finite_gradients():
  tf.keras.utils.set_random_seed(0)
  image, words = _inputs(4, b=2)
  layer = WordAttention()
  image = tf.constant(image)
  with tf.GradientTape() as tape:
    tape.watch(image)
    context, attention = layer(image, words, [0, 3])
    loss = tf.reduce_sum(context)
  grad = tape.gradient(loss, [image] + layer.trainable_variables)
  assert np.all(context.numpy()[0] == 0.0) and np.all(attention.numpy()[0] == 0.0)
  assert all(np.all(np.isfinite(g.numpy())) for g in grad)


def test_static_shapes_survive_an_unknown_batch_in_a_graph():
  layer = WordAttention()

  @tf.function(input_signature=[tf.TensorSpec([None, 4, 4, 8]), tf.TensorSpec([None, 7, 5]),
                                tf.TensorSpec([None], tf.int32)])
  def run(image, words, lengths):
    context, attention = layer(image, words, lengths)
    assert context.shape.as_list() == [None, 4, 4, 8], context.shape
    assert attention.shape.as_list() == [None, 7, 16], attention.shape
    return context

  assert run(tf.zeros([2, 4, 4, 8]), tf.zeros([2, 7, 5]), tf.constant([7, 1])).shape == (2, 4, 4, 8)


def test_masked_softmax_of_a_fully_masked_row_is_zero():
  out = masked_softmax(tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([[True, False],
                                                                          [False, False]]))
  np.testing.assert_array_equal(out.numpy(), [[1.0, 0.0], [0.0, 0.0]])


def test_bad_shapes_fail_clearly():
  with pytest.raises(ValueError, match=r"\[B, T, D\]"):
    WordAttention()(tf.zeros([1, 2, 2, 4]), tf.zeros([1, 3]), [1])
