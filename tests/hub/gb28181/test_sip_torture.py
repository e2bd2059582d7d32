"""RFC 4475 torture messages (§3.1.1 valid, §3.1.2 invalid, and the §3.3 cases that are
well formed but that a server answers with an error), written out from the RFC's text.

Line ends are CRLF on the wire; `{cl}` stands for the body's real length so that a typo in
a hand-copied SDP does not turn a valid case into a Content-Length mismatch.
"""

from __future__ import annotations

import pytest

from hub.gb28181.digest import Credentials, DigestError
from hub.gb28181.sip import (
    SipParseError,
    SipRequest,
    SipResponse,
    SipStreamParser,
    parse_message,
    unquote,
)

SDP = (
    b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\n"
    b"t=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n"
)


def wire(text: str, body: bytes = b"") -> bytes:
    """Headers written with \\n (the last line ends with one too) → a message on the wire."""
    head = text.replace("{cl}", str(len(body))).replace("\n", "\r\n")
    return head.encode("utf-8") + b"\r\n" + body


def request(data: bytes) -> SipRequest:
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    return message


def response(data: bytes) -> SipResponse:
    message = parse_message(data)
    assert isinstance(message, SipResponse)
    return message


# --- §3.1.1 valid messages --------------------------------------------------------------

WSINV = wire(
    """\
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : {cl}
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33
""",
    SDP,
)


def test_wsinv_short_tortuous_invite() -> None:
    msg = request(WSINV)
    assert msg.method == "INVITE"
    assert msg.uri.user == "vivekg" and msg.uri.params == {"unknownparam": None}
    assert msg.to.tag == "1918181833n"
    assert msg.to.uri.host == "chair-dnrc.example.com"
    assert msg.from_.tag == "98asjd8"
    assert msg.from_.display is not None
    assert unquote(msg.from_.display) == 'J Rosenberg \\"'
    assert msg.max_forwards == 68
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (contact,) = msg.contacts
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert contact.display == '"Quoted string \\"\\""'
    assert msg.content_type == "application/sdp"
    assert msg.body == SDP


INTMETH = (
    b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    b":&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"
    b'To: "BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f" <sip:1_unusual.URI~(to-be!sure)&isn\'t+it$/crazy?,/;;*@example.com>\r\n'
    b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
    + '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"'.encode()
    + b";tag=_token~1'+`*%!-.\r\n"
    b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
    b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
    b"Max-Forwards: 255\r\n"
    b"extensionHeader-!.%*+_`'~: \xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_intmeth_wide_range_of_valid_characters() -> None:
    msg = request(INTMETH)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.uri.host == "example.com"
    assert msg.from_.display == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert msg.max_forwards == 255
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"


def test_esc01_valid_percent_escaping() -> None:
    msg = request(
        wire(
            """\
INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0
To: sip:%75se%72@example.com
From: <sip:I%20have%20spaces@example.net>;tag=938
Max-Forwards: 87
i: esc01.239409asdfakjkn23onasd0-3234
CSeq: 234234 INVITE
Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw
C: application/sdp
Contact:
  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>
Content-Length: {cl}
""",
            SDP,
        )
    )
    assert msg.uri.user == "sips%3Auser%40example.com" and msg.uri.host == "example.net"
    assert msg.to.uri.user == "%75se%72"
    assert msg.from_.uri.user == "I%20have%20spaces"
    assert msg.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    assert msg.content_type == "application/sdp"
    assert msg.contacts[0].uri.params == {"%6c%72": None, "n%61me": "v%61lue%25%34%31"}


def test_escnull_escaped_nulls_in_uris() -> None:
    msg = request(
        wire("""\
REGISTER sip:example.com SIP/2.0
To: sip:null-%00-null@example.com
From: sip:null-%00-null@example.com;tag=839923423
Max-Forwards: 70
Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
Contact: <sip:%00@host5.example.com>
Contact: <sip:%00%00@host5.example.com>
L:0
""")
    )
    assert [c.uri.user for c in msg.contacts] == ["%00", "%00%00"]
    assert msg.from_.tag == "839923423"


def test_esc02_percent_that_is_not_an_escape() -> None:
    msg = request(
        wire("""\
RE%47IST%45R sip:registrar.example.com SIP/2.0
To: "%Z%45" <sip:resource@example.com>
From: "%Z%45" <sip:resource@example.com>;tag=f232jadfj23
Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf
Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234
CSeq: 29344 RE%47IST%45R
Max-Forwards: 70
Contact: <sip:alias1@host1.example.com>
C%6Fntact: <sip:alias2@host2.example.com>
Contact: <sip:alias3@host3.example.com>
l: 0
""")
    )
    # an unknown method, not REGISTER; and C%6Fntact is an unknown header, not a Contact
    assert msg.method == "RE%47IST%45R"
    assert [c.uri.host for c in msg.contacts] == ["host1.example.com", "host3.example.com"]
    assert msg.vias[0].branch == "z9hG4bK209%fzsnel234"


def test_lwsdisp_no_space_between_display_name_and_angle() -> None:
    msg = request(
        wire("""\
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: caller<sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID: lwsdisp.1234abcd@funky.example.com
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw
l: 0
""")
    )
    assert msg.from_.display == "caller" and msg.from_.tag == "323"


def test_longreq_long_values_in_header_fields() -> None:
    long = "very" * 60
    vias = "".join(
        f"Via: SIP/2.0/TCP sip{i}.example.com;branch=z9hG4bK{long}{i}\n" for i in range(30)
    )
    data = wire(
        f"""\
INVITE sip:user@example.com SIP/2.0
To: "I have a user name of {"extreme" * 10} proportion"<sip:user@example.com:6000;unknownparam1={long};unknownparam2={long}>
From: sip:amazinglylongcallername{long}@example.net;tag=12{"98" * 60};unknownheaderparam{long}=unknowheaderparamvalue{long};unknownValueless{long}
Call-ID: longreq.one{long}
CSeq: 3882340 INVITE
Unknown-{long}: unknown-{long}
{vias}Max-Forwards: 70
Contact: <sip:amazinglylongcallername{long}@host5.example.net>
Content-Type: application/sdp
l: {{cl}}
""",
        SDP,
    )
    assert len(data) > 10000
    msg = request(data)
    assert len(msg.vias) == 30 and msg.vias[29].branch == f"z9hG4bK{long}29"
    assert msg.to.uri.port == 6000
    assert msg.from_.params[f"unknownvalueless{long}"] is None
    assert msg.body == SDP


DBLREQ = wire(
    """\
REGISTER sip:example.com SIP/2.0
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=43251j3j324
Max-Forwards: 8
I: dblreq.0ha0isndaksdj99sdfafnl3lk233412
Contact: sip:j.user@host.example.com
CSeq: 8 REGISTER
Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492
Content-Length: 0
"""
) + wire(
    """\
INVITE sip:joe@example.com SIP/2.0
t: sip:joe@example.com
From: sip:caller@example.net;tag=141334
Max-Forwards: 8
Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234
Content-Type: application/sdp
Content-Length: {cl}
""",
    SDP,
)


def test_dblreq_extra_octets_in_a_datagram_are_discarded() -> None:
    msg = request(DBLREQ)
    assert msg.method == "REGISTER" and msg.body == b""


def test_dblreq_on_a_stream_is_two_requests() -> None:
    got = SipStreamParser().feed(DBLREQ)
    assert [m.method for m in got if isinstance(m, SipRequest)] == ["REGISTER", "INVITE"]
    assert got[1].body == SDP


def test_semiuri_semicolons_in_the_user_part() -> None:
    msg = request(
        wire("""\
OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0
To: sip:j_user@example.com
From: sip:caller@example.org;tag=33242
Max-Forwards: 3
Call-ID: semiuri.0ha0isndaksdj
CSeq: 8 OPTIONS
Accept: application/sdp, application/pkcs7-mime,
        multipart/mixed, multipart/signed,
        message/sip, message/sipfrag
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
l: 0
""")
    )
    assert msg.uri.user == "user;par=u%40example.net"
    assert msg.uri.host == "example.com" and msg.uri.params == {}
    assert len(msg.headers.items("Accept")) == 6


def test_transports_varied_and_unknown_transports() -> None:
    msg = request(
        wire("""\
OPTIONS sip:user@example.com SIP/2.0
To: sip:user@example.com
From: <sip:caller@example.com>;tag=323
Max-Forwards: 70
Call-ID:  transports.kijh4akdnaqjkwendsasfdj
Accept: application/sdp
CSeq: 60 OPTIONS
Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw
Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf
Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj
Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en
Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee
l: 0
""")
    )
    assert [v.transport for v in msg.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01_multipart_body_kept_byte_for_byte() -> None:
    body = (
        b"--===============0391832767==\r\nContent-Type: application/sdp\r\n\r\n"
        + SDP
        + b"\r\n--===============0391832767==\r\nContent-Type: application/pkcs7-signature\r\n"
        b"Content-Transfer-Encoding: binary\r\n\r\n0\x82\x01\xc8\x06\t*\x86H\x86\xf7\r\n\r\n\x00\x01\xff"
        b"\r\n--===============0391832767==--\r\n"
    )
    msg = request(
        wire(
            """\
MESSAGE sip:kumiko@example.org SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport
Max-Forwards: 70
Route: <sip:127.0.0.1:5080>
Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=
Contact: <sip:fluffy@127.0.0.1:5070>
To: <sip:kumiko@example.org>
From: <sip:fluffy@example.com>;tag=2fb0dcc9
Call-ID: 3d9485ad0c49859b@Q02MTgyNTM4NzYzMDgwMzg1MTIxNDQ
CSeq: 1 MESSAGE
Content-Transfer-Encoding: binary
Content-Type: multipart/mixed;boundary="===============0391832767=="
Date: Thu, 18 Sep 2003 13:07:43 GMT
User-Agent: SIPimp.org/0.2.5 (curses)
Content-Length: {cl}
""",
            body,
        )
    )
    assert msg.content_type == "multipart/mixed"
    assert msg.body == body
    assert msg.vias[0].params["rport"] is None


def test_unreason_unusual_reason_phrase() -> None:
    msg = response(
        wire(
            """\
SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять - простое
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Call-ID: unreason.1234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: {cl}
Content-Type: application/sdp
Contact: <sip:user@host198.example.com>
""",
            SDP,
        )
    )
    assert msg.status == 200
    assert msg.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


def test_noreason_empty_reason_phrase() -> None:
    msg = response(
        wire("""\
SIP/2.0 100 \n\
Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe
Call-ID: noreason.asndj203insdf99223ndf
CSeq: 35 INVITE
From: <sip:user@example.com>;tag=39ansfi3
To: <sip:user@example.edu>;tag=902jndnke3
Content-Length: 0
Contact: <sip:user@host105.example.com>
""")
    )
    assert (msg.status, msg.reason) == (100, "")


# --- §3.3 well formed, answered with an error by the application -------------------------


def test_unkscm_unknown_request_uri_scheme_parses_for_a_416() -> None:
    msg = request(
        wire("""\
OPTIONS nobarelyknown:somebodyelse3 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
To: sip:user@example.com
From: sip:user@example.com;tag=2345723
Max-Forwards: 6
Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
l: 0
""")
    )
    assert msg.uri.scheme == "nobarelyknown" and not msg.uri.is_sip


def test_novelsc_and_unksm2_other_schemes_kept_opaque() -> None:
    msg = request(
        wire("""\
OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw
To: isbn:2983792873
From: <http://www.example.com>;tag=3234233
Max-Forwards: 70
Call-ID: novelsc.asdfasser0q239nwsdfasdkl34
CSeq: 3923423 OPTIONS
l: 0
""")
    )
    assert msg.uri.scheme == "soap.beep" and str(msg.uri) == "soap.beep://192.0.2.103:3002"
    assert msg.to.uri.scheme == "isbn" and msg.from_.uri.scheme == "http"


def test_zeromf_and_inv2543_parse() -> None:
    msg = request(
        wire(
            """\
INVITE sip:UserB@example.com SIP/2.0
Via: SIP/2.0/UDP iftgw.example.com
From: <sip:+13035551111@ift.client.example.net;user=phone>
Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>
To: sip:+16505552222@ss1.example.net;user=phone
Call-ID: inv2543.1717@ift.client.example.com
CSeq: 56 INVITE
Max-Forwards: 0
Content-Type: application/sdp
Content-Length: {cl}
""",
            SDP,
        )
    )
    assert msg.max_forwards == 0  # the server answers 483, it is not a parse error
    assert msg.vias[0].branch is None and msg.from_.tag is None
    assert msg.to.params == {"user": "phone"}  # addr-spec: ;user= belongs to the header


# --- §3.1.2 invalid messages, and §3.3 cases a server answers 400 -----------------------

BASE = """\
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Call-ID: invalid.0ha0isndaksdjweiafasdk3
Max-Forwards: 70
"""

INVALID = {
    "badinv01": wire(
        """\
INVITE sip:user@example.com SIP/2.0
To: sip:j.user@example.com
From: sip:caller@example.net;tag=134161461246
Max-Forwards: 7
Call-ID: badinv01.0ha0isndaksdjasdf3234nas
CSeq: 8 INVITE
Via: SIP/2.0/UDP 192.0.2.15;;,;,,
Contact: "Joe" <sip:joe@example.org>;;;;
Content-Length: {cl}
Content-Type: application/sdp
""",
        SDP,
    ),
    "clerr": wire(
        """\
INVITE sip:user@example.com SIP/2.0
Max-Forwards: 80
To: sip:j.user@example.com
From: sip:caller@example.net;tag=93942939o2
Contact: <sip:caller@hungry.example.net>
Call-ID: clerr.0ha0isndaksdjweiafasdk3
CSeq: 8 INVITE
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523
Content-Type: application/sdp
Content-Length: 9999
""",
        SDP,
    ),
    "ncl": wire(
        """\
INVITE sip:user@example.com SIP/2.0
Max-Forwards: 254
To: sip:j.user@example.com
From: sip:caller@example.net;tag=32394234
Call-ID: ncl.0ha0isndaksdj2193423r542w35
CSeq: 0 INVITE
Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw
Contact: <sip:caller@example53.example.net>
Content-Type: application/sdp
Content-Length: -999
""",
        SDP,
    ),
    "scalar02": wire("""\
REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3
To: <sip:user@example.com>
From: <sip:user@example.com>;tag=239232jh3
CSeq: 36893488147419103232 REGISTER
Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32
Max-Forwards: 300
Expires: 1000000000000000000000000000000000000000000000000000000000
Contact: <sip:user@host129.example.com>
  ;expires=280297596632815
Content-Length: 0
"""),
    "scalar02-maxforwards": wire(
        "REGISTER sip:example.com SIP/2.0\n" + BASE.replace("70", "300") + "CSeq: 1 REGISTER\n"
    ),
    "scalar02-expires": wire(
        "REGISTER sip:example.com SIP/2.0\n"
        + BASE
        + "CSeq: 1 REGISTER\nExpires: 10000000000000000000000000000000000000000000000\n"
    ),
    "scalarlg": wire("""\
SIP/2.0 503 Service Unavailable
Via: SIP/2.0/TCP host129.example.com;branch=zzzz;received=192.0.2.129
To: <sip:user@example.com>;tag=2348237
From: <sip:other@example.net>;tag=38923
Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r
CSeq: 1 OPTIONS
Content-Length: 0
Warning: 1812 overture "In Progress"
Retry-After: 18446744073709551616
"""),
    "quotbal": wire(
        "INVITE sip:user@example.com SIP/2.0\n"
        + BASE.replace("To: sip:j.user@example.com", 'To: "Mr. J. User <sip:j.user@example.com>')
        + "CSeq: 8 INVITE\n"
    ),
    "ltgtruri": wire("INVITE <sip:user@example.com> SIP/2.0\n" + BASE + "CSeq: 8 INVITE\n"),
    "lwsruri": wire("INVITE sip:user@example.com; lr SIP/2.0\n" + BASE + "CSeq: 8 INVITE\n"),
    "lwsstart": wire("INVITE  sip:user@example.com  SIP/2.0\n" + BASE + "CSeq: 8 INVITE\n"),
    "trws": wire("OPTIONS sip:remote-target@example.com SIP/2.0  \n" + BASE + "CSeq: 8 OPTIONS\n"),
    "escruri": wire(
        "INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\n"
        + BASE
        + "CSeq: 8 INVITE\n"
    ),
    "regbadct": wire(
        "REGISTER sip:example.com SIP/2.0\n"
        + BASE
        + "CSeq: 8 REGISTER\nContact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\n"
    ),
    "badaspec": wire(
        "OPTIONS sip:user@example.org SIP/2.0\n"
        + BASE.replace(
            "To: sip:j.user@example.com", 'To: "Watson, Thomas" < sip:t.watson@example.org >'
        )
        + "CSeq: 3923239 OPTIONS\n"
    ),
    "baddn": wire(
        "OPTIONS sip:t.watson@example.org SIP/2.0\n"
        + BASE.replace(
            "From: sip:caller@example.net;tag=93942939o2",
            "From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        )
        + "CSeq: 3923239 OPTIONS\n"
    ),
    "badvers": wire(
        "OPTIONS sip:t.watson@example.org SIP/7.0\n"
        + BASE.replace("SIP/2.0/UDP", "SIP/7.0/UDP")
        + "CSeq: 1 OPTIONS\n"
    ),
    "badvers-via": wire(
        "OPTIONS sip:t.watson@example.org SIP/2.0\n"
        + BASE.replace("SIP/2.0/UDP", "SIP/7.0/UDP")
        + "CSeq: 1 OPTIONS\n"
    ),
    "mismatch01": wire("OPTIONS sip:user@example.com SIP/2.0\n" + BASE + "CSeq: 8 INVITE\n"),
    "mismatch02": wire("NEWMETHOD sip:user@example.com SIP/2.0\n" + BASE + "CSeq: 8 INVITE\n"),
    "bigcode": wire(
        "SIP/2.0 4294967301 better not break the receiver\n" + BASE + "CSeq: 8 INVITE\n"
    ),
    "insuf": wire(
        "INVITE sip:user@example.com SIP/2.0\n"
        + "\n".join(line for line in BASE.splitlines() if not line.startswith("Call-ID"))
        + "\nCSeq: 8 INVITE\n"
    ),
    "insuf-novia": wire(
        "INVITE sip:user@example.com SIP/2.0\n"
        + "\n".join(line for line in BASE.splitlines() if not line.startswith("Via"))
        + "\nCSeq: 8 INVITE\n"
    ),
    "multi01": wire(
        "INVITE sip:user@company.com SIP/2.0\n"
        + BASE
        + "To: sip:other@example.net\nCSeq: 8 INVITE\n"
    ),
    "multi01-cseq": wire(
        "INVITE sip:user@company.com SIP/2.0\n" + BASE + "CSeq: 8 INVITE\nCSeq: 9 INVITE\n"
    ),
    "mcl01": wire(
        "OPTIONS sip:user@example.com SIP/2.0\n"
        + BASE
        + "CSeq: 8 OPTIONS\nContent-Length: 0\nContent-Length: 4\n",
        b"1234",
    ),
    "no-empty-line": ("INVITE sip:user@example.com SIP/2.0\r\n" + BASE).encode(),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_messages_raise_sip_parse_error(name: str) -> None:
    with pytest.raises(SipParseError):
        parse_message(INVALID[name])


def test_the_invalid_cases_differ_from_a_valid_base_only_in_their_fault() -> None:
    # the shared headers themselves parse: each case above fails for its own reason
    msg = request(wire("INVITE sip:user@example.com SIP/2.0\n" + BASE + "CSeq: 8 INVITE\n"))
    assert msg.call_id == "invalid.0ha0isndaksdjweiafasdk3"


def test_cparam01_cparam02_contact_parameters() -> None:
    head = """\
REGISTER sip:example.com SIP/2.0
Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw
Max-Forwards: 70
From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe
To: sip:watson@example.com
Call-ID: cparam01.70710@saturn.example.com
CSeq: 2 REGISTER
"""
    bare = request(wire(head + "Contact: sip:+19725552222@gw1.example.net;unknownparam\nl: 0\n"))
    (contact,) = bare.contacts  # addr-spec: the parameter is the header's
    assert contact.params == {"unknownparam": None} and contact.uri.params == {}
    quoted = request(
        wire(head + "Contact: <sip:+19725552222@gw1.example.net;unknownparam>\nl: 0\n")
    )
    (contact,) = quoted.contacts  # in <>: the parameter is the URI's
    assert contact.params == {} and contact.uri.params == {"unknownparam": None}


def test_regescrt_escaped_headers_in_a_contact_uri() -> None:
    msg = request(
        wire("""\
REGISTER sip:example.com SIP/2.0
To: sip:user@example.com
From: sip:user@example.com;tag=8
Max-Forwards: 70
Call-ID: regescrt.k345asrl3fdbv@192.0.2.1
CSeq: 14398234 REGISTER
Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw
M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>
L:0
""")
    )
    assert msg.contacts[0].uri.headers == "Route=%3Csip:sip.example.com%3E"


def test_bcast_broadcast_via_parses() -> None:
    msg = parse_message(
        wire(
            """\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923
Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23
Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf
CSeq: 35 INVITE
From: sip:user@example.com;tag=11141343
To: sip:user@example.edu;tag=2229
Content-Length: {cl}
Content-Type: application/sdp
Contact: <sip:user@host28.example.com>
""",
            SDP,
        )
    )
    assert [v.host for v in msg.vias] == ["192.0.2.198", "255.255.255.255"]


def test_invut_bext01_regaut01_parse_for_the_application_to_refuse() -> None:
    base = """\
To: sip:j.user@example.com
From: sip:j.user@example.com;tag=87321hj23128
Max-Forwards: 8
Call-ID: regaut01.0ha0isndaksdj
Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw
"""
    invut = request(
        wire(
            "MESSAGE sip:user@example.com SIP/2.0\n"
            + base
            + "CSeq: 1 MESSAGE\nContent-Type: application/unknownformat\nContent-Length: {cl}\n",
            b'<audio> <pcmu port="443"/> </audio>\r\n',
        )
    )
    assert invut.content_type == "application/unknownformat"  # → 415
    bext = request(
        wire(
            "OPTIONS sip:user@example.com SIP/2.0\n"
            + base
            + "CSeq: 1 OPTIONS\nRequire: nothingSupportedHere\n"
            "Proxy-Require: noProxiesSupportThis, nothingSupportedHere\nl: 0\n"
        )
    )
    assert bext.headers.items("Require") == ["nothingSupportedHere"]  # → 420
    regaut = request(
        wire(
            "REGISTER sip:example.com SIP/2.0\n"
            + base
            + "CSeq: 9338 REGISTER\nAuthorization: NoOneKnowsThisScheme opaque-data=here\n"
            "Content-Length:0\n"
        )
    )
    value = regaut.headers.get("Authorization")
    assert value is not None
    with pytest.raises(DigestError):  # → 401 with a Digest challenge
        Credentials.parse(value)
