"""Dataset registry: names -> loader functions plus what each needs (data_dir, classes, sizes)."""
import dataclasses
import inspect
import typing
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import tensorflow as tf

from data import pipeline
from data import sharding

# Options every dataset accepts through `load` (a loader that has no use for one ignores it).
COMMON_OPTIONS = ("seed", "strict", "input_context", "num_shards", "shard_index",
                  "shuffle_buffer_mb")
# Loader parameters that `load` itself fills in, not dataset-specific options.
_LOAD_ARGUMENTS = ("data_dir", "split", "image_size", "shard", "seed", "strict")
# Options run.py sets from its own flags and files (--max_words, the run's vocab.txt).
RUN_SET_OPTIONS = {"max_words": "--max_words", "vocabulary": "the run's vocab.txt"}


def _pipeline_options(shuffle_buffer_mb: float = pipeline.DEFAULT_SHUFFLE_BUFFER_MB):
  """Options of the input pipeline, not of a loader, that every dataset accepts through `load`
  and --data_options: shuffle_buffer_mb, the training shuffle buffer's memory budget in MiB
  (see data.pipeline)."""
  del shuffle_buffer_mb


# name -> inspect.Parameter (annotation and default), as parse_options reads loader parameters.
PIPELINE_OPTIONS = dict(inspect.signature(_pipeline_options).parameters)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """What `run.py` needs to know about a dataset before building anything.

  Attributes:
    name: registry name (the value of --dataset).
    loader: fn(data_dir, split, image_size, **kwargs) -> tf.data.Dataset of dict elements.
    needs_data_dir: True when the data must be read from --data_dir (nothing is downloaded).
    num_classes: number of classes for class-conditional sets, 0 for unconditional ones.
    default_image_size: resolution used when the caller gives none.
    splits: the split names the loader accepts.
    description: one line for --help and error messages, including the expected layout.
    has_captions: elements carry `captions` int32 [T], `caption_length`, `caption_index`,
      `all_captions` int32 [K, T] and `all_caption_lengths` [K] (text-to-image sets).
    captions_per_image: K for caption sets (CUB 10, COCO 5), else 0.
    default_max_words: T when the caller gives no max_words (AttnGAN WORDS_NUM), else 0.
    eval_max_words: T of the captions generated images are evaluated and sampled with (the
      official eval_*.yml WORDS_NUM); 0 = default_max_words.
    vocabulary: for caption sets, fn(data_dir, **loader options) -> data.text.Vocabulary, the
      word ids the loader uses; save it with the run (`Vocabulary.save`).
  """
  name: str
  loader: Callable[..., tf.data.Dataset]
  needs_data_dir: bool
  num_classes: int
  default_image_size: int
  splits: Tuple[str, ...] = ("train", "test")
  description: str = ""
  has_captions: bool = False
  captions_per_image: int = 0
  default_max_words: int = 0
  eval_max_words: int = 0
  vocabulary: Optional[Callable[..., object]] = None


DATASETS: Dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
  if spec.name in DATASETS:
    raise ValueError(f"dataset {spec.name!r} is registered twice")
  DATASETS[spec.name] = spec
  return spec


def get_spec(name: str) -> DatasetSpec:
  if name not in DATASETS:
    raise ValueError(
        f"unknown dataset {name!r}; choose one of: {', '.join(sorted(DATASETS))}")
  return DATASETS[name]


def is_registered(name: str) -> bool:
  return name in DATASETS


def load(name: str, data_dir: Optional[str] = None, split: str = "train",
         image_size: Optional[int] = None, **kwargs) -> tf.data.Dataset:
  """Returns an unbatched tf.data.Dataset of dict elements (see the package docstring).

  Args:
    name: a registered dataset name (see `DATASETS`).
    data_dir: where the files are; required when the dataset's spec says so.
    split: one of the spec's splits.
    image_size: output resolution (square); defaults to the spec's.
    **kwargs: options common to every dataset --
        seed: int or None; fixes file order, shuffles and random crops/captions (reproducible).
        strict: bool; fail at the first corrupt record instead of skipping and counting it.
        input_context: tf.distribute.InputContext, or num_shards + shard_index: read only this
          input pipeline's shard (shards partition the data).
        shuffle_buffer_mb: the training shuffle buffer's memory budget in MiB (default 512),
          attached to the returned dataset for data.batch_pipeline.
      -- and dataset-specific options (documented on each loader; unknown ones are an error).
  Raises:
    ValueError: unknown name, split or option, or a missing data_dir, with what to do about it.
    data.layout.DataLayoutError: files missing or malformed, with the expected layout.
  """
  spec = get_spec(name)
  if split not in spec.splits:
    raise ValueError(f"dataset {name!r} has no split {split!r}; choose one of {spec.splits}")
  if spec.needs_data_dir and not data_dir:
    raise ValueError(
        f"dataset {name!r} is read from files and needs --data_dir "
        f"(nothing is downloaded). Expected: {spec.description}")
  size = image_size or spec.default_image_size
  if size <= 0:
    raise ValueError(f"image_size must be positive, got {size}")
  shard = sharding.resolve(kwargs.pop("input_context", None), kwargs.pop("num_shards", None),
                           kwargs.pop("shard_index", None))
  shuffle_buffer_mb = kwargs.pop("shuffle_buffer_mb", pipeline.DEFAULT_SHUFFLE_BUFFER_MB)
  params = inspect.signature(spec.loader).parameters
  for option in ("seed", "strict"):
    if option in kwargs and option not in params:
      del kwargs[option]  # nothing random / nothing that can be corrupt in this dataset
  unknown = sorted(k for k in kwargs if k not in params)
  if unknown:
    raise ValueError(f"dataset {name!r} takes no option {', '.join(unknown)}; "
                     f"its own options: {', '.join(own_options(name)) or 'none'}; "
                     f"every dataset's: {', '.join(PIPELINE_OPTIONS)}")
  if "shard" in params:
    ds = spec.loader(data_dir=data_dir, split=split, image_size=size, shard=shard, **kwargs)
  else:
    ds = shard.apply(spec.loader(data_dir=data_dir, split=split, image_size=size, **kwargs))
  return pipeline.with_shuffle_buffer_mb(ds, shuffle_buffer_mb)


def own_options(name: str) -> List[str]:
  """The dataset-specific options of dataset `name`'s loader (what --data_options may set)."""
  params = inspect.signature(get_spec(name).loader).parameters
  return sorted(set(params) - set(_LOAD_ARGUMENTS))


def _parse_value(text: str):
  lowered = text.strip().lower()
  if lowered in ("true", "false"):
    return lowered == "true"
  if lowered == "none":
    return None
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return text.strip()


def _allowed_types(param: inspect.Parameter) -> Tuple[type, ...]:
  """The types an option accepts, from its annotation (or its default); () when unknown."""
  if param.annotation is inspect.Parameter.empty:
    default = param.default
    return () if default in (None, inspect.Parameter.empty) else (type(default),)
  args = typing.get_args(param.annotation)
  kinds = args if typing.get_origin(param.annotation) is Union else (param.annotation,)
  return tuple(k for k in kinds if isinstance(k, type))


def parse_options(name: str, pairs: Sequence[str]) -> Dict[str, object]:
  """'key=value' strings (the --data_options flag) -> loader options of dataset `name`.

  Values become bool (true/false), None (none), int, float or str. Keys must be the loader's own
  options (but those run.py sets) or a pipeline option (PIPELINE_OPTIONS: shuffle_buffer_mb); a
  value must have a type the option's annotation (or default) allows; ints pass for floats.
  Raises:
    ValueError: naming the bad pair and what the dataset accepts.
  """
  params = _option_parameters(name)
  options = {}
  for pair in pairs:
    key, sep, text = pair.partition("=")
    key = key.strip()
    if not sep or not key:
      raise ValueError(f"--data_options takes key=value pairs, got {pair!r}")
    if key in RUN_SET_OPTIONS:
      raise ValueError(f"dataset option {key!r} is set by {RUN_SET_OPTIONS[key]}, "
                       f"not --data_options")
    if key not in params:
      raise _unknown_option(name, key)
    value, kinds = _parse_value(text), _allowed_types(params[key])
    if kinds and isinstance(value, int) and not isinstance(value, bool) and int not in kinds \
        and float in kinds:
      value = float(value)
    if kinds and not (isinstance(value, bool) and bool in kinds or
                      not isinstance(value, bool) and isinstance(value, kinds)):
      raise ValueError(f"dataset option {key}={text!r}: expected "
                       f"{' or '.join('none' if k is type(None) else k.__name__ for k in kinds)} "
                       f"(default {params[key].default!r})")
    options[key] = value
  return options


def _option_parameters(name: str) -> Dict[str, inspect.Parameter]:
  """What --data_options may set for dataset `name`: its loader's own options (but those run.py
  sets itself) and the pipeline options, each with its annotation and default."""
  params = inspect.signature(get_spec(name).loader).parameters
  own = {k: params[k] for k in own_options(name) if k not in RUN_SET_OPTIONS}
  return {**own, **PIPELINE_OPTIONS}


def _unknown_option(name: str, key: str) -> ValueError:
  own = [o for o in own_options(name) if o not in RUN_SET_OPTIONS]
  return ValueError(f"dataset {name!r} takes no option {key!r}; its own options: "
                    f"{', '.join(own) or 'none'}; every dataset's: {', '.join(PIPELINE_OPTIONS)}")


def resolved_options(name: str,
                     given: Union[Sequence[str], Mapping[str, object]] = ()) -> Dict[str, object]:
  """Every option --data_options may set for dataset `name`, with its value: the given one, else
  the loader's default (for --dry_run and run_config.json).

  A default of None is shown as None: the loader decides it from the split or the data_dir (e.g.
  imagenet's shuffle: split == 'train'; parallel_reads: 1 locally, -1 remote), as its docstring
  says.
  Args:
    name: a registered dataset name.
    given: 'key=value' strings (the --data_options flag, parsed and checked by `parse_options`)
      or an already parsed {key: value} (e.g. GANConfig.data_options as a dict).
  Returns:
    {option: value} for exactly the keys parse_options accepts, sorted by key.
  Raises:
    ValueError: an unknown or badly typed option, as parse_options says it.
  """
  params = _option_parameters(name)
  if isinstance(given, Mapping):
    for key in given:
      if key not in params:
        raise _unknown_option(name, key)
    values = dict(given)
  else:
    values = parse_options(name, given)
  return {k: values.get(k, params[k].default) for k in sorted(params)}

