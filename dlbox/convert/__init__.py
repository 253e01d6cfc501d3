"""Converters of other frameworks' models into PyTorch: TF-Slim checkpoints (``slim``, read by ``tfbundle``
without TensorFlow) and Caffe nets (``caffe``). Layer 3, beside the hub and the data: they use the model
registry and weights resolver (``dlbox.models``) and the hub's downloads, never a task."""
