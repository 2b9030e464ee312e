"""`invsync connect`: refuses a start it cannot make with what to fix, runs one
connector per channel, stops cleanly, and a restart converges without any state."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import anyio
import pytest
from prometheus_client import CollectorRegistry

from invsync.cli import main
from invsync.gateway import app
from invsync.gateway.app import GatewayConfig, GatewaySetupError, prepare, run_gateway
from invsync.gateway.platforms.base import ProfileSettings
from invsync.gateway.secrets import RedactSecrets, Secret
from invsync.nats_server import NatsServer
from tests.gateway.fake_profile import FakeProfile, per_item_lane
from tests.service.harness import event, running_service, service_config

SECRET = "tok-8f1e2d-never-print"

CHANNELS = """\
[[channels]]
id = "amazon"
platform = "amazon"
credentials = { refresh_token_env = "GW_TEST_TOKEN" }
listings = "amazon.csv"

[[channels]]
id = "ebay"
platform = "ebay"
credentials = { refresh_token_file = "ebay.token" }
listings = "ebay.csv"
"""


def write_files(tmp_path: Path) -> Path:
    (tmp_path / "amazon.csv").write_text("sku,condition,item_id\nA1,,A1-amz\n", encoding="utf-8")
    (tmp_path / "ebay.csv").write_text("sku,condition,item_id\nA1,,A1-ebay\n", encoding="utf-8")
    (tmp_path / "ebay.token").write_text(SECRET + "\n", encoding="utf-8")
    path = tmp_path / "channels.toml"
    path.write_text(CHANNELS, encoding="utf-8")
    return path


@pytest.fixture
def fake_platforms(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeProfile]:
    """Every platform answered by an in-process fake, one per channel."""
    built: dict[str, FakeProfile] = {}

    def factory_for(platform: str):  # type: ignore[no-untyped-def]
        def build(settings: ProfileSettings) -> FakeProfile:
            assert settings.credentials["refresh_token"].reveal() == SECRET
            profile = FakeProfile([per_item_lane(rate=100, burst=100)], platform=platform)
            built[settings.channel] = profile
            return profile

        return build

    monkeypatch.setattr(app, "profile_factory", factory_for)
    monkeypatch.setenv("GW_TEST_TOKEN", SECRET)
    return built


def test_a_platform_without_a_profile_is_refused_by_name(tmp_path: Path) -> None:
    path = write_files(tmp_path)
    lazada = CHANNELS.split("\n\n")[1].replace('platform = "ebay"', 'platform = "lazada"')
    path.write_text(lazada, encoding="utf-8")
    with pytest.raises(GatewaySetupError, match="channel ebay: no profile for platform 'lazada'"):
        prepare(GatewayConfig(path))


def test_an_unset_credential_stops_the_start_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_platforms: dict[str, FakeProfile]
) -> None:
    monkeypatch.delenv("GW_TEST_TOKEN")
    with pytest.raises(GatewaySetupError, match="GW_TEST_TOKEN"):
        prepare(GatewayConfig(write_files(tmp_path)))


def test_a_bad_listing_csv_stops_the_start_at_its_line(
    tmp_path: Path, fake_platforms: dict[str, FakeProfile]
) -> None:
    path = write_files(tmp_path)
    (tmp_path / "ebay.csv").write_text("sku,condition,item_id\nA1,,\n", encoding="utf-8")
    with pytest.raises(GatewaySetupError) as caught:
        prepare(GatewayConfig(path))
    assert "ebay.csv:2: item_id" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_check_prints_the_channels_and_exits_0(
    tmp_path: Path, fake_platforms: dict[str, FakeProfile], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["connect", "--channels", str(write_files(tmp_path)), "--check"]) == 0
    out = capsys.readouterr().out
    assert "amazon (amazon)" in out and "ebay (ebay)" in out
    assert SECRET not in out


def test_check_of_a_broken_file_exits_2_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_files(tmp_path)
    path.write_text(CHANNELS.replace('listings = "ebay.csv"', "listings = 7"), encoding="utf-8")
    assert main(["connect", "--channels", str(path), "--check"]) == 2
    assert f'{path}:11: channels["ebay"].listings' in capsys.readouterr().out


@pytest.mark.anyio
async def test_every_channel_is_pushed_and_a_restart_converges(
    nats_server: NatsServer,
    tmp_path: Path,
    fake_platforms: dict[str, FakeProfile],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    path = write_files(tmp_path)
    config = GatewayConfig(path, connection=nats_server.client("connector"), metrics_port=None)

    async def stock(on_hand: int, event_id: str) -> None:
        body = event("stock.set", event_id, sku="A1", location="wh-3", on_hand=on_hand)
        ack = await svc.nc.jetstream().publish("inv.stock.wh-3", body)
        await svc.wait_applied(ack.seq)

    def shown(channel: str) -> int | None:
        ids = {"amazon": "A1-amz", "ebay": "A1-ebay"}
        return fake_platforms[channel].lanes[0].shown.get(ids[channel])

    async with running_service(nats_server, service_config(nats_server, tmp_path / "s")) as svc:
        for attempt, on_hand in enumerate((200, 120)):
            await stock(on_hand, f"e{attempt}")
            ready, stop, registry = anyio.Event(), anyio.Event(), CollectorRegistry()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(
                    partial(run_gateway, config, ready=ready, stop=stop, registry=registry)
                )
                with anyio.fail_after(10):
                    await ready.wait()
                    while not (shown("amazon") and shown("ebay")):
                        await anyio.sleep(0.02)
                first = (shown("amazon"), shown("ebay"))
                stop.set()
            if attempt == 0:
                before = first
        svc.stop.set()
    # the second start saw less stock and pushed the lower quantities
    assert first[0] is not None and before[0] is not None and first[0] < before[0]
    assert first[1] is not None and before[1] is not None and first[1] <= before[1]
    assert SECRET not in caplog.text


@pytest.mark.anyio
async def test_a_kv_listing_map_that_does_not_exist_stops_the_start_naming_it(
    nats_server: NatsServer, tmp_path: Path, fake_platforms: dict[str, FakeProfile]
) -> None:
    path = write_files(tmp_path)
    path.write_text(CHANNELS.replace('listings = "ebay.csv"', 'listings = "kv:inv_listings"'))
    config = GatewayConfig(path, connection=nats_server.client("connector"), metrics_port=None)
    with pytest.raises(GatewaySetupError, match="channel ebay: KV bucket inv_listings does not"):
        await run_gateway(config)


def test_a_credential_echoed_into_a_log_line_is_written_redacted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = Secret("$GW_TEST_TOKEN", SECRET)
    caplog.handler.addFilter(RedactSecrets([secret]))
    logging.getLogger("invsync.gateway.platforms.x").warning("platform said: bad token %s", SECRET)
    assert SECRET not in caplog.text
    assert "bad token <secret from $GW_TEST_TOKEN>" in caplog.text
