"""Keras attention layers and their building blocks. Pure Keras: no flags, no estimator, no I/O.

  SelfAttention          SAGAN's dense non-local block (optional heads, attention map on request)
  SNConv2D, SNDense, SNEmbedding, spectral_normalize   graph-safe spectral normalisation
  SN_BOUNDS              its bounds: "paper" (W / sigma), "tfgan" (W / max(1, sigma))
  BatchNorm, ConditionalBatchNorm                      BN whose moving stats update in TF1 graphs
  YLGAttention           YLG local sparse attention (8 heads, ESA, sparse or dense-masked)
  esa_order, has_full_information, ylg_masks           YLG's patterns (module patterns)
  CompactAttention, densify_attention                  YLG sparse per-head attention maps
  WordAttention          AttnGAN's word attention F_attn (eq. 2), padding masked per example
  ConditioningAugmentation, kl_loss                    AttnGAN's F_ca and its KL penalty
  damsm_loss, DamsmVariant  AttnGAN's DAMSM matching scores and loss (eqs. 7-14); module damsm
  Orthogonal             Keras' orthogonal init, factorised faster for tall kernels
  LadaAttention          LadaGAN's multi-head linear additive attention (map [B, heads, N])
  GeneratorLadaformer, DiscriminatorLadaformer, SelfModulatedLayerNorm,
  LocalEmbeddingExpansion, PositionalEmbedding         LadaGAN's blocks (module ladaformer)
"""
from tfgan_attention.batch_norm import BatchNorm, ConditionalBatchNorm
from tfgan_attention.conditioning_augmentation import ConditioningAugmentation, kl_loss
from tfgan_attention.damsm import DamsmVariant, damsm_loss
from tfgan_attention.initializers import Orthogonal
from tfgan_attention.self_attention import SelfAttention
from tfgan_attention.spectral_norm import (SN_BOUNDS, SNConv2D, SNDense, SNEmbedding,
                                           spectral_normalize)
from tfgan_attention.patterns import esa_order, has_full_information, ylg_masks
from tfgan_attention.ylg_attention import YLGAttention
from tfgan_attention.ylg_sparse import CompactAttention, densify_attention
from tfgan_attention.word_attention import WordAttention
from tfgan_attention.lada_attention import LadaAttention
from tfgan_attention.ladaformer import (DiscriminatorLadaformer, GeneratorLadaformer,
                                        LocalEmbeddingExpansion, PositionalEmbedding,
                                        SelfModulatedLayerNorm)

__all__ = ["BatchNorm", "ConditionalBatchNorm", "SelfAttention", "SNConv2D", "SNDense",
           "SNEmbedding", "SN_BOUNDS", "spectral_normalize"]
__all__ += ["YLGAttention", "CompactAttention", "densify_attention", "esa_order",
            "has_full_information", "ylg_masks"]
__all__ += ["Orthogonal"]
__all__ += ["WordAttention", "ConditioningAugmentation", "kl_loss", "DamsmVariant", "damsm_loss"]
__all__ += ["LadaAttention", "GeneratorLadaformer", "DiscriminatorLadaformer",
            "SelfModulatedLayerNorm", "LocalEmbeddingExpansion", "PositionalEmbedding"]
