"""Image classification: train or fine-tune, evaluate, predict, export."""
