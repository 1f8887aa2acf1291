"""DAMSM: AttnGAN's attention-driven image-text matching score and loss (Xu et al. 2018, eqs. 7-14).

For an image Q with regions v [N, D] (N = 17 x 17) and a caption D with words e [T, D]:
  s = e v^T                                  word-region similarity (eq. 7)        [T, N]
  s_bar = softmax of s over the caption's real words, per region (eq. 8)         [T, N]
  alpha = softmax of gamma1 * s_bar over regions, per word (eq. 9)               [T, N]
  c = alpha v                                region-context vector of each word    [T, D]
  R(c_i, e_i) = cosine                                                             [T]
  R(Q, D) = (1 / gamma2) log sum_i exp(gamma2 R(c_i, e_i))   over real words (eq. 10)
  P(D_i | Q_i) = softmax_j(gamma3 R(Q_i, D_j)), P(Q_i | D_i) likewise over images (eqs. 11-13)
  L_w1, L_w2: cross-entropy of the matching pairs in both directions; L_s1, L_s2 the same with
  R(Q, D) = cosine(global image vector, sentence vector); L = L_w1 + L_w2 + L_s1 + L_s2 (eq. 14).

Padding words never enter: every softmax, sum and log-sum-exp over words is restricted to the first
`lengths[b]` words of caption b (the official code slices each caption to its length). Padding
words get exactly zero attention. Layout: channels last, words [B, T, D], regions [B, N, D] or
[B, H, W, D]; attention maps are [B, T, N].

Where the official code (taoxugit/AttnGAN, miscc/losses.py) differs from the paper, the variant
says which one is used (`PAPER` is the default, `OFFICIAL` the released models' settings):
  gamma1            paper 5; every official training config sets 4.
  inverse_gamma2    eq. 10's 1/gamma2 exponent; the official words_loss omits it, so its word
                    scores are gamma2 times the paper's (the cross-entropy sees gamma2 * gamma3).
  class masks       the official CUB code excludes same-class non-matching pairs as negatives
                    (their scores set to -inf). Pass `class_ids` to do that; COCO has none.
  reduction         eqs. 12-13 sum over the M pairs; the official code averages. The paper's
                    gamma3 and lambda (5 CUB / 50 COCO) are the official code's values, tuned with
                    the mean, so both variants average; "sum" gives the equations' literal scale.
Both sum eq. 10 over all real words (the paper prints the sum from i = 1, the code from i = 0).
"""
import collections
import dataclasses

import tensorflow as tf

from tfgan_attention.word_attention import length_mask, masked_softmax

_COSINE_EPS = 1e-8  # the official cosine_similarity clamps the product of norms at 1e-8


@dataclasses.dataclass(frozen=True)
class DamsmVariant:
  """The DAMSM constants (paper section 3.2) and the official code's deviations from them."""
  name: str = "paper"
  gamma1: float = 5.0  # eq. 9: attention sharpness over regions
  gamma2: float = 5.0  # eq. 10: how much the best-matching word dominates
  gamma3: float = 10.0  # eq. 11: smoothing of the posterior
  inverse_gamma2: bool = True  # eq. 10's (.)^(1/gamma2); False = official words_loss
  reduction: str = "mean"  # over the M pairs: "mean" (official, the paper's lambda) or "sum"

  def __post_init__(self):
    if self.reduction not in ("mean", "sum"):
      raise ValueError(f"reduction must be 'mean' or 'sum', got {self.reduction!r}")


PAPER = DamsmVariant()
OFFICIAL = DamsmVariant(name="official", gamma1=4.0, inverse_gamma2=False)
VARIANTS = {"paper": PAPER, "official": OFFICIAL}

DamsmLoss = collections.namedtuple("DamsmLoss", ["total", "w0", "w1", "s0", "s1", "attention"])
DamsmLoss.__doc__ = """eq. 14 and its terms: w0 = L_w1 (image -> text), w1 = L_w2 (text -> image),
s0, s1 the sentence-level pair; attention: alpha of each matching pair, [B, T, N]."""


def _flatten_regions(regions):
  """[B, H, W, D] or [B, N, D] -> [B, N, D]."""
  if regions.shape.rank == 4:
    _, h, w, d = regions.shape.as_list()
    n = h * w if h is not None and w is not None else -1
    d = d if d is not None else tf.shape(regions)[3]
    return tf.reshape(regions, [tf.shape(regions)[0], n, d])
  if regions.shape.rank != 3:
    raise ValueError(f"regions must be [B, N, D] or [B, H, W, D], got {regions.shape}")
  return regions


def cosine(a, b, axis=-1):
  """Cosine similarity along `axis`, the official way: dot / max(|a| |b|, 1e-8)."""
  dot = tf.reduce_sum(a * b, axis)
  norms = tf.norm(a, axis=axis) * tf.norm(b, axis=axis)
  return dot / tf.maximum(norms, _COSINE_EPS)


def word_region_attention(words, regions, lengths, gamma1):
  """Eqs. 7-9: region-context vector of every word. Batch dimensions broadcast.

  Args:
    words: [..., T, D]. regions: [..., N, D].
    lengths: real words per caption, shaped like the batch dimensions of `words`.
    gamma1: eq. 9's factor.
  Returns:
    context: [..., T, D], zero for padding words.
    alpha: [..., T, N], each real word's weights over regions (sum 1); padding rows exactly 0.
  """
  t = tf.shape(words)[-2]
  word_mask = length_mask(lengths, t)[..., tf.newaxis]  # [..., T, 1]
  s = tf.matmul(words, regions, transpose_b=True)  # [..., T, N] eq. 7
  s_bar = masked_softmax(s, word_mask, axis=-2)  # eq. 8: over the real words, per region
  alpha = tf.nn.softmax(gamma1 * s_bar, axis=-1) * tf.cast(word_mask, s.dtype)  # eq. 9
  context = tf.matmul(alpha, regions)  # [..., T, D]
  return context, alpha


def word_matching_score(words, regions, lengths, variant=PAPER):
  """Eq. 10: R(Q, D) of images and captions whose batch dimensions broadcast.

  Args:
    words: [..., T, D]. regions: [..., N, D]. lengths: batch dimensions of `words`, each >= 1.
    variant: DamsmVariant (gamma1, gamma2, inverse_gamma2 are used).
  Returns:
    score: [...]. alpha: [..., T, N] (see word_region_attention).
  """
  context, alpha = word_region_attention(words, regions, lengths, variant.gamma1)
  relevance = cosine(context, words)  # [..., T] R(c_i, e_i)
  mask = tf.broadcast_to(length_mask(lengths, tf.shape(words)[-2]), tf.shape(relevance))
  low = tf.fill(tf.shape(relevance), tf.constant(relevance.dtype.min, relevance.dtype))
  score = tf.reduce_logsumexp(tf.where(mask, variant.gamma2 * relevance, low), axis=-1)
  if variant.inverse_gamma2:
    score = score / variant.gamma2
  return score, alpha


def word_scores(words, regions, lengths, variant=PAPER):
  """R(Q_i, D_j) of every image i against every caption j of a batch (eq. 10).

  Args:
    words: [B, T, D] caption j's word features. regions: [B, N, D] or [B, H, W, D].
    lengths: [B], each >= 1.
  Returns:
    scores: [B_images, B_captions]. attention: alpha of the matching pairs (i, i), [B, T, N].
  """
  words = tf.convert_to_tensor(words)
  regions = _flatten_regions(tf.convert_to_tensor(regions, words.dtype))
  score, alpha = word_matching_score(
      words[tf.newaxis], regions[:, tf.newaxis], tf.convert_to_tensor(lengths)[tf.newaxis],
      variant)  # [Bi, Bc], [Bi, Bc, T, N]
  diagonal = tf.range(tf.shape(words)[0])
  attention = tf.gather_nd(alpha, tf.stack([diagonal, diagonal], axis=1))  # [B, T, N]
  return score, attention


def sentence_scores(image_global, sentence):
  """Cosine of every global image vector i with every sentence vector j: [B_images, B_captions]."""
  image_global = tf.convert_to_tensor(image_global)
  sentence = tf.convert_to_tensor(sentence, image_global.dtype)
  return cosine(image_global[:, tf.newaxis, :], sentence[tf.newaxis, :, :])  # [Bi, Bc]


def class_negative_mask(class_ids):
  """Bool [B, B]: True where i != j but class i == class j (pairs the official CUB code drops)."""
  class_ids = tf.convert_to_tensor(class_ids)
  same = tf.equal(class_ids[:, tf.newaxis], class_ids[tf.newaxis, :])
  return tf.logical_and(same, tf.logical_not(tf.eye(tf.shape(class_ids)[0], dtype=tf.bool)))


def matching_losses(scores, class_ids=None, reduction="mean"):
  """Eqs. 11-13 on a score matrix, already scaled by gamma3: (image -> text, text -> image).

  Args:
    scores: [B, B], scores[i, j] = gamma3 R(Q_i, D_j); the matching pairs are the diagonal.
    class_ids: optional [B]: same-class non-matching pairs are excluded from both softmaxes.
    reduction: "mean" or "sum" over the B pairs.
  """
  if class_ids is not None:
    low = tf.fill(tf.shape(scores), tf.constant(scores.dtype.min, scores.dtype))
    scores = tf.where(class_negative_mask(class_ids), low, scores)
  labels = tf.range(tf.shape(scores)[0])
  reduce = tf.reduce_mean if reduction == "mean" else tf.reduce_sum
  xent = tf.nn.sparse_softmax_cross_entropy_with_logits
  image_to_text = reduce(xent(labels=labels, logits=scores))  # -log P(D_i | Q_i)
  text_to_image = reduce(xent(labels=labels, logits=tf.transpose(scores)))  # -log P(Q_i | D_i)
  return image_to_text, text_to_image


def damsm_loss(words, sentence, regions, image_global, lengths, class_ids=None, variant=PAPER):
  """L_DAMSM = L_w1 + L_w2 + L_s1 + L_s2 (eq. 14) of a batch of matching image-caption pairs.

  Args:
    words: [B, T, D] word features; sentence: [B, D] sentence features (text encoder).
    regions: [B, N, D] or [B, H, W, D] local features; image_global: [B, D] (image encoder).
    lengths: [B] real words per caption, each >= 1.
    class_ids: optional [B]; given, same-class non-matching pairs are not negatives (official CUB).
    variant: DamsmVariant, PAPER or OFFICIAL.
  Returns:
    DamsmLoss(total, w0, w1, s0, s1, attention [B, T, N]).
  """
  w_scores, attention = word_scores(words, regions, lengths, variant)
  w0, w1 = matching_losses(variant.gamma3 * w_scores, class_ids, variant.reduction)
  s_scores = sentence_scores(image_global, sentence)
  s0, s1 = matching_losses(variant.gamma3 * s_scores, class_ids, variant.reduction)
  return DamsmLoss(w0 + w1 + s0 + s1, w0, w1, s0, s1, attention)
