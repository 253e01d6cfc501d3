"""The base layer: errors, atomic file writes, progress bars and output-path checks. Imports nothing else of dlbox."""
