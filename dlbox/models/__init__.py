"""Every model dlbox builds and every kind of weights it reads, in one place (layer 2: below the hub, the
converters, the data and the tasks; it imports only base, config, engine and runtime).

- ``dlbox.models.registry``: one ``ModelSpec`` per model (task, lazy builder, input size, normalisation, classes,
  label offset, head), in the manner of torchvision's ``models/_api.py`` and timm's ``PretrainedCfg``.
- ``dlbox.models.weights``: ``resolve_weights(spec)`` parses a ``--weights`` spec once into a typed
  ``WeightsSource``; ``read_state`` reads it, ``load_state`` loads it with the one mismatch error.

Builders that live in a task (or a converter) are held as ``"module:function"`` strings and imported only when
a model is built, like timm's entrypoints, so this package never imports a task.
"""
