#!/usr/bin/env bash
# The README's main command: set up, bring the rehearsal lab up, put Exchange behind the balancer with the
# toolkit's one deploy, then show the result: an SMTP session through the VIP naming the Exchange server.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/lab/setup.sh"
cd "$here"
.venv/bin/exha lab up
.venv/bin/pyinfra -y inventory/lab.py deploys/exchange_ha.py
.venv/bin/exha result
