"""A WinRM / PowerShell simulator for the rehearsal lab (docstring completed below)."""
