"""Model-neutral readers and layout conversions for importing released weights (issue #23).

  restricted_pickle   plain pickles (e.g. AttnGAN's Python 2 captions.pickle), no code run
  torch_files         PyTorch .pth files (zip and the legacy format) -> numpy, without torch
  torch_file_writer   writes both .pth formats without torch (test fixtures in official formats)
  layouts             PyTorch -> Keras layouts: conv/dense kernels, LSTM gates and biases,
                      NCHW dense outputs, BN statistics, embeddings, spectral-norm vectors

These name no model; each model's importer (estimators/models) uses them. Nothing here imports
TensorFlow or torch.
"""
