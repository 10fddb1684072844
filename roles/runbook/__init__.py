"""The change-window runbook: plan, apply with a journal of prior values, verify, roll back."""
