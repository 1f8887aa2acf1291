"""Entry point: absl flags -> a frozen GANConfig -> one mode. No flags runs the embedded default.

  python run.py                                   # digits SAGAN: train, evaluate, export
  python run.py --flagfile=configs/sagan_imagenet128.cfg --data_dir=/data/imagenet
  python run.py --mode=sample --num_samples=64 --model_dir=runs/digits_sagan

Every mode but a fresh train takes the run's settings from <model_dir>/run_config.json
(estimators/run_settings.py): flags given may change only what can change; a network flag that
contradicts the run is an error. Every value is checked when flags are parsed, before TensorFlow
builds anything. The console
shows progress, results and warnings that matter; TensorFlow's chatter goes to
<model_dir>/log.txt (estimators/console.py; --verbosity or --log_to_console show everything).
"""
import copy
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
if __name__ == "__main__":
  from estimators import console  # pylint: disable=wrong-import-position
  console.capture_native_stderr()  # TensorFlow's C++ lines (fd 2) too, from its import on
from estimators.engines import precision  # pylint: disable=wrong-import-position
precision.allow_cpu_autoclustering()  # lets --xla compile on a CPU (read at TF's first device)

from absl import app, flags  # pylint: disable=wrong-import-position

from estimators import model_flags  # pylint: disable=wrong-import-position
from estimators.engines import training_step  # pylint: disable=wrong-import-position
from estimators.engines.plan import ENGINES, WORKER_INPUTS  # pylint: disable=wrong-import-position
from estimators.models import get_model, names as model_names  # pylint: disable=wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_enum("mode", "train_and_eval", model_flags.BASE_MODES + model_flags.extra_modes(),
                  "What to do (models may add modes of their own).")
flags.DEFINE_enum("model", "sagan", model_names(), "Which GAN (estimators/models/).")
flags.DEFINE_string("dataset", "digits", "Dataset name (see data.DATASETS).")
flags.DEFINE_string("data_dir", None, "Where the dataset's files are (not needed for digits).")
flags.DEFINE_boolean("strict_data", False, "Fail at the first corrupt image or malformed "
                     "caption instead of skipping it (skips are counted in bad_records.json).")
flags.DEFINE_integer("max_words", 0, "Caption datasets: words per caption, longer ones randomly "
                     "sub-sampled keeping order (0: the dataset's AttnGAN default).")
flags.DEFINE_list("data_options", [], "Dataset-specific loader options as key=value pairs, e.g. "
                  "jpeg_downscale=false (imagenet: TF-GAN's exact pixels), resize_method=area, "
                  "parallel_reads=-1, crop_size=140 (image folders); README 'Datasets' lists "
                  "them. They also key the real-statistics cache.")
flags.DEFINE_string("model_dir", "runs/digits_sagan", "Run directory: checkpoints, logs, samples.")
flags.DEFINE_integer("image_size", 32, "Output resolution (each model says which it builds; "
                     "SAGAN: 32, 64 or 128).")
model_flags.define_flags(FLAGS)  # one flag per model hyperparameter (--gf_dim, --ylg_esa, ...)
flags.DEFINE_integer("max_steps", 1500, "Train until this global step.")
flags.DEFINE_integer("batch_size", 32, "Global batch size.")
flags.DEFINE_float("generator_lr", 1e-4, "Adam learning rate of G (SAGAN TTUR: 1e-4).")
flags.DEFINE_float("discriminator_lr", 4e-4, "Adam learning rate of D (SAGAN TTUR: 4e-4).")
flags.DEFINE_float("beta1", 0.0, "Adam beta1 (SAGAN: 0).")
flags.DEFINE_float("beta2", 0.9, "Adam beta2 (SAGAN paper: 0.9; TF-GAN's example: 0.999).")
flags.DEFINE_float("ema_decay", 0.0, "Generator EMA decay used for eval/sample/export; 0 = off.")
model_flags.define_step_flags(FLAGS)  # the training step (models' run_defaults)
flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices (no GPU): "
                     "try --distribution=mirrored on a laptop before renting GPUs.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed of initialisation, data order and evaluation noise.")
flags.DEFINE_integer("save_checkpoints_steps", 500, "Checkpoint every N steps.")
flags.DEFINE_integer("save_summary_steps", 100, "TensorBoard summaries every N steps.")
flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept.")
flags.DEFINE_integer("eval_every_steps", 500, "train_and_eval: evaluate every N steps.")
flags.DEFINE_integer("num_eval_samples", 1000, "Generated samples per evaluation.")
flags.DEFINE_integer("eval_batch_size", 100, "Batch size for sampling and evaluation.")
flags.DEFINE_string("inception_path", None, "Local TF-GAN Inception module (TF-Hub format / "
                    "SavedModel with logits [N,1008] and pool_3 [N,2048]). Enables IS/FID/KID "
                    "for any dataset, digits included. Without it: the TF-Hub cache "
                    "($TFHUB_CACHE_DIR), then a download of the handle.")
flags.DEFINE_boolean("inception_download", True, "May download TF-GAN's Inception handle when "
                     "no local copy is found (an offline machine fails in seconds).")
flags.DEFINE_enum("inception_resize", "tf1_bilinear", ("tf1_bilinear", "bilinear"),
                  "How images reach 299 px: TF-GAN SAGAN example's tf.compat.v1 bilinear, or TF2's.")
flags.DEFINE_enum("is_classifier", "tfgan", ("tfgan", "stackgan_cub"),
                  "Inception score network: 'tfgan' = TF-GAN's Inception; 'stackgan_cub' = also "
                  "StackGAN's CUB-finetuned Inception-v3, as AttnGAN's and StackGAN's bird IS "
                  "(metrics stackgan_cub_is_*; needs --stackgan_inception_checkpoint). FID/KID "
                  "always use TF-GAN's.")
flags.DEFINE_string("stackgan_inception_checkpoint", None, "--is_classifier=stackgan_cub: the "
                    "prefix of StackGAN's evaluation checkpoint (.../birds_valid299/"
                    "model.ckpt-5000; README 'StackGAN's Inception for the CUB IS').")
flags.DEFINE_string("eval_split", "train", "Real reference split for FID/KID/precision-recall.")
flags.DEFINE_integer("num_real_eval_samples", 50000, "Real images used at most for the reference.")
flags.DEFINE_integer("is_splits", 10, "Inception-score splits (Salimans et al.: 10).")
flags.DEFINE_integer("eval_feature_subset", 10000, "pool_3 rows per side kept for KID and "
                     "precision/recall.")
flags.DEFINE_string("real_stats_cache_dir", None, "Real-statistics cache (default: "
                    "$TFGAN_ATTENTION_CACHE/real_stats, else ~/.cache/tfgan_attention/real_stats).")
flags.DEFINE_integer("eval_timeout_secs", 3600, "continuous_eval: stop after this long without "
                     "a new checkpoint.")
flags.DEFINE_boolean("use_tpu", False, "Use TF-GAN's TPUGANEstimator (on CPU unless --tpu).")
flags.DEFINE_string("tpu", None, "TPU name or address for TPUGANEstimator.")
flags.DEFINE_enum("distribution", "none", ("none", "one_device", "mirrored", "multi_worker"),
                  "Multi-device training through tf.distribute: 'mirrored' = all local GPUs "
                  "(MirroredStrategy), 'multi_worker' = the cluster in TF_CONFIG "
                  "(MultiWorkerMirroredStrategy), 'one_device' = the same in-graph step on one "
                  "device, 'none' = TF-GAN's GANEstimator. --batch_size is the global batch.")
flags.DEFINE_enum("engine", "in_graph", ENGINES,
                  "Training step on one device (--distribution=none): 'in_graph' = one train op "
                  "per step, the model's declared step (SAGAN: GANEstimator's math without its "
                  "extra session.run for the logged loss; faster, see README 'Training speed'), "
                  "'gan_estimator' = TF-GAN's GANEstimator with its sequential train hooks.")
flags.DEFINE_enum("worker_input", "shard", WORKER_INPUTS,
                  "With several input pipelines (--distribution=multi_worker, TPU hosts): "
                  "'shard' = each worker reads its own share of the files; 'global_batch' = "
                  "each reads the one-device stream of global batches and keeps its replicas' "
                  "rows, so a step equals the one-device step (each worker decodes every "
                  "example). The noise is the one-device draw either way.")
flags.DEFINE_integer("num_devices", 0, "--distribution=mirrored: use this many local devices "
                     "(0: every GPU).")
flags.DEFINE_boolean("cross_replica_bn", True, "Batch-norm statistics over the global batch "
                     "when several replicas train (TPU and tf.distribute), as SAGAN on TPU.")
flags.DEFINE_enum("mixed_precision_dtype", "auto", ("auto", "float16", "bfloat16"),
                  "--mixed_precision compute type: auto = float16 on a GPU, bfloat16 on a CPU "
                  "with AVX512-BF16/AMX. Any other pairing is an error at start.")
flags.DEFINE_boolean("mixed_precision", False, "Grappler's mixed-precision rewrite: float16 "
                     "with dynamic loss scaling on a GPU, bfloat16 on a BF16 CPU (not wired for "
                     "--use_tpu); variables, losses, softmax, normalisation statistics and "
                     "metrics stay float32.")
flags.DEFINE_boolean("xla", False, "XLA auto-clustering (JIT) of the training graph's session "
                     "(LadaGAN's official code trains with XLA, except with the conv decoder).")
flags.DEFINE_string("checkpoint", None, "eval/export/sample: a checkpoint prefix "
                    "(default: the latest in --model_dir).")
flags.DEFINE_string("saved_model", None, "eval/sample: read this SavedModel instead.")
flags.DEFINE_integer("num_samples", 64, "sample: how many PNGs to write.")
flags.DEFINE_float("truncation", None, "sample: resample |z| entries above this value.")
flags.DEFINE_string("sample_dir", None, "sample: output directory (default under model_dir).")
flags.DEFINE_list("query_points", [], "attention_maps: query points as row:col fractions of the "
                  "image in [0, 1], e.g. 0.5:0.5 (default: the centre and the four quarter "
                  "points); each head's attention row of each point is drawn.")
flags.DEFINE_enum("interpolate_between", "seeds", ("seeds", "classes"), "interpolate: walk the "
                  "noise between seeds, or (class-conditional models) the class between classes "
                  "at fixed noise.")
flags.DEFINE_list("interpolate_seeds", [], "interpolate: the seeds the noise walks through "
                  "(default --seed,--seed+1); for a class walk, one row per seed (default "
                  "--seed). A seed's noise is the first --mode=sample draws with that --seed.")
flags.DEFINE_list("interpolate_classes", [], "interpolate: the classes a class walk goes "
                  "through (default 0,1); for a seed walk, one row per class (default: the "
                  "class --mode=sample draws first).")
flags.DEFINE_enum("interpolation", "spherical", ("spherical", "linear"),
                  "interpolate: how the noise moves between seeds (slerp or straight line).")
flags.DEFINE_integer("num_frames", 8, "interpolate: frames per segment, both ends included.")
flags.DEFINE_integer("gif_frame_ms", 100, "interpolate: display time of each GIF frame (ms).")
flags.DEFINE_string("captions_file", None, "sample, text-to-image models: a text file of "
                    "captions, one per line, to draw images for (default: held-out captions).")
flags.DEFINE_list("import_from", [], "import_weights: the authors' released files (README "
                  "'Released weights'); the model's importer reads what they determine "
                  "(widths, image size, EMA) and --model_dir, which must hold no run, becomes a "
                  "run of them.")
flags.DEFINE_boolean("dry_run", False, "Print the resolved configuration and exit.")
flags.DEFINE_boolean("log_to_console", False, "Show TensorFlow's INFO and deprecation lines on "
                     "the console too (they always go to <model_dir>/log.txt), like "
                     "--verbosity=0.")

_POSITIVE = ("max_steps", "batch_size", "save_checkpoints_steps",
             "save_summary_steps", "keep_checkpoint_max", "eval_every_steps",
             "num_eval_samples", "eval_batch_size", "num_samples",
             "num_real_eval_samples", "is_splits", "eval_feature_subset", "eval_timeout_secs")
for _name in _POSITIVE:
  flags.register_validator(_name, lambda v: v is not None and v > 0,
                           message=f"--{_name} must be a positive integer.")
for _name in ("generator_lr", "discriminator_lr"):
  flags.register_validator(_name, lambda v: v > 0, message=f"--{_name} must be positive.")
for _name in ("beta1", "beta2"):
  flags.register_validator(_name, lambda v: 0.0 <= v < 1.0, message=f"--{_name} must be in [0, 1).")
flags.register_validator("ema_decay", lambda v: 0.0 <= v < 1.0,
                         message="--ema_decay must be in [0, 1) (0 turns EMA off).")
flags.register_validator(
    "inception_path", lambda v: v is None or os.path.isfile(os.path.join(v, "saved_model.pb")),
    message="--inception_path must be a directory holding TF-GAN's Inception module "
            "(saved_model.pb with logits and pool_3 outputs).")
flags.register_multi_flags_validator(
    ["is_classifier", "stackgan_inception_checkpoint"],
    lambda v: (v["is_classifier"] != "stackgan_cub" or v["stackgan_inception_checkpoint"] is None
               or os.path.isfile(v["stackgan_inception_checkpoint"] + ".index")),
    message="--stackgan_inception_checkpoint must be a checkpoint prefix (PREFIX.index exists), "
            "e.g. inception_finetuned_models/birds_valid299/model.ckpt-5000 from the Google "
            "Drive link of github.com/hanzhanggit/StackGAN-inception-model.")
flags.register_validator("max_words", lambda v: v >= 0,
                         message="--max_words must be >= 0 (0: the dataset's default).")
flags.register_validator("num_devices", lambda v: v >= 0,
                         message="--num_devices must be >= 0 (0: every local GPU).")
flags.register_multi_flags_validator(
    ["distribution", "mode", "model"],
    lambda v: v["distribution"] != "multi_worker" or v["mode"] == "train"
    or (v["model"] in model_names() and v["mode"] in get_model(v["model"]).multi_worker_modes),
    message="--distribution=multi_worker trains (--mode=train on every worker, same "
            "--model_dir, or a training mode of the model's own such as AttnGAN's "
            "pretrain_damsm); evaluate with --mode=continuous_eval in a separate process.")
flags.register_multi_flags_validator(
    ["distribution", "use_tpu", "num_devices"],
    lambda v: not (v["use_tpu"] and v["distribution"] != "none")
    and not (v["num_devices"] and v["distribution"] != "mirrored"),
    message="--use_tpu runs TF-GAN's TPUGANEstimator and takes no --distribution; "
            "--num_devices applies to --distribution=mirrored only.")
flags.register_multi_flags_validator(
    ["captions_file", "mode", "model"],
    lambda v: v["captions_file"] is None or (v["mode"] == "sample"
                                             and "sample" in get_model(v["model"]).modes),
    message="--captions_file applies to --mode=sample of a text-to-image model (--model="
            + "|".join(m for m in model_names() if "sample" in get_model(m).modes) + ").")
flags.register_multi_flags_validator(
    ["import_from", "mode"],
    lambda v: bool(v["import_from"]) == (v["mode"] == "import_weights"),
    message="--mode=import_weights reads --import_from=PATH[,PATH...] (the released files); "
            "--import_from applies to --mode=import_weights only.")
flags.register_validator("truncation", lambda v: v is None or v > 0,
                         message="--truncation must be positive.")
flags.register_validator("num_frames", lambda v: v >= 2,
                         message="--num_frames must be at least 2 (both ends of a segment).")
flags.register_validator("gif_frame_ms", lambda v: v > 0,
                         message="--gif_frame_ms must be positive.")


def _check_query_points(values):
  if not values:
    return True
  from estimators import figures  # pylint: disable=import-outside-toplevel
  try:
    figures.parse_query_points(values)
  except ValueError as e:
    raise flags.ValidationError(f"--query_points: {e}") from None
  return True


flags.register_validator("query_points", _check_query_points)


def _ints(values, flag):
  try:
    return [int(v) for v in values]
  except ValueError:
    raise flags.ValidationError(f"--{flag}={','.join(values)} must be integers") from None


def _check_interpolate(v):
  """A walk the model and dataset can make, checked before anything is built."""
  if v["mode"] != "interpolate":
    return True
  _ints(v["interpolate_seeds"], "interpolate_seeds")
  classes = _ints(v["interpolate_classes"], "interpolate_classes")
  from data import get_spec  # pylint: disable=import-outside-toplevel
  try:
    dataset = get_spec(v["dataset"])
  except ValueError:
    return True  # the dataset check says what is wrong
  num_classes = dataset.num_classes if get_model(v["model"]).conditional else 0
  walking = "interpolate_seeds" if v["interpolate_between"] == "seeds" else "interpolate_classes"
  if v[walking] and len(v[walking]) < 2:
    raise flags.ValidationError(f"--{walking} needs at least 2 points to walk between")
  if classes and not num_classes:
    raise flags.ValidationError(
        f"--interpolate_classes: --model={v['model']} on --dataset={v['dataset']} is "
        "unconditional (no classes)")
  if v["interpolate_between"] == "classes" and not num_classes:
    raise flags.ValidationError(
        f"--interpolate_between=classes needs a class-conditional model and dataset; "
        f"--model={v['model']} on --dataset={v['dataset']} has no classes: walk between seeds")
  bad = [c for c in classes if not 0 <= c < num_classes]
  if bad:
    raise flags.ValidationError(f"--interpolate_classes: {bad[0]} is not a class of "
                                f"--dataset={v['dataset']} (0..{num_classes - 1})")
  return True


flags.register_multi_flags_validator(
    ["mode", "model", "dataset", "interpolate_between", "interpolate_seeds",
     "interpolate_classes"], _check_interpolate)


def _is_dir(path):
  if "://" in path:  # gs://, s3://, ...: ask the filesystem TensorFlow reads it with
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf.io.gfile.isdir(path)
  return os.path.isdir(path)


def _dataset_problem(values):
  """Why dataset, data and image-size flags cannot work together, or None."""
  from data import get_spec  # pylint: disable=import-outside-toplevel
  from data.registry import parse_options  # pylint: disable=import-outside-toplevel
  try:
    spec = get_spec(values["dataset"])
  except ValueError as e:
    return str(e)
  if spec.needs_data_dir and not values["data_dir"]:
    return (f"--dataset={spec.name} reads files and needs --data_dir (nothing is downloaded). "
            f"Expected: {spec.description}")
  if values["data_dir"] and not _is_dir(values["data_dir"]):
    return f"--data_dir={values['data_dir']} does not exist or is not a directory."
  if values["max_words"] and not spec.has_captions:
    return f"--max_words applies to caption datasets; --dataset={spec.name} has no captions."
  try:
    parse_options(spec.name, values["data_options"])
  except ValueError as e:
    return f"--data_options: {e}"
  return None


def _check_run_flags(values):
  """Dataset flags, then the model's: its hyperparameters against the dataset and image size."""
  problem = _dataset_problem(values)
  if problem is None:
    from data import get_spec  # pylint: disable=import-outside-toplevel
    problem = model_flags.problem(values, get_spec(values["dataset"]),
                                  present=model_flags.present_flags(FLAGS))
  if problem:
    raise flags.ValidationError(problem)
  return True


flags.register_multi_flags_validator(
    ["dataset", "data_dir", "image_size", "max_words", "data_options", "model", "mode"]
    + model_flags.flag_names(), _check_run_flags)


TRAIN_MODES = ("train", "train_and_eval")


def _may_start_a_run(mode):
  return mode in TRAIN_MODES or any(mode in get_model(m).starting_modes for m in model_names())


def rerun_argv(argv):
  """argv with the run directory's saved settings (run_config.json) put before the flags given,
  so that a flag not given takes the run's value (README "The run directory").

  The flags are parsed once without validation (a copy of FLAGS) to learn which were given and
  where the run is; FLAGS itself is parsed, and validated, once, by the caller.
  Raises:
    run_settings.RunSettingsError: a network flag contradicts the run, or the mode needs a run
      and --model_dir holds none.
    flags.Error: a flag absl cannot parse.
  """
  from estimators import run_settings  # pylint: disable=import-outside-toplevel
  scratch = copy.deepcopy(FLAGS)
  for name in scratch:
    scratch[name].validators = []
  scratch(argv)
  given = {scratch[n].name: scratch[n].value for n in scratch if scratch[n].present}
  mode = scratch["mode"].value
  if mode == "import_weights":  # the files' values, checked against the flags given
    from estimators import weights_import  # pylint: disable=import-outside-toplevel
    values = weights_import.import_flags(scratch["model_dir"].value,
                                         scratch["import_from"].value, given)
  else:
    values = run_settings.rerun_flags(
        scratch["model_dir"].value, mode, given, set(FLAGS),
        may_start=_may_start_a_run(mode),
        needs_run=not (given.get("saved_model") or given.get("checkpoint"))
        and mode != "continuous_eval")
  head, tail = [], []  # saved values first; a merged --data_options after the given one
  for name, value in sorted(values.items()):
    scratch[name].value = value
    text = scratch[name].serialize()
    if text:
      (tail if name in given else head).append(text)
  return [argv[0]] + head + list(argv[1:]) + tail


def parse_flags(argv):
  """app.run's flag parser: absl's, with the run's saved settings (rerun_argv)."""
  from estimators.run_settings import RunSettingsError  # pylint: disable=import-outside-toplevel
  from estimators.model_registry import WeightsImportError  # pylint: disable=import-outside-toplevel
  try:
    argv = rerun_argv(argv)
  except flags.Error:
    pass  # absl's own parse below reports it, with its usage line
  except (RunSettingsError, WeightsImportError) as e:
    sys.exit(f"error: {e}")
  return app.parse_flags_with_usage(argv)


# The run-wide flags a model's own modes receive (as a dict).
MODE_OPTIONS = ("checkpoint", "saved_model", "num_samples", "sample_dir", "seed", "truncation",
                "captions_file")
# Run-wide flags a model may default differently (ModelSpec.run_defaults).
RUN_FLAGS = ("generator_lr", "discriminator_lr", "beta1", "beta2", "ema_decay",
             *training_step.FIELDS)


def config_from_flags():
  from data import get_spec  # pylint: disable=import-outside-toplevel
  from data.registry import resolved_options  # pylint: disable=import-outside-toplevel
  from estimators.config import GANConfig  # pylint: disable=import-outside-toplevel
  spec = get_spec(FLAGS.dataset)
  spec_defaults = get_model(FLAGS.model).run_defaults
  run = {name: (spec_defaults[name] if name in spec_defaults and not FLAGS[name].present
                else FLAGS[name].value) for name in RUN_FLAGS}
  return GANConfig(
      model=FLAGS.model, hparams=model_flags.hparams_from_flags(FLAGS),
      dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
      strict_data=FLAGS.strict_data, max_words=FLAGS.max_words,
      data_options=tuple(resolved_options(spec.name, FLAGS.data_options).items()),
      model_dir=FLAGS.model_dir, image_size=FLAGS.image_size, num_classes=spec.num_classes,
      batch_size=FLAGS.batch_size, max_steps=FLAGS.max_steps, seed=FLAGS.seed,
      **run,
      save_checkpoints_steps=FLAGS.save_checkpoints_steps,
      save_summary_steps=FLAGS.save_summary_steps, keep_checkpoint_max=FLAGS.keep_checkpoint_max,
      use_tpu=FLAGS.use_tpu, tpu=FLAGS.tpu, distribution=FLAGS.distribution, engine=FLAGS.engine,
      num_devices=FLAGS.num_devices, worker_input=FLAGS.worker_input,
      cross_replica_bn=FLAGS.cross_replica_bn,
      mixed_precision=FLAGS.mixed_precision, mixed_precision_dtype=FLAGS.mixed_precision_dtype,
      xla=FLAGS.xla,
      eval_every_steps=FLAGS.eval_every_steps,
      num_eval_samples=FLAGS.num_eval_samples, eval_batch_size=FLAGS.eval_batch_size,
      inception_path=FLAGS.inception_path,
      inception_download=FLAGS.inception_download, inception_resize=FLAGS.inception_resize,
      is_classifier=FLAGS.is_classifier,
      stackgan_inception_checkpoint=FLAGS.stackgan_inception_checkpoint,
      eval_split=FLAGS.eval_split, num_real_eval_samples=FLAGS.num_real_eval_samples,
      is_splits=FLAGS.is_splits, eval_feature_subset=FLAGS.eval_feature_subset,
      real_stats_cache_dir=FLAGS.real_stats_cache_dir, eval_timeout_secs=FLAGS.eval_timeout_secs)


def main(argv):
  del argv
  try:
    cfg = config_from_flags()
  except training_step.StepError as e:
    sys.exit(f"error: {e}")
  if FLAGS.dry_run:
    print(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))  # stdout: JSON only
    print(model_flags.parameter_table(cfg), file=sys.stderr)
    return
  from estimators.engines import cluster  # pylint: disable=import-outside-toplevel
  from estimators import console  # pylint: disable=import-outside-toplevel,redefined-outer-name
  worker = "" if cluster.is_chief() else f".{cluster.task_name()}"
  console.install(cfg.model_dir, filename=f"log{worker}.txt", log_to_console=FLAGS.log_to_console,
                  verbosity=FLAGS.verbosity if FLAGS["verbosity"].present else None)
  from data.bad_records import StrictDataError  # pylint: disable=import-outside-toplevel
  from estimators.losses import NonFiniteLossError  # pylint: disable=import-outside-toplevel
  from eval.inception import InceptionUnavailableError  # pylint: disable=import-outside-toplevel
  from estimators.engines.cluster import DistributionError  # pylint: disable=import-outside-toplevel
  from estimators.engines.precision import MixedPrecisionError  # pylint: disable=import-outside-toplevel
  from estimators.experiment import NoTrainingDataError  # pylint: disable=import-outside-toplevel
  from estimators.model_registry import WeightsImportError  # pylint: disable=import-outside-toplevel
  from data.bad_records import data_error_message  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  try:
    if FLAGS.cpu_devices:  # before TensorFlow makes its devices
      cluster.split_cpu(FLAGS.cpu_devices)
    _run_mode(cfg)
  except (NonFiniteLossError, InceptionUnavailableError, StrictDataError, DistributionError,
          training_step.StepError,
          MixedPrecisionError, NoTrainingDataError, WeightsImportError, FileNotFoundError) as e:  # FileNotFoundError includes data.layout.DataLayoutError
    sys.exit(f"error: {e}")
  except tf.errors.OpError as e:  # a data check inside the input pipeline: say what, not where
    message = data_error_message(e)
    if message is None:
      raise
    sys.exit(f"error: {message}")


def _run_mode(cfg):
  from estimators import experiment, run_dir  # pylint: disable=import-outside-toplevel
  from estimators.engines import cluster, plan  # pylint: disable=import-outside-toplevel
  mode = FLAGS.mode
  if mode in TRAIN_MODES:
    # devices, TF_CONFIG, batch split, the engine against the model's step, --mixed_precision
    # where it cannot help: an error before any write
    plan.resolve(cfg)
  if mode in TRAIN_MODES and cluster.is_chief():
    get_model(cfg.model).prepare(cfg)  # e.g. a DAMSM pretrained first (AttnGAN)
    run_dir.write_run_config(cfg.model_dir, cfg.to_dict(), sys.argv)
  if mode in TRAIN_MODES:
    point = run_dir.resume_point(cfg.model_dir)  # TensorFlow's own line goes to log.txt only
    if point:
      print(f"resuming from step {point[0]}: {point[1]}")
  if mode == "train":
    print(f"checkpoint: {experiment.run_train(cfg)}")
  elif mode == "train_and_eval":
    experiment.run_train_and_eval(cfg)
    path = experiment.run_export(cfg)
    _print_locations(cfg, path)
  elif mode == "eval":
    try:
      record = experiment.run_eval(cfg, checkpoint=FLAGS.checkpoint,
                                   saved_model=FLAGS.saved_model)
    finally:
      experiment.report_bad_records(cfg)
    print(json.dumps({"step": record["step"], "metrics": record["metrics"]}, indent=2))
  elif mode == "continuous_eval":
    experiment.run_continuous_eval(cfg)
  elif mode == "import_weights":
    from estimators import weights_import  # pylint: disable=import-outside-toplevel
    record = weights_import.write_run(cfg, FLAGS.import_from, sys.argv)
    print(f"imported {len(record['variables'])} variables ({len(record['left_out'])} groups left "
          f"out, see imported.json) into {record['directory']}: {record['checkpoint']}")
  elif mode == "export":
    print(f"SavedModel: {experiment.run_export(cfg, checkpoint=FLAGS.checkpoint)}")
  elif mode == "attention_maps":
    from estimators import figures  # pylint: disable=import-outside-toplevel
    paths = figures.run_attention_maps(
        cfg, FLAGS.num_samples, seed=FLAGS.seed, truncation=FLAGS.truncation,
        checkpoint=FLAGS.checkpoint, saved_model=FLAGS.saved_model, out_dir=FLAGS.sample_dir,
        query_points=figures.parse_query_points(FLAGS.query_points))
    print("attention maps: " + ", ".join(paths))
  elif mode == "interpolate":
    from estimators import interpolate  # pylint: disable=import-outside-toplevel
    out_dir, frames = interpolate.run_interpolate(
        cfg, FLAGS.interpolate_between, seeds=[int(s) for s in FLAGS.interpolate_seeds] or None,
        classes=[int(c) for c in FLAGS.interpolate_classes] or None,
        num_frames=FLAGS.num_frames, method=FLAGS.interpolation, truncation=FLAGS.truncation,
        checkpoint=FLAGS.checkpoint, saved_model=FLAGS.saved_model, out_dir=FLAGS.sample_dir,
        frame_ms=FLAGS.gif_frame_ms, seed=FLAGS.seed)
    print(f"latent walk ({frames.shape[0]} x {frames.shape[1]} frames): "
          f"{os.path.join(out_dir, 'grid.png')}, walk.gif, walk.json")
  elif mode in get_model(cfg.model).modes:
    get_model(cfg.model).modes[mode](cfg, {
        **{name: FLAGS[name].value for name in MODE_OPTIONS},
        "mode_options": model_flags.mode_options_from_flags(FLAGS)})  # the mode's own flags
  elif mode == "sample":
    out_dir, _ = experiment.run_sample(
        cfg, FLAGS.num_samples, out_dir=FLAGS.sample_dir, checkpoint=FLAGS.checkpoint,
        saved_model=FLAGS.saved_model, seed=FLAGS.seed, truncation=FLAGS.truncation)
    print(f"{FLAGS.num_samples} PNGs in {out_dir}")


def _print_locations(cfg, saved_model):
  from estimators import run_dir  # pylint: disable=import-outside-toplevel
  records = run_dir.read_jsonl(os.path.join(cfg.model_dir, "metrics.jsonl"))
  print("\nDone. Everything is in", os.path.abspath(cfg.model_dir))
  print(f"  TensorBoard:   tensorboard --logdir {cfg.model_dir}")
  print(f"  run config:    {os.path.join(cfg.model_dir, 'run_config.json')}")
  print(f"  metrics:       {os.path.join(cfg.model_dir, 'metrics.jsonl')}")
  print(f"  sample grids:  {os.path.join(cfg.model_dir, 'samples')}")
  print(f"  SavedModel:    {saved_model}")
  if records:
    first, last = records[0], records[-1]
    for name, value in last["metrics"].items():
      before = first["metrics"].get(name)
      if value is not None and before is not None:
        print(f"  {name}: step {first['step']}: {before:.4g} -> step {last['step']}: {value:.4g}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
