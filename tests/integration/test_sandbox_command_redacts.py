"""`invsync sandbox` serving Walmart and TikTok Shop never prints a credential, not even
TikTok's token refresh, whose query carries the app secret and the refresh token and
which an HTTP access log writes percent-encoded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from invsync.marketplaces import tiktok as tt
from invsync.nats_server import free_port

# Values with characters a URL query encodes, so both forms are looked for.
SECRETS = {
    "TT_KEY": "tt-key-4a7e",
    "TT_SECRET": "tt secret/9+c=",
    "TT_REFRESH": "TTP_refresh|b2+d==",
    "WM_ID": "wm-id-7c21",
    "WM_SECRET": "wm-secret-e0d4",
}
CHANNELS = """
[[channels]]
id = "tiktok"
platform = "tiktok"
credentials = { app_key_env = "TT_KEY", app_secret_env = "TT_SECRET", refresh_token_env = "TT_REFRESH" }
listings = "tiktok.csv"
shop_cipher = "ROW_test"

[[channels]]
id = "walmart"
platform = "walmart"
credentials = { client_id_env = "WM_ID", client_secret_env = "WM_SECRET" }
listings = "walmart.csv"
"""


def test_no_credential_reaches_the_output_even_from_a_query(tmp_path: Path) -> None:
    (tmp_path / "tiktok.csv").write_text("sku,condition,product_id,sku_id,warehouse_id\nA,,P,S,W\n")
    (tmp_path / "walmart.csv").write_text("sku,condition,walmart_sku\nA,,WM-A\n")
    channels = tmp_path / "channels.toml"
    channels.write_text(CHANNELS)
    port = free_port()
    command = [sys.executable, "-m", "invsync.cli", "sandbox", "--channels", str(channels)]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "DEBUG"],
        env={**os.environ, **SECRETS},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        query = urllib.parse.urlencode(
            {
                "app_key": SECRETS["TT_KEY"],
                "app_secret": SECRETS["TT_SECRET"],
                "refresh_token": SECRETS["TT_REFRESH"],
                "grant_type": "refresh_token",
            }
        )
        url = f"http://127.0.0.1:{port}{tt.REFRESH_PATH}?{query}"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    assert b'"code": 0' in resp.read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert tt.REFRESH_PATH in output  # the request was logged, redacted
    for value in SECRETS.values():
        for form in (value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)):
            assert form not in output
