"""Face verification: detect and align (MTCNN), embed, compare, identify, train, evaluate, export."""
