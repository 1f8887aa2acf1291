"""The official side of the SAGAN / YLG-SAGAN check (run.sh): TF-GAN's self_attention_estimator or
the YLG code trains one step with its own estimator on its fake data (the release's checkpoint
format: the estimator's Saver, .meta, Adam slots, global_step); every model variable is then
overwritten with random, non-trivial values (BN moving statistics, CBN tables, SN u vectors:
converged, or random with U_MODE=random) and saved with the same meta graph's Saver; the official
generator and discriminator then run with training=False on fixed inputs (official_out.npz).

usage: python sagan_official.py OFFICIAL_DIR WORK_DIR {tfgan,ylg} [converged|random]
  OFFICIAL_DIR: a tensorflow/gan checkout (tfgan) or giannisdaras/ylg's ylg/ directory (ylg).
  TRAINED_BASE=DIR reuses the model.ckpt-0 an earlier run's estimator wrote in DIR.
"""
import os, shutil, sys, types
import numpy as np
REPO = sys.argv[1]          # official checkout (tensorflow+gan or giannisdaras+ylg/ylg)
WORK = sys.argv[2]
KIND = sys.argv[3]          # tfgan | ylg
U_MODE = sys.argv[4] if len(sys.argv) > 4 else "converged"
sys.path.insert(0, REPO)
import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()
GF, DF, NCLS, Z = (4, 4, 1000, 16) if KIND == "tfgan" else (16, 32, 1000, 16)  # YLG: 8 heads need gf*4/8 >= 8
if KIND == "tfgan":
  from tensorflow_gan.examples.self_attention_estimator import train_experiment as te
  from tensorflow_gan.examples.self_attention_estimator import generator as gen_module
  from tensorflow_gan.examples.self_attention_estimator import discriminator as dis_module
else:
  import train_experiment as te, generator as gen_module, discriminator as dis_module
  from absl import flags
  flags.FLAGS(["ylg"])  # the YLG modules read absl flags (--ylg=True, --nH=None: the defaults)
  te._verify_dataset_shape = lambda ds, z_dim: None  # patch: Dataset.output_shapes is gone in TF 2.15
  import collections, inspect  # patch: TF-GAN 2.1's train.py calls inspect.getargspec (gone in Python 3.11)
  _ArgSpec = collections.namedtuple("ArgSpec", "args varargs keywords defaults")
  inspect.getargspec = lambda fn: _ArgSpec(*inspect.getfullargspec(fn)[:4])
  # patch: at f41c818 generator() returns (images, attention map) and discriminator() (logits, h1,
  # attention map, variables) for generate_images.py / inverse_image.py, while train_experiment.py
  # still unpacks (output, variables) from both: the training path is adapted here, not in the repo
  _official_gen, _official_dis = gen_module.generator, dis_module.discriminator
  def _train_gen(*a, **k):
    out = _official_gen(*a, **k)[0]
    return out, tf.get_collection(tf.GraphKeys.TRAINABLE_VARIABLES, "Generator/generator")
  def _train_dis(*a, **k):
    r = _official_dis(*a, **k)
    return r[0], r[3]
  te.gen_module = types.SimpleNamespace(**{**vars(gen_module), "generator": _train_gen})
  te.dis_module = types.SimpleNamespace(**{**vars(dis_module), "discriminator": _train_dis})
model_dir = os.path.join(WORK, "official")
BASE = os.environ.get("TRAINED_BASE")  # reuse the estimator's 1-step checkpoint of an earlier run
shutil.rmtree(WORK, ignore_errors=True); os.makedirs(WORK)

def hparams(**extra):
  base = dict(train_batch_size=2, eval_batch_size=2, predict_batch_size=2, generator_lr=1e-4,
              discriminator_lr=4e-4, beta1=0.0, gf_dim=GF, df_dim=DF, num_classes=NCLS,
              shuffle_buffer_size=1, z_dim=Z, model_dir=model_dir, max_number_of_steps=1,
              train_steps_per_eval=1, num_eval_steps=1,
              debug_params=te.DebugParams(use_tpu=False, eval_on_tpu=False, fake_nets=False,
                                          fake_data=True, continuous_eval_timeout_secs=1),
              tpu_params=te.TPUParams(use_tpu_estimator=False, tpu_location=None, gcp_project=None,
                                      tpu_zone=None, tpu_iterations_per_loop=1))
  base.update(extra)
  return te.HParams(**{k: v for k, v in base.items() if k in te.HParams._fields})
hp = hparams()
if BASE:
  os.makedirs(model_dir)
  for f in os.listdir(BASE):
    if f.startswith("model.ckpt-0."):
      shutil.copy(os.path.join(BASE, f), model_dir)
  open(os.path.join(model_dir, "checkpoint"), "w").write('model_checkpoint_path: "model.ckpt-0"\n')
else:
  te.run_train(hp)   # the official estimator writes model.ckpt-1 (+ .meta, Adam slots, global_step)

# --- overwrite the model variables, keep the format: the estimator's own meta graph and saver
ckpt = tf.train.latest_checkpoint(model_dir)
rng = np.random.default_rng(3)
STEP = 7
g = tf.Graph()
with g.as_default():
  saver = tf.train.import_meta_graph(ckpt + ".meta", clear_devices=True)
  with tf.Session() as sess:
    saver.restore(sess, ckpt)
    vars_ = {v.op.name: v for v in tf.global_variables()}
    values = {n: sess.run(v) for n, v in vars_.items()}
    new = {}
    for n, val in values.items():
      if not (n.startswith("Generator/") or n.startswith("Discriminator/")) or "/Adam" in n:
        continue
      leaf = n.rsplit("/", 1)[-1]
      if leaf == "moving_variance":
        new[n] = rng.uniform(0.5, 2.0, val.shape)
      elif leaf == "moving_mean":
        new[n] = rng.normal(0, 0.5, val.shape)
      elif leaf == "gamma":
        new[n] = rng.uniform(0.5, 1.5, val.shape)
      elif leaf == "spectral_norm_u":
        continue  # below, from its kernel
      elif val.ndim == 0:
        new[n] = val + rng.uniform(0.1, 1.0)   # YLG's sigma gate
      else:
        fan_in = np.prod(val.shape[:-1]) if val.ndim > 1 else 4
        new[n] = rng.normal(0, 1.3, val.shape) / np.sqrt(fan_in)
    for n in values:
      if not n.endswith("spectral_norm_u"):
        continue
      # TF-GAN's custom getter repeats the kernel's scope: <X>/<X>/<leaf>/spectral_normalize/...
      # for the kernel <X>/<leaf>; the class embedding's u sits under d_embedding/
      parts = n.split("/spectral_normalize/")[0].split("/")
      if parts[-1] == "d_embedding":
        kernel = "/".join(parts) + "/embedding_map"
      else:
        scope = parts[:-1]
        assert scope[:len(scope) // 2] == scope[len(scope) // 2:], n
        kernel = "/".join(scope[:len(scope) // 2] + parts[-1:])
      w = new[kernel]
      m = w.T if kernel.endswith("embedding_map") else w.reshape(-1, w.shape[-1])  # [K, C_out]
      if U_MODE == "converged":  # a trained model's u: W's leading left singular vector
        u, _, _ = np.linalg.svd(m.astype(np.float64), full_matrices=False)
        new[n] = u[:, :1] * np.sign(rng.normal())
      else:
        new[n] = rng.normal(size=values[n].shape)
    new["global_step"] = np.int64(STEP)
    for n, val in new.items():
      vars_[n].load(np.asarray(val, values[n].dtype), sess)
    saver.save(sess, os.path.join(model_dir, "model.ckpt"), global_step=STEP)
for f in os.listdir(model_dir):   # keep only the rewritten checkpoint (a release holds one)
  if f.startswith("model.ckpt-1."):
    os.remove(os.path.join(model_dir, f))
print("variables overwritten:", len(new), "of", len(values))

# --- the official networks with training=False (TF-GAN example / YLG generate: moving statistics)
z = rng.normal(size=(3, Z)).astype("float32")
labels = np.array([3, 999, 517], np.int32)
imgs = rng.uniform(-1, 1, (3, 128, 128, 3)).astype("float32")
g = tf.Graph()
with g.as_default():
  with tf.variable_scope("Generator"):
    out = gen_module.generator(tf.constant(z), tf.constant(labels), GF, NCLS, training=False)
  with tf.variable_scope("Discriminator"):
    d_out = dis_module.discriminator(tf.constant(imgs), tf.constant(labels), DF, NCLS)
  out, d_out = out[0], d_out[0]  # (output, var_list[, attention map])
  with tf.Session() as sess:
    tf.train.Saver().restore(sess, os.path.join(model_dir, f"model.ckpt-{STEP}"))
    images, d_logits = sess.run([out, d_out])
np.savez(os.path.join(WORK, "official_out.npz"), z=z, labels=labels, images=images, imgs=imgs, d=d_logits)
print("official image std", images.std(), "D logits", d_logits.ravel()[:3])
