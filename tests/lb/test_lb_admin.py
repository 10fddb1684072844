"""Admin API: token-protected writes, JSON state, Prometheus metrics, `exha-lb status`, the live status page."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from lbkit import REPO, Balancer, Net, Proc, http_get, service_toml


def _config(net: Net) -> str:
    return service_toml(net, "web", 'port = 8001\ntemplate = "exchange2013-https"', servers=(23, 24),
                        health='kind = "http"\ninterval = 0.3')


@pytest.fixture
def running(net: Net, backend: Callable[..., Proc], balancer: Callable[..., Balancer]) -> Balancer:
    backend("http", "A", net.host(23), 8001)
    return balancer(_config(net), token="s3cret-token")


def test_writes_need_the_token(running: Balancer, net: Net) -> None:
    path = f"/api/servers/web/{net.host(24)}/disable"
    assert running.post(path, token="")[0] == 401
    assert running.post(path, token="wrong")[0] == 401
    assert running.server("web", net.host(24))["admin"] == "enabled"
    assert running.post("/api/servers/web/127.9.9.9/disable")[0] == 404
    assert running.post("/api/servers/nope/x/disable")[0] == 404
    status, body = running.post(path)
    assert (status, body["admin"], body["changed"]) == (200, "disabled", True)
    assert running.server("web", net.host(24))["admin"] == "disabled"
    assert "s3cret-token" not in running.proc.text()       # the token never reaches the log
    assert running.log_events("admin_denied")


def test_writes_refused_without_a_configured_token(net: Net, backend: Callable[..., Proc],
                                                   balancer: Callable[..., Balancer]) -> None:
    backend("http", "A", net.host(23), 8001)
    lb = balancer(_config(net))
    status, body = lb.post(f"/api/servers/web/{net.host(23)}/drain", token="anything")
    assert status == 403 and "no" in body["error"] or "disabled" in body["error"]


def test_json_state_and_metrics(running: Balancer, net: Net) -> None:
    for _ in range(3):
        http_get(net.vip, 8001, "/x")
    st = running.state()
    svc = st["services"][0]
    assert (svc["name"], svc["vip"], svc["ports"], svc["template"]) == ("web", net.vip, "8001", "exchange2013-https")
    a, b = svc["servers"]
    assert (a["state"], b["state"]) == ("up", "down")        # B has no back end at all
    assert a["connections_total"] == 3 and a["bytes_in"] > 0 and a["bytes_out"] > 0
    assert a["last_check"]["ok"] and "8 path(s)" in a["last_check"]["detail"]
    assert b["last_check"]["detail"] == "Connection refused"
    with urllib.request.urlopen(f"http://{running.admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert f'exha_lb_server_up{{server="{net.host(23)}:8001",service="web"}} 1.0' in text
    assert f'exha_lb_server_up{{server="{net.host(24)}:8001",service="web"}} 0.0' in text
    assert f'exha_lb_server_connections_total{{server="{net.host(23)}:8001",service="web"}} 3.0' in text


def test_status_command(running: Balancer, net: Net) -> None:
    out = subprocess.run([sys.executable, "-m", "lb", "status", "--admin", running.admin], capture_output=True,
                         text=True, cwd=REPO, timeout=30)
    assert out.returncode == 0, out.stderr
    assert f"web          {net.vip}:8001" in out.stdout
    assert f"{net.host(23)}:8001   up" in out.stdout and f"{net.host(24)}:8001   down" in out.stdout
    cmd = [sys.executable, "-m", "lb", "server", "drain", "web", net.host(23), "--admin", running.admin]
    denied = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=30)
    assert denied.returncode == 2 and "HTTP 401" in denied.stderr
    tok = Path(tempfile.mkdtemp()) / "token"
    tok.write_text("s3cret-token\n")
    ok = subprocess.run(cmd + ["--token-file", str(tok)], capture_output=True, text=True, cwd=REPO, timeout=30)
    assert ok.returncode == 0 and ok.stdout.strip() == f"web {net.host(23)}: drain"
    gone = subprocess.run([sys.executable, "-m", "lb", "status", "--admin", "127.0.0.1:1"], capture_output=True,
                          text=True, cwd=REPO, timeout=30)
    assert gone.returncode == 2 and gone.stderr.startswith("exha-lb: admin API http://127.0.0.1:1/api/state: ")


CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_status_page_in_headless_chromium(running: Balancer, net: Net, tmp_path: Path) -> None:
    url = f"http://{running.admin}/"
    with urllib.request.urlopen(url, timeout=5) as r:
        page = r.read().decode()
    assert "<script src" not in page and "<link" not in page and "http://" not in page.split("<script>")[0]
    before = _state_fetches(running)
    shot = tmp_path / "status.png"
    profile = tempfile.mkdtemp()
    subprocess.run(CHROMIUM + [f"--user-data-dir={profile}", "--window-size=1200,700", "--virtual-time-budget=4000",
                               f"--screenshot={shot}", url], capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    dom = subprocess.run(CHROMIUM + [f"--user-data-dir={tempfile.mkdtemp()}", "--virtual-time-budget=4000",
                                     "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    rendered = dom.split('<div id="services">')[1].split("<script>")[0]  # what the page's script drew
    assert 'data-name="web"' in rendered and rendered.count('<tr class="server">') == 2
    assert 'class="badge state up"' in rendered and 'class="badge state down"' in rendered
    assert _state_fetches(running) > before                 # the page polled /api/state by itself
    shutil.rmtree(profile, ignore_errors=True)


def _state_fetches(lb: Balancer) -> float:
    with urllib.request.urlopen(f"http://{lb.admin}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith('exha_lb_admin_requests_total{path="/api/state"}'):
                return float(line.split()[-1])
    return 0.0
