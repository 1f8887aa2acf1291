"""A model's own training step, declared through the registry and executed by every engine.

`TrainingStep` names each choice the papers' official code makes around the networks and
losses. A model declares its defaults as `run_defaults` (the flag values used when the flag is
not given); `ModelSpec.training_step(cfg)` returns the step the run uses, and every engine
executes that step or refuses to start (`check_engine`): nothing is approximated silently.

  step_order            'generator_first' (TF-GAN GANEstimator's sequential hooks: SAGAN, YLG)
                        or 'discriminator_first' (LadaGAN's train_step, AttnGAN's trainer,
                        TPUGANEstimator)
  step_fakes            'fresh': each sub-step draws its own noise (and, from the input
                        pipeline, its own generator inputs: TF-GAN, LadaGAN); 'shared': one draw
                        and one generator forward per step, D steps on those fakes, then G's
                        loss on the same fakes against the updated D (AttnGAN's trainer)
  adam_epsilon          Adam's epsilon (TF1 Adam 1e-8; Keras Adam 1e-7; PyTorch 1e-8)
  adam_epsilon_form     'tf': epsilon added to the uncorrected sqrt(v) (TF1 and Keras Adam's
                        "epsilon hat"); 'pytorch': to the bias-corrected sqrt(v_hat)
  generator_bn_updates  'generator_step': G's batch-norm moving statistics update in G's own
                        sub-step only (TF-GAN); 'both_steps': also from G's forward in D's
                        sub-step, that one first (LadaGAN: G runs with training=True in both)
  ema_variables         'trainable': the EMA averages G's trainable weights (AttnGAN's
                        avg_param_G); 'all': every G variable, batch-norm moving statistics
                        included (LadaGAN: zip(generator.weights, ema_generator.weights))
  bn_moving_variance    'biased' (tf.nn.moments: TF-GAN's batch norm) or 'unbiased' (the batch
                        variance x n / (n - 1): Keras' fused batch norm, PyTorch)
"""
import dataclasses

from tfgan_attention import batch_norm

ORDERS = ("generator_first", "discriminator_first")
FAKES = ("fresh", "shared")
EPSILON_FORMS = ("tf", "pytorch")
BN_UPDATES = ("generator_step", "both_steps")
EMA_VARIABLES = ("trainable", "all")
BN_VARIANCES = ("biased", "unbiased")

# The run flags (GANConfig fields) that make up a step, with their allowed values (None: a
# positive float).
FIELDS = {"step_order": ORDERS, "step_fakes": FAKES, "adam_epsilon": None,
          "adam_epsilon_form": EPSILON_FORMS, "generator_bn_updates": BN_UPDATES,
          "ema_variables": EMA_VARIABLES, "bn_moving_variance": BN_VARIANCES}

# Each flag's help (run.py); the README's reproduction notes cite the sources.
HELP = {
    "step_order": "Training step: which network's update comes first (TF-GAN's GANEstimator "
                  "and SAGAN/YLG: generator_first; LadaGAN, AttnGAN: discriminator_first).",
    "step_fakes": "Training step: 'fresh' = each sub-step draws its own noise (TF-GAN, "
                  "LadaGAN); 'shared' = one draw per step, G's loss on D's fakes against the "
                  "updated D (AttnGAN's trainer).",
    "adam_epsilon": "Adam's epsilon (TF1 Adam, PyTorch: 1e-8; Keras Adam, LadaGAN: 1e-7).",
    "adam_epsilon_form": "Where Adam adds epsilon: 'tf' = to sqrt(v) (TF1/Keras), 'pytorch' = "
                         "to the bias-corrected sqrt(v_hat) (AttnGAN).",
    "generator_bn_updates": "Which sub-steps update G's batch-norm moving statistics: "
                            "'generator_step' (TF-GAN) or 'both_steps' (LadaGAN: G in "
                            "training mode in D's sub-step too).",
    "ema_variables": "What the generator EMA averages: 'trainable' weights (AttnGAN) or 'all' "
                     "of G's variables incl. BN moving statistics (LadaGAN).",
    "bn_moving_variance": "Batch-norm moving variance: 'biased' (TF-GAN) or 'unbiased' "
                          "(Keras fused BN: LadaGAN; PyTorch: AttnGAN).",
}


class StepError(ValueError):
  """Training-step options that do not make a step (a bad value or combination)."""


class EngineCannotRunStep(StepError):
  """The chosen engine cannot execute the model's declared training step."""


@dataclasses.dataclass(frozen=True)
class TrainingStep:
  """One training step's mechanics (module docstring); the run flags' defaults (GANConfig's
  fields of the same names) are TF-GAN's (SAGAN)."""
  step_order: str
  step_fakes: str
  adam_epsilon: float
  adam_epsilon_form: str
  generator_bn_updates: str
  ema_variables: str
  bn_moving_variance: str

  def __post_init__(self):
    for name, choices in FIELDS.items():
      value = getattr(self, name)
      if choices is None:
        if not value > 0:
          raise StepError(f"--{name} must be positive, got {value!r}")
      elif value not in choices:
        raise StepError(f"--{name}={value!r} is not one of {choices}")
    if self.step_fakes == "shared" and self.step_order != "discriminator_first":
      raise StepError("--step_fakes=shared is AttnGAN's step: D steps on the fakes, then G's "
                      "loss on them against the updated D; it needs "
                      "--step_order=discriminator_first")

  @property
  def generator_first(self):
    return self.step_order == "generator_first"

  @property
  def shared_fakes(self):
    return self.step_fakes == "shared"

  @classmethod
  def from_config(cls, cfg):
    return cls(**{name: getattr(cfg, name) for name in FIELDS})

  def describe(self):
    return ", ".join(f"--{name}={getattr(self, name)}" for name in FIELDS)


# What TF-GAN's own estimators execute (the rest of a step, epsilon, EMA and BN variance, is
# the optimiser's and the layers' and runs on every engine).
_TFGAN_ENGINES = {
    # GANEstimator: the generator hook's session.run, then the discriminator hook's, each
    # reading a new input element; each train op runs its own network's update ops.
    "gan_estimator": dict(step_order="generator_first", step_fakes="fresh",
                          generator_bn_updates="generator_step"),
    # TPUGANEstimator: D on one half of a doubled batch, then G on the other half; G's train op
    # runs the update ops of G's scope, which include those of G's forward in the D sub-step.
    "tpu_gan_estimator": dict(step_order="discriminator_first", step_fakes="fresh",
                              generator_bn_updates="both_steps"),
}


def check_engine(step: TrainingStep, engine: str):
  """Raises EngineCannotRunStep when `engine` (a TF-GAN estimator) cannot run `step`, naming
  what to use instead. The in-graph engines (in_graph, one_device, mirrored, multi_worker)
  run every step."""
  fixed = _TFGAN_ENGINES.get(engine)
  if fixed is None:
    return
  differ = [f"--{k}={getattr(step, k)} (it runs {v})" for k, v in fixed.items()
            if getattr(step, k) != v]
  if differ:
    flag = "--use_tpu" if engine == "tpu_gan_estimator" else "--engine=gan_estimator"
    raise EngineCannotRunStep(
        f"{flag}: TF-GAN's {engine} cannot run this model's training step: "
        f"{'; '.join(differ)}. Train with the in-graph engine instead (--engine=in_graph, "
        "the default, or --distribution=one_device/mirrored/multi_worker), or pass the "
        "flags it runs if you mean that step.")


def configure_batch_norm(network, step: TrainingStep):
  """Sets the moving-variance estimator of every graph-safe batch-norm layer in `network`
  (tfgan_attention's BatchNorm / ConditionalBatchNorm) to the step's."""
  for layer in network.submodules:
    if isinstance(layer, batch_norm.MovingMoments):
      layer.unbiased_variance = step.bn_moving_variance == "unbiased"
  return network
