# SPDX-License-Identifier: Apache-2.0
"""tunnel.dns on the query streams real DNS tunnels send, and on the lookups ordinary programs make."""

from __future__ import annotations

import base64
import hashlib
import itertools
import struct
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.detect import Finding, Severity, State
from collector.detect.protocols.dns import CNAME, KEY, MX, NULL, TXT, A
from collector.detect.tunnel.dns import MIN_NAMES, WINDOW_NS, DnsTunnelDetector, shape
from collector.enrich.process import ProcessTable
from probes.events import DnsEvent
from probes.layout import DNS_MAX
from tests.collector.detect.protocols.test_dns import CNAME_CHAIN
from tests.factories import common

S = 1_000_000_000
T0 = 10_000 * S


def wire(name: str, qtype: int = A, ident: int = 0x1234) -> bytes:
    """A query for ``name`` as a stub resolver writes it: RD set, one question, no compression."""
    labels = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".") if label)
    return struct.pack("!6H", ident, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def dns_event(data: bytes, ktime_ns: int = T0, direction: str = "query", **kw: Any) -> DnsEvent:
    len_raw = kw.pop("len_raw", len(data))
    proto = kw.pop("proto", "udp")
    return DnsEvent(**common(ktime_ns=ktime_ns, **kw), fd=4, direction=direction, proto=proto, family="ipv4",
                    server="10.96.0.10", port=53, syscall="sendto", len_raw=len_raw, data=data)  # fmt: skip


def run(queries: Iterable[tuple[str, int]], every_ns: int = S, detector: DnsTunnelDetector | None = None,
        **kw: Any) -> list[Finding]:  # fmt: skip
    """The findings for one process sending ``queries`` (name, qtype), one every ``every_ns``."""
    detector = detector or DnsTunnelDetector()
    state = State(ProcessTable())
    findings = []
    for i, (name, qtype) in enumerate(queries):
        findings += detector.detect(dns_event(wire(name, qtype), T0 + i * every_ns, **kw), state)
    return findings


def chunk(tool: str, i: int, size: int) -> bytes:
    """``size`` bytes that look like a tunnel's (encrypted or compressed) payload, the same each run."""
    out = b""
    for block in itertools.count():
        out += hashlib.sha256(f"{tool}/{i}/{block}".encode()).digest()
        if len(out) >= size:
            return out[:size]
    raise AssertionError  # pragma: no cover


def dotted(text: str, every: int) -> str:
    return ".".join(text[i : i + every] for i in range(0, len(text), every))


IODINE_B32 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "abcdefghijklmnopqrstuvwxyz012345")


def iodine(i: int) -> tuple[str, int]:
    """iodine 0.7 upstream data (src/client.c send_chunk): user id, 3-character header, base32 data with
    iodine's alphabet (src/base32.c), a dot every 57 characters (src/encoding.c), NULL type."""
    data = base64.b32encode(chunk("iodine", i, 120)).decode().rstrip("=").translate(IODINE_B32)
    return dotted(f"0{data[:3]}{data[3:]}", 57)[:200] + ".t.example.com", NULL


def dnscat2(i: int) -> tuple[str, int]:
    """dnscat2 (client/tunnel_drivers/driver_dns.c): the packet in hex, at most 62 a label, under the
    domain; the type picked among TXT, CNAME and MX."""
    packet = struct.pack("!HBHHH", i, 1, 0x7E3A, 1000 + i, 2000 + i) + chunk("dnscat2", i, 20 + i % 40)
    return dotted(packet.hex(), 62) + ".skullseclabs.org", (TXT, CNAME, MX)[i % 3]


def dnscat2_direct(i: int) -> tuple[str, int]:
    """dnscat2 straight to its server (no domain): the "dnscat." tag in front of the hex."""
    return "dnscat." + dotted(chunk("dnscat2d", i, 30).hex(), 62), TXT


def dns2tcp(i: int) -> tuple[str, int]:
    """dns2tcp-style: base64 (with + and /) of the session's data in 63-character labels, KEY queries."""
    data = base64.b64encode(chunk("dns2tcp", i, 90)).decode().rstrip("=")
    return dotted(data, 63) + ".dns2tcp.example.org", KEY


def dnsexfiltrator(i: int) -> tuple[str, int]:
    """DNSExfiltrator (dnsExfiltrator.py): the chunk number, then base64url data in labels of up to 63
    (labelMaxSize), under the domain, TXT; a case-randomising resolver path leaves it lower-case."""
    data = base64.urlsafe_b64encode(chunk("dnsexfil", i, 140)).decode().rstrip("=")
    return f"{i}." + dotted(data, 63) + ".exfil.example.co.uk", TXT


def cobalt_strike(i: int) -> tuple[str, int]:
    """A Cobalt Strike DNS beacon sending output: "post." then the data in hex, the beacon id, A queries."""
    return f"post.{chunk('cs', i, 28).hex()[:56]}.1a2b3c4d.dns.example.net", A


TUNNELS = [
    # (name generator, the base domain the alert names)
    (iodine, "example.com"),
    (dnscat2, "skullseclabs.org"),
    (dnscat2_direct, "dnscat"),
    (dns2tcp, "example.org"),
    (dnsexfiltrator, "example.co.uk"),
    (cobalt_strike, "example.net"),
]


@pytest.mark.parametrize(("tool", "domain"), TUNNELS, ids=[t[0].__name__ for t in TUNNELS])
def test_tunnels_raise_once_a_window(tool: Callable[[int], tuple[str, int]], domain: str) -> None:
    """A tunnel's stream raises on its MIN_NAMES-th name within a minute, once, naming the domain."""
    queries = [tool(i) for i in range(50)]
    assert len({name for name, _ in queries}) == 50
    findings = run(queries)
    assert len(findings) == 1
    finding = findings[0]
    assert finding.event.ktime_ns == T0 + (MIN_NAMES - 1) * S
    assert finding.rule.id == "tunnel.dns" and finding.level == Severity.HIGH
    evidence = finding.evidence
    assert evidence["domain"] == domain
    assert evidence["names"] == MIN_NAMES and evidence["queries"] == MIN_NAMES
    assert 1 <= len(evidence["samples"]) <= 5
    assert all(s.endswith(domain) or s.startswith(domain) for s in evidence["samples"])
    assert evidence["mean_label_length"] >= 30
    assert set(evidence["qtypes"]) <= {"NULL", "TXT", "CNAME", "MX", "KEY", "A"}


def test_sustained_tunnel_raises_each_window() -> None:
    """dnscat2 polling once a second for three minutes: one alert a minute, not one a query."""
    findings = run(dnscat2(i) for i in range(180))
    assert [f.event.ktime_ns - T0 for f in findings] == [19 * S, 79 * S, 139 * S]


def test_fast_tunnel_counts_in_evidence() -> None:
    """iodine moving data (ten queries a second): the alert comes on the 20th name, 1.9 s in."""
    findings = run((iodine(i) for i in range(100)), every_ns=S // 10)
    assert len(findings) == 1
    assert findings[0].evidence["span_s"] == pytest.approx(1.9)


def test_slow_tunnel_is_under_the_threshold() -> None:
    """A tunnel sending one name every 4 s (15 a minute) stays under MIN_NAMES a window: the stated bypass."""
    assert run((dnscat2(i) for i in range(150)), every_ns=4 * S) == []


def test_names_must_fall_in_one_window() -> None:
    """19 names, a pause longer than the window, 19 more: never 20 within 60 s."""
    detector = DnsTunnelDetector()
    assert run((iodine(i) for i in range(19)), detector=detector) == []
    later = T0 + 19 * S + WINDOW_NS
    state = State(ProcessTable())
    assert [f for i in range(19, 38)
            for f in detector.detect(dns_event(wire(*iodine(i)), later + (i - 19) * S), state)] == []  # fmt: skip


def test_streams_are_per_process() -> None:
    """Two processes sending 15 tunnel names each: neither reaches 20."""
    detector = DnsTunnelDetector()
    state = State(ProcessTable())
    findings = []
    for i in range(30):
        event = dns_event(wire(*iodine(i)), T0 + i * S, pid=100 + i % 2)
        findings += detector.detect(event, state)
    assert findings == []


def test_repeated_name_counts_once() -> None:
    """One encoded-looking name asked 100 times (a retry loop, a cached CDN key) is one name."""
    assert run([iodine(0)] * 100) == []


WORDS = ["travel", "adventures", "south", "america", "recipes", "garden", "kitchen", "mountain", "photography",
         "running", "weekly", "journal", "family", "notes", "budget", "coffee", "vintage", "cycling", "music",
         "reviews", "crafts"]  # fmt: skip
ORDINARY = [
    "www.google.com", "api.github.com", "deb.debian.org", "security.debian.org", "pypi.org",
    "files.pythonhosted.org", "registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com",
    "storage.googleapis.com", "s3.us-east-1.amazonaws.com", "sts.amazonaws.com", "login.microsoftonline.com",
    "ntp.ubuntu.com", "0.debian.pool.ntp.org", "huggingface.co", "cdn-lfs.huggingface.co", "wandb.ai",
    "api.wandb.ai", "objects.githubusercontent.com", "www.bbc.co.uk", "www.abc.net.au",
]  # fmt: skip


def ordinary() -> list[tuple[str, int]]:
    """A service's lookups for 60 s: its dependencies over and over, A and AAAA."""
    return [(name, qtype) for _ in range(10) for name in ORDINARY for qtype in (A, 28)]


def cdn() -> list[tuple[str, int]]:
    """A CloudFront name asked 300 times, and 100 different distribution names."""
    ids = [f"d{hashlib.md5(str(i).encode()).hexdigest()[:13]}.cloudfront.net" for i in range(100)]  # noqa: S324
    return [("d1234abcd.cloudfront.net", A)] * 300 + [(name, A) for name in ids]


def kubernetes() -> list[tuple[str, int]]:
    """A pod's resolver with ndots:5 expanding names through its search path, then the names themselves."""
    out = []
    for name in [*ORDINARY, "kube-prometheus-stack-prometheus-node-exporter.monitoring", "x.ns", "api.default"]:
        for suffix in ("default.svc.cluster.local", "svc.cluster.local", "cluster.local", ""):
            out.append((f"{name}.{suffix}".rstrip("."), A))
    return out * 5


def dns_sd() -> list[tuple[str, int]]:
    """DNS-SD, SRV and underscore names (RFC 6763, RFC 8552): service browsing, Kerberos, ACME, DKIM."""
    names = ["_http._tcp.local", "_ipp._tcp.local", "b._dns-sd._udp.0.168.192.in-addr.arpa",
             "_ldap._tcp.dc._msdcs.corp.example.com", "_kerberos._udp.corp.example.com", "_sip._tls.example.com",
             "_acme-challenge.www.example.com", "_dmarc.example.com", "_mta-sts.example.com",
             "google._domainkey.example.com", "selector1-example-com._domainkey.example.onmicrosoft.com"]  # fmt: skip
    return [(n, 33 if "_tcp" in n or "_udp" in n or "_tls" in n else TXT) for n in names] * 20


def crawler() -> list[tuple[str, int]]:
    """A crawler resolving 300 different ordinary names: long readable blog names and plain sites."""
    blogs = [f"{a}-{b}-{c}-{d}.blogspot.com" for a, b, c, d in itertools.permutations(WORDS, 4)]
    sites = [f"www.{a}{b}.com" for a, b in itertools.permutations(WORDS, 2)]
    names = [n for n in blogs if len(n.split(".")[0]) >= 30][:200] + sites[:100]
    assert len(names) == 300
    return [(n, A) for n in names]


def buckets() -> list[tuple[str, int]]:
    """A backup job listing 40 S3 buckets by their virtual-host names (long, hyphenated, with digits)."""
    return [(f"company-{w}-logs-prod-us-east-1-{123456789000 + i}.s3.amazonaws.com", A)
            for i, w in enumerate(WORDS * 2)]  # fmt: skip


def reverse() -> list[tuple[str, int]]:
    """PTR lookups: 200 IPv4 addresses and 100 IPv6 ones (32 hex-nibble labels each)."""
    v4 = [f"{i % 250}.{i // 250}.113.203.in-addr.arpa" for i in range(200)]
    v6 = [".".join(reversed(hashlib.sha1(str(i).encode()).hexdigest()[:32])) + ".ip6.arpa" for i in range(100)]  # noqa: S324
    return [(n, 12) for n in v4 + v6]


BENIGN = [ordinary, cdn, kubernetes, dns_sd, crawler, buckets, reverse]


@pytest.mark.parametrize("stream", BENIGN, ids=[b.__name__ for b in BENIGN])
def test_benign_streams_never_raise(stream: Callable[[], list[tuple[str, int]]]) -> None:
    """Ordinary lookups, CDN names, search-path expansions, DNS-SD, a crawler, S3 buckets and PTR lookups
    raise nothing, sent within one window."""
    queries = stream()
    assert run(queries, every_ns=WINDOW_NS // (2 * len(queries))) == []


@pytest.mark.parametrize(
    ("name", "domain", "encoded"),
    [
        (iodine(1)[0], "example.com", True),
        (dnscat2(1)[0], "skullseclabs.org", True),
        (dnscat2_direct(1)[0], "dnscat", True),
        (dns2tcp(1)[0], "example.org", True),
        (dnsexfiltrator(1)[0], "example.co.uk", True),
        ("my-travel-adventures-in-south-america.blogspot.com", "blogspot.com", False),
        ("thisisaverylongreadablehostnamewithoutdashes.example.com", "example.com", False),
        ("internal-my-app-lb-1234567890.us-east-1.elb.amazonaws.com", "amazonaws.com", False),
        ("www.example.com.au", "example.com.au", False),
    ],
)
def test_shapes(name: str, domain: str, encoded: bool) -> None:
    """Base domains (two labels, three under co.uk or com.au, the tag without a TLD) and what looks encoded."""
    found = shape(name)
    assert found is not None and found.domain == domain
    assert (found.long and found.encoded) is encoded


@pytest.mark.parametrize(
    "name",
    [
        "localhost",
        "com",
        "example.co.uk",
        "x.ns.svc.cluster.local",
        "4.3.2.1.in-addr.arpa",
        "printer.local",
        "metadata.google.internal",
        "_http._tcp.example.com",
        "",
    ],
)
def test_names_not_judged(name: str) -> None:
    """Names without a subdomain, local or reverse names, and names of only underscore labels are not judged."""
    assert shape(name) is None


BAD = [
    # (data, reason)
    (b"\x12\x34\x01\x00", "short_header"),
    (struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01", "pointer_loop"),
    (struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\x41\x08\xff\x00\x00\x01\x00\x01", "bad_label_type"),
    (struct.pack("!6H", 1, 0x0100, 1, 0, 0, 0) + b"\x07exam", "truncated"),
    (wire("a.example.com")[:4] + b"\x00\x05" + wire("a.example.com")[6:], "count_lies"),  # 5 questions, 1 sent
    (struct.pack("!6H", 1, 0x0100, 1, 1, 0, 0) + b"\x01a\x00\x00\x01\x00\x01\xc0\x13\x00\x01", "pointer_loop"),
    (CNAME_CHAIN, "not_a_query"),  # a response sent to port 53
]


@pytest.mark.parametrize(("data", "reason"), BAD, ids=[b[1] for b in BAD])
def test_bad_queries_are_counted_by_reason(data: bytes, reason: str) -> None:
    """A query that cannot be read (or that lies about its counts) is counted by reason, never raised."""
    detector = DnsTunnelDetector()
    assert detector.detect(dns_event(data), State(ProcessTable())) == []
    assert detector.skipped == {reason: 1}


def test_a_cut_query_is_not_a_lie() -> None:
    """A query the sensor cut (or a TCP record's start) is read as far as it goes and not counted as bad."""
    name, qtype = iodine(2)
    data = wire(name, qtype)[:-2]
    detector = DnsTunnelDetector()
    state = State(ProcessTable())
    detector.detect(dns_event(data, len_raw=len(data) + 2), state)
    detector.detect(dns_event(data, proto="tcp"), state)
    assert detector.skipped == {"truncated": 2}  # the question itself was cut: nothing to read
    whole = wire(name, qtype)[:4] + b"\x00\x02" + wire(name, qtype)[6:]  # a second question, cut away
    detector.detect(dns_event(whole, len_raw=DNS_MAX), state)
    assert detector.skipped == {"truncated": 2}


def test_answers_are_not_read() -> None:
    """Answers feed the name cache elsewhere: this rule neither parses nor counts them."""
    detector = DnsTunnelDetector()
    assert detector.detect(dns_event(b"\x00", direction="answer"), State(ProcessTable())) == []
    assert not detector.skipped


def test_state_is_bounded() -> None:
    """Tunnel-looking names under 500 domains from 10 processes keep at most max_streams streams."""
    detector = DnsTunnelDetector(max_streams=8)
    state = State(ProcessTable())
    for i in range(500):
        name = iodine(i)[0].replace("example.com", f"d{i}.example{i % 7}.com")
        detector.detect(dns_event(wire(name, NULL), T0 + i * S, pid=1000 + i % 10), state)
    assert len(detector._streams) <= 8
    assert all(len(s.names) <= 64 for s in detector._streams.values())


@given(st.binary(max_size=DNS_MAX), st.sampled_from(["udp", "tcp"]))
@settings(max_examples=300)
def test_any_bytes_never_raise(data: bytes, proto: str) -> None:
    """Any bytes as a query: findings or none, and a counted reason, never an exception."""
    detector = DnsTunnelDetector()
    detector.detect(dns_event(data, proto=proto), State(ProcessTable()))
    assert sum(detector.skipped.values()) <= 1
