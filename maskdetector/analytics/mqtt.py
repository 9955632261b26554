"""Events over MQTT, for Home Assistant, Node-RED and anything else on the site's broker (paho-mqtt).

Topics under `<prefix>/<instance>/` (prefix from the URL's path, "maskdetector" by default):
- `availability`: "online" / "offline", retained; the broker publishes "offline" itself (the last will) when the
  instance dies without saying goodbye.
- `<camera>/availability`: "online" / "offline", retained: whether the source delivers frames.
- `<camera>/alert`: each no-mask alert, the webhook's JSON, QoS 1 (at least once: a subscriber that must not act
  twice after a broker restart keys on its `id`).
- `<camera>/people`: the people counted in each minute once it is over, the /api/history JSON of one minute,
  QoS 1, retained.

Nothing here waits for the network: paho's own thread talks to the broker and reconnects with back-off, and while
it cannot, QoS 1 messages wait in paho's queue up to `queue_limit`; what does not fit is dropped, counted and logged.
"""

import json
import logging
import ssl
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from maskdetector.analytics.history import summarize
from maskdetector.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "maskdetector"
PORTS = {"mqtt": 1883, "mqtts": 8883}
KEEPALIVE_S = 30  # a broker notices a dead instance without a clean TCP close within 1.5 x this
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
TICK_S = 1.0
# A minute's counts go out this long after it ends, so a sighting stamped just before the minute turned is in them.
MINUTE_GRACE_S = 2.0
CLOSE_S = 2.0
ONLINE, OFFLINE = "online", "offline"
QOS = 1


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    prefix: str

    @classmethod
    def from_url(cls, url: str) -> "Broker":
        """mqtt://[user[:password]@]host[:port][/prefix], or mqtts:// for TLS; UserError otherwise."""
        parts = urlsplit(url)
        if parts.scheme not in PORTS or not parts.hostname:
            raise UserError(f"MQTT URL must look like mqtt://user:password@host:1883/prefix, not {url!r}")
        try:
            port = parts.port or PORTS[parts.scheme]
        except ValueError:
            raise UserError(f"MQTT URL {url!r} has a bad port") from None
        prefix = parts.path.strip("/") or DEFAULT_PREFIX
        if "+" in prefix or "//" in prefix or parts.query or "#" in url:
            raise UserError(f"MQTT topic prefix {prefix!r} may not contain +, # or empty levels")
        return cls(
            host=parts.hostname,
            port=port,
            tls=parts.scheme == "mqtts",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            prefix=prefix,
        )

    def shown(self) -> str:
        """The broker as logs show it: never the password."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}/{self.prefix}"


class MqttEvents:
    """One instance's connection to the broker. `cameras` maps each camera name to a function telling whether its
    source is up; `clock` is injectable so tests can run minutes quickly. `start()` connects (in the background)."""

    def __init__(
        self,
        broker: Broker,
        instance: str,
        cameras: Mapping[str, Callable[[], bool]],
        queue_limit: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.broker = broker
        self.base = f"{broker.prefix}/{instance}"
        self._cameras = dict(cameras)
        self._clock = clock
        self._lock = threading.Lock()
        self._minutes: defaultdict[int, defaultdict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self._next_minute = int(clock() // 60)  # the first minute whose counts are still to be published
        self._states: dict[str, str] = {}
        self._states_lock = threading.Lock()  # the ticker and paho's thread (on connect) both publish states
        self.published = self.delivered = self.dropped = self.alerts_delivered = 0
        self._alert_mids: set[int] = set()  # alerts sent and not yet acknowledged
        self.connected = False
        self._announced = False  # whether "online" went out on this connection
        self._closing = False
        self._client = self._make_client(instance, queue_limit)
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="mqtt minutes", daemon=True)

    def start(self, tick_thread: bool = True) -> None:
        """Connect in the background and keep reconnecting; `tick_thread=False` leaves `tick()` to the caller."""
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        self._client.loop_start()
        if tick_thread:
            self._ticker.start()

    # Called by the analysis and alert threads: in memory only.

    def record(self, source: str, label: str, at: float) -> None:
        """Count one person seen by `source` at Unix time `at` (the History.record signature)."""
        with self._lock:
            self._minutes[int(at // 60)][source][label] += 1

    def alert(self, alert: Mapping[str, Any]) -> None:
        """Queue one alert (an Alerts listener)."""
        mid = self._publish(f"{self.base}/{alert['source']}/alert", json.dumps({"event": "no_mask", **alert}))
        if mid is not None:
            with self._lock:
                self._alert_mids.add(mid)

    # The ticker's work.

    def tick(self) -> None:
        """Publish camera state changes and the counts of every minute that is over."""
        now = self._clock()
        if self.connected and not self._announced:  # "online" did not fit in a full queue on connecting
            self._announce()
        self._publish_states(only_changes=True)
        while (self._next_minute + 1) * 60 + MINUTE_GRACE_S <= now:
            with self._lock:
                minute = self._next_minute
                counts = self._minutes.pop(minute, {})
                self._next_minute += 1
            for camera in self._cameras:
                payload = {"t": minute * 60, **summarize(counts.get(camera, Counter()))}
                self._publish(f"{self.base}/{camera}/people", json.dumps(payload), retain=True)

    def close(self) -> None:
        """Say "offline" (the clean counterpart of the last will), give queued messages a moment, disconnect."""
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(CLOSE_S)
        self._closing = True
        if self.connected:
            info = self._client.publish(f"{self.base}/availability", OFFLINE, qos=QOS, retain=True)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(CLOSE_S)
        self._client.disconnect()
        self._client.loop_stop()

    def stats(self) -> dict[str, object]:
        return {
            "broker": self.broker.shown(),
            "connected": self.connected,
            "published": self.published,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "alerts_delivered": self.alerts_delivered,
        }

    def _make_client(self, instance: str, queue_limit: int) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"maskdetector-{instance}", protocol=mqtt.MQTTv311
        )
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(f"{self.base}/availability", OFFLINE, qos=QOS, retain=True)
        client.max_queued_messages_set(queue_limit)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: Any, props: object) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s refused the connection: %s", self.broker.shown(), reason)
            return
        log.info("connected to the MQTT broker %s", self.broker.shown())
        self.connected = True
        self._announced = False
        self._announce()

    def _announce(self) -> None:
        """A restarted broker without persistence has forgotten the retained state: say it again on every connect."""
        self._announced = self._publish(f"{self.base}/availability", ONLINE, retain=True) is not None
        self._publish_states(only_changes=False)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: Any, props: object) -> None:
        if self.connected and not self._closing:
            log.warning("lost the MQTT broker %s (%s); reconnecting", self.broker.shown(), reason)
        self.connected = False

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: Any, props: object) -> None:
        with self._lock:
            self.delivered += 1
            if mid in self._alert_mids:
                self._alert_mids.discard(mid)
                self.alerts_delivered += 1

    def _publish_states(self, only_changes: bool) -> None:
        """Camera states go out only while connected: queued ones could arrive after a newer state."""
        with self._states_lock:
            if not self.connected:
                return
            for camera, is_up in self._cameras.items():
                state = ONLINE if is_up() else OFFLINE
                if only_changes and self._states.get(camera) == state:
                    continue
                if self._publish(f"{self.base}/{camera}/availability", state, retain=True) is not None:
                    self._states[camera] = state  # else the next tick tries again

    def _publish(self, topic: str, payload: str, retain: bool = False) -> int | None:
        """Queue a QoS 1 message; its message id, or None if the queue is full (counted and logged)."""
        info = self._client.publish(topic, payload, qos=QOS, retain=retain)
        with self._lock:
            if info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
                self.published += 1
                return info.mid
            self.dropped += 1
            dropped = self.dropped
        if dropped == 1 or dropped % 100 == 0:
            log.error("MQTT broker %s away and the queue is full: %d messages lost", self.broker.shown(), dropped)
        return None

    def _tick_loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:  # a bug here must not end the minute counts for good
                log.exception("MQTT tick failed")
