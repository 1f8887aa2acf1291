"""LadaGAN's Transformer blocks and the layers around them (paper section III, official TF code).

  SelfModulatedLayerNorm    SLN(h, z) = gamma(z) * LN(h) + beta(z)                  (eq. 5)
  GeneratorLadaformer       a = x + MAA(SLN(x, z)); y = MLP(SLN(a, z))              (eqs. 6-7)
                            (x holds the positional embedding: the code's residual; eq. 10's
                            residual without it is the `shortcut` argument)
                            NO residual around the MLP (Table I's best; a switch turns it on)
  DiscriminatorLadaformer   a = x + MAA(LN(x)); y = a + MLP(LN(a))                  (Fig. 1b)
  LocalEmbeddingExpansion   LEE(h) = Conv3x3(PixelShuffle_2(h))                     (eq. 8)
  PositionalEmbedding       x + E, E a learned [N, C] table

MAA is `LadaAttention`; the MLP is Dense(mlp_dim, GELU) -> Dense(C). All kernels are orthogonal
and all biases zero at initialisation, as in the official code. Tokens are [B, N, C] with
channels last; feature maps [B, H, W, C].
"""
import tensorflow as tf

from tfgan_attention.lada_attention import LadaAttention


class SelfModulatedLayerNorm(tf.keras.layers.Layer):
  """LayerNorm whose scale and shift are computed from the latent z (eq. 5).

  As the code: LN without its own affine (eps 1e-6); hidden = ReLU(Dense_C(z)); gamma and beta
  are Dense_C(hidden) with biases, used raw (no 1 + gamma), so the layer starts far from identity.
  Call: x [B, N, C], z [B, Z] -> [B, N, C].
  """

  def __init__(self, epsilon=1e-6, kernel_initializer="orthogonal", **kwargs):
    super().__init__(**kwargs)
    self.epsilon = epsilon
    self.kernel_initializer = kernel_initializer

  def build(self, input_shape):
    c = int(input_shape[-1])
    dense = lambda name: tf.keras.layers.Dense(c, kernel_initializer=self.kernel_initializer,
                                               name=name)
    self.norm = tf.keras.layers.LayerNormalization(epsilon=self.epsilon, center=False,
                                                   scale=False, name="ln")
    self.hidden = dense("hidden")
    self.gamma = dense("gamma")
    self.beta = dense("beta")
    super().build(input_shape)

  def call(self, x, z):
    h = tf.nn.relu(self.hidden(z))  # [B, C]
    return self.gamma(h)[:, None] * self.norm(x) + self.beta(h)[:, None]  # [B, N, C]


class _Mlp(tf.keras.layers.Layer):
  """Dense(mlp_dim, GELU) -> Dense(C)."""

  def __init__(self, mlp_dim, kernel_initializer="orthogonal", **kwargs):
    super().__init__(**kwargs)
    self.mlp_dim = int(mlp_dim)
    self.kernel_initializer = kernel_initializer

  def build(self, input_shape):
    self.fc1 = tf.keras.layers.Dense(self.mlp_dim, activation="gelu",
                                     kernel_initializer=self.kernel_initializer, name="fc1")
    self.fc2 = tf.keras.layers.Dense(int(input_shape[-1]),
                                     kernel_initializer=self.kernel_initializer, name="fc2")
    super().build(input_shape)

  def call(self, x):
    return self.fc2(self.fc1(x))


class GeneratorLadaformer(tf.keras.layers.Layer):
  """The generator's Ladaformer block, with the paper's Table I ablation switches.

  Args:
    num_heads, mlp_dim: 4 and 512 in every paper configuration.
    mlp_residual: add a residual around the MLP (Table I "Residual-MLP"; LadaGAN: False).
    modulated: SLN (True, LadaGAN) or a plain affine LayerNorm that ignores z (Table I
      "Modulation" off).
    epsilon: of both norms (1e-6).
  Call:
    x: [B, N, C] tokens that already hold the positional embedding.
    z: [B, Z] the raw latent (SLN reads it directly; unused when not modulated).
    return_attention: also return the attention map [B, heads, N].
    shortcut: what the attention output is added to, [B, N, C]; default x. The official code
      adds x = h + E; the paper's eq. 10 adds h, without the positional embedding E.
  """

  def __init__(self, num_heads=4, mlp_dim=512, mlp_residual=False, modulated=True,
               epsilon=1e-6, kernel_initializer="orthogonal", **kwargs):
    super().__init__(**kwargs)
    self.mlp_residual = mlp_residual
    self.modulated = modulated
    if modulated:
      norm = lambda name: SelfModulatedLayerNorm(epsilon, kernel_initializer, name=name)
    else:
      norm = lambda name: tf.keras.layers.LayerNormalization(epsilon=epsilon, name=name)
    self.norm1 = norm("norm1")
    self.attention = LadaAttention(num_heads, kernel_initializer, name="attention")
    self.norm2 = norm("norm2")
    self.mlp = _Mlp(mlp_dim, kernel_initializer, name="mlp")

  def _norm(self, layer, x, z):
    return layer(x, z) if self.modulated else layer(x)

  def call(self, x, z, return_attention=False, shortcut=None):
    h, attn = self.attention(self._norm(self.norm1, x, z), return_attention=True)
    a = (x if shortcut is None else shortcut) + h  # [B, N, C]
    y = self.mlp(self._norm(self.norm2, a, z))
    if self.mlp_residual:
      y = a + y
    return (y, attn) if return_attention else y


class DiscriminatorLadaformer(tf.keras.layers.Layer):
  """The discriminator's Ladaformer: pre-LN (affine, eps 1e-6), residuals around both halves.

  Call: x [B, N, C] -> [B, N, C] (and the map [B, heads, N] with return_attention).
  """

  def __init__(self, num_heads=4, mlp_dim=512, epsilon=1e-6, kernel_initializer="orthogonal",
               **kwargs):
    super().__init__(**kwargs)
    self.norm1 = tf.keras.layers.LayerNormalization(epsilon=epsilon, name="norm1")
    self.attention = LadaAttention(num_heads, kernel_initializer, name="attention")
    self.norm2 = tf.keras.layers.LayerNormalization(epsilon=epsilon, name="norm2")
    self.mlp = _Mlp(mlp_dim, kernel_initializer, name="mlp")

  def call(self, x, return_attention=False):
    h, attn = self.attention(self.norm1(x), return_attention=True)
    a = x + h  # [B, N, C]
    y = a + self.mlp(self.norm2(a))
    return (y, attn) if return_attention else y


class LocalEmbeddingExpansion(tf.keras.layers.Layer):
  """Pixel shuffle x2 (depth_to_space), then a 3x3 conv with bias and no activation (eq. 8).

  [B, H, W, C] -> [B, 2H, 2W, filters]. With `use_conv=False` (Table I "Convolutions" off) it is
  the pixel shuffle alone and the output has C / 4 channels (`filters` must then equal C / 4).
  """

  def __init__(self, filters, use_conv=True, kernel_initializer="orthogonal", **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.use_conv = use_conv
    self.conv = (tf.keras.layers.Conv2D(self.filters, 3, padding="same",
                                        kernel_initializer=kernel_initializer, name="conv")
                 if use_conv else None)

  def build(self, input_shape):
    c = int(input_shape[-1])
    if c % 4:
      raise ValueError(f"LocalEmbeddingExpansion pixel-shuffles by 2 and needs C divisible by 4, "
                       f"got {c}")
    if not self.use_conv and self.filters != c // 4:
      raise ValueError(f"without its conv, LocalEmbeddingExpansion outputs C / 4 = {c // 4} "
                       f"channels, not {self.filters}")
    super().build(input_shape)

  def call(self, x):
    x = tf.nn.depth_to_space(x, 2)  # [B, 2H, 2W, C / 4]
    return self.conv(x) if self.use_conv else x


class PositionalEmbedding(tf.keras.layers.Layer):
  """x + E with a learned table E [N, C] (orthogonal init, as the code's Embedding layer).

  Call: x [B, N, C] with static N and C -> [B, N, C].
  """

  def __init__(self, embeddings_initializer="orthogonal", **kwargs):
    super().__init__(**kwargs)
    self.embeddings_initializer = embeddings_initializer

  def build(self, input_shape):
    n, c = input_shape[-2], input_shape[-1]
    if n is None or c is None:
      raise ValueError(f"PositionalEmbedding needs static N and C, got {input_shape}")
    self.embeddings = self.add_weight(name="embeddings", shape=(int(n), int(c)),
                                      initializer=self.embeddings_initializer)
    super().build(input_shape)

  def call(self, x):
    return x + tf.cast(self.embeddings, x.dtype)
