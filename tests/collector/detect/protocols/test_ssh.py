# SPDX-License-Identifier: Apache-2.0
"""The SSH identification parser on what real clients send, on what is not SSH, and on every cut."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.detect.protocols.ssh import MAX_LINE, Identification, parse

# What real clients send first, CR LF included, from each implementation's source.
REAL = [
    # (bytes, softwareversion, comments, source)
    (
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n",
        "OpenSSH_9.2p1",
        "Debian-2+deb12u10",
        'Debian 12 ssh, captured on loopback; openssh-portable kex.c "SSH-%d.%d-%.100s%s%s\\r\\n"',
    ),
    (
        b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\r\n",
        "OpenSSH_9.6p1",
        "Ubuntu-3ubuntu13.5",
        "Ubuntu 24.04 ssh: kex.c with the distribution's version addendum",
    ),
    (
        b"SSH-2.0-OpenSSH_for_Windows_8.1\r\n",
        "OpenSSH_for_Windows_8.1",
        None,
        "Windows' ssh.exe: PowerShell/openssh-portable version.h SSH_VERSION",
    ),
    (
        b"SSH-2.0-paramiko_2.12.0\r\n",
        "paramiko_2.12.0",
        None,
        "Debian python3-paramiko, captured; paramiko transport.py _PROTO_ID, _CLIENT_ID",
    ),
    (b"SSH-2.0-paramiko_3.4.0\r\n", "paramiko_3.4.0", None, "paramiko transport.py"),
    (b"SSH-2.0-AsyncSSH_2.10.1\r\n", "AsyncSSH_2.10.1", None, "asyncssh connection.py _send_version"),
    (b"SSH-2.0-Go\r\n", "Go", None, "golang.org/x/crypto ssh/transport.go packageVersion, exchangeVersions"),
    (b"SSH-2.0-libssh_0.10.4\r\n", "libssh_0.10.4", None, "libssh include/libssh/priv.h CLIENT_BANNER_SSH2"),
    (b"SSH-2.0-libssh2_1.10.0\r\n", "libssh2_1.10.0", None, "libssh2 include/libssh2.h LIBSSH2_SSH_BANNER"),
    (b"SSH-2.0-PuTTY_Release_0.78\r\n", "PuTTY_Release_0.78", None, "PuTTY event log 'We claim version'"),
    (b"SSH-2.0-dropbear_2022.83\r\n", "dropbear_2022.83", None, "dropbear sysoptions.h LOCAL_IDENT"),
    (
        b"SSH-2.0-APACHE-SSHD-2.9.2\r\n",
        "APACHE-SSHD-2.9.2",
        None,
        "Apache MINA sshd AbstractSession: prefix plus the core artifact name and version, upper case",
    ),
    (b"SSH-2.0-JSCH-0.1.55\r\n", "JSCH-0.1.55", None, "JSch Session.java V_C (jcraft)"),
    (b"SSH-2.0-JSCH_0.2.16\r\n", "JSCH_0.2.16", None, "JSch Session.java V_C (mwiede fork)"),
    (b"SSH-2.0-Twisted_22.10.0\r\n", "Twisted_22.10.0", None, "twisted conch/ssh/transport.py ourVersionString"),
    (
        b"SSH-2.0-russh_0.40.2\r\n",
        "russh_0.40.2",
        None,
        'russh client Config client_id SshId::Standard("SSH-2.0-{CARGO_PKG_NAME}_{CARGO_PKG_VERSION}")',
    ),
    (b"SSH-2.0-Erlang/5.1.4\r\n", "Erlang/5.1.4", None, 'Erlang/OTP lib/ssh: "SSH-2.0-Erlang/" ++ Vsn'),
    (b"SSH-2.0-wolfSSHv1.4.12\r\n", "wolfSSHv1.4.12", None, "wolfSSH internal.c sshProtoIdStr"),
    (b"SSH-1.99-Cisco-1.25\r\n", "Cisco-1.25", None, "Cisco IOS: 1.99, RFC 4253 section 5.1"),
    (b"SSH-2.0-Go\r\n\x00\x00\x05\xdc\x07\x14", "Go", None, "x/crypto sends KEXINIT right after; it is ignored"),
    (b"SSH-2.0-OpenSSH_9.2p1\n", "OpenSSH_9.2p1", None, "LF alone: RFC 4253 section 4.2, kex.c accepts it"),
]


@pytest.mark.parametrize(("data", "software", "comments", "source"), REAL, ids=[r[1] for r in REAL])
def test_real_identifications(data: bytes, software: str, comments: str | None, source: str) -> None:
    """Each real client's identification gives its protoversion, implementation and comments, whole."""
    ident = parse(data)
    assert ident is not None, source
    assert ident == Identification(data[4:].split(b"-", 1)[0].decode(), software, comments, True)


NOT_SSH = [
    (b"", "nothing"),
    (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "HTTP"),
    (b"POST /x HTTP/1.1\r\n\r\nSSH-2.0-OpenSSH_9.2p1\r\n", "an identification on a later line"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "a TLS ClientHello"),
    (b"CONNECT 203.0.113.5:22 HTTP/1.1\r\n\r\n", "ssh through an HTTP proxy: the proxy's bytes come first"),
    (b"\x05\x01\x00", "a SOCKS5 greeting"),
    (b"echo SSH-2.0-OpenSSH_9.2p1\n", "SSH-2.0 inside a longer line"),
    (b" SSH-2.0-OpenSSH_9.2p1\r\n", "a blank before it"),
    (b"ssh-2.0-OpenSSH_9.2p1\r\n", "lower case: OpenSSH compares SSH- exactly"),
    (b"SSH-1.5-OpenSSH_3.9p1\r\n", "SSH-1.5: protocol 1, gone from OpenSSH since 7.6"),
    (b"SSH-1.5-Nmap-SSH1-Hostkey\r\n", "nmap's protocol 1 probe"),
    (b"SSH-1.0-x\r\n", "protocol 1.0"),
    (b"SSH-3.0-x\r\n", "no SSH 3"),
    (b"SSH-2.0-\r\n", "no software: OpenSSH's sscanf needs one byte"),
    (b"SSH-2.0\r\n", "no dash after the version"),
    (b"SSH-2-OpenSSH\r\n", "no minor version"),
    (b"SSH-.0-OpenSSH\r\n", "no major version"),
    (b"SSH-2.0-Open\x00SSH\r\n", "a NUL: kex.c 'banner line contains invalid characters'"),
    (b"SSH-2.0-Open\rSSH\r\n", "a CR not before the LF"),
    (b"SSH-2.0-" + b"x" * MAX_LINE + b"\r\n", "longer than SSH_MAX_BANNER_LEN"),
    (b'{"id": 1, "method": "mining.subscribe", "params": []}\n', "Stratum"),
    (b"SSH-", "only the word"),
    (b"SSH-2.0", "cut before the dash: could be anything"),
]


@pytest.mark.parametrize(("data", "why"), NOT_SSH, ids=[r[1] for r in NOT_SSH])
def test_not_ssh(data: bytes, why: str) -> None:
    """Bytes that are not an SSH identification at the start of the stream give None."""
    assert parse(data) is None, why


OPENSSH_ACCEPTS = [
    # (bytes, protoversion as written): what kex.c's sscanf("SSH-%d.%d-%[^\n]") and the major/minor check take
    (b"SSH-2.5-x\r\n", "2.5"),
    (b"SSH-2.00-x\r\n", "2.00"),
    (b"SSH-02.0-x\r\n", "02.0"),
    (b"SSH-+2.0-x\r\n", "+2.0"),
    (b"SSH- 2.\t0-x\r\n", " 2.\t0"),
    (b"SSH-1.099-x\r\n", "1.099"),
    (b"SSH-4294967298.0-x\r\n", "4294967298.0"),  # strtol gives 2**32 + 2, stored in an int: 2
    (b"SSH-2.0-x\r\r\n", "2.0"),  # CRs are skipped until the LF
]


@pytest.mark.parametrize(("data", "proto"), OPENSSH_ACCEPTS, ids=[r[1] for r in OPENSSH_ACCEPTS])
def test_what_openssh_accepts_is_accepted(data: bytes, proto: str) -> None:
    """Spellings OpenSSH's sshd takes as protocol 2 are identifications, with the version as written."""
    ident = parse(data)
    assert ident is not None and ident.protoversion == proto and ident.softwareversion == "x"


@pytest.mark.parametrize(
    "data",
    [b"SSH--2.0-x\r\n", b"SSH-99999999999999999999.0-x\r\n", b"SSH-1.98-x\r\n", b"SSH-4294967297.99-x\r\n"],
    ids=["negative", "overflow-to-minus-1", "1.98", "wraps-to-1.99"],
)
def test_openssh_integer_reading(data: bytes) -> None:
    """Versions read as glibc's %d reads them: -2 and LONG_MAX (-1 as an int) are refused; 2**32+1.99 is 1.99."""
    ident = parse(data)
    if data.startswith(b"SSH-4294967297.99-"):
        assert ident is not None and ident.protoversion == "4294967297.99"
    else:
        assert ident is None


def test_comments_and_odd_bytes() -> None:
    """The comments run from the first SP to the line's end; other bytes OpenSSH keeps are kept, escaped."""
    ident = parse(b"SSH-2.0-OpenSSH_9.2p1 Debian-2 extra words\t\x1b[31m\xff\r\n")
    assert ident is not None
    assert ident.softwareversion == "OpenSSH_9.2p1"
    assert ident.comments == "Debian-2 extra words\t\x1b[31m\\xff"
    assert parse(b"SSH-2.0- lone comment\r\n") == Identification("2.0", "", "lone comment", True)


LINE = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n"
PREFIX = len(b"SSH-2.0-")


@pytest.mark.parametrize("cut", range(len(LINE) + 1))
def test_cut_at_every_byte(cut: int) -> None:
    """Cut anywhere after SSH-2.0-, the line is still SSH (complete only with its LF); before it, it is not."""
    ident = parse(LINE[:cut])
    if cut < PREFIX:
        assert ident is None
        return
    assert ident is not None and ident.protoversion == "2.0"
    assert ident.complete is (cut == len(LINE))
    assert "OpenSSH_9.2p1".startswith(ident.softwareversion)
    space = LINE.index(b" ")
    assert (ident.comments is None) is (cut <= space)
    if ident.comments is not None:
        assert "Debian-2+deb12u10".startswith(ident.comments)


def test_cut_at_256_bytes() -> None:
    """A line longer than the probes' 256-byte capture is an identification, cut, with the software whole."""
    long_comment = b"SSH-2.0-paramiko_2.12.0 " + b"c" * 400 + b"\r\n"
    ident = parse(long_comment[:256])
    assert ident is not None and not ident.complete
    assert ident.softwareversion == "paramiko_2.12.0" and ident.comments == "c" * (256 - 24)


# Properties over generated identifications: printable software without SP or '-' as RFC 4253 asks (paramiko,
# libssh), comments with anything but CR, LF and NUL, and what may follow the line (the KEXINIT).
software_st = st.text(
    st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="-"), min_size=1, max_size=40
)
comments_st = st.none() | st.binary(max_size=60).map(lambda b: b.translate(None, b"\r\n\0").decode("latin-1"))
proto_st = st.sampled_from(["2.0", "1.99"])
ending_st = st.sampled_from([b"\r\n", b"\n"])


def _line(proto: str, software: str, comments: str | None) -> bytes:
    tail = "" if comments is None else " " + comments
    return f"SSH-{proto}-{software}{tail}".encode("latin-1")


@given(proto_st, software_st, comments_st, ending_st, st.binary(max_size=64))
def test_round_trip(proto: str, software: str, comments: str | None, ending: bytes, after: bytes) -> None:
    """A well-formed identification parses back to its own fields, whatever the line end and what follows it."""
    ident = parse(_line(proto, software, comments) + ending + after)
    expected = None if comments is None else comments.encode("latin-1").decode("utf-8", "backslashreplace")
    assert ident == Identification(proto, software, expected, True)


@given(proto_st, software_st, comments_st, st.data())
def test_any_cut_of_an_identification(proto: str, software: str, comments: str | None, data: st.DataObject) -> None:
    """Every cut from the dash on is a cut identification whose software is a prefix of the whole one's."""
    line = _line(proto, software, comments) + b"\r\n"
    start = len(f"SSH-{proto}-")
    cut = data.draw(st.integers(start, len(line) - 1))
    ident = parse(line[:cut])
    assert ident is not None and ident.protoversion == proto and not ident.complete
    assert software.startswith(ident.softwareversion)


@given(st.binary(min_size=1, max_size=300), st.binary(max_size=300))
def test_only_the_start_counts(junk: bytes, rest: bytes) -> None:
    """Bytes that do not begin with SSH- are never an identification, whatever follows them."""
    if junk.startswith(b"SSH-"[: len(junk)]):
        junk = b"X" + junk
    assert parse(junk + LINE + rest) is None


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_only_the_first_line_counts(first: bytes, after: bytes) -> None:
    """What follows the first LF never changes the result."""
    line = first.split(b"\n", 1)[0] + b"\n"
    assert parse(line + after) == parse(line)


@given(st.binary(max_size=64), st.integers(0, 3 * MAX_LINE))
def test_bounded(head: bytes, pad: int) -> None:
    """Only the first MAX_LINE + 1 bytes are read: a longer input parses as its head does."""
    data = head + b"a" * pad + b"\n"
    assert parse(data) == parse(data[: MAX_LINE + 1])


class _OnlySliced(bytes):
    """Bytes whose scans fail: parse() may only slice its input, then work on the slice (plain bytes)."""

    def find(self, *args: object) -> int:
        raise AssertionError("scanned the whole input")

    def rstrip(self, *args: object) -> bytes:
        raise AssertionError("scanned the whole input")


def test_reads_only_the_head() -> None:
    """However large the input, parse() works on a copy of its first MAX_LINE + 1 bytes alone."""
    ident = parse(_OnlySliced(b"SSH-2.0-Go\r\n" + b"\0" * 10_000_000))
    assert ident == Identification("2.0", "Go", None, True)
