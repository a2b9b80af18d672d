"""Evaluation: edits and generation judged by independent probes and evaluators."""

from plugen.lab.evaluation.latent import edit_report, train_probes

__all__ = ["edit_report", "train_probes"]
