"""Certificates of spurious local minima of the reduced LoRA-ML loss (THEORY.md section 8)."""
