"""Compatibility shims for TF-GAN 2.1.0 on Python 3.11 (DESIGN.md trap 1).

TF-GAN calls `inspect.getargspec`, which Python 3.11 removed. Importing this module restores it as
a thin wrapper over `getfullargspec` with the old (args, varargs, keywords, defaults) fields.
"""
import collections
import inspect

ArgSpec = collections.namedtuple("ArgSpec", ["args", "varargs", "keywords", "defaults"])


def _getargspec(func):
  spec = inspect.getfullargspec(func)
  return ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


if not hasattr(inspect, "getargspec"):
  inspect.getargspec = _getargspec
