"""dlbox datasets: formats, tools and embedded sample data."""
