"""The bundled balancer on its VM: wheelhouse, venv install, TOML config, hardened systemd service."""
