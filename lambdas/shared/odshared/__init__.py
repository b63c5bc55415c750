"""Cloud-side library shared by the Lambdas and the odctl CLI: storage, manifests, data preparation."""
