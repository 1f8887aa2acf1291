"""Where a run executes: the devices, the TF_CONFIG cluster, the replicas and their batch shares.

Facts read from the machine and the environment, and checks on them, that every engine and the
modes share: the devices a mirrored run uses (`local_devices`; `split_cpu` makes logical CPUs
for --cpu_devices), the workers of TF_CONFIG and which of them is the chief (it writes the run's
files), how many replicas a --distribution runs, each replica's share of the GLOBAL
--batch_size (an uneven split is an error at start), and inside a step which replica this is
(`is_first_replica`) and the mean of a value over the replicas.
"""
import json
import os

import tensorflow as tf

DISTRIBUTIONS = ("none", "one_device", "mirrored", "multi_worker")


class DistributionError(ValueError):
  """The requested distribution cannot run here (bad batch split, no devices, no TF_CONFIG)."""


def local_devices(cfg):
  """The devices a mirrored run uses: every local GPU (or --num_devices of them); on a machine
  without GPUs, the logical CPU devices (tests make two)."""
  gpus = tf.config.list_logical_devices("GPU")
  devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
  if cfg.num_devices:
    if cfg.num_devices > len(devices):
      raise DistributionError(
          f"--num_devices={cfg.num_devices} but only {len(devices)} device(s) are visible "
          f"({', '.join(devices)}); lower --num_devices or make more devices visible "
          "(CUDA_VISIBLE_DEVICES)")
    devices = devices[:cfg.num_devices]
  return devices


def worker_count():
  """Workers named in TF_CONFIG's cluster (1 when TF_CONFIG is unset)."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  cluster = config.get("cluster", {})
  return sum(len(cluster.get(job, [])) for job in ("chief", "worker")) or 1


def is_chief():
  """Whether this process writes the run's files: the chief in TF_CONFIG, else worker 0 (and
  always when TF_CONFIG names no cluster)."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  task = config.get("task", {})
  if not config.get("cluster") or not task:
    return True
  if "chief" in config["cluster"]:
    return task.get("type") == "chief"
  return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def task_name():
  """'<task type>_<index>' of this process in TF_CONFIG ('worker_1'), '' without a cluster: names
  the files a non-chief worker writes beside the chief's (bad_records.worker_1.json)."""
  config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
  task = config.get("task", {})
  if not config.get("cluster") or not task:
    return ""
  return f"{task.get('type')}_{task.get('index', 0)}"


def check_multi_worker_environment():
  config = os.environ.get("TF_CONFIG")
  if not config:
    raise DistributionError(
        "--distribution=multi_worker needs TF_CONFIG, e.g. "
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}, set on every worker with its own index')
  try:
    parsed = json.loads(config)
  except json.JSONDecodeError as e:
    raise DistributionError(f"TF_CONFIG is not valid JSON ({e}): {config!r}") from None
  if "cluster" not in parsed or "task" not in parsed:
    raise DistributionError(f"TF_CONFIG needs 'cluster' and 'task' entries, got {config!r}")


def expected_replicas(cfg):
  """How many replicas cfg.distribution will run (before any strategy is built)."""
  if cfg.distribution in ("none", "one_device"):
    return 1
  if cfg.distribution == "mirrored":
    return len(local_devices(cfg))
  if cfg.distribution == "multi_worker":
    check_multi_worker_environment()
    # Physical, not logical: listing logical devices starts the TF runtime, and
    # MultiWorkerMirroredStrategy must configure its collectives before that.
    return worker_count() * max(1, len(tf.config.list_physical_devices("GPU")))
  raise DistributionError(f"unknown distribution {cfg.distribution!r}; choose one of "
                          f"{DISTRIBUTIONS}")


def split_cpu(count):
  """Splits the CPU into `count` logical devices (--cpu_devices; before TensorFlow initialises
  its devices), so --distribution=mirrored can run several replicas without GPUs."""
  if count < 1:
    raise DistributionError(f"--cpu_devices must be positive, got {count}")
  if count > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as e:
      raise DistributionError(f"--cpu_devices={count}: TensorFlow's devices already exist "
                              f"({e}); split the CPU before anything runs") from None


def per_replica_batch_size(global_batch, num_replicas):
  """global_batch / num_replicas; an uneven split is an error (no silently dropped examples)."""
  if num_replicas < 1 or global_batch % num_replicas:
    raise DistributionError(
        f"--batch_size={global_batch} is the global batch and must divide evenly over the "
        f"{num_replicas} replicas; use a multiple of {num_replicas} (e.g. "
        f"{max(num_replicas, global_batch - global_batch % num_replicas)})")
  return global_batch // num_replicas


def replica_rows(dataset, replicas, per_replica, first, local):
  """A dataset of global batches (dicts of [replicas * per_replica, ...]) -> one element per
  replica this input pipeline feeds, in order: the rows of replicas first .. first + local - 1."""
  def own_rows(batch):
    def split(v):  # [R b, ...] -> [R, b, ...][first:first + local] (static sizes kept where known)
      inner = [d if d is not None else tf.shape(v)[i + 1]
               for i, d in enumerate(v.shape.as_list()[1:])]
      return tf.reshape(v, [replicas, per_replica] + inner)[first:first + local]
    return tf.nest.map_structure(split, batch)
  return dataset.map(own_rows).unbatch()


def is_first_replica():
  """True outside a strategy and in replica 0 (summaries are written once, not per replica)."""
  context = tf.distribute.get_replica_context()
  if context is None:  # cross-replica context
    return True
  replica = tf.get_static_value(context.replica_id_in_sync_group)
  return replica is None or int(replica) == 0


def mean_over_replicas(value):
  """The mean of `value` over all replicas (itself outside a multi-replica step)."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return value
  return context.all_reduce(tf.distribute.ReduceOp.MEAN, value)
