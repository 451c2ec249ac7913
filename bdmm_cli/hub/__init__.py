"""Weights: the registry in weights/, Hub downloads with verification, checkpoint import/export, loaders."""
