"""`dlbox track`: experiment tracking and the model registry through MLflow (tool layer).

The tracker itself lives in the engine (``dlbox.engine.trackers_mlflow``, ``--tracker mlflow``) and the registry
in the models layer (``dlbox.models.mlflow_registry``: ``export --register``, ``models:/NAME/VERSION``); this
package holds the commands: ``server``, ``runs``, ``register``, ``sync``. See docs/track.md.
"""
