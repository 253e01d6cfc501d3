"""One folder per task, each with the verbs train, evaluate, predict, export."""
