"""Pure rendering: a custom resource's spec in, the Kubernetes objects it stands for out."""
