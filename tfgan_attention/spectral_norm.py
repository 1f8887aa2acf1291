"""Graph-safe spectral normalisation (Miyato et al. 2018) as Keras layers: conv, dense, embedding.

The kernel W is viewed as a matrix [-1, C_out]. One power iteration per call refines a persistent,
non-trainable estimate u of the leading right singular vector; sigma = v^T W u and the layer uses
W / sigma. When `training` is true the refined u is written back *as a control dependency of the
normalised kernel*, so the update runs whenever the layer's output is computed: in eager mode, in a
tf.function and in a TF1 estimator graph alike. (tfa.layers.SpectralNormalization's assign ops have
no dependants in the estimator graph and never run: DESIGN.md trap 2.)

In a TF1 graph, successive calls of one layer (D on real, then on fake data) are chained: a call
reads u after the previous call's update, as they would run eagerly. Unchained, the second call
may read u before or after the first writes it, so the same step gives different sigmas from run
to run (and one device differs from several).

Bound (`bound`, the divisor applied to W):
  "paper"  W / sigma: every kernel's spectral norm is 1 (Miyato et al.; the SAGAN paper). Default.
  "tfgan"  W / max(1, sigma): a kernel whose sigma is already below 1 is left as it is, so the
           norm is at most 1. TF-GAN's SAGAN example (`equality_constrained=False` in ops.py:
           snconv2d, snlinear, sn_embedding) and the official YLG code (ylg/ops.py) build their
           convolutions, linears and class embedding this way; their attention 1x1 convolutions
           divide by sigma. YLG's published numbers were trained with it.
Either way the layer's `last_sigma` is the estimate of the raw kernel's largest singular value.
"""
import weakref

import tensorflow as tf

# TF-GAN's SAGAN initialiser: VarianceScaling(1.0, fan_avg, uniform), i.e. Glorot uniform.
DEFAULT_KERNEL_INIT = "glorot_uniform"
SN_BOUNDS = ("paper", "tfgan")  # W / sigma; W / max(1, sigma) (see the module docstring)


def check_bound(bound):
  if bound not in SN_BOUNDS:
    raise ValueError(f"spectral-norm bound must be one of {SN_BOUNDS}, got {bound!r}")
  return bound


_LAST_U_UPDATE = weakref.WeakKeyDictionary()  # TF1 graph -> {(layer id, replica): assign op}


def _chain_key(layer):
  """(graph dict, key) for ordering this layer's u updates, or (None, None) outside TF1 graphs
  (eager code and tf.function run stateful ops in program order already)."""
  if tf.compat.v1.executing_eagerly_outside_functions():
    return None, None
  context = tf.distribute.get_replica_context()
  replica = tf.get_static_value(context.replica_id_in_sync_group) if context else -1
  chain = _LAST_U_UPDATE.setdefault(tf.compat.v1.get_default_graph(), {})
  return chain, (id(layer), -1 if replica is None else int(replica))


def spectral_divisor(kernel, u_var, training, power_iterations=1, eps=1e-12, after=None,
                     bound="paper"):
  """Returns (divisor, sigma, update): what `spectral_normalize` divides the kernel by (sigma,
  or max(1, sigma) for bound "tfgan"), the estimate sigma, and the u update op (None unless
  `training`). Arguments as spectral_normalize; the caller makes its use of the divisor depend
  on the update."""
  check_bound(bound)
  w = tf.reshape(kernel, [-1, kernel.shape[-1]])  # [K, C_out]
  with tf.control_dependencies([after] if after is not None else []):
    u = tf.convert_to_tensor(u_var)  # [1, C_out]
  v = None
  for _ in range(power_iterations):
    v = tf.math.l2_normalize(tf.matmul(u, w, transpose_b=True), epsilon=eps)  # [1, K]
    u = tf.math.l2_normalize(tf.matmul(v, w), epsilon=eps)  # [1, C_out]
  u = tf.stop_gradient(u)
  v = tf.stop_gradient(v)
  sigma = tf.reshape(tf.matmul(tf.matmul(v, w), u, transpose_b=True), [])
  divisor = sigma if bound == "paper" else tf.maximum(tf.constant(1.0, sigma.dtype), sigma)
  update = u_var.assign(u, read_value=False) if training else None
  return divisor, sigma, update


def _divide(x, divisor, sigma, update):
  """(x / divisor, sigma), both after `update` when there is one."""
  if update is None:
    return x / divisor, sigma
  with tf.control_dependencies([update]):
    return x / divisor, tf.identity(sigma)


def spectral_normalize(kernel, u_var, training, power_iterations=1, eps=1e-12, after=None,
                       bound="paper"):
  """Returns (normalised kernel, sigma, update), updating u_var when `training`.

  Args:
    kernel: any-rank weight tensor whose last axis is the output axis.
    u_var: variable [1, C_out], the persistent power-iteration vector.
    training: Python bool; True writes the refined u back into u_var.
    power_iterations: rounds of power iteration per call (SAGAN: 1).
    after: an op that must run before u_var is read (the previous call's update).
    bound: "paper" divides by sigma, "tfgan" by max(1, sigma).

  Returns:
    (kernel / sigma or kernel / max(1, sigma), sigma (the estimate, whichever the bound),
     the u update op or None).
  """
  divisor, sigma, update = spectral_divisor(kernel, u_var, training, power_iterations, eps,
                                            after, bound)
  return _divide(kernel, divisor, sigma, update) + (update,)


class _SpectralNormMixin:
  """Adds the persistent u vector and the normalised kernel to a layer."""

  def _build_u(self, out_dim):
    # aggregation=MEAN lets replicas of a MirroredStrategy assign it from replica context.
    self.u = self.add_weight(
        name="sn_u", shape=(1, out_dim), trainable=False,
        initializer=tf.keras.initializers.RandomNormal(stddev=1.0),
        aggregation=tf.VariableAggregation.MEAN)

  def _divisor(self, training):
    """(divisor, sigma, update) of this call, its u update chained after the previous call's."""
    update = bool(training) or self.update_u_in_eval
    chain, key = _chain_key(self)
    after = chain.get(key) if chain is not None else None
    divisor, sigma, assign = spectral_divisor(self.kernel, self.u, update, self.power_iterations,
                                              after=after, bound=self.bound)
    if chain is not None and assign is not None:
      chain[key] = assign
    return divisor, sigma, assign

  def normalized(self, x, training=False):
    """x / the kernel's divisor (sigma, or max(1, sigma)) after this call's u update: x is the
    kernel or a part of it (rows of the embedding). Keeps sigma in `last_sigma`."""
    out, self.last_sigma = _divide(x, *self._divisor(training))
    return out

  def normalized_kernel(self, training=False):
    """The kernel divided by sigma ("paper") or max(1, sigma) ("tfgan"), sigma its estimated
    largest singular value (kept in `last_sigma`)."""
    return self.normalized(self.kernel, training)


class SNConv2D(_SpectralNormMixin, tf.keras.layers.Layer):
  """Spectrally normalised 2-D convolution, stride 1 unless given, 'SAME' padding.

  Args:
    filters, kernel_size, strides: as tf.keras.layers.Conv2D.
    use_bias: TF-GAN's SAGAN convs have a zero-initialised bias; the attention 1x1 convs have none.
    power_iterations: power-iteration rounds per call.
    update_u_in_eval: also refresh u when not training. The official SAGAN discriminator never
      passes `training`, so its u updates during evaluation too; True reproduces that quirk.
    bound: "paper" (W / sigma, default) or "tfgan" (W / max(1, sigma)); see the module docstring.
  """

  def __init__(self, filters, kernel_size=3, strides=1, use_bias=True, power_iterations=1,
               update_u_in_eval=False, kernel_initializer=DEFAULT_KERNEL_INIT, bound="paper",
               **kwargs):
    super().__init__(**kwargs)
    self.bound = check_bound(bound)
    self.filters = int(filters)
    self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    self.strides = int(strides)
    self.use_bias = use_bias
    self.power_iterations = power_iterations
    self.update_u_in_eval = update_u_in_eval
    self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)

  def build(self, input_shape):
    in_ch = int(input_shape[-1])
    self.kernel = self.add_weight(name="kernel", shape=self.kernel_size + (in_ch, self.filters),
                                  initializer=self.kernel_initializer)
    self.bias = (self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")
                 if self.use_bias else None)
    self._build_u(self.filters)
    super().build(input_shape)

  def call(self, x, training=False, residual=None):
    """conv(x) + bias, or with `residual` conv(x) + residual + bias: the bias added last, so a
    residual sum is not a Conv2D+BiasAdd+Add that grappler's remapper would fuse with a Relu
    reading it (see `sagan_networks.DBlock`)."""
    w = self.normalized_kernel(training)
    y = tf.nn.conv2d(x, w, strides=self.strides, padding="SAME")
    if residual is not None:
      if not y.shape.is_compatible_with(residual.shape):
        raise ValueError(f"{self.name}: residual of shape {residual.shape} does not match the "
                         f"convolution's output {y.shape}")
      y = y + residual
    return y if self.bias is None else tf.nn.bias_add(y, self.bias)


class SNDense(_SpectralNormMixin, tf.keras.layers.Layer):
  """Spectrally normalised dense layer (TF-GAN's `snlinear`); arguments as SNConv2D."""

  def __init__(self, units, use_bias=True, power_iterations=1, update_u_in_eval=False,
               kernel_initializer=DEFAULT_KERNEL_INIT, bound="paper", **kwargs):
    super().__init__(**kwargs)
    self.bound = check_bound(bound)
    self.units = int(units)
    self.use_bias = use_bias
    self.power_iterations = power_iterations
    self.update_u_in_eval = update_u_in_eval
    self.kernel_initializer = tf.keras.initializers.get(kernel_initializer)

  def build(self, input_shape):
    self.kernel = self.add_weight(name="kernel", shape=(int(input_shape[-1]), self.units),
                                  initializer=self.kernel_initializer)
    self.bias = (self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
                 if self.use_bias else None)
    self._build_u(self.units)
    super().build(input_shape)

  def call(self, x, training=False):
    y = tf.matmul(x, self.normalized_kernel(training))
    return y if self.bias is None else y + self.bias


class SNEmbedding(_SpectralNormMixin, tf.keras.layers.Layer):
  """Spectrally normalised class embedding [num_classes, dim] (the projection discriminator's).

  As TF-GAN's `sn_embedding`, the matrix is normalised as its transpose [dim, num_classes]; the
  largest singular value is the same either way. Other arguments as SNConv2D.
  """

  def __init__(self, num_classes, dim, power_iterations=1, update_u_in_eval=False,
               embeddings_initializer=DEFAULT_KERNEL_INIT, bound="paper", **kwargs):
    super().__init__(**kwargs)
    self.bound = check_bound(bound)
    self.num_classes = int(num_classes)
    self.dim = int(dim)
    self.power_iterations = power_iterations
    self.update_u_in_eval = update_u_in_eval
    self.embeddings_initializer = tf.keras.initializers.get(embeddings_initializer)

  def build(self, input_shape):
    self.embeddings = self.add_weight(name="embeddings", shape=(self.num_classes, self.dim),
                                      initializer=self.embeddings_initializer)
    self._build_u(self.num_classes)
    super().build(input_shape)

  @property
  def kernel(self):  # [dim, num_classes]: the matrix whose spectral norm is taken
    return tf.transpose(self.embeddings)

  def call(self, labels, training=False):
    # The batch's rows divided by the table's divisor: the same values as dividing the whole
    # [num_classes, dim] table and gathering (TF-GAN's sn_embedding), without a pass over the
    # table forward and backward (issue #27).
    return self.normalized(tf.gather(self.embeddings, labels), training)  # [B, dim]
