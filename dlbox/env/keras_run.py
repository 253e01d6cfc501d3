"""Child process for the Keras/TensorFlow integrity run: `python -m dlbox.env.keras_run '<json>'`.

KERAS_BACKEND is set by the parent before this imports keras. Prints one JSON line with the result.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(payload: str) -> None:
    cfg = json.loads(payload)
    import torch

    from dlbox.engine.device import set_threads
    from dlbox.env.integrity import load_data
    from dlbox.env.lenet import keras_lenet5

    set_threads(cfg.get("threads"))
    train, test = load_data(cfg["data"])
    # (N, 1, 28, 28) -> Keras' channels-last (N, 28, 28, 1)
    x_train, y_train = train.tensors[0].permute(0, 2, 3, 1).numpy(), train.tensors[1].numpy()
    x_test, y_test = test.tensors[0].permute(0, 2, 3, 1).numpy(), test.tensors[1].numpy()
    if os.environ.get("KERAS_BACKEND") == "torch":
        # The Keras row is Keras on torch alone: keras.utils.set_random_seed would import all of TensorFlow (seconds)
        # just to seed it whenever TF is installed. None in sys.modules makes `import tensorflow` fail at once.
        sys.modules.setdefault("tensorflow", None)
    try:
        import keras
    except ImportError:  # TensorFlow without Keras 3: its bundled tf.keras
        import tensorflow as tf

        keras = tf.keras
    tf_version = None
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf_version = tf.__version__
        if cfg.get("threads"):  # --threads, as for the PyTorch row
            tf.config.threading.set_intra_op_parallelism_threads(cfg["threads"])
            tf.config.threading.set_inter_op_parallelism_threads(cfg["threads"])
    keras.utils.set_random_seed(cfg["seed"])
    torch.manual_seed(cfg["seed"])
    model = keras_lenet5(keras)
    model.compile(
        optimizer=keras.optimizers.Adam(cfg["lr"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    t = time.perf_counter()
    model.fit(x_train, y_train, batch_size=cfg["batch_size"], epochs=cfg["epochs"], verbose=0, shuffle=True)
    train_seconds = time.perf_counter() - t
    _, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    seconds = time.perf_counter() - t
    backend = keras.backend.backend() if hasattr(keras.backend, "backend") else os.environ.get("KERAS_BACKEND")
    print(json.dumps({
        "accuracy": float(accuracy), "seconds": round(seconds, 3),
        "images_per_sec": round(len(y_train) * cfg["epochs"] / train_seconds, 1),
        "backend": backend, "version": keras.__version__, "tensorflow_version": tf_version,
        "tensorflow_loaded": sys.modules.get("tensorflow") is not None,
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
