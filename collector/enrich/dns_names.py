# SPDX-License-Identifier: Apache-2.0
"""IP address -> the name a process asked for, learned from the DNS answers the sensor sees (a TTL cache).

An answer to ``www.example.com`` that says ``www.example.com CNAME edge.cdn.net`` then ``edge.cdn.net A
192.0.2.7`` teaches ``192.0.2.7 -> www.example.com`` (the question: what the process meant to reach), with
the chain ``("www.example.com", "edge.cdn.net")`` kept beside it. An address record counts only when its
owner is the question or a CNAME target reached from it in the same answer, as glibc takes them
(resolv/nss_dns/dns-host.c getanswer_r: a record for another name is logged and skipped): a record for
some other name is counted in ``skipped["off_chain"]``. Only NOERROR responses teach.

Each address keeps the last answer that named it (a CDN address serves many names: the latest lookup is
the likeliest reason for the connect that follows). Time is the caller's (the events' ktime_ns).

Pure: the caller parses the answer (collector.detect.protocols.dns) and passes the Message here.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

A, CNAME, AAAA = 1, 5, 28  # RFC 1035 3.2.2, RFC 3596
NOERROR = 0
# A TTL below a minute is raised to one: clients use an answer past its TTL (Java caches 30 s by default,
# networkaddress.cache.ttl; browsers and connection pools keep sockets and addresses longer), and a TTL 0
# answer is used for the connect right after it. At most a day: Unbound's default cache-max-ttl (86400,
# unbound.conf(5)); an address held longer is as likely to have moved to another name.
MIN_TTL_S = 60
MAX_TTL_S = 86400
MAX_ENTRIES = 32768  # addresses held; the least recently used go first
MAX_CHAIN = 8  # CNAMEs followed from the question (glibc's getanswer_r follows as many as the answer has)
NS = 1_000_000_000


class Answered(Protocol):
    """What a parsed DNS message gives this cache (collector.detect.protocols.dns.Message)."""

    @property
    def is_response(self) -> bool: ...
    @property
    def rcode(self) -> int: ...
    @property
    def questions(self) -> Sequence[tuple[str, int, int]]: ...
    @property
    def answers(self) -> Sequence[tuple[str, int, int, str | None]]: ...


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # the question: what the process looked up
    chain: tuple[str, ...]  # the question, then each CNAME target down to the address record's owner
    expires_ns: int


def key(addr: str) -> str | None:
    """The address as the cache keys it: an IPv4-mapped IPv6 address as its IPv4 address; None if not one."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class DnsNames:
    def __init__(self, maxsize: int = MAX_ENTRIES) -> None:
        if maxsize < 1:
            raise ValueError(f"a DNS name cache holds at least 1 address, not {maxsize}")
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._max = maxsize
        self.skipped: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    def learn(self, message: Answered, now_ns: int) -> int:
        """Take the addresses ``message`` (an answer) gives for its question; how many were learned."""
        if not message.is_response or not message.questions:
            self.skipped["not_an_answer"] += 1
            return 0
        if message.rcode != NOERROR:
            return 0
        asked = message.questions[0][0]
        chain = [asked]  # the names the answer may give addresses for, in CNAME order
        targets = {name: value for name, rtype, _ttl, value in message.answers if rtype == CNAME and value}
        while (target := targets.get(chain[-1])) is not None and target not in chain and len(chain) <= MAX_CHAIN:
            chain.append(target)
        learned = 0
        for name, rtype, ttl, value in message.answers:
            if rtype not in (A, AAAA) or value is None:
                continue
            if name not in chain:
                self.skipped["off_chain"] += 1
                continue
            addr = key(value)
            if addr is None:
                continue
            ttl_s = min(max(ttl, MIN_TTL_S), MAX_TTL_S)
            via = tuple(chain[: chain.index(name) + 1])
            self._entries[addr] = Entry(asked, via, now_ns + ttl_s * NS)
            self._entries.move_to_end(addr)
            learned += 1
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return learned

    def entry(self, addr: str, now_ns: int) -> Entry | None:
        """What is known of ``addr`` at ``now_ns``: None when never learned, expired or not an address."""
        k = key(addr)
        if k is None or (found := self._entries.get(k)) is None:
            return None
        if found.expires_ns <= now_ns:
            del self._entries[k]
            return None
        self._entries.move_to_end(k)
        return found

    def lookup(self, addr: str, now_ns: int) -> str | None:
        """The name that was asked for when ``addr`` was learned, while its (clamped) TTL lasts."""
        found = self.entry(addr, now_ns)
        return found.name if found is not None else None
