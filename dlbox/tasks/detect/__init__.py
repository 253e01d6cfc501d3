"""Object detection: COCO data, train or fine-tune, COCO mAP, predict, export, a small embedded detector."""
