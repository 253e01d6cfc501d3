"""`dlbox serve`: models dlbox made as a web service (KServe v2 protocol, task routes, dynamic batching, metrics,
a page to try them). See docs/serve.md; ``dlbox.serve.server.start`` runs one from Python."""
