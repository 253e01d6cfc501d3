"""Services: JupyterLab (`dlbox notebook`) and TensorBoard (`dlbox board`), bound to localhost unless told
otherwise, with a token whenever they listen beyond this machine."""
