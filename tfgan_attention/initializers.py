"""Orthogonal initialisation as Keras draws it, factorised faster for tall kernels.

Keras' `Orthogonal` draws A ~ N(0, 1) of shape [rows, cols] (rows >= cols: the kernel flattened
to [prod(shape[:-1]), shape[-1]], transposed when wider than tall), takes A = QR and returns
Q * sign(diag(R)). TensorFlow's QR on a CPU is single-threaded Householder: on AttnGAN's largest
discriminator kernels (32768 x 1024) it takes ~30 s each, most of that model's set-up time.

For a tall A the same Q comes from the Cholesky factor of the Gram matrix: A^T A = L L^T, so
A = (A L^-T) L^T is a QR factorisation whose R = L^T has a positive diagonal, i.e. exactly the
sign-corrected Q Keras returns. Its error grows with cond(A)^2, and a Gaussian [n, k] matrix has
cond(A) ~ (sqrt(n) + sqrt(k)) / (sqrt(n) - sqrt(k)): at n >= 4k that is <= 3, so Q is orthonormal
and equal to Keras' Q to float32 round-off (orthogonalinit_test checks both). Squarer kernels
keep the QR. Same random draw as Keras' initializer with the same seed.
"""
import tensorflow as tf

TALL = 4  # rows / cols from which the Cholesky route is taken
ORTHOGONAL = "tfgan_attention>Orthogonal"  # its registered name: kernel_initializer=ORTHOGONAL


@tf.keras.utils.register_keras_serializable(package="tfgan_attention")
class Orthogonal(tf.keras.initializers.Orthogonal):
  """`tf.keras.initializers.Orthogonal` (same draw, same Q up to round-off), faster when tall.

  Use a new instance per layer, as Keras' own (an unseeded instance repeats its values): pass
  the name ORTHOGONAL where a layer takes an initializer string, and each layer makes its own."""

  def _generate_init_val(self, shape, dtype):
    rows = 1
    for dim in shape[:-1]:
      rows *= dim
    cols = shape[-1]
    tall, short = max(rows, cols), min(rows, cols)
    if tall < TALL * short:
      return super()._generate_init_val(shape, dtype)
    a = self._random_generator.random_normal((tall, short), dtype=dtype)
    lower = tf.linalg.cholesky(tf.matmul(a, a, transpose_a=True))  # A^T A = L L^T
    inverse = tf.linalg.triangular_solve(lower, tf.eye(short, dtype=dtype), lower=True)  # L^-1
    q = tf.matmul(a, inverse, transpose_b=True)  # A L^-T
    if rows < cols:
      q = tf.linalg.matrix_transpose(q)
    return self.gain * tf.reshape(q, shape)
