"""Environment doctor (`dlbox env`) and platform integrity test (`dlbox env test`)."""
