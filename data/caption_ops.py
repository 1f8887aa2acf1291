"""In-graph caption handling for text-to-image sets: fixed-length token ids and a random caption.

AttnGAN (`TextDataset.get_caption`) feeds WORDS_NUM = T token ids per caption: a caption of at most
T words is zero-padded; a longer one keeps T words chosen uniformly at random, in their original
order. Here the same is done with stateless random ops, so a seed makes it reproducible, for all
K captions of an image at once ([K, T] for evaluation) and one of them is picked at random for
training, as AttnGAN's `sent_ix = randint(0, K)`.
"""
import tensorflow as tf


def subsample_words(tokens: tf.Tensor, lengths: tf.Tensor, max_words: int,
                    seed: tf.Tensor):
  """Order-keeping random sub-sampling of long captions, zero padding of short ones.

  Args:
    tokens: int32 [K, L] token ids, zero-padded after each caption's length.
    lengths: int32 [K] caption lengths.
    max_words: T.
    seed: int32/int64 [2] stateless seed.
  Returns:
    (int32 [K, T] ids, int32 [K] lengths = min(length, T)).
  """
  k = tf.shape(tokens)[0]
  pad = tf.maximum(max_words - tf.shape(tokens)[1], 0)
  tokens = tf.pad(tokens, [[0, 0], [0, pad]])                           # [K, L'], L' >= T
  width = tf.shape(tokens)[1]
  valid = tf.range(width)[None, :] < lengths[:, None]                    # [K, L']
  keys = tf.random.stateless_uniform([k, width], seed=seed)              # in [0, 1)
  keys = tf.where(valid, keys, 2.0)                                      # padding ranks last
  _, chosen = tf.math.top_k(-keys, k=max_words, sorted=False)            # T smallest keys
  chosen = tf.sort(chosen, axis=-1)                                      # original word order
  out = tf.gather(tokens, chosen, batch_dims=1)                          # [K, T]
  out = tf.where(chosen < lengths[:, None], out, 0)
  out.set_shape([None, max_words])
  return out, tf.minimum(lengths, max_words)


def pick_caption(captions: tf.Tensor, lengths: tf.Tensor, seed: tf.Tensor):
  """One caption of [K, T] uniformly at random -> ([T] ids, [] length, [] index), int32."""
  k = tf.shape(captions)[0]
  index = tf.random.stateless_uniform([], seed=seed, minval=0, maxval=k, dtype=tf.int32)
  return captions[index], lengths[index], index
