"""LadaGAN's losses (paper eqs. 14-15, official TF trainer): pure functions of logits and networks.

Logits are the discriminator's patch logits [B, 25] (any [B, ...] works); every mean runs over
batch AND patches, as the official code's reduce_mean does.

  discriminator_loss  mean softplus(-D(x)) + mean softplus(D(G(z)))      non-saturating logistic
  generator_loss      mean softplus(-D(G(z)))
  r1_penalty          weight * mean_b sum_pixels (d sum_patches D(x) / dx)^2
                      no 1/2, weight 1e-4 (code only; the paper's gamma is unstated), taken on the
                      same (augmented) reals whose logits the D loss uses: it returns those logits
  r1_from_logits      the same from logits a TF1 graph already holds (one D forward for both)
  bcr_consistency     weight * (mean (D(x) - D(T(x)))^2 + mean (D(G(z)) - D(T(G(z))))^2)
                      T = DiffAugment with its output under stop_gradient (Zhao et al. 2021 bCR,
                      as the official code: one lambda for real and fake)
"""
import tensorflow as tf


def discriminator_loss(real_logits, fake_logits):
  return (tf.reduce_mean(tf.math.softplus(-real_logits)) +
          tf.reduce_mean(tf.math.softplus(fake_logits)))


def generator_loss(fake_logits):
  return tf.reduce_mean(tf.math.softplus(-fake_logits))


def r1_penalty(discriminator_fn, real_images, weight=1e-4):
  """(real_logits, penalty). Works eagerly, in tf.function and in a TF1 graph.

  Args:
    discriminator_fn: images [B, H, W, C] -> logits [B, ...] (training mode as the D step uses).
    real_images: the reals exactly as the D loss sees them (after DiffAugment, same draw).
    weight: multiplies the penalty (official gp_weight 1e-4).
  """
  with tf.GradientTape() as tape:
    tape.watch(real_images)
    logits = discriminator_fn(real_images)  # [B, 25]
  grads = tape.gradient(logits, real_images)  # d(sum of all logits)/dx, [B, H, W, C]
  per_example = tf.reduce_sum(tf.square(tf.reshape(grads, [tf.shape(grads)[0], -1])), axis=1)
  return logits, weight * tf.reduce_mean(per_example)


def r1_from_logits(logits, images, weight=1e-4):
  """r1_penalty's value from logits already computed on `images` (graph mode: one D forward
  serves the D loss and R1): weight * mean_b sum_pixels (d sum(logits) / d images)^2."""
  grads, = tf.gradients(tf.reduce_sum(logits), images)  # [B, H, W, C]
  per_example = tf.reduce_sum(tf.square(tf.reshape(grads, [tf.shape(grads)[0], -1])), axis=1)
  return weight * tf.reduce_mean(per_example)


def consistency(logits, augmented_logits):
  """mean over batch and patches of (logits - augmented_logits)^2 (Keras MSE, then mean)."""
  return tf.reduce_mean(tf.square(logits - augmented_logits))


def bcr_augmented_logits(discriminator_fn, real_images, fake_images, augment):
  """D's logits on T(reals) and T(fakes), one D call on both, T's output not differentiated."""
  aug = tf.stop_gradient(tf.concat([augment(real_images), augment(fake_images)], axis=0))
  logits = discriminator_fn(aug)  # [B_real + B_fake, 25]
  n_real = tf.shape(real_images)[0]
  return logits[:n_real], logits[n_real:]


def bcr_consistency(real_logits, real_aug_logits, fake_logits, fake_aug_logits, weight):
  """Balanced consistency regularisation: weight * (real term + fake term)."""
  return weight * (consistency(real_logits, real_aug_logits) +
                   consistency(fake_logits, fake_aug_logits))
