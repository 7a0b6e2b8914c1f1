#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install coalmine and what it needs on a Debian or Ubuntu node. Idempotent: run it again any time.
#
#   deploy/setup.sh          bcc, kernel headers, tracefs, .venv with coalmine  ->  .venv/bin/coalmine
#   deploy/setup.sh --dev    the same, editable, plus the test tools (pytest, openssh, socat, ncat, tunnel tools, ...)
#
# Used by the README, .ci/run and the container image alike.
set -euo pipefail

usage() { sed -n '3,6p' "$0" | sed 's/^# \{0,1\}//'; }
say() { echo "setup.sh: $*" >&2; }

dev=0
for arg in "$@"; do
    case "$arg" in
        --dev) dev=1 ;;
        -h|--help) usage; exit 0 ;;
        *) say "unknown option $arg"; usage >&2; exit 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || { say "run as root: it installs packages and links kernel headers"; exit 1; }
command -v apt-get >/dev/null || { say "needs apt-get (Debian or Ubuntu)"; exit 1; }
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
kernel=$(uname -r)
arch=$(dpkg --print-architecture)

say "updating package lists"
apt-get update -qq

packages=(python3-bpfcc python3-venv python3-pip)
exact_headers=0
if apt-cache show "linux-headers-$kernel" >/dev/null 2>&1; then
    packages+=("linux-headers-$kernel")
    exact_headers=1
elif apt-cache show "linux-headers-$arch" >/dev/null 2>&1; then
    packages+=("linux-headers-$arch")          # Debian: linux-headers-amd64, -arm64
else
    packages+=(linux-headers-generic)          # Ubuntu
fi
if [ "$dev" = 1 ]; then
    packages+=(openssh-server openssh-client socat ncat openssl curl iproute2)
    # real tunnelling tools and SSH clients the kernel tests drive (issue 13)
    packages+=(autossh dropbear-bin python3-paramiko stunnel4 iodine ptunnel-ng git rsync sshuttle corkscrew proxytunnel)
    packages+=(httptunnel)
    packages+=(dnsmasq-base bind9-dnsutils iputils-ping)  # a name server and lookups for the DNS sensor
fi

# Install without starting services (openssh-server would start sshd on :22):
# the tests start their own sshd on loopback. policy-rc.d exit 101 = "not allowed".
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
fi
trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
say "installing ${packages[*]}"
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

# bcc compiles the probes against /lib/modules/$(uname -r)/build. Without a headers
# package for this kernel, link the distribution's newest generic headers: tracepoint
# programs compile with them; struct offsets are taken from BTF (probes/btf.py).
moddir=/lib/modules/$kernel
have_headers() { [ -e "$moddir/source/include/linux/kconfig.h" ] || [ -e "$moddir/build/include/linux/kconfig.h" ]; }
if [ "$exact_headers" = 0 ] && ! have_headers; then
    build=$(ls -d /usr/src/linux-headers-*-"$arch" /usr/src/linux-headers-*-generic 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$build" ] || { say "no kernel headers found under /usr/src"; exit 1; }
    version=${build#/usr/src/linux-headers-}
    version=${version%-"$arch"}
    version=${version%-generic}
    source=/usr/src/linux-headers-$version-common
    [ -d "$source" ] || source=/usr/src/linux-headers-$version
    mkdir -p "$moddir"
    ln -sfn "$build" "$moddir/build"
    ln -sfn "$source" "$moddir/source"
    say "linked $build as $moddir/build and $source as $moddir/source"
fi
have_headers || { say "kernel headers for bcc are still missing under $moddir"; exit 1; }
if [ "$exact_headers" = 0 ]; then
    say "warning: no headers package for kernel $kernel; using $(readlink -f "$moddir/build")"
    say "warning: those headers describe another kernel: coalmine reads struct offsets from BTF instead"
fi

# Tracepoints are attached through tracefs; mount it where it is missing (containers, minimal VMs).
if [ ! -d /sys/kernel/tracing/events ] && [ ! -d /sys/kernel/debug/tracing/events ]; then
    mount -t tracefs nodev /sys/kernel/tracing && say "mounted tracefs at /sys/kernel/tracing"
fi

# The venv uses the system Python, which is where python3-bpfcc puts the bcc module.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import bcc' 2>/dev/null; then
    rm -rf .venv
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
say "installing coalmine into .venv"
.venv/bin/pip install -q --upgrade pip >/dev/null
if [ "$dev" = 1 ]; then
    .venv/bin/pip install -q -e ".[test]"
else
    .venv/bin/pip install -q .
fi
.venv/bin/coalmine --version >/dev/null
say "done: .venv/bin/coalmine ($(.venv/bin/coalmine --version))"
