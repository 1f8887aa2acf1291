"""PyTorch -> Keras weight layouts, each a small pure-numpy function (no TensorFlow, no torch).

  conv kernels          PyTorch OIHW [out, in, kh, kw]         -> Keras HWIO [kh, kw, in, out]
  dense kernels         PyTorch [out, in] (y = x W^T + b)      -> Keras [in, out] (y = x K + b)
  LSTM                  weight_ih [4u, in], weight_hh [4u, u], bias_ih + bias_hh [4u] each
                        -> kernel [in, 4u], recurrent_kernel [u, 4u], one bias [4u]. Gate blocks
                        are i, f, g, o in PyTorch and i, f, c, o in Keras: the same gates in the
                        same order (g is Keras' c, the tanh candidate), so no block is moved.
  bidirectional LSTM    *_l0 then *_l0_reverse -> Keras Bidirectional.set_weights order
                        (forward kernel, recurrent, bias, then backward).
  NCHW dense outputs    a dense layer whose outputs PyTorch views as (group, C, H, W) (AttnGAN's
                        INIT_STAGE_G fc: 2 GLU halves x 16 ngf x 4 x 4 = 16384 for CUB) -> the
                        column order a Keras (group, H, W, C) reshape needs; BN1d parameters on
                        those outputs move with their columns.
  batch norm            weight, bias, running_mean, running_var pass through as gamma, beta,
                        moving mean / variance; PyTorch's eps (1e-5) and momentum m (decay 1 - m)
                        are returned beside them. num_batches_tracked (absent before torch 0.4.1)
                        has no Keras counterpart.
  embeddings            nn.Embedding.weight [num, dim] is Keras' embeddings table as it is.
  spectral norm         torch.nn.utils.spectral_norm keeps weight_orig and weight_u [out] (the
                        estimate on the output side of weight viewed [out, -1]) and weight_v;
                        tfgan_attention.spectral_norm keeps u [1, C_out] on the same side, and no v.
"""
import numpy as np

GATES_PYTORCH = ("i", "f", "g", "o")  # torch.nn.LSTM: W_ii|W_if|W_ig|W_io
GATES_KERAS = ("i", "f", "c", "o")  # keras LSTMCell: z0..z3 = input, forget, cell candidate, output


class LayoutError(ValueError):
  """A weight whose shape does not fit the conversion asked for."""


def _check(condition, what):
  if not condition:
    raise LayoutError(what)


def conv_kernel(weight):
  """PyTorch Conv2d weight OIHW [out, in, kh, kw] -> Keras/TF HWIO [kh, kw, in, out]."""
  weight = np.asarray(weight)
  _check(weight.ndim == 4, f"conv weight must be OIHW [out, in, kh, kw], got shape {weight.shape}")
  return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def dense_kernel(weight):
  """PyTorch Linear weight [out, in] -> Keras Dense kernel [in, out]."""
  weight = np.asarray(weight)
  _check(weight.ndim == 2, f"linear weight must be [out, in], got shape {weight.shape}")
  return np.ascontiguousarray(weight.T)


def lstm(weight_ih, weight_hh, bias_ih=None, bias_hh=None):
  """One direction of torch.nn.LSTM -> (kernel [in, 4u], recurrent_kernel [u, 4u], bias [4u]).

  PyTorch adds two biases (b_ih + b_hh) where Keras has one: their sum is the same function.
  The gate blocks keep their order (GATES_PYTORCH and GATES_KERAS name the same gates).
  """
  weight_ih, weight_hh = np.asarray(weight_ih), np.asarray(weight_hh)
  _check(weight_hh.ndim == 2 and weight_hh.shape[0] == 4 * weight_hh.shape[1],
         f"weight_hh must be [4u, u], got shape {weight_hh.shape}")
  units = weight_hh.shape[1]
  _check(weight_ih.ndim == 2 and weight_ih.shape[0] == 4 * units,
         f"weight_ih must be [4u, in] = [{4 * units}, in] for weight_hh of shape "
         f"{weight_hh.shape}, got shape {weight_ih.shape}")
  bias = np.zeros(4 * units, weight_hh.dtype)
  for name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
    if b is not None:
      b = np.asarray(b)
      _check(b.shape == (4 * units,), f"{name} must be [4u] = [{4 * units}], got shape {b.shape}")
      bias = bias + b
  return (np.ascontiguousarray(weight_ih.T), np.ascontiguousarray(weight_hh.T), bias)


def bidirectional_lstm(state, prefix="", layer=0):
  """A torch.nn.LSTM(bidirectional=True) state_dict -> the 6 arrays of Keras
  Bidirectional(LSTM).set_weights: forward kernel, recurrent, bias, then the backward three.

  state: {name: array} holding f"{prefix}weight_ih_l{layer}", ...hh..., bias_ih/bias_hh (optional
  for LSTM(bias=False)), and the same with the suffix "_reverse".
  """
  out = []
  for suffix in ("", "_reverse"):
    names = [f"{prefix}{p}_l{layer}{suffix}" for p in ("weight_ih", "weight_hh")]
    missing = [n for n in names if n not in state]
    _check(not missing, f"bidirectional LSTM weights missing: {missing} (keys with prefix "
                        f"{prefix!r}: {sorted(k for k in state if k.startswith(prefix))})")
    biases = [state.get(f"{prefix}{p}_l{layer}{suffix}") for p in ("bias_ih", "bias_hh")]
    out.extend(lstm(state[names[0]], state[names[1]], *biases))
  return out


def nchw_output_permutation(channels, height, width, groups=1):
  """perm with keras_outputs = torch_outputs[..., perm] for outputs PyTorch views as
  (groups, channels, height, width) and Keras as (groups, height, width, channels).

  E.g. AttnGAN's G0 fc: Linear -> BatchNorm1d -> GLU (first half * sigmoid(second half)) ->
  view(-1, 16 ngf, 4, 4): groups=2 (the GLU halves), channels=16 ngf, height=width=4. After
  permuting, Keras' Dense -> BN -> GLU on the last axis -> reshape [-1, 4, 4, 16 ngf] is the same
  image in NHWC.
  """
  idx = np.arange(groups * channels * height * width).reshape(groups, channels, height, width)
  return idx.transpose(0, 2, 3, 1).reshape(-1)


def dense_kernel_nchw_outputs(weight, channels, height, width, groups=1):
  """PyTorch Linear weight [out, in] whose outputs are (groups, C, H, W) -> Keras kernel [in, out]
  whose columns are (groups, H, W, C)."""
  kernel = dense_kernel(weight)
  n = groups * channels * height * width
  _check(kernel.shape[1] == n, f"linear weight has {kernel.shape[1]} outputs (shape "
                               f"{np.shape(weight)}); groups x channels x height x width = "
                               f"{groups} x {channels} x {height} x {width} = {n}")
  return np.ascontiguousarray(kernel[:, nchw_output_permutation(channels, height, width, groups)])


def vector_nchw_outputs(vector, channels, height, width, groups=1):
  """A per-output vector (bias, BatchNorm1d weight / bias / running statistics, spectral-norm u)
  of the outputs dense_kernel_nchw_outputs permutes, permuted the same way."""
  vector = np.asarray(vector)
  n = groups * channels * height * width
  _check(vector.shape == (n,), f"vector of shape {vector.shape}, expected [{n}] = groups x "
                               f"channels x height x width = {groups} x {channels} x {height} x "
                               f"{width}")
  return vector[nchw_output_permutation(channels, height, width, groups)]


def batch_norm(weight, bias, running_mean, running_var, eps=1e-5, momentum=0.1):
  """PyTorch BatchNorm{1,2}d parameters -> dict(gamma, beta, moving_mean, moving_variance,
  epsilon, decay). Values pass through unchanged: inference computes
  (x - running_mean) / sqrt(running_var + eps) * weight + bias in both frameworks. (PyTorch
  updates running_var with the unbiased batch variance; that concerns training, not the import.)
  """
  arrays = {"gamma": weight, "beta": bias, "moving_mean": running_mean,
            "moving_variance": running_var}
  arrays = {k: np.asarray(v) for k, v in arrays.items()}
  shapes = {k: v.shape for k, v in arrays.items()}
  _check(len(set(shapes.values())) == 1 and arrays["gamma"].ndim == 1,
         f"batch-norm parameters must be 1-D and of one length, got shapes {shapes}")
  _check(bool(np.all(arrays["moving_variance"] >= 0)), "running_var has negative entries")
  return dict(arrays, epsilon=float(eps), decay=1.0 - float(momentum))


def embedding(weight):
  """nn.Embedding.weight [num_embeddings, dim] -> Keras Embedding table (the same array)."""
  weight = np.asarray(weight)
  _check(weight.ndim == 2, f"embedding weight must be [num, dim], got shape {weight.shape}")
  return weight


def spectral_norm_u(weight_u, permutation=None):
  """torch spectral_norm's weight_u [out] -> tfgan_attention.spectral_norm's u [1, out].

  Both estimate the leading singular vector on the output side of the kernel viewed as a matrix
  (PyTorch [out, -1], Keras [-1, out]); the input-side ordering (OIHW vs HWIO) does not touch
  it. Pass `permutation` (e.g. nchw_output_permutation) when the outputs were reordered.
  PyTorch's weight_v has no counterpart: the next power iteration recomputes v from u.
  """
  u = np.asarray(weight_u)
  _check(u.ndim == 1, f"weight_u must be 1-D [out], got shape {u.shape}")
  if permutation is not None:
    _check(len(permutation) == u.shape[0], f"permutation of length {len(permutation)} for "
                                           f"weight_u of shape {u.shape}")
    u = u[np.asarray(permutation)]
  return u.reshape(1, -1)
