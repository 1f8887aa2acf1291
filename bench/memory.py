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
