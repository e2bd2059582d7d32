"""MANSCDP: the XML bodies of GB/T 28181 MESSAGE, SUBSCRIBE and NOTIFY requests, and the
20-digit IDs they name devices by.

`parse` reads a Query, Response, Notify or Control body into a `Manscdp` (CmdType, SN,
DeviceID, the other top-level fields, and the item lists: DeviceList, RecordList,
Alarmstatus …), with typed views for Catalog, DeviceInfo, DeviceStatus, RecordInfo and
Alarm. Bodies come in GB2312/GBK/GB18030 or UTF-8, and some GBK bodies declare UTF-8: the
declared encoding is honoured, and a body that is not valid UTF-8 is read as GB18030 (a
superset of GB2312 and GBK). Any DTD or entity declaration is refused before the XML parser
sees the text (no entity expansion, no external fetch: billion laughs, XXE). Every failure is
a `ManscdpError`.

The `build_*` functions write bodies encoded as GB2312 with the matching XML declaration
(GB18030 when a name needs a character GB2312 lacks). `CatalogAssembler` joins a catalog a
device sends in several MESSAGEs (same SN, SumNum in each, DeviceList Num per batch).

This module is over ~500 lines because the typed views, their builders and the ID rules are
one vocabulary; each part is short.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_BODY = 256 * 1024
MAX_CATALOG = 100_000
KINDS = ("Query", "Response", "Notify", "Control")
CONTENT_TYPE = "Application/MANSCDP+xml"


class ManscdpError(ValueError):
    """A body that is not MANSCDP this module accepts (answer 400, or drop it)."""


# --- decoding ---------------------------------------------------------------------------

_DECLARATION = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']", re.I)
_GB = {"gb2312", "gbk", "gb18030", "cp936", "gb_2312-80", "euc-cn", "x-gbk", "ms936"}
_GB2312 = {"gb2312", "gb_2312-80", "euc-cn"}
_UTF8 = {"utf-8", "utf8", "ascii", "us-ascii"}
_MARKUP_DECLARATION = re.compile(r"<!(?!--|\[CDATA\[)")
_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def declared_encoding(body: bytes) -> str | None:
    match = _DECLARATION.match(body[:200])
    return match.group(1).decode("ascii").lower() if match else None


def decode(body: bytes) -> str:
    """The text of a body: as declared (GB family or UTF-8), falling back to the other."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in body:
        raise ManscdpError("UTF-16/32 bodies are not MANSCDP")
    declared = declared_encoding(body)
    if declared is not None and declared not in _GB | _UTF8:
        raise ManscdpError(f"unsupported encoding {declared!r}")
    utf8 = _try(body, "utf-8")
    if declared in _GB:
        # honour the declaration, unless the text it gives is not of the declared set (a
        # UTF-8 body read as GB comes out in GBK-only characters) and the bytes are UTF-8
        text = _try(body, "gb18030")
        repertoire = "gb2312" if declared in _GB2312 else "gbk"
        if text is not None and (utf8 is None or _encodable(text, repertoire)):
            return text
        if utf8 is not None:
            return utf8
    else:
        text = utf8 if utf8 is not None else _try(body, "gb18030")  # GBK that says UTF-8
        if text is not None:
            return text
    raise ManscdpError("body is neither UTF-8 nor GB18030")


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _encodable(text: str, codec: str) -> bool:
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def _root(body: bytes) -> ET.Element:
    if len(body) > MAX_BODY:
        raise ManscdpError(f"body larger than {MAX_BODY} bytes")
    text = decode(body)
    if _MARKUP_DECLARATION.search(text):
        raise ManscdpError("DTDs and entity declarations are refused")
    try:
        return ET.fromstring(text)
    except (ET.ParseError, ValueError) as e:
        raise ManscdpError(f"malformed XML: {e}") from None


# --- the message ------------------------------------------------------------------------


def _text(element: ET.Element) -> str:
    return (element.text or "").strip()


def _flatten(element: ET.Element, prefix: str, into: dict[str, str], depth: int = 0) -> None:
    """Leaf texts under `element` as {"Tag": text, "Info.PTZType": text}; first one wins."""
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = f"{prefix}{child.tag}"
        if len(child):
            if depth < 3:
                _flatten(child, f"{name}.", into, depth + 1)
        else:
            into.setdefault(name, _text(child))


def _is_list(element: ET.Element) -> bool:
    children = [c for c in element if isinstance(c.tag, str)]
    return "Num" in element.attrib or (bool(children) and all(c.tag == "Item" for c in children))


@dataclass
class Manscdp:
    kind: str  # Query, Response, Notify, Control
    cmd_type: str
    sn: int
    device_id: str
    fields: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def number(self, name: str) -> int | None:
        return _int(self.fields.get(name))

    @property
    def sum_num(self) -> int | None:
        return self.number("SumNum")

    def _expect(self, *cmd_types: str) -> None:
        if self.cmd_type not in cmd_types:
            raise ManscdpError(f"a {self.cmd_type} body, not {'/'.join(cmd_types)}")

    def catalog(self) -> list[CatalogItem]:
        self._expect("Catalog")
        return [CatalogItem.from_fields(item) for item in self.lists.get("DeviceList", [])]

    def device_info(self) -> DeviceInfo:
        self._expect("DeviceInfo")
        return DeviceInfo.from_fields(self.device_id, self.fields)

    def device_status(self) -> DeviceStatus:
        self._expect("DeviceStatus")
        alarms = self.lists.get("Alarmstatus", [])
        return DeviceStatus.from_fields(self.device_id, self.fields, alarms)

    def records(self) -> list[RecordItem]:
        self._expect("RecordInfo")
        return [RecordItem.from_fields(item) for item in self.lists.get("RecordList", [])]

    def alarm(self) -> Alarm:
        self._expect("Alarm")
        return Alarm.from_fields(self.device_id, self.fields)


def parse(body: bytes) -> Manscdp:
    """A MANSCDP body → `Manscdp`; ManscdpError for anything else."""
    root = _root(body)
    if root.tag not in KINDS:
        raise ManscdpError(f"root element {str(root.tag)[:30]!r} is not {'/'.join(KINDS)}")
    top: dict[str, str] = {}
    lists: dict[str, list[dict[str, str]]] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if _is_list(child):
            items = []
            for item in child:
                if isinstance(item.tag, str):
                    flat: dict[str, str] = {}
                    _flatten(item, "", flat)
                    items.append(flat)
            lists.setdefault(child.tag, items)
            if "Num" in child.attrib:
                top.setdefault(f"{child.tag}.Num", child.attrib["Num"].strip())
        elif len(child):
            _flatten(child, f"{child.tag}.", top)
        else:
            top.setdefault(child.tag, _text(child))
    cmd_type, sn, device_id = top.pop("CmdType", ""), top.pop("SN", ""), top.pop("DeviceID", "")
    if not cmd_type:
        raise ManscdpError("no CmdType")
    number = _int(sn)
    if number is None:
        raise ManscdpError(f"SN is not a number: {sn[:20]!r}")
    if not device_id:
        raise ManscdpError("no DeviceID")
    return Manscdp(root.tag, cmd_type, number, device_id, top, lists)


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        return None
    return int(value)


def _float(value: str | None) -> float | None:
    try:
        number = float((value or "").strip())
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


# --- typed views ------------------------------------------------------------------------

# (attribute, XML tag, kind) in the order GB/T 28181 lists a catalog item's fields
_CATALOG_FIELDS = (
    ("device_id", "DeviceID", str),
    ("name", "Name", str),
    ("manufacturer", "Manufacturer", str),
    ("model", "Model", str),
    ("owner", "Owner", str),
    ("civil_code", "CivilCode", str),
    ("block", "Block", str),
    ("address", "Address", str),
    ("parental", "Parental", int),
    ("parent_id", "ParentID", str),
    ("business_group_id", "BusinessGroupID", str),
    ("safety_way", "SafetyWay", int),
    ("register_way", "RegisterWay", int),
    ("secrecy", "Secrecy", int),
    ("ip_address", "IPAddress", str),
    ("port", "Port", int),
    ("status", "Status", str),
    ("longitude", "Longitude", float),
    ("latitude", "Latitude", float),
)
_ALWAYS = {"DeviceID", "Name", "Parental"}


@dataclass(frozen=True)
class CatalogItem:
    """One DeviceList Item: a channel (camera), a device, a business group or organisation."""

    device_id: str
    name: str = ""
    manufacturer: str = ""
    model: str = ""
    owner: str = ""
    civil_code: str = ""
    block: str = ""
    address: str = ""
    parental: int | None = 0
    parent_id: str = ""
    business_group_id: str = ""
    safety_way: int | None = None
    register_way: int | None = None
    secrecy: int | None = None
    ip_address: str = ""
    port: int | None = None
    status: str = ""  # ON / OFF (devices also send OK, ONLINE, OFFLINE)
    longitude: float | None = None
    latitude: float | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def online(self) -> bool:
        return self.status.upper() in ("ON", "OK", "ONLINE")

    @classmethod
    def from_fields(cls, values: dict[str, str]) -> CatalogItem:
        if not values.get("DeviceID"):
            raise ManscdpError("a catalog item without DeviceID")
        known: dict[str, object] = {}
        for attr, tag, kind in _CATALOG_FIELDS:
            if tag in values:
                raw = values[tag]
                known[attr] = _int(raw) if kind is int else _float(raw) if kind is float else raw
        extra = {k: v for k, v in values.items() if k not in {t for _, t, _ in _CATALOG_FIELDS}}
        return cls(extra=extra, **known)  # type: ignore[arg-type]

    def to_fields(self) -> list[tuple[str, str]]:
        out = []
        for attr, tag, _ in _CATALOG_FIELDS:
            value = getattr(self, attr)
            if value is None or (value == "" and tag not in _ALWAYS):
                continue
            out.append((tag, str(value)))
        return out + list(self.extra.items())


def _pick(values: dict[str, str], *names: str) -> str:
    return next((values[n] for n in names if n in values), "")


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    result: str = ""
    device_name: str = ""
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    channel: int | None = None

    @classmethod
    def from_fields(cls, device_id: str, values: dict[str, str]) -> DeviceInfo:
        return cls(
            device_id,
            result=values.get("Result", ""),
            device_name=values.get("DeviceName", ""),
            manufacturer=values.get("Manufacturer", ""),
            model=values.get("Model", ""),
            firmware=values.get("Firmware", ""),
            channel=_int(values.get("Channel")),
        )


@dataclass(frozen=True)
class DeviceStatus:
    device_id: str
    result: str = ""
    online: str = ""  # ONLINE / OFFLINE
    status: str = ""  # OK / ERROR
    encode: str = ""
    record: str = ""
    device_time: str = ""
    alarms: list[dict[str, str]] = field(default_factory=list, compare=False)

    @classmethod
    def from_fields(
        cls, device_id: str, values: dict[str, str], alarms: list[dict[str, str]]
    ) -> DeviceStatus:
        return cls(
            device_id,
            result=values.get("Result", ""),
            online=values.get("Online", ""),
            status=values.get("Status", ""),
            encode=values.get("Encode", ""),
            record=values.get("Record", ""),
            device_time=values.get("DeviceTime", ""),
            alarms=alarms,
        )


@dataclass(frozen=True)
class RecordItem:
    device_id: str
    name: str = ""
    file_path: str = ""
    address: str = ""
    start_time: str = ""
    end_time: str = ""
    secrecy: int | None = None
    type: str = ""  # time / alarm / manual / all
    recorder_id: str = ""
    file_size: int | None = None

    @classmethod
    def from_fields(cls, values: dict[str, str]) -> RecordItem:
        return cls(
            values.get("DeviceID", ""),
            name=values.get("Name", ""),
            file_path=values.get("FilePath", ""),
            address=values.get("Address", ""),
            start_time=values.get("StartTime", ""),
            end_time=values.get("EndTime", ""),
            secrecy=_int(values.get("Secrecy")),
            type=values.get("Type", ""),
            recorder_id=values.get("RecorderID", ""),
            file_size=_int(values.get("FileSize")),
        )


@dataclass(frozen=True)
class Alarm:
    device_id: str
    priority: int | None = None  # 1 highest … 4
    method: str = ""  # 1 phone, 2 device, 3 SMS, 4 GPS, 5 video, 6 fault, 7 other
    time: str = ""
    description: str = ""
    longitude: float | None = None
    latitude: float | None = None
    alarm_type: str = ""

    @classmethod
    def from_fields(cls, device_id: str, values: dict[str, str]) -> Alarm:
        return cls(
            device_id,
            priority=_int(values.get("AlarmPriority")),
            method=values.get("AlarmMethod", ""),
            time=values.get("AlarmTime", ""),
            description=values.get("AlarmDescription", ""),
            longitude=_float(values.get("Longitude")),
            latitude=_float(values.get("Latitude")),
            alarm_type=_pick(values, "AlarmType", "Info.AlarmType"),
        )


class CatalogAssembler:
    """Joins the batches of a catalog response: keyed by (DeviceID, SN), done at SumNum.

    Items repeated across batches count once (by their DeviceID). At most `max_pending`
    catalogs are assembled at once; the oldest is dropped for a new one.
    """

    def __init__(self, *, max_pending: int = 64, max_items: int = MAX_CATALOG) -> None:
        self._pending: OrderedDict[tuple[str, int], dict[str, CatalogItem]] = OrderedDict()
        self._max_pending = max_pending
        self._max_items = max_items

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, message: Manscdp) -> list[CatalogItem] | None:
        """The whole catalog once this batch completes it, else None."""
        total = message.sum_num
        if total is None:
            raise ManscdpError("a catalog response without SumNum")
        if total > self._max_items:
            raise ManscdpError(f"SumNum {total} is more than {self._max_items}")
        key = (message.device_id, message.sn)
        items = self._pending.pop(key, {})
        for item in message.catalog():
            items.setdefault(item.device_id, item)
        if len(items) >= total:
            return list(items.values())
        self._pending[key] = items
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)
        return None


# --- building ---------------------------------------------------------------------------


def _clean(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _element(kind: str, cmd_type: str, sn: int, device_id: str) -> ET.Element:
    root = ET.Element(kind)
    for tag, value in (("CmdType", cmd_type), ("SN", str(sn)), ("DeviceID", device_id)):
        ET.SubElement(root, tag).text = _clean(value)
    return root


def _add(parent: ET.Element, values: Sequence[tuple[str, str]]) -> None:
    """Child elements; a dotted name ("Info.PTZType", as `parse` flattens) nests them."""
    for name, value in values:
        *path, tag = name.split(".")
        at = parent
        for step in path:
            found = at.find(step)
            at = found if found is not None else ET.SubElement(at, step)
        ET.SubElement(at, tag).text = _clean(value)


def encode(root: ET.Element, encoding: str = "GB2312") -> bytes:
    """`root` as a body with its XML declaration; GB2312 falls back to GB18030 for names
    with characters GB2312 lacks."""
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    for name in (encoding, "GB18030") if encoding.upper() == "GB2312" else (encoding,):
        try:
            return f'<?xml version="1.0" encoding="{name}"?>\n{text}\n'.encode(name)
        except UnicodeEncodeError:
            continue
    raise ManscdpError(f"cannot encode the body as {encoding}")


def build_keepalive(
    device_id: str, sn: int, *, status: str = "OK", encoding: str = "GB2312"
) -> bytes:
    root = _element("Notify", "Keepalive", sn, device_id)
    _add(root, [("Status", status)])
    return encode(root, encoding)


def build_query(cmd_type: str, device_id: str, sn: int, *, encoding: str = "GB2312") -> bytes:
    """A Query (Catalog, DeviceInfo, DeviceStatus …) with no further conditions."""
    return encode(_element("Query", cmd_type, sn, device_id), encoding)


def build_catalog_query(device_id: str, sn: int, *, encoding: str = "GB2312") -> bytes:
    return build_query("Catalog", device_id, sn, encoding=encoding)


def build_catalog_responses(
    device_id: str,
    sn: int,
    items: Sequence[CatalogItem],
    *,
    batch: int = 10,
    encoding: str = "GB2312",
) -> list[bytes]:
    """The catalog in batches of `batch` items (small enough for one UDP MESSAGE each), each
    with SumNum = all items and DeviceList Num = its own items."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)] or [items[:0]]
    bodies = []
    for chunk in chunks:
        root = _element("Response", "Catalog", sn, device_id)
        _add(root, [("SumNum", str(len(items)))])
        listing = ET.SubElement(root, "DeviceList", Num=str(len(chunk)))
        for item in chunk:
            _add(ET.SubElement(listing, "Item"), item.to_fields())
        bodies.append(encode(root, encoding))
    return bodies


def build_device_info_response(
    device_id: str,
    sn: int,
    *,
    name: str,
    manufacturer: str,
    model: str,
    firmware: str,
    channel: int,
    ok: bool = True,
    encoding: str = "GB2312",
) -> bytes:
    root = _element("Response", "DeviceInfo", sn, device_id)
    _add(
        root,
        [
            ("DeviceName", name),
            ("Result", "OK" if ok else "ERROR"),
            ("Manufacturer", manufacturer),
            ("Model", model),
            ("Firmware", firmware),
            ("Channel", str(channel)),
        ],
    )
    return encode(root, encoding)


def build_device_status_response(
    device_id: str,
    sn: int,
    *,
    online: bool = True,
    ok: bool = True,
    encode_on: bool = True,
    record_on: bool = False,
    device_time: str | None = None,
    encoding: str = "GB2312",
) -> bytes:
    root = _element("Response", "DeviceStatus", sn, device_id)
    values = [
        ("Result", "OK"),
        ("Online", "ONLINE" if online else "OFFLINE"),
        ("Status", "OK" if ok else "ERROR"),
        ("Encode", "ON" if encode_on else "OFF"),
        ("Record", "ON" if record_on else "OFF"),
    ]
    if device_time is not None:
        values.append(("DeviceTime", device_time))
    _add(root, values)
    ET.SubElement(root, "Alarmstatus", Num="0")
    return encode(root, encoding)


def build_result_response(
    cmd_type: str, device_id: str, sn: int, *, ok: bool = True, encoding: str = "GB2312"
) -> bytes:
    """The Response a device sends to a Control or configuration: Result OK / ERROR."""
    root = _element("Response", cmd_type, sn, device_id)
    _add(root, [("Result", "OK" if ok else "ERROR")])
    return encode(root, encoding)


# --- 20-digit IDs -----------------------------------------------------------------------

TYPE_NAMES = {
    111: "DVR",
    112: "video server",
    113: "encoder",
    114: "decoder",
    115: "video switching matrix",
    116: "audio switching matrix",
    117: "alarm controller",
    118: "NVR",
    131: "camera",
    132: "IP camera",
    133: "display",
    134: "alarm input",
    135: "alarm output",
    136: "audio input",
    137: "audio output",
    138: "mobile transmission device",
    139: "other peripheral",
    200: "platform (central signalling server)",
    201: "web application server",
    202: "media distribution server",
    203: "proxy server",
    204: "security server",
    205: "alarm server",
    206: "database server",
    207: "GIS server",
    208: "management server",
    209: "access gateway",
    210: "media storage server",
    211: "signalling security routing gateway",
    215: "business group",
    216: "virtual organisation",
    300: "centre user",
    400: "terminal user",
}
NETWORKS = {
    5: "public security network",
    6: "government network",
    7: "internet",
    8: "social resources",
}


@dataclass(frozen=True)
class GbId:
    """A GB/T 28181 code: centre code (8 digits: province 2, city 2, county 2, unit 2),
    industry (2), type (3), network (1), serial (6)."""

    text: str

    @property
    def centre(self) -> str:
        return self.text[:8]

    @property
    def domain(self) -> str:
        """The first ten digits: by convention the SIP domain (realm) of the platform."""
        return self.text[:10]

    @property
    def industry(self) -> str:
        return self.text[8:10]

    @property
    def type_code(self) -> int:
        return int(self.text[10:13])

    @property
    def network(self) -> int:
        return int(self.text[13])

    @property
    def serial(self) -> str:
        return self.text[14:]

    @property
    def province(self) -> str:
        return self.text[:2]

    @property
    def city(self) -> str:
        return self.text[:4]

    @property
    def county(self) -> str:
        return self.text[:6]

    @property
    def type_name(self) -> str | None:
        return TYPE_NAMES.get(self.type_code)

    @property
    def network_name(self) -> str:
        return NETWORKS.get(
            self.network, "video surveillance private network" if self.network < 5 else "reserved"
        )

    @property
    def is_camera(self) -> bool:
        return self.type_code in (131, 132)

    @property
    def is_device(self) -> bool:
        """A front-end or recording device (types 111-199)."""
        return 111 <= self.type_code <= 199

    @property
    def is_platform(self) -> bool:
        return self.type_code == 200

    @property
    def is_group(self) -> bool:
        """A business group or virtual organisation node of a catalog tree."""
        return self.type_code in (215, 216)

    def __str__(self) -> str:
        return self.text


def parse_gb_id(text: str) -> GbId:
    text = text.strip()
    if len(text) != 20 or not text.isascii() or not text.isdigit():
        raise ManscdpError(f"not a 20-digit GB/T 28181 ID: {text[:30]!r}")
    return GbId(text)


def is_gb_id(text: str) -> bool:
    try:
        parse_gb_id(text)
    except ManscdpError:
        return False
    return True


def make_gb_id(centre: str, industry: str, type_code: int, network: int, serial: int) -> str:
    """Compose an ID; centre is padded with zeros to eight digits (a county code: 6)."""
    centre = centre.ljust(8, "0")
    text = f"{centre}{industry}{type_code:03d}{network}{serial:06d}"
    return parse_gb_id(text).text
