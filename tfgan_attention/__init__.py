"""Keras attention layers and their building blocks. Pure Keras: no flags, no estimator, no I/O.

  SelfAttention          SAGAN's dense non-local block (optional heads, attention map on request)
  SNConv2D, SNDense, SNEmbedding, spectral_normalize   graph-safe spectral normalisation
  BatchNorm, ConditionalBatchNorm                      BN whose moving stats update in TF1 graphs
"""
from tfgan_attention.batch_norm import BatchNorm, ConditionalBatchNorm
from tfgan_attention.self_attention import SelfAttention
from tfgan_attention.spectral_norm import SNConv2D, SNDense, SNEmbedding, spectral_normalize

__all__ = ["BatchNorm", "ConditionalBatchNorm", "SelfAttention", "SNConv2D", "SNDense",
           "SNEmbedding", "spectral_normalize"]
