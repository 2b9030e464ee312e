"""`invsync sandbox` as a user runs it: from a channels file, stopped by a signal,
started again with the same `--state` file, and never printing a credential."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from invsync.marketplaces import shopify as doc
from invsync.nats_server import free_port

TOKEN = "shpat_command_test_secret"
ITEM = "gid://shopify/InventoryItem/11"


def write_channels(folder: Path) -> Path:
    (folder / "shopify.csv").write_text(
        f"sku,condition,inventory_item_id,location_id\nA,,{ITEM},gid://shopify/Location/1\n"
    )
    channels = folder / "channels.toml"
    channels.write_text(
        "[[channels]]\n"
        'id = "shopify"\nplatform = "shopify"\n'
        'base_url = "http://127.0.0.1:1"\n'
        'credentials = { access_token_env = "SANDBOX_TEST_SHOP_TOKEN" }\n'
        'listings = "shopify.csv"\n'
    )
    return channels


def launch(channels: Path, port: int, state: Path, token: str = TOKEN) -> subprocess.Popen[str]:
    env = {**os.environ, "SANDBOX_TEST_SHOP_TOKEN": token}
    command = [sys.executable, "-m", "invsync.cli", "sandbox", "--channels", str(channels)]
    return subprocess.Popen(
        [*command, "--port", str(port), "--state", str(state), "--log-level", "DEBUG"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def call(url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def wait_listening(url: str) -> Any:
    deadline = time.monotonic() + 20
    while True:
        try:
            return call(f"{url}/sandbox/state")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    return output


def test_the_command_serves_stops_on_sigterm_and_restarts_from_its_state(tmp_path: Path) -> None:
    channels, state = write_channels(tmp_path), tmp_path / "state.json"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = launch(channels, port, state)
    try:
        first = wait_listening(url)
        assert first["platforms"]["shopify"]["listings"][ITEM]["qty"] == 0
        variables = {
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": [
                    {
                        "inventoryItemId": ITEM,
                        "locationId": "gid://shopify/Location/1",
                        "quantity": 12,
                        "changeFromQuantity": 0,
                    }
                ],
            },
            "key": "k-1",
        }
        reply = call(
            f"{url}{doc.graphql_path()}",
            {"query": doc.SET_QUANTITIES, "variables": variables},
            {doc.ACCESS_TOKEN_HEADER: TOKEN, "Content-Type": "application/json"},
        )
        assert reply["data"]["inventorySetQuantities"]["userErrors"] == []
    finally:
        output = stop(process)
    process = launch(channels, port, state)
    try:
        again = wait_listening(url)
    finally:
        output += stop(process)
    assert again["platforms"]["shopify"]["listings"][ITEM]["qty"] == 12
    assert TOKEN not in output


def test_a_credential_that_is_not_set_is_named_and_the_command_exits_2(tmp_path: Path) -> None:
    process = launch(write_channels(tmp_path), free_port(), tmp_path / "s.json", token="")
    output, _ = process.communicate(timeout=20)
    assert process.returncode == 2
    assert "SANDBOX_TEST_SHOP_TOKEN" in output
