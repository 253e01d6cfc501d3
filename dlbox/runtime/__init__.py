"""The runtime layer: how a model runs (eager, compile, onnxruntime, OpenVINO, int8, the saved fast path), one
exporter and one loader of exports, and the ``Predictor`` contract that every task's inference offers (used by
predict commands and by ``dlbox serve``)."""
