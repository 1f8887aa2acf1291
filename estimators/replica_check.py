"""Does a multi-replica step compute what one device computes? One step, both ways, compared.

  python -m estimators.replica_check                 # every local GPU (2 logical CPUs if none)
  python -m estimators.replica_check --cpu_devices=2 --json=out.json
  python -m estimators.replica_check --model=ladagan --set=g_dim=32 --set=d_dim=16
  python -m estimators.replica_check --model=attngan --set=damsm_dir=DIR ...   # any model

Any registered model: --model picks it, --dataset the data (default: the first of the embedded
sets the model accepts), --set=NAME=VALUE any run setting or hyperparameter (typed as the
field it sets; estimators.testing.tiny_config's small widths otherwise). The model's `prepare`
runs first, with --root as its model_dir. Files a model reads must be the same for both runs:
AttnGAN needs --set=damsm_dir=DIR (a pretrained DAMSM, or an empty DIR with
--set=pretrain_damsm_first=true, which pretrains one there first).

Both runs start from the same checkpoint (written by the one-device run at step 0), read the
same examples in the same order with the same per-example noise, and take one in-graph step
(estimators/engines/train_op.py) with the same GLOBAL batch. Reported: the first-step losses of each
(the mean over the global batch), the largest difference of every trained variable and of the
generator's BN moving statistics after the step, and each replica's view of those statistics.
With cross-replica BN the two runs agree to float round-off; without it the G forward of each
replica normalises its own half batch, and the difference shows.
"""
import argparse
import glob
import json
import os
import shutil
import sys


def configure_cpu_devices(count):
  """Splits the CPU into `count` logical devices (before TensorFlow initialises them)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if count > 1 and not tf.config.list_physical_devices("GPU"):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def _scalars(model_dir, step):
  """{tag: value} of the scalar summaries written at `step`."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  values = {}
  for path in sorted(glob.glob(os.path.join(model_dir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      if event.step != step:
        continue
      for v in event.summary.value:
        if v.HasField("simple_value"):
          values[v.tag] = float(v.simple_value)
  return values


def _variables(checkpoint):
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(checkpoint)
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
          if np.issubdtype(np.asarray(reader.get_tensor(name)).dtype, np.floating)}


def _copy_checkpoint(src_dir, step, dst_dir):
  os.makedirs(dst_dir, exist_ok=True)
  for path in glob.glob(os.path.join(src_dir, f"model.ckpt-{step}.*")):
    shutil.copy(path, dst_dir)
  with open(os.path.join(dst_dir, "checkpoint"), "w", encoding="utf-8") as f:
    f.write(f'model_checkpoint_path: "model.ckpt-{step}"\n')


LOSS_TAGS = ("loss/discriminator",
             "loss/generator", "loss")


def one_step_comparison(cfg, dataset_fn, root, reference=None):
  """Runs one step as `reference` (default: cfg on one device) and one as cfg, from the same
  starting checkpoint; returns the comparison dict ('one_device' = the reference run)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from estimators import experiment  # pylint: disable=import-outside-toplevel
  common = dict(max_steps=1, save_checkpoints_steps=1, save_summary_steps=1,
                keep_checkpoint_max=3)
  reference = reference or cfg.replace(distribution="one_device")
  one = reference.replace(model_dir=os.path.join(root, "reference"), **common)
  multi = cfg.replace(model_dir=os.path.join(root, "compared"), **common)
  if os.path.exists(one.model_dir) or os.path.exists(multi.model_dir):
    raise FileExistsError(f"{root} already holds a comparison; give an empty --root")
  experiment.run_train(one, dataset_fn=dataset_fn)
  _copy_checkpoint(one.model_dir, 0, multi.model_dir)
  experiment.run_train(multi, dataset_fn=dataset_fn)
  before = _variables(os.path.join(one.model_dir, "model.ckpt-0"))
  after_one = _variables(os.path.join(one.model_dir, "model.ckpt-1"))
  after_multi = _variables(os.path.join(multi.model_dir, "model.ckpt-1"))
  gradients = {}
  for net, slot in (("Generator", "generator_adam"), ("Discriminator", "discriminator_adam")):
    # Adam's first slot after one step is (1 - beta1) x the gradient (beta1 = 0: SAGAN's).
    names = [n for n in after_one if n.startswith(net + "/") and n.endswith("/" + slot)]
    scale = max(float(np.abs(after_one[n]).max()) for n in names)
    worst = max(float(np.abs(after_one[n] - after_multi[n]).max()) for n in names)
    ref = np.concatenate([after_one[n].ravel() for n in names]).astype(np.float64)
    other = np.concatenate([after_multi[n].ravel() for n in names]).astype(np.float64)
    gradients[net] = dict(scale=scale, max_abs_diff=worst, relative=worst / scale,
                          relative_norm=float(np.linalg.norm(other - ref) / np.linalg.norm(ref)),
                          cosine=float(ref @ other / np.linalg.norm(ref) / np.linalg.norm(other)),
                          variables=len(names))
  bn = {}
  for name in sorted(after_one):
    if name.endswith("/moving_mean") or name.endswith("/moving_variance"):
      delta = after_multi[name] - after_one[name]
      bn[name] = dict(max_abs_diff=float(np.abs(delta).max()),
                      min_multi_minus_one=float(delta.min()),
                      max_multi_minus_one=float(delta.max()),
                      change=float(np.abs(after_one[name] - before[name]).max()))
  # The summaries of the first step carry the step count after it (1).
  losses_one = {t: v for t, v in _scalars(one.model_dir, 1).items() if t in LOSS_TAGS}
  losses_multi = {t: v for t, v in _scalars(multi.model_dir, 1).items() if t in LOSS_TAGS}
  return dict(losses={"one_device": losses_one, "multi": losses_multi}, gradients=gradients,
              bn_moving_statistics=bn, variables=_largest_differences(after_one, after_multi),
              missing_in_multi=sorted(set(after_one) - set(after_multi)),
              cross_replica_bn=cfg.cross_replica_bn, distribution=cfg.distribution)


def _largest_differences(reference, compared):
  """{variable: max |compared - reference| / max(max |reference|, 1e-6)} over every variable
  both hold (weights, BN statistics, EMA shadows, optimiser slots), with the worst named."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  relative = {}
  for name in sorted(set(reference) & set(compared)):
    a, b = np.asarray(reference[name], np.float64), np.asarray(compared[name], np.float64)
    if a.size:
      relative[name] = float(np.abs(a - b).max() / max(float(np.abs(a).max()), 1e-6))
  worst = max(relative, key=relative.get) if relative else None
  return dict(relative=relative, worst=worst, worst_relative=relative.get(worst, 0.0))


def _dataset_fn(dataset="digits", image_size=32, num=64):
  """A fixed, in-memory slice of a dataset's training split, every field of its elements (no
  shuffling noise between the runs)."""
  import data  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  elements = list(data.load(dataset, split="train", image_size=image_size, seed=0).take(num))
  arrays = {k: tf.stack([e[k] for e in elements]).numpy() for k in elements[0]}
  return lambda: tf.data.Dataset.from_tensor_slices(arrays)


_digits_dataset_fn = _dataset_fn  # the SAGAN default (precision_test uses it)

EMBEDDED_DATASETS = ("digits", "digits_captions")


def default_dataset(model, image_size, hparams):
  """The first embedded dataset `model` accepts at `image_size` with `hparams` (no
  downloads)."""
  import data  # pylint: disable=import-outside-toplevel
  from estimators.models import get_model  # pylint: disable=import-outside-toplevel
  spec = get_model(model)
  problems = {}
  for name in EMBEDDED_DATASETS:
    problems[name] = spec.validate(hparams, image_size, data.get_spec(name))
    if problems[name] is None:
      return name
  raise ValueError(f"--model={model} takes none of {EMBEDDED_DATASETS} at {image_size} px "
                   f"({problems}); pass --dataset and --image_size")


def parse_settings(model, pairs):
  """{name: value} of NAME=VALUE strings, each a run setting (GANConfig) or a hyperparameter of
  `model`, converted to that field's type."""
  import dataclasses  # pylint: disable=import-outside-toplevel
  from estimators.config import GANConfig  # pylint: disable=import-outside-toplevel
  from estimators.models import get_model  # pylint: disable=import-outside-toplevel
  fields = {f.name: f for f in dataclasses.fields(GANConfig)}
  fields.update({f.name: f for f in dataclasses.fields(get_model(model).hparams_class)})
  out = {}
  for pair in pairs:
    name, sep, text = pair.partition("=")
    if not sep or name not in fields:
      raise ValueError(f"--set={pair!r}: expected NAME=VALUE with NAME a run setting or a "
                       f"{model} hyperparameter")
    kind = fields[name].type
    kind = {"bool": bool, "int": int, "float": float, "str": str}.get(kind, kind)
    if kind is bool:
      if text.lower() not in ("1", "0", "true", "false"):
        raise ValueError(f"--set={pair!r}: {name} takes true or false")
      out[name] = text.lower() in ("1", "true")
    elif kind in (int, float, str):
      out[name] = kind(text)
    else:
      raise ValueError(f"--set={pair!r}: {name} ({kind}) cannot be set from the command line")
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cpu_devices", type=int, default=2,
                      help="logical CPU devices to mirror over when there is no GPU")
  parser.add_argument("--distribution", default="mirrored")
  parser.add_argument("--batch_size", type=int, default=8, help="global batch")
  parser.add_argument("--cross_replica_bn", type=int, default=1)
  parser.add_argument("--model", default="sagan", help="any registered model")
  parser.add_argument("--dataset", default=None,
                      help="default: the first of digits, digits_captions the model accepts")
  parser.add_argument("--image_size", type=int, default=32)
  parser.add_argument("--bn_decay", type=float, default=None,
                      help="= --set=bn_decay=X (SAGAN / YLG's BN decay)")
  parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                      help="a run setting or hyperparameter of the model (repeatable)")
  parser.add_argument("--root", default=None, help="run directories (default: a temp dir)")
  parser.add_argument("--json", default=None, help="also write the result here")
  args = parser.parse_args(argv)
  configure_cpu_devices(args.cpu_devices)
  import tempfile  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from estimators.models import get_model  # pylint: disable=import-outside-toplevel
  from estimators.testing import tiny_config  # pylint: disable=import-outside-toplevel
  root = args.root or tempfile.mkdtemp(prefix="replica_check_")
  settings = dict(image_size=args.image_size, distribution=args.distribution,
                  batch_size=args.batch_size, cross_replica_bn=bool(args.cross_replica_bn),
                  ema_decay=0.999)
  if args.bn_decay is not None:
    settings["bn_decay"] = args.bn_decay
  settings.update(parse_settings(args.model, args.set))
  cfg = tiny_config(root, model=args.model, **settings)
  dataset = args.dataset or default_dataset(args.model, args.image_size, cfg.hparams)
  cfg = cfg.replace(dataset=dataset)
  get_model(args.model).prepare(cfg)  # writes under --root or where --set points, not the runs
  result = one_step_comparison(cfg, _dataset_fn(dataset, cfg.image_size), root)
  if args.json:
    with open(args.json + ".tmp", "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1, sort_keys=True)
    os.replace(args.json + ".tmp", args.json)
  for run, values in result["losses"].items():
    print(f"{run:12s} " + "  ".join(f"{t.split('/')[-1]}={v:.6f}"
                                    for t, v in sorted(values.items())))
  for net, g in result["gradients"].items():
    print(f"{net}: first-step gradients differ by at most {g['relative']:.2e} of their scale")
  worst = max(v["max_abs_diff"] for v in result["bn_moving_statistics"].values())
  print(f"BN moving statistics differ by at most {worst:.2e}")
  variables = result["variables"]
  print(f"every variable after the step: at most {variables['worst_relative']:.2e} of its scale "
        f"apart ({variables['worst']})")
  return result


if __name__ == "__main__":
  main()
