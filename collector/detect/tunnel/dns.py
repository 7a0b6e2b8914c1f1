# SPDX-License-Identifier: Apache-2.0
"""tunnel.dns: one process sends a sustained stream of queries whose names carry encoded data under one domain.

A DNS tunnel writes its upstream data into query names under a domain whose name server it runs, one
chunk per query, each name new so that no cache answers it:
- iodine (yarrick/iodine src/encoding.c build_hostname, inline_dotify): base32 by default (base64,
  base64u, base128 where the path keeps case and 8-bit bytes), a dot every 57 characters, names up to
  255 (-M), query type NULL by default (-T: PRIVATE, TXT, SRV, MX, CNAME, A);
- dnscat2 (iagox86/dnscat2 client/tunnel_drivers/driver_dns.c do_send): the packet in hex, labels of at
  most 62 characters (MAX_FIELD_LENGTH), under the domain or, sent straight to its server, after the
  "dnscat." tag; each query's type picked at random among TXT, CNAME, MX (A, AAAA); it polls on a timer
  when idle (the client's --delay, a second by default);
- dns2tcp: base64 data in the labels, TXT (or KEY) queries;
- DNSExfiltrator (Arno0x/DNSExfiltrator): base64url or base32 chunks in labels of up to 63 characters
  (labelMaxSize), TXT queries, one after another unless throttled;
- Cobalt Strike's DNS beacon (Malleable C2 dns-beacon block): hex data in labels behind prefixes such as
  "post.", "api.", "www6.", A, AAAA and TXT queries.

The thresholds, each with why:
- a name is looked at below its base domain (the registrable domain: the last two labels, or three under
  one of MULTI_LABEL_SUFFIXES, a short list of common second-level public suffixes, not the Public Suffix
  List; with no top-level domain at all, the first label, dnscat2's tag), leaving out underscore labels
  (service and protocol names: RFC 6763 DNS-SD, RFC 8552);
- it is long when its longest label has LONG_LABEL (30) characters or more, or its labels together
  LONG_TEXT (52): the cut-offs published for DNS tunnel detection (any label over 30 characters, a name
  over 52: e.g. https://mydnstunnel.info/article/detecting-dns-tunneling-network-monitoring, and Zeek
  scripts that flag names over 52); tunnels fill labels to 57-63 characters to carry their data;
- a long name looks encoded when its data (the longest label if that is long enough alone, else the text
  below the domain) is no hostname's: bytes a hostname cannot hold (RFC 1123 2.1: letters, digits,
  hyphen; base64's + / =, binary bytes), or hex (only 0-9a-f, with digits and letters), or ENTROPY (4.0)
  bits a character or more with at most one hyphen in 20 characters. Random base32 and base64 strings of
  30-63 characters average 4.1-4.7 bits a character; readable hostnames of that length sit near 3.2-3.9,
  and the readable long labels that do reach 4.0 are hyphenated words. Hex (dnscat2, Cobalt Strike) has
  at most 4 bits, below English, so it is recognised by its alphabet instead;
- a tunnel when one process sent MIN_NAMES (20) different encoded-looking names under one base domain
  within WINDOW (60 s): dnscat2 polls about 60 times a minute when idle, iodine and DNSExfiltrator send
  far more while data moves. Sigma's "Possible DNS Tunneling" (rules/network/net_dns_c2_detection.yml)
  counts 1000 queries to one parent domain over all clients; here only one process and only
  encoded-looking names count, so a much smaller number is enough. One alert per process and domain a
  window (the cool-down), with the evidence of that window.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from collector.detect import Finding, Rule, Severity, State
from collector.detect.protocols.dns import DnsError, Message, parse, type_name
from probes.events import DnsEvent, Event, Kind

LONG_LABEL = 30
LONG_TEXT = 52
ENTROPY = 4.0  # bits per character
MAX_HYPHENS = 0.05  # share of the text: readable long labels are hyphenated, encodings (almost) never
MIN_HEX = 16
MIN_NAMES = 20
WINDOW_NS = 60 * 1_000_000_000
MAX_STREAMS = 4096  # (process, base domain) pairs followed; the least recently active forgotten first
MAX_NAMES = 64  # distinct names kept per pair (at least MIN_NAMES)
MAX_QUERIES = 1024  # query times kept per pair for the count in the evidence
SAMPLES = 5  # names in the evidence
# Second-level public suffixes under which the registrable domain has three labels: a short list of the
# common ones, not the Public Suffix List (publicsuffix.org), so names under others group one level too high.
MULTI_LABEL_SUFFIXES = frozenset(
    f"{second}.{cc}"
    for cc, seconds in {
        "uk": ("co", "org", "ac", "gov", "ltd", "plc", "me", "net", "nhs", "sch"),
        "au": ("com", "net", "org", "edu", "gov", "asn", "id"),
        "nz": ("co", "org", "net", "ac", "govt", "geek"),
        "jp": ("co", "ne", "or", "ac", "go", "ad", "ed", "gr", "lg"),
        "kr": ("co", "or", "ne", "ac", "go", "re"),
        "za": ("co", "org", "net", "ac", "gov", "web"),
        "br": ("com", "net", "org", "gov", "edu"),
        "cn": ("com", "net", "org", "gov", "edu", "ac"),
        "in": ("co", "net", "org", "firm", "gen", "ind", "ac", "edu", "gov"),
        "mx": ("com", "org", "gob", "edu", "net"),
        "tr": ("com", "net", "org", "gov", "edu", "gen"),
        "tw": ("com", "net", "org", "edu", "gov", "idv"),
        "hk": ("com", "net", "org", "edu", "gov", "idv"),
        "sg": ("com", "net", "org", "edu", "gov"),
        "il": ("co", "org", "net", "ac", "gov"),
        "ar": ("com", "net", "org", "gob", "edu"),
        "id": ("co", "or", "ac", "go", "web", "net"),
        "th": ("co", "or", "ac", "go", "in", "net"),
        "my": ("com", "net", "org", "edu", "gov"),
        "ua": ("com", "net", "org", "gov", "edu"),
        "ru": ("com", "net", "org"),
        "pl": ("com", "net", "org"),
    }.items()
    for second in seconds
)
# Names no outside name server answers, so no tunnel's server sees them: reverse lookups (in-addr.arpa,
# ip6.arpa: RFC 1035 3.5, RFC 3596 2.5, whose hex-nibble labels look encoded) and home.arpa (RFC 8375);
# mDNS and Kubernetes' cluster domain (.local: RFC 6762; CoreDNS answers cluster.local itself, and a
# pod's search path turns every name with fewer than 5 dots into name.ns.svc.cluster.local first, then
# asks for the name itself, which is judged then); localhost (RFC 6761); .internal (ICANN's private-use
# TLD, 2024: GCP's and AWS's VPC resolvers answer it, and search paths append it as they do cluster.local).
LOCAL_SUFFIXES = ("arpa", "local", "localhost", "internal")
_HOSTNAME = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_HEX = frozenset("0123456789abcdef")
_DIGITS = frozenset("0123456789")

RULE = Rule(
    id="tunnel.dns",
    category="tunnel",
    severity=Severity.HIGH,
    description=(
        "One process sent at least 20 different DNS queries within 60 s whose names carry encoded data under "
        "one base domain (the last two labels, three under a listed second-level suffix such as co.uk, the first "
        "label for names with no top-level domain, as dnscat2 sends straight to its server): below "
        "that domain a label of 30 characters or more, or 52 characters in all, that is not hostname text: "
        "bytes a hostname cannot hold (base64's + / =, binary), hex, or at least 4.0 bits of entropy a "
        "character with few hyphens. The shape of iodine (base32/base64/base128, NULL/PRIVATE/TXT queries), "
        "dnscat2 (hex, TXT/CNAME/MX, one poll a second), dns2tcp, DNSExfiltrator and Cobalt Strike DNS "
        "beacons moving data. Names under .arpa (reverse lookups), .local (cluster.local too), .internal and "
        "localhost names are never counted; underscore labels (DNS-SD, _domainkey) are left out of the text. "
        "One alert per process and domain a minute, with the domain, counts, sample names, query types and "
        "the mean label length and entropy. Known false positives: services that put data in DNS names by "
        "design, many times a minute: reputation and hash lookups (Team Cymru's malware hash registry, "
        "Spamhaus HBL and DBL, antivirus cloud lookups such as Sophos XL, McAfee GTI, ESET), DKIM checks of "
        "many long selectors at one domain, a crawler of one platform's long generated hostnames "
        "(random-looking bucket, preview-deployment or tenant names under one cloud domain, long readable "
        "labels run together without hyphens), a search domain "
        "appended to a tunnel's names (the alert then names the search domain too). Bypasses: a slow tunnel "
        "(fewer than 20 names a minute: an idle Cobalt Strike beacon checks in once a minute with a short hex "
        "label; small exfiltrations of a few chunks), short labels under 30 characters and names under 52, "
        "data spread over many base domains or processes, encodings that look like words or hyphenated "
        "hostnames, data in the answers only (a server pushing data down TXT/NULL answers to a client asking "
        "short names), lookups through DNS over HTTPS or TLS (port 443/853, never seen as DNS), queries sent "
        "through another process (a local resolver: systemd-resolved, dnsmasq, nscd, so the alert names "
        "that process), and .arpa zones the attacker controls."
    ),
    tags=("maturity_incubating", "host", "container", "network", "mitre_command_and_control", "T1071.004", "T1572"),
    consumes=frozenset({Kind.DNS}),
)


def entropy(text: str) -> float:
    """Shannon entropy of ``text``'s characters, bits per character (0 for "")."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values()) if n else 0.0


def base_domain(labels: list[str]) -> int:
    """How many trailing labels make the registrable domain (2, or 3 under a listed suffix); 0 when none."""
    n = 3 if len(labels) >= 2 and f"{labels[-2]}.{labels[-1]}" in MULTI_LABEL_SUFFIXES else 2
    return n if len(labels) >= n else 0


@dataclass(frozen=True, slots=True)
class Shape:
    """What the rule reads of one name: its base domain and the text below it."""

    domain: str
    longest: int  # characters in the longest label below the domain
    text: str  # the labels below the domain, underscore labels left out, joined without dots

    longest_label: str

    @property
    def long(self) -> bool:
        return self.longest >= LONG_LABEL or len(self.text) >= LONG_TEXT

    @property
    def data(self) -> str:
        """What is judged: the longest label when it is long enough alone, else all the text."""
        return self.longest_label if self.longest >= LONG_LABEL else self.text

    @property
    def encoded(self) -> bool:
        """The data is no hostname's: bytes none holds, hex, or random-looking letters and digits."""
        text = self.data
        chars = set(text)
        if not chars <= _HOSTNAME:
            return True
        if len(text) >= MIN_HEX and chars <= _HEX and chars & _DIGITS and chars - _DIGITS:
            return True
        return text.count("-") <= MAX_HYPHENS * len(text) and entropy(text) >= ENTROPY


def is_tld(label: str) -> bool:
    """A label that can be a top-level domain: letters only (the longest, .travelersinsurance, has 19), or
    an IDN's xn-- form (the longest has 24 characters)."""
    return (label.isascii() and label.isalpha() and len(label) <= 24) or label.startswith("xn--")


def shape(name: str) -> Shape | None:
    """The name's base domain and the text below it; None for names no outside server answers."""
    labels = name.split(".")
    if labels[-1] in LOCAL_SUFFIXES or len(labels) < 2:
        return None
    if is_tld(labels[-1]):
        n = base_domain(labels)
        domain, below = ".".join(labels[-n:]), labels[:-n]
    else:
        # No top-level domain: a query sent straight to the tunnel's server, which needs none; dnscat2's
        # direct mode tags its data in front instead ("dnscat.<hex>", dnscat2 doc/protocol.md), so the
        # first label is what the names share.
        n, domain, below = 1, labels[0], labels[1:]
    below = [label for label in below if not label.startswith("_")]
    if n == 0 or not below:
        return None
    longest = max(below, key=len)
    return Shape(domain, len(longest), "".join(below), longest)


@dataclass(frozen=True, slots=True)
class _Query:
    ktime_ns: int
    qtype: int
    longest: int
    entropy: float


@dataclass(slots=True)
class _Stream:
    """One process's encoded-looking queries under one domain, the last WINDOW_NS of them."""

    names: OrderedDict[str, _Query] = field(default_factory=OrderedDict)  # by last sight, oldest first
    times: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_QUERIES))
    quiet_until_ns: int = 0

    def add(self, name: str, query: _Query) -> None:
        since = query.ktime_ns - WINDOW_NS
        while self.names and next(iter(self.names.values())).ktime_ns < since:
            self.names.popitem(last=False)
        while self.times and self.times[0] < since:
            self.times.popleft()
        self.names[name] = query
        self.names.move_to_end(name)
        while len(self.names) > MAX_NAMES:
            self.names.popitem(last=False)
        self.times.append(query.ktime_ns)


class DnsTunnelDetector:
    rule = RULE

    def __init__(self, max_streams: int = MAX_STREAMS) -> None:
        self._streams: OrderedDict[tuple[int, str], _Stream] = OrderedDict()
        self._max = max_streams
        self.skipped: Counter[str] = Counter()  # queries not read, by reason (DnsError's, "count_lies", ...)

    def detect(self, event: Event, state: State) -> list[Finding]:
        if not isinstance(event, DnsEvent) or event.direction != "query":
            return []
        message = self._parse(event)
        if message is None:
            return []
        findings = []
        for question in message.questions:
            found = shape(question.name)
            if found is None or not found.long or not found.encoded:
                continue
            query = _Query(event.ktime_ns, question.qtype, found.longest, entropy(found.data))
            if finding := self._add(event, found.domain, question.name, query):
                findings.append(finding)
        return findings

    def _parse(self, event: DnsEvent) -> Message | None:
        try:
            message = parse(event.data)
        except DnsError as err:
            self.skipped[err.reason] += 1
            return None
        if message.is_response:
            self.skipped["not_a_query"] += 1
            return None
        if message.cut:
            # The sensor cut it (DNS_MAX), or a TCP record holds only the start of a message: the questions
            # before the cut are whole. A whole UDP datagram (RFC 1035 4.2.1) that ends early lies.
            if event.proto == "udp" and not event.truncated:
                self.skipped["count_lies"] += 1
        elif message.stopped is not None:
            self.skipped[message.stopped] += 1
        return message

    def _add(self, event: DnsEvent, domain: str, name: str, query: _Query) -> Finding | None:
        key = (event.tgid, domain)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream()
            while len(self._streams) > self._max:
                self._streams.popitem(last=False)
        self._streams.move_to_end(key)
        stream.add(name, query)
        if len(stream.names) < MIN_NAMES or event.ktime_ns < stream.quiet_until_ns:
            return None
        stream.quiet_until_ns = event.ktime_ns + WINDOW_NS
        return _finding(event, domain, stream)


def _finding(event: DnsEvent, domain: str, stream: _Stream) -> Finding:
    queries = list(stream.names.values())
    first = min(q.ktime_ns for q in queries)
    span_s = (event.ktime_ns - first) / 1e9
    qtypes = Counter(type_name(q.qtype) for q in queries)
    summary = (
        f"{event.comm} (pid {event.tgid}) sent {len(queries)} DNS queries with encoded-looking names under "
        f"{domain} in {span_s:.0f} s ({', '.join(sorted(qtypes))}) to {event.server}: a DNS tunnel"
    )
    evidence = {
        "signature": "dns names carrying encoded data",
        "domain": domain,
        "queries": len(stream.times),
        "names": len(queries),
        "window_s": WINDOW_NS // 1_000_000_000,
        "span_s": round(span_s, 1),
        "samples": list(stream.names)[-SAMPLES:],
        "qtypes": dict(qtypes),
        "mean_label_length": round(sum(q.longest for q in queries) / len(queries), 1),
        "mean_entropy": round(sum(q.entropy for q in queries) / len(queries), 2),
        "server": event.server,
        "proto": event.proto,
    }
    return Finding(RULE, event, summary, evidence)
