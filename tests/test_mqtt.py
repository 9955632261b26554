"""Events over MQTT against a real Mosquitto broker and a real subscriber: alerts (QoS 1, the webhook's JSON),
per-minute counts (with an injected clock), retained online state, and a broker that stops and comes back."""

import json
import logging
import time

import numpy as np
import pytest
from helpers import Receiver, Subscriber, wait_until

from maskdetector.analytics.alerts import Alerts, Webhook
from maskdetector.analytics.mqtt import MINUTE_GRACE_S, Broker, MqttEvents
from maskdetector.errors import UserError
from maskdetector.types import Face
from maskdetector.web.monitor import SourceMonitor

NOW = 1_800_000_000.0  # on a minute boundary
FRAME = np.full((240, 320, 3), 120, np.uint8)


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def bare(x: int) -> Face:
    return Face((x, 60, 60, 60), "without_mask", 0.93)


def events_for(broker, clock, cameras=None, prefix="site", **options) -> MqttEvents:
    events = MqttEvents(
        Broker.from_url(broker.url(prefix, auth=True)),
        "north",
        cameras if cameras is not None else {"door": lambda: True},
        clock=clock,
        **options,
    )
    events.start(tick_thread=False)  # the test calls tick() with its own clock
    wait_until(lambda: events.connected, what="the app to connect to the broker")
    return events


def test_broker_urls():
    broker = Broker.from_url("mqtt://cam%40site:p%40ss@broker.lan/hq/floor1")
    assert (broker.host, broker.port, broker.tls) == ("broker.lan", 1883, False)
    assert (broker.username, broker.password, broker.prefix) == ("cam@site", "p@ss", "hq/floor1")
    assert Broker.from_url("mqtts://broker.lan").port == 8883 and Broker.from_url("mqtt://b").prefix == "maskdetector"
    assert "p@ss" not in broker.shown() and "pss" not in broker.shown()
    for bad in ("http://broker.lan", "mqtt://", "mqtt://b/a/#", "mqtt://b:99999"):
        with pytest.raises(UserError):
            Broker.from_url(bad)


def test_alerts_counts_and_online_state_reach_a_real_subscriber(broker, data_dir):
    subscriber = Subscriber(broker.port, "site/#")
    receiver = Receiver()
    clock = Clock(NOW + 5)
    door_up = [True]
    events = events_for(broker, clock, {"door": lambda: door_up[0], "hall": lambda: True})
    try:
        subscriber.wait_for(lambda got: got.get("site/north/availability") == ["online"], what="online")
        subscriber.wait_for(lambda got: got.get("site/north/door/availability") == ["online"], what="door online")
        alerts = Alerts(data_dir, frames=2, cooldown_s=0, webhook=Webhook(receiver.url), listeners=[events.alert])
        monitor = SourceMonitor("door", sightings=[events], alerts=alerts, clock=clock)
        for x in (0, 200, 400):  # three people in turn, three frames each: three sightings, three alerts
            for _ in range(3):
                monitor(FRAME, [bare(x)])
                clock.now += 0.5
            clock.now += 3  # a gap: the next person is a new track
        assert alerts.flush()
        raised = alerts.recent(10)[::-1]
        got = subscriber.wait_for(lambda got: len(got.get("site/north/door/alert", [])) == 3, what="three alerts")
        assert [json.loads(body) for body in got["site/north/door/alert"]] == receiver.bodies
        assert receiver.bodies == [{"event": "no_mask", **alert} for alert in raised]  # the webhook, as before

        clock.now = NOW + 60 + MINUTE_GRACE_S  # the first minute is over
        door_up[0] = False
        events.tick()
        got = subscriber.wait_for(lambda got: "site/north/hall/people" in got, what="the minute's counts")
        door = json.loads(got["site/north/door/people"][0])
        assert door["t"] == NOW and door["without_mask"] == 3 and door["people"] == 3 and door["compliance"] == 0.0
        assert json.loads(got["site/north/hall/people"][0])["people"] == 0  # quiet cameras report zero
        subscriber.wait_for(lambda got: got["site/north/door/availability"][-1] == "offline", what="door offline")
        alerts.close()
    finally:
        events.close()
        receiver.close()
    subscriber.wait_for(lambda got: got["site/north/availability"][-1] == "offline", what="a clean offline")
    late = Subscriber(broker.port, "site/#", client_id="late")  # retained: a newcomer learns the state at once
    got = late.wait_for(lambda got: "site/north/door/people" in got, what="retained messages")
    assert got["site/north/availability"] == ["offline"] and got["site/north/door/availability"] == ["offline"]
    late.close()
    subscriber.close()


def test_alerts_raised_while_the_broker_is_down_arrive_when_it_returns(broker):
    subscriber = Subscriber(broker.port, "site/+/+/alert")  # a persistent session: the broker queues for it
    events = events_for(broker, Clock())
    try:
        broker.stop()
        wait_until(lambda: not events.connected, what="the app to notice")
        for n in range(5):
            events.alert({"id": n, "source": "door"})
        broker.start()
        got = subscriber.wait_for(lambda got: len(got.get("site/north/door/alert", [])) >= 5, what="5 alerts")
        assert sorted(json.loads(body)["id"] for body in got["site/north/door/alert"]) == [0, 1, 2, 3, 4]
        assert events.stats()["dropped"] == 0
    finally:
        events.close()
        subscriber.close()


def test_beyond_the_queue_bound_messages_are_dropped_counted_and_logged(broker, caplog):
    subscriber = Subscriber(broker.port, "site/+/+/alert")
    events = events_for(broker, Clock(), cameras={}, queue_limit=3)
    try:
        broker.stop()
        wait_until(lambda: not events.connected, what="the app to notice")
        with caplog.at_level(logging.ERROR, logger="maskdetector.analytics.mqtt"):
            for n in range(5):
                events.alert({"id": n, "source": "door"})
        assert events.stats()["dropped"] == 2
        assert "queue is full: 1 messages lost" in caplog.text
        broker.start()
        got = subscriber.wait_for(lambda got: len(got.get("site/north/door/alert", [])) >= 3, what="3 alerts")
        time.sleep(0.5)  # nothing else is coming
        assert [json.loads(body)["id"] for body in got["site/north/door/alert"]] == [0, 1, 2]
        wait_until(lambda: events.connected, what="reconnection")
    finally:
        events.close()
        subscriber.close()


def test_an_unreachable_broker_costs_nothing_but_the_messages():
    from servers import free_port

    nowhere = Broker.from_url(f"mqtt://127.0.0.1:{free_port()}")
    events = MqttEvents(nowhere, "north", {"door": lambda: True}, queue_limit=2)
    events.start()
    try:
        for n in range(4):
            events.record("door", "without_mask", NOW)
            events.alert({"id": n, "source": "door"})
        assert events.stats() | {"broker": None} == {
            "broker": None,
            "connected": False,
            "published": 2,
            "delivered": 0,
            "dropped": 2,
            "alerts_delivered": 0,
        }
    finally:
        events.close()
