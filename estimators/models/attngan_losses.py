"""AttnGAN's adversarial losses per stage (official miscc/losses.py, or the paper's eqs. 4-5).

Logits are pre-sigmoid; BCE(p, y) of the official sigmoid + nn.BCELoss is sigmoid cross-entropy
on the logits (the same value, without the 1e-12 clamp of log). Each is the mean over the batch.

LOSS_WEIGHTINGS:
  official (default): per stage i
      L_D = (BCE(uncond_real, 1) + BCE(cond_real, 1)) / 2
            + (BCE(uncond_fake, 0) + BCE(cond_fake, 0) + BCE(cond_wrong, 0)) / 3
      L_G = BCE(uncond_fake, 1) + BCE(cond_fake, 1)
    "wrong" = real image j with the sentence of example j + 1, for j = 0 .. B-2 (the official
    `COND_DNET(real_features[:B-1], conditions[1:B])`: B - 1 pairs, no class check; the
    conditional branch runs on those B - 1 rows only, so they alone make its BN statistics).
  paper: eq. 5 and eq. 4, no mismatched pairs:
      L_D = -1/2 E[log D(x)] - 1/2 E[log(1 - D(G))] - 1/2 E[log D(x, e)] - 1/2 E[log(1 - D(G, e))]
      L_G = -1/2 E[log D(G)] - 1/2 E[log D(G, e)]
Both: G's loss adds lambda * L_DAMSM on the last stage and the conditioning-augmentation KL.

The official code trains on one GPU: the mismatched pairs and L_DAMSM (a contrastive loss over
the batch) couple the examples of the batch. In a multi-replica step (--distribution=mirrored /
multi_worker) `global_batch` gathers every replica's rows, so each replica computes these terms
over the global batch, as one device does, and their gradients flow back to each replica's rows.
"""
import tensorflow as tf

LOSS_WEIGHTINGS = ("official", "paper")


def bce(logits, target):
  """mean BCE(sigmoid(logits), target) with a constant target (0 or 1)."""
  labels = tf.fill(tf.shape(logits), tf.constant(float(target), logits.dtype))
  return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def discriminator_stage_loss(real, fake, weighting="official"):
  """L_D of one stage. real: {'uncond', 'cond'} [B] logits and (official) 'cond_wrong' [B - 1]
  (real image j with the sentence of j + 1, `wrong_sentences`); fake: {'uncond', 'cond'}.
  Returns (loss, {term: value})."""
  terms = {"real_uncond": bce(real["uncond"], 1), "real_cond": bce(real["cond"], 1),
           "fake_uncond": bce(fake["uncond"], 0), "fake_cond": bce(fake["cond"], 0)}
  if weighting == "official":
    terms["wrong_cond"] = bce(real["cond_wrong"], 0)
    loss = ((terms["real_uncond"] + terms["real_cond"]) / 2.0
            + (terms["fake_uncond"] + terms["fake_cond"] + terms["wrong_cond"]) / 3.0)
  elif weighting == "paper":
    loss = 0.5 * (terms["real_uncond"] + terms["fake_uncond"] + terms["real_cond"]
                  + terms["fake_cond"])
  else:
    raise ValueError(f"loss weighting must be one of {LOSS_WEIGHTINGS}, got {weighting!r}")
  return loss, terms


def generator_stage_loss(fake, weighting="official"):
  """L_G of one stage (adversarial part). fake: {'uncond', 'cond'} [B] logits."""
  uncond, cond = bce(fake["uncond"], 1), bce(fake["cond"], 1)
  if weighting == "official":
    return uncond + cond
  if weighting == "paper":
    return 0.5 * (uncond + cond)
  raise ValueError(f"loss weighting must be one of {LOSS_WEIGHTINGS}, got {weighting!r}")


def wrong_sentences(sentence, first=0, rows=None):
  """The mismatched sentences of `rows` real images starting at row `first` of the batch whose
  sentences are `sentence` [B, D]: row j gets the sentence of example first + j + 1, for the
  rows that have one (official conditions[1:B]): [min(rows, B - 1 - first), D]. The default
  (first 0, all rows) is [B - 1, D]; a replica of a multi-replica step passes its share."""
  rows = tf.shape(sentence)[0] if rows is None else rows
  return sentence[first + 1:first + 1 + rows]


def global_batch(value):
  """(value over the global batch, this replica's first global row): in a multi-replica step
  every replica's rows in replica order (a nest of tensors [b, ...] -> [R b, ...]; gradients flow
  back to each replica's own rows), else (value, 0)."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return value, 0
  rows = tf.shape(tf.nest.flatten(value)[0])[0]  # equal shares (engines/cluster.py checks)
  # One all_gather per tensor: the gradient of a nested one stacks tensors of different ranks.
  gathered = tf.nest.map_structure(lambda v: context.all_gather(v, axis=0), value)
  return gathered, context.replica_id_in_sync_group * rows
