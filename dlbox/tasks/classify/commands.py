"""Commands of dlbox.tasks.classify (registered by dlbox.cli)."""


def register(sub) -> None:
    """Adds this area's commands to the top-level subparsers (none yet)."""
