"""The one training engine every dlbox task uses."""
