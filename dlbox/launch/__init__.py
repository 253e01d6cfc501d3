"""`dlbox launch slurm|k8s`: the same training command as a SLURM batch script or a Kubeflow job manifest."""
