"""notebooks/asr.ipynb runs top to bottom in a real Jupyter kernel (on the session's corpus, 3 epochs)."""

from __future__ import annotations

from tests.conftest import run_notebook


def test_asr_notebook_executes(corpus, tmp_path, monkeypatch):
    outputs = run_notebook("asr.ipynb", tmp_path, monkeypatch, prepend=[f"CORPUS = {str(corpus)!r}", "EPOCHS = 3"])
    text = "".join(o.get("text", "") for o in outputs)
    assert "CER" in text and "RTF" in text and "sherpa-onnx:" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # waveform, fbank and aligned tokens
