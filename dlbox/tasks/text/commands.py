"""Commands of dlbox.tasks.text (registered by dlbox.cli)."""


def register(sub) -> None:
    """Adds this area's commands to the top-level subparsers (none yet)."""
