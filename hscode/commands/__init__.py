"""The ``hscode`` CLI's commands by concern, registered on :data:`hscode.cli.app` when it is
imported."""
