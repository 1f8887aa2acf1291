"""DAMSM encoders of AttnGAN (Xu et al. 2018, sec. 3.2): a BiLSTM text encoder and image encoders.

TextEncoder:  token ids [B, T] -> embedding 300 (U(-0.1, 0.1)) -> dropout 0.5 -> 1-layer BiLSTM,
              128 units per direction, run over the first lengths[b] tokens only (the official
              code packs by length) -> words [B, T, 256] (zeros at padding positions) and
              sentence [B, 256] = [last forward state, last backward state]. Keras LSTMs have
              one bias per gate where PyTorch has two (1,024 fewer parameters, same function);
              weights start from PyTorch's U(-1/sqrt(128), 1/sqrt(128)), no forget-bias offset.
InceptionImageEncoder: images [B, H, W, 3] in [-1, 1] -> bilinear resize to 299 -> Keras
              InceptionV3 (frozen; weights from a local file or random; BN in inference mode, or
              in batch-statistics mode as the official pretraining's `.train()` quirk) ->
              local: mixed7 (= Mixed_6e, 17x17x768) -> 1x1 conv to 256, no bias -> [B, 17, 17, 256];
              global: mixed10 (= Mixed_7c, 8x8x2048) average-pooled -> Dense 256 -> [B, 256].
              New layers' kernels U(-0.1, 0.1), as the official init_trainable_weights.
SmallCNNImageEncoder: a trainable stand-in for tiny images (the embedded digits): stride-2 3x3
              convs + LeakyReLU 0.2 to the local map (S/4 for the default widths), 1x1 conv to 256
              (no bias); one more stride-2 conv, average pool, Dense 256 for the global vector.
              It is not Inception: scores from it must never be reported as Inception-based.
Layer names are explicit so checkpoint keys match across graphs.
"""
import os

import tensorflow as tf

INCEPTION_SIZE = 299
LOCAL_LAYER, GLOBAL_LAYER = "mixed7", "mixed10"  # Keras names of Mixed_6e and Mixed_7c
BATCH_NORM_MODES = ("inference", "batch_statistics")


def _new_layer_init():
  """U(-0.1, 0.1), the official initrange; one instance per layer (a shared one repeats values)."""
  return tf.keras.initializers.RandomUniform(-0.1, 0.1)


def _torch_default(fan_in):
  """PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for LSTM weights and Linear biases."""
  bound = 1.0 / float(fan_in) ** 0.5
  return tf.keras.initializers.RandomUniform(-bound, bound)


class TextEncoder(tf.keras.Model):
  """The DAMSM BiLSTM text encoder (official RNN_ENCODER with LSTM).

  Args:
    vocab_size: number of token ids; id 0 is the padding / end token.
    embedding_dim: 300. hidden_per_direction: 128 (word and sentence features are twice that).
    dropout: on the embeddings, in training only (0.5).
  Call:
    tokens: [B, T] int. lengths: [B] int, the real tokens of each caption (the rest is padding).
  Returns:
    words [B, T, 2 * hidden] (exactly 0 at padding positions), sentence [B, 2 * hidden].
  """

  def __init__(self, vocab_size, embedding_dim=300, hidden_per_direction=128, dropout=0.5,
               **kwargs):
    super().__init__(**kwargs)
    self.vocab_size = int(vocab_size)
    self.embedding = tf.keras.layers.Embedding(
        self.vocab_size, embedding_dim, embeddings_initializer=_new_layer_init(), name="embedding")
    self.dropout = tf.keras.layers.Dropout(dropout, name="dropout")
    init = lambda: _torch_default(hidden_per_direction)
    lstm = tf.keras.layers.LSTM(
        hidden_per_direction, return_sequences=True, return_state=True, kernel_initializer=init(),
        recurrent_initializer=init(), bias_initializer=init(), unit_forget_bias=False,
        name="lstm")
    self.rnn = tf.keras.layers.Bidirectional(lstm, merge_mode="concat", name="bilstm")

  def call(self, tokens, lengths, training=False):
    tokens = tf.convert_to_tensor(tokens)
    mask = tf.sequence_mask(tf.cast(lengths, tf.int32), tf.shape(tokens)[1])  # [B, T]
    emb = self.dropout(self.embedding(tokens), training=training)  # [B, T, E]
    words, h_fwd, _, h_bwd, _ = self.rnn(emb, mask=mask, training=training)
    # Masked steps carry the state unchanged, so h_fwd is the state after the last real token
    # and h_bwd the backward state after token 0, as with the official packed sequences.
    words = words * tf.cast(mask, words.dtype)[..., tf.newaxis]  # [B, T, 2H]
    return words, tf.concat([h_fwd, h_bwd], axis=-1)  # [B, 2H]


class InceptionImageEncoder(tf.keras.Model):
  """The DAMSM image encoder on a frozen Keras InceptionV3 (official CNN_ENCODER).

  Args:
    feature_dim: D of the common space, 256.
    weights_path: a local Keras InceptionV3 weights file without the top (`..._notop.h5`); None
      builds random weights (for tests and smoke runs; say so wherever a number comes out).
    batch_norm_mode: "inference" (default: the frozen network as the paper describes it) or
      "batch_statistics", the official pretraining quirk: it calls `.train()` on the frozen
      Inception, so with training=True its BN layers normalise with batch statistics and their
      moving statistics drift (and are saved, and used later by GAN training and evaluation).
      Either way no Inception weight is in `trainable_weights` (BN offsets included).
  Call:
    images: [B, H, W, 3] in [-1, 1], any size (resized to 299 bilinearly).
  Returns:
    regions [B, 17, 17, feature_dim], global [B, feature_dim].
  """

  def __init__(self, feature_dim=256, weights_path=None, batch_norm_mode="inference", **kwargs):
    super().__init__(**kwargs)
    if batch_norm_mode not in BATCH_NORM_MODES:
      raise ValueError(f"batch_norm_mode must be one of {BATCH_NORM_MODES}, got "
                       f"{batch_norm_mode!r}")
    self.batch_norm_mode = batch_norm_mode
    if weights_path is not None and not os.path.isfile(weights_path):
      raise FileNotFoundError(
          f"Inception-v3 weights file {weights_path!r} does not exist: give a local Keras "
          "InceptionV3 no-top weights file (inception_v3_weights_tf_dim_ordering_tf_kernels_"
          "notop.h5); nothing is downloaded")
    self.pretrained = weights_path is not None
    base = tf.keras.applications.InceptionV3(
        include_top=False, weights=weights_path, input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    self.inception = tf.keras.Model(
        base.input, [base.get_layer(LOCAL_LAYER).output, base.get_layer(GLOBAL_LAYER).output],
        name="inception_v3")
    if batch_norm_mode == "inference":
      self.inception.trainable = False  # a frozen Keras BN layer always runs in inference mode
    else:  # BN layers must stay "trainable" to use batch statistics; trainable_weights drops them
      for layer in self.inception.layers:
        layer.trainable = isinstance(layer, tf.keras.layers.BatchNormalization)
    self.local_projection = tf.keras.layers.Conv2D(
        feature_dim, 1, use_bias=False, kernel_initializer=_new_layer_init(), name="emb_features")
    self.global_projection = tf.keras.layers.Dense(
        feature_dim, kernel_initializer=_new_layer_init(), bias_initializer=_torch_default(2048),
        name="emb_cnn_code")

  @property
  def trainable_weights(self):
    frozen = {id(v) for v in self.inception.weights}
    return [v for v in super().trainable_weights if id(v) not in frozen]

  @property
  def non_trainable_weights(self):
    frozen = {id(v) for v in self.inception.weights}
    return super().non_trainable_weights + [v for v in super().trainable_weights
                                            if id(v) in frozen]

  def call(self, images, training=False):
    x = tf.image.resize(images, [INCEPTION_SIZE, INCEPTION_SIZE], method="bilinear")
    bn_training = training if self.batch_norm_mode == "batch_statistics" else False
    local, last = self.inception(x, training=bn_training)  # [B, 17, 17, 768], [B, 8, 8, 2048]
    regions = self.local_projection(local)  # [B, 17, 17, D]
    pooled = tf.reduce_mean(last, axis=[1, 2])  # [B, 2048]
    return regions, self.global_projection(pooled)  # [B, D]


class SmallCNNImageEncoder(tf.keras.Model):
  """A small trainable image encoder for tiny images (not Inception; see the module docstring).

  Args:
    feature_dim: D, 256. widths: channels of the stride-2 convs; all but the last lead to the
      local map, the last one to the global vector.
  Call:
    images: [B, S, S, 3] in [-1, 1], S divisible by 2 ** len(widths).
  Returns:
    regions [B, S / 2^(n-1), S / 2^(n-1), feature_dim], global [B, feature_dim].
  """

  def __init__(self, feature_dim=256, widths=(32, 64, 128), **kwargs):
    super().__init__(**kwargs)
    if len(widths) < 2:
      raise ValueError(f"SmallCNNImageEncoder needs at least 2 widths, got {widths}")
    self.widths = tuple(int(w) for w in widths)
    self.convs = [tf.keras.layers.Conv2D(w, 3, strides=2, padding="same", name=f"conv_{i}")
                  for i, w in enumerate(self.widths)]
    self.local_projection = tf.keras.layers.Conv2D(
        feature_dim, 1, use_bias=False, kernel_initializer=_new_layer_init(), name="emb_features")
    self.global_projection = tf.keras.layers.Dense(
        feature_dim, kernel_initializer=_new_layer_init(), name="emb_cnn_code")

  def call(self, images, training=False):
    size = images.shape[1]
    if size is not None and size % 2 ** len(self.widths):
      raise ValueError(f"SmallCNNImageEncoder needs sizes divisible by {2 ** len(self.widths)}, "
                       f"got {size}")
    x = images
    for conv in self.convs[:-1]:
      x = tf.nn.leaky_relu(conv(x), alpha=0.2)
    regions = self.local_projection(x)  # [B, S / 2^(n-1), S / 2^(n-1), D]
    x = tf.nn.leaky_relu(self.convs[-1](x), alpha=0.2)
    return regions, self.global_projection(tf.reduce_mean(x, axis=[1, 2]))  # [B, D]


IMAGE_ENCODERS = {"inception_v3": InceptionImageEncoder, "small_cnn": SmallCNNImageEncoder}


def make_image_encoder(name, feature_dim=256, **kwargs):
  """The image encoder called `name` ("inception_v3" or "small_cnn")."""
  if name not in IMAGE_ENCODERS:
    raise ValueError(f"unknown DAMSM image encoder {name!r}; choose one of "
                     f"{sorted(IMAGE_ENCODERS)}")
  return IMAGE_ENCODERS[name](feature_dim=feature_dim, **kwargs)
