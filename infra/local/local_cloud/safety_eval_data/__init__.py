"""Evaluation data for the safety layer: corpus loaders, generators and one shipped sample (see README.md)."""
