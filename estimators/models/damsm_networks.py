"""DAMSM encoders of AttnGAN (Xu et al. 2018, sec. 3.2): a BiLSTM text encoder and image encoders.

TextEncoder:  token ids [B, T] -> embedding 300 (U(-0.1, 0.1)) -> dropout 0.5 -> 1-layer BiLSTM,
              128 units per direction, run over the first lengths[b] tokens only (the official
              code packs by length) -> words [B, T, 256] (zeros at padding positions) and
              sentence [B, 256] = [last forward state, last backward state]. Keras LSTMs have
              one bias per gate where PyTorch has two (1,024 fewer parameters, same function);
              weights start from PyTorch's U(-1/sqrt(128), 1/sqrt(128)), no forget-bias offset.
InceptionImageEncoder: images [B, H, W, 3] in [-1, 1] -> bilinear resize to 299 -> Keras
              InceptionV3, or with inception="torchvision" torchvision's (the official one:
              3x3 average pools count the zero padding, BN has a scale; and the resize as the
              authors' torch 0.3 nn.Upsample did it, corners aligned) (frozen; weights from a local file or random; BN in inference mode, or
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


# --- torchvision's Inception-v3 (the network the official DAMSM image encoder runs) ------------
# torchvision/models/inception.py (Inception3, BasicConv2d, InceptionA..E), as the official
# CNN_ENCODER (taoxugit/AttnGAN code/model.py) takes Conv2d_1a_3x3 .. Mixed_7c from it. Two
# differences from keras.applications.InceptionV3, which has the same convolutions in the same
# order: BasicConv2d's BatchNorm2d(eps=0.001) has a learned scale (Keras: scale=False), and the
# 3x3 stride-1 average pools of Mixed_5b..5d, 6b..6e, 7b, 7c are F.avg_pool2d(padding=1) with
# PyTorch's count_include_pad=True: border windows divide by 9 with the zero padding counted
# (Keras: AveragePooling2D 'same' divides by the valid pixels only). Layer names are the
# state_dict's module paths ("Mixed_5b.branch1x1.conv"), so an import pairs keys by name.
INCEPTION_VARIANTS = ("keras", "torchvision")


class ZeroPaddedAveragePool3x3(tf.keras.layers.Layer):
  """F.avg_pool2d(x, 3, stride=1, padding=1) (count_include_pad=True): every output is the sum
  of its 3x3 window over the zero-padded input divided by 9, also at the border."""

  def call(self, x):
    padded = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])  # zeros, counted in the mean
    return tf.nn.avg_pool2d(padded, 3, 1, "VALID")


def _basic_conv(x, name, filters, kernel, stride=1, padding="valid"):
  """torchvision BasicConv2d: conv (no bias) -> BatchNorm2d(eps=0.001, affine) -> ReLU."""
  x = tf.keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False,
                             name=f"{name}.conv")(x)
  x = tf.keras.layers.BatchNormalization(epsilon=1e-3, momentum=0.9, name=f"{name}.bn")(x)
  return tf.keras.layers.ReLU()(x)


def _inception_a(x, name, pool_features, w):
  b1 = _basic_conv(x, f"{name}.branch1x1", w(64), 1)
  b5 = _basic_conv(x, f"{name}.branch5x5_1", w(48), 1)
  b5 = _basic_conv(b5, f"{name}.branch5x5_2", w(64), 5, padding="same")
  b3 = _basic_conv(x, f"{name}.branch3x3dbl_1", w(64), 1)
  b3 = _basic_conv(b3, f"{name}.branch3x3dbl_2", w(96), 3, padding="same")
  b3 = _basic_conv(b3, f"{name}.branch3x3dbl_3", w(96), 3, padding="same")
  bp = _basic_conv(ZeroPaddedAveragePool3x3()(x), f"{name}.branch_pool", w(pool_features), 1)
  return tf.keras.layers.Concatenate(name=name)([b1, b5, b3, bp])


def _inception_b(x, name, w):
  b3 = _basic_conv(x, f"{name}.branch3x3", w(384), 3, stride=2)
  bd = _basic_conv(x, f"{name}.branch3x3dbl_1", w(64), 1)
  bd = _basic_conv(bd, f"{name}.branch3x3dbl_2", w(96), 3, padding="same")
  bd = _basic_conv(bd, f"{name}.branch3x3dbl_3", w(96), 3, stride=2)
  bp = tf.keras.layers.MaxPooling2D(3, 2)(x)
  return tf.keras.layers.Concatenate(name=name)([b3, bd, bp])


def _inception_c(x, name, c7, w):
  b1 = _basic_conv(x, f"{name}.branch1x1", w(192), 1)
  b7 = _basic_conv(x, f"{name}.branch7x7_1", w(c7), 1)
  b7 = _basic_conv(b7, f"{name}.branch7x7_2", w(c7), (1, 7), padding="same")
  b7 = _basic_conv(b7, f"{name}.branch7x7_3", w(192), (7, 1), padding="same")
  bd = _basic_conv(x, f"{name}.branch7x7dbl_1", w(c7), 1)
  for i, (kernel, filters) in enumerate((((7, 1), c7), ((1, 7), c7), ((7, 1), c7),
                                         ((1, 7), 192)), start=2):
    bd = _basic_conv(bd, f"{name}.branch7x7dbl_{i}", w(filters), kernel, padding="same")
  bp = _basic_conv(ZeroPaddedAveragePool3x3()(x), f"{name}.branch_pool", w(192), 1)
  return tf.keras.layers.Concatenate(name=name)([b1, b7, bd, bp])


def _inception_d(x, name, w):
  b3 = _basic_conv(x, f"{name}.branch3x3_1", w(192), 1)
  b3 = _basic_conv(b3, f"{name}.branch3x3_2", w(320), 3, stride=2)
  b7 = _basic_conv(x, f"{name}.branch7x7x3_1", w(192), 1)
  b7 = _basic_conv(b7, f"{name}.branch7x7x3_2", w(192), (1, 7), padding="same")
  b7 = _basic_conv(b7, f"{name}.branch7x7x3_3", w(192), (7, 1), padding="same")
  b7 = _basic_conv(b7, f"{name}.branch7x7x3_4", w(192), 3, stride=2)
  bp = tf.keras.layers.MaxPooling2D(3, 2)(x)
  return tf.keras.layers.Concatenate(name=name)([b3, b7, bp])


def _inception_e(x, name, w):
  b1 = _basic_conv(x, f"{name}.branch1x1", w(320), 1)
  b3 = _basic_conv(x, f"{name}.branch3x3_1", w(384), 1)
  b3 = tf.keras.layers.Concatenate()([
      _basic_conv(b3, f"{name}.branch3x3_2a", w(384), (1, 3), padding="same"),
      _basic_conv(b3, f"{name}.branch3x3_2b", w(384), (3, 1), padding="same")])
  bd = _basic_conv(x, f"{name}.branch3x3dbl_1", w(448), 1)
  bd = _basic_conv(bd, f"{name}.branch3x3dbl_2", w(384), 3, padding="same")
  bd = tf.keras.layers.Concatenate()([
      _basic_conv(bd, f"{name}.branch3x3dbl_3a", w(384), (1, 3), padding="same"),
      _basic_conv(bd, f"{name}.branch3x3dbl_3b", w(384), (3, 1), padding="same")])
  bp = _basic_conv(ZeroPaddedAveragePool3x3()(x), f"{name}.branch_pool", w(192), 1)
  return tf.keras.layers.Concatenate(name=name)([b1, b3, bd, bp])


def torchvision_inception_v3(width_divisor=1, size=INCEPTION_SIZE):
  """torchvision's Inception-v3 trunk as CNN_ENCODER runs it: images [B, size, size, 3] ->
  (Mixed_6e [B, 17, 17, 768], Mixed_7c [B, 8, 8, 2048]) at size 299.

  width_divisor: every channel count divided by it (1 = torchvision's; tests use 16 for tiny
  files of the official key names).
  """
  def w(channels):
    if channels % width_divisor:
      raise ValueError(f"width_divisor {width_divisor} does not divide {channels}")
    return channels // width_divisor
  inputs = tf.keras.Input((size, size, 3))
  x = _basic_conv(inputs, "Conv2d_1a_3x3", w(32), 3, stride=2)
  x = _basic_conv(x, "Conv2d_2a_3x3", w(32), 3)
  x = _basic_conv(x, "Conv2d_2b_3x3", w(64), 3, padding="same")
  x = tf.keras.layers.MaxPooling2D(3, 2)(x)
  x = _basic_conv(x, "Conv2d_3b_1x1", w(80), 1)
  x = _basic_conv(x, "Conv2d_4a_3x3", w(192), 3)
  x = tf.keras.layers.MaxPooling2D(3, 2)(x)
  for name, pool in (("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)):
    x = _inception_a(x, name, pool, w)
  x = _inception_b(x, "Mixed_6a", w)
  for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
    x = _inception_c(x, name, c7, w)
  local = x  # [B, 17, 17, 768]
  x = _inception_d(x, "Mixed_7a", w)
  x = _inception_e(x, "Mixed_7b", w)
  x = _inception_e(x, "Mixed_7c", w)  # [B, 8, 8, 2048]
  return tf.keras.Model(inputs, [local, x], name="inception_v3")


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
    inception: "keras" (keras.applications.InceptionV3, the default) or "torchvision": the
      network the official code ran (torchvision_inception_v3: zero padding counted in the 3x3
      average pools, BN with a learned scale), which the import of the authors' image_encoder
      .pth chooses; its weights come from that import (weights_path must be None). Its input
      is resized as the authors' code did under torch 0.3, whose bilinear nn.Upsample aligned
      the corners (torch >= 0.4 defaults to half-pixel centres, as tf.image.resize): see
      `resize_to_inception`.
    width_divisor: torchvision only: channel counts divided by it (tests; 1 = the real network).
  Call:
    images: [B, H, W, 3] in [-1, 1], any size (resized to 299 bilinearly).
  Returns:
    regions [B, 17, 17, feature_dim], global [B, feature_dim].
  """

  def __init__(self, feature_dim=256, weights_path=None, batch_norm_mode="inference",
               inception="keras", width_divisor=1, **kwargs):
    super().__init__(**kwargs)
    if batch_norm_mode not in BATCH_NORM_MODES:
      raise ValueError(f"batch_norm_mode must be one of {BATCH_NORM_MODES}, got "
                       f"{batch_norm_mode!r}")
    if inception not in INCEPTION_VARIANTS:
      raise ValueError(f"inception must be one of {INCEPTION_VARIANTS}, got {inception!r}")
    if inception == "torchvision" and weights_path is not None:
      raise ValueError("inception='torchvision' takes its weights from an imported official "
                       "image_encoder .pth (--mode=import_weights), not from a Keras .h5 file")
    if inception == "keras" and width_divisor != 1:
      raise ValueError("width_divisor applies to inception='torchvision' only")
    self.batch_norm_mode = batch_norm_mode
    self.inception_variant = inception
    if weights_path is not None and not os.path.isfile(weights_path):
      raise FileNotFoundError(
          f"Inception-v3 weights file {weights_path!r} does not exist: give a local Keras "
          "InceptionV3 no-top weights file (inception_v3_weights_tf_dim_ordering_tf_kernels_"
          "notop.h5); nothing is downloaded")
    self.pretrained = weights_path is not None
    if inception == "torchvision":
      self.inception = torchvision_inception_v3(width_divisor)
    else:
      base = tf.keras.applications.InceptionV3(
          include_top=False, weights=weights_path,
          input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
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
    x = resize_to_inception(images, self.inception_variant)
    bn_training = training if self.batch_norm_mode == "batch_statistics" else False
    local, last = self.inception(x, training=bn_training)  # [B, 17, 17, 768], [B, 8, 8, 2048]
    regions = self.local_projection(local)  # [B, 17, 17, D]
    pooled = tf.reduce_mean(last, axis=[1, 2])  # [B, 2048]
    return regions, self.global_projection(pooled)  # [B, D]


def resize_to_inception(images, variant="keras"):
  """images [B, H, W, 3] -> [B, 299, 299, 3] bilinearly: half-pixel centres (tf.image.resize)
  for "keras"; corners aligned (output pixel i samples input i (H - 1) / 298) for "torchvision",
  as the official CNN_ENCODER's nn.Upsample(size=(299, 299), mode='bilinear') under the torch 0.3
  the released encoders were trained with."""
  size = [INCEPTION_SIZE, INCEPTION_SIZE]
  if variant == "torchvision":
    return tf.compat.v1.image.resize_bilinear(images, size, align_corners=True)
  return tf.image.resize(images, size, method="bilinear")


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
