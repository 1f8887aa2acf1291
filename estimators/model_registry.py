"""Model registry: each model is one module that registers a `ModelSpec` here by name.

A spec bundles everything specific to a model, so the engines (GANEstimator, TPUGANEstimator,
the tf.distribute step), export, evaluation and run.py never name one:

  hparams_class         frozen dataclass of the model's hyperparameters, paper defaults, each
                        field made with `hparam(...)` (help text, choices, checks); run.py turns
                        every field into an absl flag
  validate              the hyperparameters against the dataset and image size (flag parsing)
  make_generator /      Keras networks, built once per graph (estimators.networks)
  make_discriminator
  generator_inputs      per-example generator inputs the training input_fn draws (noise, labels..)
  sample_inputs         the same for evaluation, sampling and sample grids (numpy)
  generate /            the forward passes TF-GAN's generator_fn / discriminator_fn run
  discriminate
  generator_loss /      (loss, {tag: scalar}) from TF-GAN's GANModel: every extra term included
  discriminator_loss
  *_summaries           TensorBoard summaries of the train graph (attention maps...)
  serving_signature     the SavedModel's serving_default inputs; `images` is the output
  extra_signatures      more SavedModel signatures ('attention' when the model has maps,
                        'class_mixture' when it can mix classes)
  attention             per-head attention maps over the image (--mode=attention_maps):
                        per-token weights [B, heads, N] or query-key matrices
                        [B, heads, Nq, Nk]
  class_mixture_inputs  generator inputs with the class given as weights over the classes
                        (--mode=interpolate between classes)
  serving_outputs       serving_default's outputs (default {'images'})
  run_defaults          run flags the model defaults differently (LadaGAN's Adam betas, EMA,
                        its training step's flags)
  training_step         the step every engine executes (estimators/engines/training_step.py): order
                        of the sub-steps, fresh or shared fakes, Adam's epsilon, BN updates,
                        what the EMA averages, the BN moving-variance estimator
  modes                 extra run.py modes (name -> fn(cfg, options))
  starting_modes        those of them that, like train, may start in a directory that holds no
                        run yet (the others need one; README "The run directory")
  multi_worker_modes    those of them that, like train, run under --distribution=multi_worker
                        (the same command on every worker)
  mode_options          per extra mode, a frozen dataclass of its own flags (`hparam` fields)
  prepare               what must exist before training (default nothing)
  extra_metrics         metrics beyond the dataset's at evaluation (default none)
  read_release /        the authors' released weights (--mode=import_weights): what the files
  import_weights        determine (flags), then every variable of a run's checkpoint from them
                        (`has_importer`; estimators/weights_import.py writes the run)

The base class implements the "noise [B, z] (+ class labels [B]) in, {'images', 'labels'} out"
contract that SAGAN, YLG-SAGAN and an unconditional GAN share; a model with other inputs or
outputs overrides the methods concerned. Models register in `estimators.models` (imported by
`estimators.models.get_model`), so this module imports none of them.
"""
import dataclasses
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from estimators.engines.training_step import TrainingStep

IMAGES = "images"  # the generator output key evaluation, grids and export read


def hparam(default, help_text, *, choices=None, check=None, cli_default=dataclasses.MISSING,
           may_change=False):
  """A hyperparameter field: its paper default, its flag's help text, allowed values.

  Args:
    default: the paper's value (the dataclass default; configs/*.cfg restate it).
    help_text: the flag's help.
    choices: allowed values of a string field (the flag becomes an enum).
    check: (predicate, message) a value must satisfy, e.g. `POSITIVE`.
    cli_default: the value `python run.py` uses when the flag is not given, when it differs from
      the paper's (the embedded digits job is small); it is validated like any value.
    may_change: the field does not decide what the run's variables are or how they trained (an
      evaluation or sampling option, a file's location, how long a pretraining runs): a rerun on
      the run directory may give another value than the saved one (estimators/run_settings.py).
      Every other field is part of the network: a rerun that contradicts it is an error.
  """
  metadata = {"help": help_text, "choices": tuple(choices) if choices else None, "check": check,
              "may_change": may_change}
  if cli_default is not dataclasses.MISSING:
    metadata["cli_default"] = cli_default
  return dataclasses.field(default=default, metadata=metadata)


POSITIVE = (lambda v: v > 0, "must be positive")
UNIT_INTERVAL = (lambda v: 0.0 < v < 1.0, "must be in (0, 1)")


def hparam_fields(hparams_class):
  return dataclasses.fields(hparams_class)


def check_hparams(hparams) -> Optional[str]:
  """The first field that breaks its declared choices or check, as a message, or None."""
  for field in dataclasses.fields(hparams):
    value = getattr(hparams, field.name)
    choices = field.metadata.get("choices")
    if choices and value not in choices:
      return f"--{field.name}={value!r} is not one of {choices}."
    check = field.metadata.get("check")
    if check and not check[0](value):
      return f"--{field.name}={value!r} {check[1]}."
  return None


def cli_default(field):
  return field.metadata.get("cli_default", field.default)


class ModelSpec:
  """A model: subclass, set `name`, `description` and `hparams_class`, then `register(...)`."""
  name: str = ""
  description: str = ""
  hparams_class: type = None
  conditional: bool = True   # takes class labels when the dataset has classes
  # Whether --dataset decides the run's variables (class embeddings, a vocabulary): then a rerun
  # may not change it. False for a model whose networks are the same on every dataset (an
  # unconditional image model), whose run may train on, or be scored on, another dataset.
  variables_depend_on_dataset: bool = True
  # Run-wide flags this model defaults differently (used when the flag is not given).
  run_defaults: Mapping[str, object] = {}
  # Extra run.py modes: name -> fn(cfg, options) with options the run-wide mode flags.
  modes: Mapping[str, Callable] = {}
  # Those of `modes` that may start in a directory holding no run (run_config.json) yet, as
  # train does; every other mode needs a run there (estimators/run_settings.py).
  starting_modes: Tuple[str, ...] = ()
  # Those of `modes` that train under --distribution=multi_worker, as train does (the same
  # command on every worker; the mode runs the strategy itself).
  multi_worker_modes: Tuple[str, ...] = ()
  # Flags of those modes: mode name -> frozen dataclass of `hparam` fields. Each field becomes a
  # run.py flag (given with another mode: an error); the mode fn finds the instance under
  # options["mode_options"].
  mode_options: Mapping[str, type] = {}

  # --- hyperparameters ------------------------------------------------------------------------
  def validate(self, hparams, image_size: int, dataset) -> Optional[str]:
    """Why these hyperparameters cannot train on `dataset` (a DatasetSpec) at `image_size`."""
    del hparams, image_size, dataset
    return None

  def suggested_hparams(self, image_size: int) -> Dict[str, object]:
    """Hyperparameters that suit `image_size` where the paper default does not (benchmarks use
    them); a ValueError for a size the model cannot build."""
    del image_size
    return {}

  def z_dim(self, cfg) -> int:
    return cfg.hparams.z_dim

  def num_classes(self, cfg) -> int:
    return cfg.num_classes if self.conditional else 0

  def prepare(self, cfg) -> None:
    """Runs before training starts (train, train_and_eval; on the chief, before run_config.json
    is written): what the model needs first, e.g. AttnGAN pretraining its DAMSM when asked to
    and none exists. Default: nothing."""
    del cfg

  def training_step(self, cfg):
    """The training step the engines run: the run's step flags (this model's `run_defaults`
    where a flag is not given; TF-GAN's step otherwise)."""
    return TrainingStep.from_config(cfg)

  # --- networks -------------------------------------------------------------------------------
  def make_generator(self, cfg) -> tf.keras.Model:
    raise NotImplementedError

  def make_discriminator(self, cfg) -> tf.keras.Model:
    raise NotImplementedError

  def build_networks(self, cfg) -> Dict[str, tf.keras.Model]:
    """Every network, built eagerly with variables (--dry_run's parameter table)."""
    generator = self.make_generator(cfg)
    inputs = {k: tf.constant(v) for k, v in self.build_inputs(cfg, 2).items()}
    outputs = self.generate(cfg, generator, inputs, training=False)
    discriminator = self.make_discriminator(cfg)
    self.discriminate(cfg, discriminator, outputs, inputs, training=False)
    return {"generator": generator, "discriminator": discriminator}

  # --- inputs ---------------------------------------------------------------------------------
  def generator_inputs(self, cfg, rows, seed, real) -> Dict[str, tf.Tensor]:
    """Training inputs of examples `rows` [B]: noise [B, z] ~ N(0, 1) and (class-conditional)
    fake labels [B] ~ uniform, row i a function of (seed, rows[i]) only, so draws do not depend
    on how a batch is split over replicas. `real` is the real batch (caption models read it)."""
    del real
    num_classes = self.num_classes(cfg)
    z_dim = self.z_dim(cfg)

    def one(row):
      row_seed = tf.random.experimental.stateless_fold_in(seed, row)
      noise = tf.random.stateless_normal([z_dim], seed=row_seed)
      label = tf.random.stateless_uniform(
          [], seed=tf.random.experimental.stateless_fold_in(row_seed, 1), minval=0,
          maxval=max(num_classes, 1), dtype=tf.int32)
      return noise, label
    noise, labels = tf.map_fn(one, rows, fn_output_signature=(tf.float32, tf.int32))
    return {"noise": noise, "labels": labels} if num_classes else {"noise": noise}

  def sample_inputs(self, cfg, num, seed, truncation=None, labels=None) -> Dict[str, np.ndarray]:
    """Evaluation / sampling inputs: noise (entries beyond +/- truncation resampled) and, for
    class-conditional models, `labels` or uniform ones."""
    rng = np.random.RandomState(seed)
    z = rng.standard_normal((num, self.z_dim(cfg)))
    if truncation:
      if truncation <= 0:
        raise ValueError(f"truncation must be positive, got {truncation}")
      bad = np.abs(z) > truncation
      while bad.any():
        z[bad] = rng.standard_normal(bad.sum())
        bad = np.abs(z) > truncation
    inputs = {"noise": z.astype(np.float32)}
    num_classes = self.num_classes(cfg)
    if num_classes:
      if labels is None:
        labels = np.random.RandomState(seed + 1).randint(0, num_classes, num)
      inputs["labels"] = np.asarray(labels, np.int32)
    return inputs

  def build_inputs(self, cfg, num) -> Dict[str, np.ndarray]:
    """Inputs of `num` rows that only create the generator's variables (export, --dry_run): no
    data may be read (an exported or imported run need not have its dataset at hand)."""
    return self.sample_inputs(cfg, num, seed=0)

  def fixed_inputs(self, cfg) -> Dict[str, np.ndarray]:
    """The same inputs at every step and on every rerun, so sample grids are comparable."""
    num_classes = self.num_classes(cfg)
    num = min(64, max(16, 4 * max(num_classes, 1)))
    rng = np.random.RandomState(cfg.seed + 12345)
    inputs = {"noise": rng.standard_normal((num, self.z_dim(cfg))).astype(np.float32)}
    if num_classes:
      inputs["labels"] = (np.arange(num) % num_classes).astype(np.int32)
    return inputs

  def grid_columns(self, cfg, num) -> int:
    num_classes = self.num_classes(cfg)
    return num_classes if num_classes and num % num_classes == 0 else 8

  # --- forward passes (TF-GAN's generator_fn / discriminator_fn call these) -------------------
  def generate(self, cfg, generator, inputs, training) -> Dict[str, tf.Tensor]:
    """{'images' [B, S, S, 3] in [-1, 1], ...}: what the discriminator and the losses see."""
    raise NotImplementedError

  def discriminate(self, cfg, discriminator, data, inputs, training):
    """Logits (any structure) for `data`: the real batch or `generate`'s output."""
    raise NotImplementedError

  def images(self, outputs) -> tf.Tensor:
    return outputs[IMAGES]

  # --- losses ---------------------------------------------------------------------------------
  def generator_loss(self, cfg, gan_model) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    raise NotImplementedError

  def discriminator_loss(self, cfg, gan_model) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    raise NotImplementedError

  # --- summaries (train graph; once per graph and network, first replica, not on TPU) ---------
  def generator_summaries(self, cfg, generator) -> None:
    """Default: the fixed-input image grid."""
    from estimators import summaries  # pylint: disable=import-outside-toplevel
    inputs = {k: tf.constant(v) for k, v in self.fixed_inputs(cfg).items()}
    images = self.images(self.generate(cfg, generator, inputs, training=False))
    summaries.add_image_grid("fixed_noise_grid", images,
                             self.grid_columns(cfg, int(images.shape[0])))

  def discriminator_summaries(self, cfg, discriminator) -> None:
    del cfg, discriminator

  # --- evaluation -----------------------------------------------------------------------------
  def extra_metrics(self, cfg):
    """Metrics of this model beyond the dataset's (AttnGAN: R-precision), or None (default).

    An object with `update(inputs, images)`, called for every generated batch of an evaluation
    (`inputs`: that batch's rows of `sample_inputs`, numpy; `images` [b, S, S, 3] in [-1, 1]),
    and `result() -> (metrics, protocol)`, merged into the evaluation's record.
    """
    del cfg
    return None

  # --- serving --------------------------------------------------------------------------------
  def serving_signature(self, cfg) -> Dict[str, tf.TensorSpec]:
    """serving_default's inputs, by name, in order."""
    signature = {"noise": tf.TensorSpec([None, self.z_dim(cfg)], tf.float32, name="noise")}
    if self.num_classes(cfg):
      signature["labels"] = tf.TensorSpec([None], tf.int32, name="labels")
    return signature

  def serving_outputs(self, cfg, outputs) -> Dict[str, tf.Tensor]:
    """serving_default's outputs from `generate`'s: {'images'} by default; a model may add more
    (AttnGAN: every stage's images)."""
    del cfg
    return {IMAGES: self.images(outputs)}

  def serving_notes(self, cfg) -> Optional[str]:
    """What a user of the exported SavedModel must know (written beside it as
    serving_notes.txt), e.g. that its output depends on the batch; None when nothing."""
    del cfg
    return None

  def extra_signatures(self, cfg, generator) -> Dict[str, Callable]:
    """More SavedModel signatures beside serving_default: name -> tf.function with an
    input_signature. Default: 'attention' when the model returns attention maps (inputs as
    serving_default, outputs 'images' and the maps), 'class_mixture' when it mixes classes
    (inputs 'noise' [N, z] and 'class_weights' [N, num_classes] -> 'images')."""
    signatures = {}
    signature = self.serving_signature(cfg)
    names = list(signature)
    if self.returns_attention_maps(cfg.hparams):
      def attention(*args):
        images, maps = self.attention(cfg, generator, dict(zip(names, args)))
        return {"images": images, **maps}
      signatures["attention"] = tf.function(attention,
                                            input_signature=list(signature.values()))
    if self.supports_class_mixing and self.num_classes(cfg):
      def class_mixture(noise, class_weights):
        inputs = self.class_mixture_inputs(cfg, noise, class_weights)
        return {"images": self.images(self.generate(cfg, generator, inputs, training=False))}
      signatures["class_mixture"] = tf.function(class_mixture, input_signature=[
          signature["noise"],
          tf.TensorSpec([None, self.num_classes(cfg)], tf.float32, name="class_weights")])
    return signatures

  # --- attention maps (--mode=attention_maps, the SavedModel's 'attention' signature) ---------
  has_attention_maps: bool = False  # True when `attention` is implemented

  def returns_attention_maps(self, hparams) -> bool:
    """Whether `attention` works with these hyperparameters (e.g. not for SAGAN's no-attention
    ablation). Default: `has_attention_maps`."""
    del hparams
    return self.has_attention_maps

  def attention(self, cfg, generator, inputs):
    """(images [B, S, S, 3] in [-1, 1], {name: maps}), each map either
      [B, heads, N]: each head's weight per position of a square token grid over the image
        (LadaGAN's per-token attention), or
      [B, heads, Nq, Nk]: each head's query-key attention matrix, rows (queries, raster order on
        a square grid over the image) summing to 1 over the keys (raster order on a square
        grid over the image): SAGAN / YLG. estimators/figures.py draws the rows of chosen query
        points and each key's saliency (its attention averaged over the queries)."""
    raise NotImplementedError(f"{self.name} returns no attention maps")

  # --- class mixing (--mode=interpolate between classes, the 'class_mixture' signature) -------
  supports_class_mixing: bool = False  # True when `class_mixture_inputs` is implemented

  def class_mixture_inputs(self, cfg, noise, class_weights) -> Dict[str, tf.Tensor]:
    """`generate`'s inputs for noise [B, z] with the class given as weights [B, num_classes]
    (rows summing to 1) that mix the classes' embeddings; a one-hot row must give exactly the
    image of that class's label. Models that cannot mix leave supports_class_mixing False
    (--mode=interpolate then switches class at each segment's midpoint, see interpolate.py)."""
    raise NotImplementedError(f"{self.name} cannot mix class embeddings")

  # --- the authors' released weights (--mode=import_weights) ----------------------------------
  has_importer: bool = False  # True when read_release and import_weights are implemented

  def read_release(self, paths) -> "ReleasedWeights":
    """Reads released files (paths as given to --import_from) and returns what they determine.
    Raises WeightsImportError for files of another format or model (say what was expected)."""
    raise NotImplementedError(f"{self.name} has no importer of released weights")

  def import_weights(self, cfg, release: "ReleasedWeights") -> "ImportResult":
    """The run's checkpoint from `release`, for `cfg` (the flags validated, the files' values
    in them). Raises WeightsImportError naming missing source keys (all of them) and shapes that
    differ (key and both shapes)."""
    raise NotImplementedError(f"{self.name} has no importer of released weights")


@dataclasses.dataclass(frozen=True)
class ReleasedWeights:
  """What an importer read from released files, before any flag is validated.

  flags:   {flag name: value} the files determine (hyperparameters, --image_size, --ema_decay,
           the optimiser settings of the release): a flag given with another value is an error.
  files:   every file read (imported.json records each with its sha256).
  release: facts about the release for imported.json (e.g. images seen, the authors' own FID).
  source:  the importer's handle on the files (import_weights reads the tensors through it).
  """
  flags: Mapping[str, object]
  files: Tuple[str, ...]
  release: Mapping[str, object]
  source: object = None


@dataclasses.dataclass(frozen=True)
class ImportResult:
  """The checkpoint of an imported run.

  variables: {checkpoint key: numpy value}: every key the engines, eval, sample and export read
             (estimators/weights_import.py checks none is missing).
  sources:   {checkpoint key: the source key (file + key) it came from}.
  left_out:  {source key or group: why it was not imported} (e.g. optimiser slots).
  step:      the global_step written (export and sample name their outputs by it).
  not_released: {checkpoint key prefix: why}: variables of the run (e.g. 'Discriminator/') that
             the release does not hold, so none is written (never an initial value passed off as
             imported); evaluation, sampling and export must not read them. Training on the run
             initialises them fresh and says so (estimators/train_from_import.py).
  directory: set when the files make no run and the importer wrote this directory instead
             (AttnGAN's DAMSM from the DAMSM files alone): imported.json goes there, no
             checkpoint or run_config.json is written, and `variables` stays empty.
  """
  variables: Mapping[str, np.ndarray]
  sources: Mapping[str, str]
  left_out: Mapping[str, str]
  step: int
  directory: str = ""
  not_released: Mapping[str, str] = dataclasses.field(default_factory=dict)


class WeightsImportError(ValueError):
  """Released files that cannot become a run: another format or model, missing keys, shapes or
  settings that contradict the flags given."""


MODELS: Dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
  """Adds `spec` under spec.name (a second model of the same name is an error)."""
  if not spec.name:
    raise ValueError(f"{type(spec).__name__} has no name")
  if spec.name in MODELS:
    raise ValueError(f"model {spec.name!r} is registered twice")
  if spec.hparams_class is None or not dataclasses.is_dataclass(spec.hparams_class):
    raise ValueError(f"model {spec.name!r} needs a frozen dataclass as hparams_class")
  MODELS[spec.name] = spec
  return spec


def unregister(name: str) -> None:
  """Removes a model (tests that register a throwaway model clean up with this)."""
  MODELS.pop(name, None)


def get_model(name: str) -> ModelSpec:
  if name not in MODELS:
    raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(names())}")
  return MODELS[name]


def names() -> Tuple[str, ...]:
  return tuple(sorted(MODELS))


def default_hparams(name: str, **changes):
  """The model's hyperparameters at their paper defaults, with `changes`."""
  return get_model(name).hparams_class(**changes)


def cli_hparams(name: str, given: Mapping[str, object]):
  """The hyperparameters run.py builds: `given` flag values over each field's cli_default."""
  spec = get_model(name)
  values = {f.name: cli_default(f) for f in dataclasses.fields(spec.hparams_class)}
  values.update({k: v for k, v in given.items() if v is not None})
  return spec.hparams_class(**values)


def parameter_counts(networks: Mapping[str, tf.keras.Model]):
  """[(name, trainable, total)] of built networks (total includes BN moving statistics and
  spectral-norm vectors, as Keras counts them)."""
  rows = []
  for name, net in networks.items():
    trainable = int(sum(np.prod(v.shape) for v in net.trainable_variables))
    total = int(sum(np.prod(v.shape) for v in net.variables))
    rows.append((name, trainable, total))
  return rows
