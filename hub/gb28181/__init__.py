"""GB/T 28181 foundations: the wire formats a GB/T 28181 platform speaks, without I/O.

Owns: the SIP message model and its parsers for datagrams and streams (`sip`), HTTP/SIP MD5
digest authentication on both the server and the client side (`digest`), the transaction
table that answers retransmissions and times transactions out (`transaction`), and the
MANSCDP XML application bodies with the 20-digit GB/T 28181 ID rules (`manscdp`).

May import: the standard library and its own modules only (no other slice, no `hub.core`, no
third-party package), so a SIP server, a device simulator or a cascade client can be built on
it later.
"""
