"""MANSCDP bodies: vendor-style samples, encodings, XML bombs, malformed input, builders, IDs."""

from __future__ import annotations

import random

import pytest

from hub.gb28181.manscdp import (
    MAX_BODY,
    CatalogAssembler,
    CatalogItem,
    ManscdpError,
    build_catalog_query,
    build_catalog_responses,
    build_device_info_response,
    build_device_status_response,
    build_keepalive,
    build_query,
    build_result_response,
    declared_encoding,
    decode,
    is_gb_id,
    make_gb_id,
    parse,
    parse_gb_id,
)

NVR = "34020000001180000001"

HIKVISION_CATALOG = """<?xml version="1.0" encoding="GB2312"?>
<Response>
<CmdType>Catalog</CmdType>
<SN>17430</SN>
<DeviceID>34020000001180000001</DeviceID>
<SumNum>2</SumNum>
<DeviceList Num="2">
<Item>
<DeviceID>34020000001310000001</DeviceID>
<Name>村委会大门口</Name>
<Manufacturer>Hikvision</Manufacturer>
<Model>IP Camera</Model>
<Owner>Owner</Owner>
<CivilCode>410922</CivilCode>
<Address>北街12号</Address>
<Parental>0</Parental>
<ParentID>34020000001180000001</ParentID>
<SafetyWay>0</SafetyWay>
<RegisterWay>1</RegisterWay>
<Secrecy>0</Secrecy>
<Status>ON</Status>
</Item>
<Item>
<DeviceID>34020000001310000002</DeviceID>
<Name>调解室</Name>
<Manufacturer>Hikvision</Manufacturer>
<Model>IP Camera</Model>
<Owner>Owner</Owner>
<CivilCode>410922</CivilCode>
<Address>Address</Address>
<Parental>0</Parental>
<ParentID>34020000001180000001</ParentID>
<SafetyWay>0</SafetyWay>
<RegisterWay>1</RegisterWay>
<Secrecy>0</Secrecy>
<Status>OFF</Status>
</Item>
</DeviceList>
</Response>
""".encode("gb2312")

DAHUA_CATALOG = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <CmdType>Catalog</CmdType>
  <SN>3</SN>
  <DeviceID>34020000001320000101</DeviceID>
  <SumNum>1</SumNum>
  <DeviceList Num="1">
    <Item>
      <DeviceID>34020000001320000101</DeviceID>
      <Name>乡镇综治中心-球机</Name>
      <Manufacturer>Dahua</Manufacturer>
      <Model>DH-SD49225XA-HNR</Model>
      <Owner>0</Owner>
      <CivilCode>4109221001</CivilCode>
      <Block>0</Block>
      <Address>axy</Address>
      <Parental>0</Parental>
      <ParentID>34020000002000000001</ParentID>
      <SafetyWay>0</SafetyWay>
      <RegisterWay>1</RegisterWay>
      <CertNum>0</CertNum>
      <Certifiable>0</Certifiable>
      <ErrCode>400</ErrCode>
      <EndTime>2010-11-11T19:46:17</EndTime>
      <Secrecy>0</Secrecy>
      <IPAddress>192.168.1.108</IPAddress>
      <Port>5060</Port>
      <Password>0</Password>
      <Status>ON</Status>
      <Longitude>114.352</Longitude>
      <Latitude>35.451</Latitude>
      <Info>
        <PTZType>1</PTZType>
      </Info>
    </Item>
  </DeviceList>
</Response>
""".encode()


def test_hikvision_style_catalog_in_gb2312() -> None:
    msg = parse(HIKVISION_CATALOG)
    assert (msg.kind, msg.cmd_type, msg.sn, msg.device_id) == ("Response", "Catalog", 17430, NVR)
    assert msg.sum_num == 2 and msg.fields["DeviceList.Num"] == "2"
    first, second = msg.catalog()
    assert first.name == "村委会大门口" and first.address == "北街12号"
    assert first.civil_code == "410922" and first.parent_id == NVR
    assert (first.parental, first.safety_way, first.register_way, first.secrecy) == (0, 0, 1, 0)
    assert first.online and not second.online and second.name == "调解室"


def test_dahua_style_catalog_in_utf8() -> None:
    (item,) = parse(DAHUA_CATALOG).catalog()
    assert item.name == "乡镇综治中心-球机" and item.model == "DH-SD49225XA-HNR"
    assert (item.longitude, item.latitude) == (114.352, 35.451)
    assert (item.ip_address, item.port) == ("192.168.1.108", 5060)
    assert item.extra["Info.PTZType"] == "1" and item.extra["ErrCode"] == "400"


def test_gbk_body_that_says_utf8_and_utf8_body_that_says_gb2312() -> None:
    lying = HIKVISION_CATALOG.replace(b'encoding="GB2312"', b'encoding="UTF-8"')
    assert parse(lying).catalog()[0].name == "村委会大门口"
    undeclared = HIKVISION_CATALOG.split(b"\n", 1)[1]
    assert parse(undeclared).catalog()[1].name == "调解室"
    other_way = DAHUA_CATALOG.replace(b'encoding="UTF-8"', b'encoding="GB2312"')
    # these UTF-8 bytes are valid GB18030 too, but read so they are not GB2312 text
    assert "乡镇综治中心".encode().decode("gb18030") != "乡镇综治中心"
    assert parse(other_way).catalog()[0].name == "乡镇综治中心-球机"
    not_gb = HIKVISION_CATALOG.decode("gb2312").encode()  # says GB2312, is UTF-8, not GB
    assert parse(not_gb).catalog()[0].name == "村委会大门口"
    says_gbk = DAHUA_CATALOG.replace(b'encoding="UTF-8"', b'encoding="GBK"')
    assert parse(says_gbk).catalog()[0].name == "乡镇综治中心-球机"
    gbk_only = HIKVISION_CATALOG.replace("调解室".encode("gb2312"), "镕".encode("gbk"))
    assert parse(gbk_only.replace(b"GB2312", b"GBK")).catalog()[1].name == "镕"
    with_bom = b"\xef\xbb\xbf" + DAHUA_CATALOG
    assert parse(with_bom).sn == 3
    assert declared_encoding(HIKVISION_CATALOG) == "gb2312"
    assert decode(b"<a/>") == "<a/>"


def test_keepalive_device_info_device_status_record_info_alarm() -> None:
    keepalive = parse(
        b'<?xml version="1.0"?><Notify><CmdType>Keepalive</CmdType><SN>7</SN>'
        b"<DeviceID>34020000001320000001</DeviceID><Status>OK</Status></Notify>"
    )
    assert (keepalive.kind, keepalive.cmd_type, keepalive.fields["Status"]) == (
        "Notify",
        "Keepalive",
        "OK",
    )
    info = parse(
        """<?xml version="1.0" encoding="GB2312"?>
<Response><CmdType>DeviceInfo</CmdType><SN>2</SN><DeviceID>34020000001180000001</DeviceID>
<DeviceName>一号录像机</DeviceName><Result>OK</Result><Manufacturer>Hikvision</Manufacturer>
<Model>DS-7808N</Model><Firmware>V4.1.0 build 180518</Firmware><Channel>8</Channel></Response>
""".encode("gb2312")
    ).device_info()
    assert (info.device_name, info.channel, info.result) == ("一号录像机", 8, "OK")
    status = parse(
        b"<Response><CmdType>DeviceStatus</CmdType><SN>4</SN><DeviceID>34020000001320000001</DeviceID>"
        b"<Result>OK</Result><Online>ONLINE</Online><Status>OK</Status><Encode>ON</Encode>"
        b"<Record>OFF</Record><DeviceTime>2026-12-03T09:00:00</DeviceTime>"
        b'<Alarmstatus Num="1"><Item><DeviceID>34020000001340000001</DeviceID>'
        b"<DutyStatus>OFFDUTY</DutyStatus></Item></Alarmstatus></Response>"
    ).device_status()
    assert (status.online, status.status, status.record) == ("ONLINE", "OK", "OFF")
    assert status.alarms == [{"DeviceID": "34020000001340000001", "DutyStatus": "OFFDUTY"}]
    records = parse(
        """<?xml version="1.0" encoding="GB2312"?>
<Response><CmdType>RecordInfo</CmdType><SN>5</SN><DeviceID>34020000001310000001</DeviceID>
<Name>大门口</Name><SumNum>2</SumNum><RecordList Num="2">
<Item><DeviceID>34020000001310000001</DeviceID><Name>大门口</Name>
<StartTime>2026-12-02T08:00:00</StartTime><EndTime>2026-12-02T09:00:00</EndTime>
<Secrecy>0</Secrecy><Type>time</Type><FileSize>1048576</FileSize></Item>
<Item><DeviceID>34020000001310000001</DeviceID><Name>大门口</Name>
<StartTime>2026-12-02T09:00:00</StartTime><EndTime>2026-12-02T10:00:00</EndTime>
<Secrecy>0</Secrecy><Type>alarm</Type></Item>
</RecordList></Response>""".encode("gb2312")
    )
    first, second = records.records()
    assert (first.start_time, first.type, first.file_size) == (
        "2026-12-02T08:00:00",
        "time",
        1048576,
    )
    assert second.type == "alarm" and second.file_size is None and records.sum_num == 2
    alarm = parse(
        """<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Alarm</CmdType><SN>9</SN><DeviceID>34020000001340000001</DeviceID>
<AlarmPriority>1</AlarmPriority><AlarmMethod>5</AlarmMethod>
<AlarmTime>2026-12-03T08:59:00</AlarmTime><AlarmDescription>区域入侵</AlarmDescription>
<Longitude>114.35</Longitude><Latitude>abc</Latitude>
<Info><AlarmType>2</AlarmType></Info></Notify>""".encode("gb2312")
    ).alarm()
    assert (alarm.priority, alarm.method, alarm.description) == (1, "5", "区域入侵")
    assert (alarm.longitude, alarm.latitude, alarm.alarm_type) == (114.35, None, "2")


def test_a_view_of_the_wrong_command_is_refused() -> None:
    with pytest.raises(ManscdpError):
        parse(DAHUA_CATALOG).device_info()


def test_multi_batch_catalog_reassembled_by_sn_and_sumnum() -> None:
    items = [
        CatalogItem(f"3402000000131{i:07d}", name=f"摄像机{i}", parent_id=NVR, status="ON")
        for i in range(25)
    ]
    bodies = build_catalog_responses(NVR, 88, items, batch=10)
    assert len(bodies) == 3
    parsed = [parse(b) for b in bodies]
    assert [p.sum_num for p in parsed] == [25, 25, 25]
    assert [p.fields["DeviceList.Num"] for p in parsed] == ["10", "10", "5"]
    assembler = CatalogAssembler()
    other = parse(build_catalog_responses("34020000001180000002", 88, items[:3], batch=2)[0])
    assert assembler.add(other) is None  # another device's catalog, same SN
    assert assembler.add(parsed[2]) is None
    assert assembler.add(parsed[0]) is None
    assert assembler.add(parsed[0]) is None  # a retransmitted batch counts once
    done = assembler.add(parsed[1])
    assert done is not None and sorted(done, key=lambda i: i.device_id) == items
    assert assembler.pending == 1


def test_assembler_bounds() -> None:
    assembler = CatalogAssembler(max_pending=2, max_items=10)
    items = [CatalogItem(f"3402000000131{i:07d}") for i in range(4)]
    for sn in range(5):
        assert assembler.add(parse(build_catalog_responses(NVR, sn, items, batch=1)[0])) is None
    assert assembler.pending == 2
    with pytest.raises(ManscdpError):
        assembler.add(parse(HIKVISION_CATALOG.replace(b"<SumNum>2", b"<SumNum>11")))
    with pytest.raises(ManscdpError):
        assembler.add(parse(HIKVISION_CATALOG.replace(b"<SumNum>2</SumNum>", b"")))
    (empty,) = build_catalog_responses(NVR, 1, [])
    assert CatalogAssembler().add(parse(empty)) == []


BOMBS = {
    "billion laughs": b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>&lol3;</DeviceID></Notify>""",
    "external entity": b"""<?xml version="1.0" encoding="GB2312"?>
<!DOCTYPE Notify [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>&xxe;</DeviceID></Notify>""",
    "parameter entity": b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1/evil.dtd"> %p;]>
<Notify/>""",
    "external dtd": b"""<?xml version="1.0"?>
<!DOCTYPE Notify SYSTEM "http://127.0.0.1/manscdp.dtd">
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>""",
    "dtd in gbk": '<?xml version="1.0" encoding="GBK"?>\n<!DOCTYPE 通知 []>\n<Notify/>'.encode(
        "gbk"
    ),
    "undeclared entity": b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>&x;</DeviceID></Notify>",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_dtds_and_entities_are_refused(name: str) -> None:
    with pytest.raises(ManscdpError):
        parse(BOMBS[name])


def test_comments_cdata_and_character_references_are_fine() -> None:
    msg = parse(
        b"<!-- vendor comment --><Notify><CmdType>Keepalive</CmdType><SN>1</SN>"
        b"<DeviceID><![CDATA[34020000001320000001]]></DeviceID><Status>&#79;&#x4B;</Status></Notify>"
    )
    assert msg.device_id == "34020000001320000001" and msg.fields["Status"] == "OK"
    cdata = parse(
        b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID>"
        b"<Info><![CDATA[A&B <x>]]></Info></Notify>"
    )
    assert cdata.fields["Info"] == "A&B <x>"


MALFORMED = [
    b"",
    b"not xml",
    b"<Notify><CmdType>Keepalive</CmdType>",
    b"<Other><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Other>",
    b"<Notify><SN>1</SN><DeviceID>1</DeviceID></Notify>",
    b"<Notify><CmdType>Keepalive</CmdType><SN>x1</SN><DeviceID>1</DeviceID></Notify>",
    b"<Notify><CmdType>Keepalive</CmdType><SN>1</SN></Notify>",
    b"<Notify><CmdType>Keepalive</CmdType><SN>99999999999999999999999</SN><DeviceID>1</DeviceID></Notify>",
    "<Notify/>".encode("utf-16"),
    b'<?xml version="1.0" encoding="ISO-2022-JP"?><Notify/>',
    b'<?xml version="1.0" encoding="GB2312"?><Notify>\xff\xff</Notify>',
    b"<Notify>" + b"<a>" * 100 + b"</Notify>",
    b"<Notify>" + b" " * MAX_BODY + b"</Notify>",
]


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_bodies_raise_manscdp_error(body: bytes) -> None:
    with pytest.raises(ManscdpError):
        parse(body)


def test_a_catalog_item_without_device_id_is_refused() -> None:
    with pytest.raises(ManscdpError):
        parse(
            HIKVISION_CATALOG.replace(b"<DeviceID>34020000001310000002</DeviceID>", b"")
        ).catalog()


def test_fuzz_only_manscdp_error_escapes() -> None:
    rng = random.Random(28181)
    corpus = [HIKVISION_CATALOG, DAHUA_CATALOG, *BOMBS.values()]
    for _ in range(3000):
        data = bytearray(rng.choice(corpus))
        for _ in range(rng.randrange(1, 6)):
            at = rng.randrange(len(data))
            choice = rng.randrange(4)
            if choice == 0:
                data[at] = rng.randrange(256)
            elif choice == 1:
                del data[at : at + rng.randrange(1, 30)]
            elif choice == 2:
                data[at:at] = rng.choice([b"<", b">", b"&", b"<!", b"]]>", b"\x00", b"\xa1"])
            else:
                data = data[:at]
                break
        try:
            msg = parse(bytes(data))
        except ManscdpError:
            continue
        for view in (msg.catalog, msg.device_info, msg.device_status, msg.records, msg.alarm):
            try:
                view()
            except ManscdpError:
                pass


def test_round_trip_build_then_parse() -> None:
    body = build_keepalive("34020000001320000001", 12)
    assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>\n<Notify>')
    msg = parse(body)
    assert (msg.kind, msg.cmd_type, msg.sn, msg.fields) == (
        "Notify",
        "Keepalive",
        12,
        {"Status": "OK"},
    )
    query = parse(build_catalog_query(NVR, 3))
    assert (query.kind, query.cmd_type, query.device_id, query.fields) == (
        "Query",
        "Catalog",
        NVR,
        {},
    )
    assert parse(build_query("DeviceStatus", NVR, 4)).cmd_type == "DeviceStatus"
    info = parse(
        build_device_info_response(
            NVR, 5, name="乡镇录像机", manufacturer="zzhub", model="m", firmware="1.0", channel=16
        )
    ).device_info()
    assert (info.device_name, info.channel, info.result) == ("乡镇录像机", 16, "OK")
    status = parse(build_device_status_response(NVR, 6, device_time="2026-12-03T09:00:00"))
    assert status.device_status().online == "ONLINE" and status.device_status().alarms == []
    assert status.fields["Alarmstatus.Num"] == "0"
    result = parse(build_result_response("DeviceControl", NVR, 7, ok=False))
    assert (result.kind, result.fields["Result"]) == ("Response", "ERROR")
    item = CatalogItem(
        "34020000001310000001",
        name="村口 <东> & 西",
        manufacturer="Hikvision",
        civil_code="410922",
        parent_id=NVR,
        safety_way=0,
        register_way=1,
        secrecy=0,
        status="ON",
        longitude=114.352,
        latitude=35.451,
        port=5060,
        extra={"Info.PTZType": "1", "CertNum": "0"},
    )
    (body,) = build_catalog_responses(NVR, 8, [item])
    assert b"<Info>" in body and b"<PTZType>1</PTZType>" in body
    (back,) = parse(body).catalog()
    assert back == item and back.extra == {"Info.PTZType": "1", "CertNum": "0"}


def test_names_outside_gb2312_are_written_as_gb18030() -> None:
    item = CatalogItem("34020000001310000001", name="䶮村𠀀")
    (body,) = build_catalog_responses(NVR, 1, [item])
    assert body.startswith(b'<?xml version="1.0" encoding="GB18030"?>')
    assert parse(body).catalog()[0].name == "䶮村𠀀"
    utf8 = build_keepalive("34020000001320000001", 1, encoding="UTF-8")
    assert utf8.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    control = build_keepalive("34020000001320000001", 1, status="O\x01K")
    assert parse(control).fields["Status"] == "OK"
    with pytest.raises(ValueError):
        build_catalog_responses(NVR, 1, [item], batch=0)


# --- IDs --------------------------------------------------------------------------------


def test_gb_id_parts() -> None:
    camera = parse_gb_id("41092210011320000007")
    assert (camera.centre, camera.industry, camera.type_code, camera.network, camera.serial) == (
        "41092210",
        "01",
        132,
        0,
        "000007",
    )
    assert (camera.province, camera.city, camera.county, camera.domain) == (
        "41",
        "4109",
        "410922",
        "4109221001",
    )
    assert camera.is_camera and camera.is_device and not camera.is_platform
    assert camera.type_name == "IP camera" and camera.network_name.startswith("video")
    platform = parse_gb_id("34020000002000000001")
    assert platform.is_platform and platform.type_name == "platform (central signalling server)"
    assert parse_gb_id("34020000001110000001").type_name == "DVR"
    assert parse_gb_id(NVR).type_name == "NVR"
    assert parse_gb_id("34020000002150000001").is_group
    assert parse_gb_id("34020000002160000001").type_name == "virtual organisation"
    assert parse_gb_id("34020000001987000001").type_name is None
    assert parse_gb_id("34020000001327000001").network_name == "internet"
    assert str(platform) == "34020000002000000001"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "3402000000200000000",
        "340200000020000000011",
        "3402000000200000000x",
        "３４02000000200000000",
    ],
)
def test_bad_gb_ids(text: str) -> None:
    assert not is_gb_id(text)
    with pytest.raises(ManscdpError):
        parse_gb_id(text)


def test_make_gb_id() -> None:
    assert make_gb_id("410922", "10", 132, 0, 7) == "41092200101320000007"
    assert is_gb_id(make_gb_id("41092210", "01", 200, 6, 1))
    with pytest.raises(ManscdpError):
        make_gb_id("410922", "10", 132, 0, 10_000_000)
