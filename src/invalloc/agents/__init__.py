"""Learned agents: training experiments, SB3 training tracked in MLflow, trained policies."""
