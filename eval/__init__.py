"""Evaluation: classifier-based metrics (TF-GAN's eval functions), classifiers, sampling.

The package is named `eval` as DESIGN.md fixes; it shadows the builtin only as a module name
(`import eval.metrics`), never the builtin of the same name inside modules.
"""
