"""Mandarin speech recognition: Kaldi data directories -> fbank + CMVN -> a CTC model on the engine -> greedy or
prefix beam search -> CER -> an ONNX model sherpa-onnx runs (see docs/asr.md)."""
