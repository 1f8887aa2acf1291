"""run.py's model flags, generated from the registry: adding a model adds no line to run.py.

Every field of every registered model's hyperparameter dataclass becomes one absl flag of the
same name (`--gf_dim`, `--ylg_esa`, ...). Models that share a field share its flag (its type must
agree). A flag's absl default is None: a value not given on the command line or in a flagfile is
the chosen model's own (`hparam(cli_default=...)`, else the paper default), so `--z_dim` can mean
128 for one model and 100 for another. A model flag given for a model that does not have it is
an error (it would silently do nothing). A model's own modes may have flags too
(`ModelSpec.mode_options`), made the same way; one given with another mode is an error.

The functions take the FlagValues to work on (run.py passes its own); none reads absl's global
flag values.
"""
import dataclasses
from typing import Dict, Optional

from absl import flags
import tensorflow as tf

from estimators import model_registry
from estimators.engines import training_step
from estimators.config import GANConfig
from estimators.models import get_model, names

BASE_MODES = ("train", "eval", "train_and_eval", "continuous_eval", "export", "sample",
              "attention_maps", "interpolate", "import_weights")


def _fields():
  """{flag name: [(model name, field)]} over every registered model."""
  fields = {}
  for model in names():
    for field in dataclasses.fields(get_model(model).hparams_class):
      fields.setdefault(field.name, []).append((model, field))
  return fields


def _kind(field):
  """'bool', 'int', 'float' or 'str': the flag type of a field (annotated as a type or a name)."""
  kind = {bool: "bool", int: "int", float: "float", str: "str"}.get(field.type)
  if kind is None and field.type in ("bool", "int", "float", "str"):
    kind = field.type
  if kind is None:
    raise TypeError(f"hyperparameter {field.name!r} has type {field.type!r}; flags can be bool, "
                    "int, float or str")
  return kind


def _mode_fields():
  """{flag name: [(model name, mode, field)]} over every registered model's mode options."""
  fields = {}
  for model in names():
    for mode, options_class in get_model(model).mode_options.items():
      for field in dataclasses.fields(options_class):
        fields.setdefault(field.name, []).append((model, mode, field))
  return fields


def flag_names():
  """Every model flag: hyperparameters and mode options."""
  return sorted(set(_fields()) | set(_mode_fields()))


def extra_modes():
  """Every model's extra modes (run.py's --mode enum)."""
  modes = []
  for model in names():
    modes.extend(m for m in get_model(model).modes if m not in modes and m not in BASE_MODES)
  return tuple(modes)


def define_flags(flag_values):
  """Defines one flag per hyperparameter and mode-option name (default None: the model's own)."""
  hparams, mode_fields = _fields(), _mode_fields()
  clash = sorted(set(hparams) & set(mode_fields))
  if clash:
    raise TypeError(f"{clash[0]!r} is both a model hyperparameter and a mode option")
  for name, owners in sorted(hparams.items()):
    defaults = "; ".join(f"{m}: {model_registry.cli_default(f)!r}" for m, f in owners)
    _define(flag_values, name, [f for _, f in owners], [m for m, _ in owners],
            f"model hyperparameter; {defaults}")
  for name, owners in sorted(mode_fields.items()):
    modes = sorted({mode for _, mode, _ in owners})
    _define(flag_values, name, [f for _, _, f in owners], [m for m, _, _ in owners],
            f"--mode={'/'.join(modes)} option; default "
            f"{model_registry.cli_default(owners[0][2])!r}")


def define_step_flags(flag_values):
  """One flag per training-step option (estimators/engines/training_step.py), TF-GAN's step as its
  default; a model's own defaults come through its run_defaults (run.py)."""
  for name, choices in training_step.FIELDS.items():
    default = GANConfig.__dataclass_fields__[name].default
    help_text = training_step.HELP[name] + " (default: the model's)"
    if choices:
      flags.DEFINE_enum(name, default, choices, help_text, flag_values=flag_values)
    else:
      flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
      flags.register_validator(name, lambda v: v > 0, message=f"--{name} must be positive",
                               flag_values=flag_values)


def _define(flag_values, name, fields, models, note):
  kinds = {_kind(field) for field in fields}
  if len(kinds) > 1:
    raise TypeError(f"models disagree on the type of hyperparameter {name!r}: "
                    + ", ".join(f"{m}: {_kind(f)}" for m, f in zip(models, fields)))
  kind = kinds.pop()
  help_text = f"{fields[0].metadata.get('help', '')} [{note}]"
  if kind == "bool":
    flags.DEFINE_boolean(name, None, help_text, flag_values=flag_values)
  elif kind == "int":
    flags.DEFINE_integer(name, None, help_text, flag_values=flag_values)
  elif kind == "float":
    flags.DEFINE_float(name, None, help_text, flag_values=flag_values)
  else:
    choices = [c for f in fields for c in (f.metadata.get("choices") or ())]
    if choices and all(f.metadata.get("choices") for f in fields):
      flags.DEFINE_enum(name, None, list(dict.fromkeys(choices)), help_text,
                        flag_values=flag_values)
    else:
      flags.DEFINE_string(name, None, help_text, flag_values=flag_values)


def present_flags(flag_values):
  """Names of the model flags given on the command line or in a flagfile."""
  return {name for name in flag_names() if flag_values[name].present}


def hparams_of(model: str, values: Dict[str, object]):
  """The model's hyperparameters from flag values (None: the model's default)."""
  own = {f.name for f in dataclasses.fields(get_model(model).hparams_class)}
  return model_registry.cli_hparams(model, {k: v for k, v in values.items() if k in own})


def hparams_from_flags(flag_values):
  return hparams_of(flag_values["model"].value,
                    {name: flag_values[name].value for name in flag_names()})


def mode_options_of(model: str, mode: str, values: Dict[str, object]):
  """The options of `model`'s own `mode` from flag values (None: the field's default), or None
  when that mode has no options."""
  options_class = get_model(model).mode_options.get(mode)
  if options_class is None:
    return None
  fields = dataclasses.fields(options_class)
  given = {f.name: values[f.name] for f in fields if values.get(f.name) is not None}
  return options_class(**{**{f.name: model_registry.cli_default(f) for f in fields}, **given})


def mode_options_from_flags(flag_values):
  return mode_options_of(flag_values["model"].value, flag_values["mode"].value,
                         {name: flag_values[name].value for name in flag_names()})


def problem(values, dataset, present=()) -> Optional[str]:
  """Why the model flags in `values` (flag name -> value) cannot run on `dataset` (a
  DatasetSpec) at values['image_size'], or None."""
  model = values["model"]
  spec = get_model(model)
  mode = values.get("mode")
  if mode == "attention_maps" and not spec.has_attention_maps:
    owners = [m for m in names() if get_model(m).has_attention_maps]
    return (f"--mode=attention_maps draws attention maps, which --model={model} does not return "
            f"(models that do: {', '.join(owners)}).")
  if mode and mode not in BASE_MODES and mode not in spec.modes:
    owners = [m for m in names() if mode in get_model(m).modes]
    return f"--mode={mode} belongs to --model={'/'.join(owners)}, not {model}."
  mode_fields = _mode_fields()
  options_class = spec.mode_options.get(mode)
  mine = {f.name for f in dataclasses.fields(options_class)} if options_class else set()
  stray = sorted((set(present) & set(mode_fields)) - mine)
  if stray:
    modes = sorted({f"--mode={m}" for _, m, _ in mode_fields[stray[0]]})
    return f"--{stray[0]} is an option of {'/'.join(modes)}; it does nothing with --mode={mode}."
  if options_class:
    try:
      problem_text = model_registry.check_hparams(mode_options_of(model, mode, values))
    except (TypeError, ValueError) as e:
      problem_text = f"--mode={mode} options: {e}"
    if problem_text:
      return problem_text
  own = {f.name for f in dataclasses.fields(spec.hparams_class)}
  foreign = sorted(set(present) - own - set(mode_fields))
  if foreign:
    return (f"--{foreign[0]} is not a hyperparameter of --model={model} (it would do nothing); "
            f"{model} takes: {', '.join('--' + n for n in sorted(own))}.")
  try:
    hparams = hparams_of(model, values)
  except (TypeError, ValueError) as e:
    return f"{model} hyperparameters: {e}"
  if mode == "attention_maps" and not spec.returns_attention_maps(hparams):
    return (f"--mode=attention_maps draws attention maps, which --model={model} does not return "
            "with the hyperparameters given (its attention layer is replaced or off).")
  return model_registry.check_hparams(hparams) or spec.validate(hparams, values["image_size"],
                                                                dataset)


def parameter_table(cfg) -> str:
  """A markdown table of every network of cfg's model: trainable and total parameters, built
  with the model's own inputs in a graph of their own, where nothing runs: no data is read, no
  variable is initialised (AttnGAN's COCO networks: 4 s, against 139 s eagerly)."""
  with tf.Graph().as_default():
    networks = get_model(cfg.model).build_networks(cfg)
    counts = model_registry.parameter_counts(networks)
  rows = ["| network | trainable | total |", "|---|---:|---:|"]
  for name, trainable, total in counts:
    rows.append(f"| {name} | {trainable:,} | {total:,} |")
  return "\n".join(rows)
