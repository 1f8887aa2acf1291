"""Process memory from /proc/self/status (Linux), shared by the benchmarks.

VmHWM, not ru_maxrss: Linux carries the parent's peak across fork + exec.
"""


def status_kb(field):
  """A /proc/self/status field in kB, e.g. 'VmHWM' (peak resident) or 'VmRSS' (resident now)."""
  with open("/proc/self/status", encoding="utf-8") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1])
  raise KeyError(field)


def mem_available_gb():
  """MemAvailable from /proc/meminfo in GiB (8 when it cannot be read)."""
  try:
    with open("/proc/meminfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) / 2**20
  except OSError:
    pass
  return 8.0


def time_and_peak(step, x, steps):
  """{'ms': median ms of `steps` calls of step(x) after a first untimed one, 'peak_mb': the
  resident peak above the resident size before them}; `step` is traced already."""
  import statistics  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel
  with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
    f.write("5")  # reset VmHWM to the current resident size
  base_kb = status_kb("VmRSS")
  times = []
  for _ in range(steps + 1):
    t0 = time.perf_counter()
    step(x).numpy()
    times.append(time.perf_counter() - t0)
  peak_kb = status_kb("VmHWM") - base_kb
  return {"ms": 1000 * statistics.median(times[1:]), "peak_mb": peak_kb / 1024}
