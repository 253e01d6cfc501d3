"""A picture of one utterance: the waveform above its fbank, a line where the CTC alignment emitted each token
(PIL only; tokens are numbered, since PIL's built-in font has no CJK glyphs)."""

from __future__ import annotations

import numpy as np

from dlbox.tasks.asr.audio import SAMPLE_RATE
from dlbox.tasks.asr.features import FRAME_SHIFT_S


def alignment_image(wave: np.ndarray, fbank: np.ndarray, timestamps: list[float], width: int = 900):
    """(T,) samples and (frames, 80) fbank -> a PIL image; token k is marked 'k' at its time."""
    from PIL import Image, ImageDraw

    seconds = len(wave) / SAMPLE_RATE
    wave_h, fb_h = 120, 160
    img = Image.new("RGB", (width, wave_h + fb_h + 20), "white")
    d = ImageDraw.Draw(img)
    # waveform: min/max of the samples under each pixel column
    cols = np.array_split(wave, width)
    peak = max(float(np.abs(wave).max()), 1e-6)
    for x, c in enumerate(cols):
        if len(c):
            lo, hi = float(c.min()) / peak, float(c.max()) / peak
            d.line([(x, wave_h / 2 - hi * wave_h / 2), (x, wave_h / 2 - lo * wave_h / 2)], fill=(40, 90, 160))
    # fbank: low bins at the bottom, scaled to 0..255
    f = fbank.T[::-1]
    f = (255 * (f - f.min()) / max(float(f.max() - f.min()), 1e-6)).astype(np.uint8)
    fb = Image.fromarray(f, "L").resize((int(width * len(fbank) * FRAME_SHIFT_S / seconds), fb_h)).convert("RGB")
    img.paste(fb, (0, wave_h))
    for k, t in enumerate(timestamps):
        x = int(t / seconds * width)
        d.line([(x, 0), (x, wave_h + fb_h)], fill=(220, 30, 30))
        d.text((x + 2, wave_h + fb_h + 4), str(k), fill=(220, 30, 30))
    return img
