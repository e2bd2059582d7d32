"""The hub as a GB/T 28181 platform: devices register, keep alive, and go offline.

`Registrar.handle` answers one SIP request from a device (no sockets here: `hub.gb28181.server`
carries the bytes):

- REGISTER: the device's 20-digit ID is the user of its `From` URI. An ID not in
  `gb28181.devices` (by ID or ID prefix) is refused (403). Without `Authorization` it gets a
  401 with a digest challenge (realm: the 10-digit domain); a right answer registers it for
  `Expires` seconds (capped by `max_expires`), a wrong one is 403, a right one on an old nonce
  401 `stale=true`. `auth: none` devices register without a challenge. `Expires: 0`
  unregisters. The 200 carries `Date` (devices set their clocks from it).
- MESSAGE: a MANSCDP Keepalive from a registered device refreshes it (200); any other body
  (catalog and query responses, alarms) is answered 200 and handed to `on_message`; from a
  device that is not registered, 403.
- BYE, INFO (in a dialog the hub opened): to `dialogs`, which answers (481 without one).
- OPTIONS: 200. ACK: to `dialogs` too (nothing is answered). Anything else: 501.

`sweep` marks offline a device whose registration expired or that missed
`missed_keepalives` keepalive intervals. Every change online ↔ offline is an event
`gb28181.device` to the device's centre and an `on_change` emit; so is a new registration
of a device already online (it rebooted: its channels are read again).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from config.schema import Gb28181Config, Gb28181Device
from hub.core.events import EventBus
from hub.gb28181 import manscdp
from hub.gb28181.digest import Credentials, DigestAuthority, DigestError, Verdict
from hub.gb28181.sip import SipRequest, SipResponse, response_to
from streams.hooks import Hook

DialogHandler = Callable[[SipRequest, str, str], SipResponse | None]


@dataclass
class Device:
    id: str
    centre: str
    address: str = ""  # host:port the device's requests came from
    transport: str = ""  # udp | tcp
    registered_at: float = 0.0
    expires_at: float = 0.0
    last_keepalive: float = 0.0
    keepalives: int = 0
    online: bool = False
    channels: int = 0  # cameras the device's catalog lists (set by hub.gb28181.channels)
    name: str = ""
    manufacturer: str = ""
    model: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "centre": self.centre,
            "online": self.online,
            "address": self.address,
            "transport": self.transport,
            "registered_at": self.registered_at or None,
            "expires_at": self.expires_at or None,
            "last_keepalive": self.last_keepalive or None,
            "keepalives": self.keepalives,
            "channels": self.channels,
            "name": self.name or None,
            "manufacturer": self.manufacturer or None,
            "model": self.model or None,
        }


class Registrar:
    def __init__(
        self,
        config: Gb28181Config,
        events: EventBus,
        centres: set[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.events = events
        self.centres = centres
        self.clock = clock
        self.authority = DigestAuthority(config.domain, clock=clock)
        self.devices: dict[str, Device] = {}
        self.refused = 0  # REGISTERs refused: unknown device, wrong password
        # (device) when it goes online or offline, or registers again while online
        self.on_change: Hook[[Device]] = Hook("gb28181 device")
        # (device, body) for every MANSCDP body but Keepalive from a registered device
        self.on_message: Hook[[Device, manscdp.Manscdp]] = Hook("gb28181 message")
        self.dialogs: DialogHandler | None = None  # BYE / INFO / ACK of the hub's dialogs

    # -- requests ----------------------------------------------------------------------------
    def handle(self, request: SipRequest, address: str, transport: str) -> SipResponse | None:
        method = request.method.upper()
        if method in ("ACK", "BYE", "INFO"):
            if self.dialogs is not None:
                return self.dialogs(request, address, transport)
            return None if method == "ACK" else response_to(request, 481)
        if method == "REGISTER":
            return self._register(request, address, transport)
        if method == "MESSAGE":
            return self._message(request)
        if method == "OPTIONS":
            return response_to(request, 200)
        return response_to(request, 501)

    def _register(self, request: SipRequest, address: str, transport: str) -> SipResponse:
        device_id = request.from_.uri.user or ""
        allowed = self._allowed(device_id)
        if allowed is None:
            self.refused += 1
            return response_to(request, 403, "Unknown device")
        if allowed.auth == "digest":
            password = self._password(allowed)
            if not password:  # an empty password would let anyone in under this ID
                self.refused += 1
                return response_to(request, 403, "No password configured for this device")
            header = request.headers.get("Authorization")
            if header is None:
                return self._challenge(request)
            try:
                credentials = Credentials.parse(header)
            except DigestError:
                self.refused += 1
                return response_to(request, 400, "Bad Authorization")
            if credentials.username != device_id:
                self.refused += 1
                return response_to(request, 403, "Forbidden")
            verdict = self.authority.verify("REGISTER", credentials, password)
            if verdict is Verdict.STALE:
                return self._challenge(request, stale=True)
            if verdict is not Verdict.ACCEPTED:
                self.refused += 1
                return response_to(request, 403, "Wrong password")
        expires = request.expires
        if expires is None:
            expires = 3600
        expires = min(expires, self.config.max_expires)
        now = self.clock()
        device = self.devices.get(device_id)
        if device is None:
            device = Device(device_id, allowed.centre or self._centre_of(device_id))
            self.devices[device_id] = device
        if expires == 0:
            device.expires_at = now
            self._set_online(device, False)
        else:
            # a fresh registration (not a refresh on the same connection): a rebooted device,
            # or one that moved; its channels are read again
            moved = (device.address, device.transport) != (address, transport)
            device.address, device.transport = address, transport
            device.registered_at, device.expires_at = now, now + expires
            device.last_keepalive = now
            if device.online and moved:
                self.on_change.emit(device)
            self._set_online(device, True)
        response = response_to(request, 200)
        response.headers.add("Expires", str(expires))
        response.headers.add("Date", _gb_date(now))
        return response

    def _challenge(self, request: SipRequest, *, stale: bool = False) -> SipResponse:
        response = response_to(request, 401)
        response.headers.add(
            "WWW-Authenticate", self.authority.challenge(stale=stale).header_value()
        )
        return response

    def _message(self, request: SipRequest) -> SipResponse:
        device = self.devices.get(request.from_.uri.user or "")
        if device is None or not device.online:
            return response_to(request, 403, "Not registered")
        try:
            body = manscdp.parse(request.body)
        except manscdp.ManscdpError:
            return response_to(request, 400, "Bad MANSCDP body")
        if body.cmd_type == "Keepalive":
            device.last_keepalive = self.clock()
            device.keepalives += 1
        else:
            self.on_message.emit(device, body)
        return response_to(request, 200)

    # -- liveness ----------------------------------------------------------------------------
    def sweep(self) -> list[Device]:
        """Offline: registrations expired, keepalives missed. Returns the devices gone offline."""
        now = self.clock()
        silent = self.config.keepalive_interval * self.config.missed_keepalives
        gone = []
        for device in self.devices.values():
            if device.online and (now >= device.expires_at or now - device.last_keepalive > silent):
                self._set_online(device, False)
                gone.append(device)
        return gone

    def _set_online(self, device: Device, online: bool) -> None:
        if device.online == online:
            return
        device.online = online
        self.events.publish("gb28181.device", device.centre, device.to_json())
        self.on_change.emit(device)

    # -- configuration -----------------------------------------------------------------------
    def _allowed(self, device_id: str) -> Gb28181Device | None:
        if not (device_id.isascii() and device_id.isdigit() and len(device_id) == 20):
            return None
        matches = [d for d in self.config.devices if device_id.startswith(d.id)]
        return max(matches, key=lambda d: len(d.id)) if matches else None

    def _password(self, device: Gb28181Device) -> str:
        return device.password or self.config.password

    def _centre_of(self, device_id: str) -> str:
        """The longest configured centre code the ID starts with, else the top centre."""
        found = [c for c in self.centres if device_id.startswith(c)]
        return max(found, key=len) if found else min(self.centres, key=len)


def _gb_date(at: float) -> str:
    """`Date` as GB/T 28181 devices read it: local ISO time with milliseconds, no zone."""
    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


REGISTRAR = web.AppKey("gb28181_registrar", Registrar)
