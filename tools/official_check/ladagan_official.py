"""The official side of the LadaGAN check (run.sh): milmor/LadaGAN's TF networks (model.py) at tiny
widths with random weights (EMA generator != generator, BN statistics too), saved as trainer.py
saves a release (LadaGAN.create_ckpt + best_ckpt_manager.save(n_images), utils.Config's
config.json), and their outputs on fixed inputs (official_out.npz).

usage: python ladagan_official.py OFFICIAL_TENSORFLOW_DIR WORK_DIR {128,64,32}
"""
import os, shutil, sys, types
import numpy as np
OFF, WORK, variant = sys.argv[1:4]
sys.path.insert(0, OFF)
sys.modules["huggingface_hub"] = types.SimpleNamespace(hf_hub_download=None)  # patch: not installed
import tensorflow as tf
from model import Generator, Discriminator
from trainer import LadaGAN
from utils import Config

base = dict(batch_size=8, g_lr=0.0002, g_beta1=0.5, g_beta2=0.99, g_initializer="orthogonal",
            d_initializer="orthogonal", d_lr=0.0002, d_beta1=0.5, d_beta2=0.99, gp_weight=0.0001,
            policy="color,translation", fid_batch_size=50, gen_batch_size=50, loss="nsl",
            ema_decay=0.999, bcr=False, cr_weight=0.1, n_fid_real=2500, n_fid_gen=2500,
            plot_size=5.2, test_seed=77)
if variant == "128":   # ffhq_128 / bedroom_128 shape: conv decoder with BN
  base.update(img_size=128, noise_dim=16, g_dim=[16, 8, 8], g_heads=[2, 2, 2], g_mlp=[12, 12, 12],
              d_enc_dim=[4, 4, 8, 8], d_out_dim=[8, 12], d_heads=2, d_mlp=12, dec_dim=[8, 4])
elif variant == "64":  # celeba_64 shape (patch 2, no decoder)
  base.update(img_size=64, noise_dim=16, g_dim=[32, 16, 16], g_heads=[4, 4, 4], g_mlp=[24, 24, 24],
              d_enc_dim=[4, 8, 8], d_out_dim=[8, 12], d_heads=4, d_mlp=24, dec_dim=False)
else:                  # cifar10 shape
  base.update(img_size=32, noise_dim=16, g_dim=[32, 16, 8], g_heads=[2, 2, 2], g_mlp=[16, 16, 16],
              d_enc_dim=[4, 8], d_out_dim=[8, 12], d_heads=2, d_mlp=16, dec_dim=False, bcr=True)
work = WORK
shutil.rmtree(work, ignore_errors=True); os.makedirs(work)
release = os.path.join(work, "release")
conf = Config(release, base)  # writes release/config.json as the official utils.Config does
tf.random.set_seed(0)
noise = tf.random.normal([conf.batch_size, conf.noise_dim])
G = Generator(img_size=conf.img_size, model_dim=conf.g_dim, heads=conf.g_heads, mlp_dim=conf.g_mlp,
              dec_dim=conf.dec_dim)
G(noise)
D = Discriminator(img_size=conf.img_size, enc_dim=conf.d_enc_dim, out_dim=conf.d_out_dim,
                  heads=conf.d_heads, mlp_dim=conf.d_mlp, initializer=conf.d_initializer)
D(tf.ones([conf.batch_size, conf.img_size, conf.img_size, 3]))
gan = LadaGAN(generator=G, discriminator=D, conf=conf)
gan.build(g_optimizer=tf.keras.optimizers.Adam(conf.g_lr, conf.g_beta1, conf.g_beta2),
          d_optimizer=tf.keras.optimizers.Adam(conf.d_lr, conf.d_beta1, conf.d_beta2),
          g_loss=None, d_loss=None)
# one zero-gradient Adam step: the optimiser slots exist in the release as in a trained one
for opt, net in ((gan.g_optimizer, G), (gan.d_optimizer, D)):
  opt.apply_gradients([(tf.zeros_like(v), v) for v in net.trainable_variables])
rng = np.random.default_rng(1)
def randomise(net, scale):
  for v in net.weights:
    if "moving_variance" in v.name:
      v.assign(rng.uniform(0.5, 2.0, v.shape).astype("float32"))
    elif "moving_mean" in v.name:
      v.assign(rng.normal(0, 0.5, v.shape).astype("float32"))
    elif "gamma" in v.name and len(v.shape) == 1:
      v.assign(rng.uniform(0.5, 1.5, v.shape).astype("float32"))
    else:
      fan_in = np.prod(v.shape[:-1]) if len(v.shape) > 1 else 4
      v.assign((rng.normal(0, scale, v.shape) / np.sqrt(fan_in)).astype("float32"))
randomise(G, 1.0); randomise(gan.ema_generator, 1.0); randomise(D, 1.0)
for g in (G, gan.ema_generator):  # outputs mostly inside [-1, 1], where the served clip is the identity
  g.ch_conv.kernel.assign(g.ch_conv.kernel * 0.25)
n_images = 1280
gan.create_ckpt(release, max_ckpt_to_keep=2)
gan.ckpt.n_images.assign(n_images); gan.ckpt.fid.assign(123.0); gan.ckpt.best_fid.assign(123.0)
gan.best_ckpt_manager.save(n_images)  # as save_ckpt() on an improved FID
gan.ckpt_manager.save(n_images)

z = rng.normal(size=(5, conf.noise_dim)).astype("float32")
ema_out = gan.ema_generator(tf.constant(z), training=False)[0].numpy()
plain_out = G(tf.constant(z), training=False)[0].numpy()
imgs = rng.uniform(-1, 1, (conf.batch_size, conf.img_size, conf.img_size, 3)).astype("float32")
d_out = D(tf.constant(imgs), training=False)
d_out = (d_out[0] if isinstance(d_out, (list, tuple)) else d_out).numpy()
np.savez(os.path.join(work, "official_out.npz"), z=z, ema=ema_out, plain=plain_out, imgs=imgs, d=d_out)
print("official EMA image std", ema_out.std(), "EMA vs plain", np.abs(ema_out - plain_out).max())
