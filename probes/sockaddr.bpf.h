/* SPDX-License-Identifier: Apache-2.0 */
/* Where a connect goes: the user's sockaddr read into a struct dest, and the connect record built from it. */
#ifndef COALMINE_SOCKADDR_BPF_H
#define COALMINE_SOCKADDR_BPF_H

#include "task.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115

/* The uapi sockaddr layouts, spelled out so no kernel header is needed. */
struct sockaddr_in_user {
	u16 family;
	u16 port_be;
	u8 addr[4];
};

struct sockaddr_in6_user {
	u16 family;
	u16 port_be;
	u32 flowinfo;
	u8 addr[16];
};

/* Where a connect goes: family, port (host order), address (IPv4 in the first 4 bytes). */
struct dest {
	u16 family;
	u16 dport;
	u8 daddr[16];
};

/* The IPv4 or IPv6 destination in a user sockaddr of `addrlen` bytes: 1, or 0 for any other
   family (AF_UNIX, AF_NETLINK, ...: not network egress) or an address that cannot be read. */
static __always_inline int read_dest(const void *uaddr, u32 addrlen, struct dest *d)
{
	union {
		u16 family;
		struct sockaddr_in_user in;
		struct sockaddr_in6_user in6;
	} sa = {};

	/* One read: the whole sockaddr_in6 when addrlen allows it, else a sockaddr_in. */
	if (addrlen >= sizeof(sa.in6)) {
		if (bpf_probe_read_user(&sa.in6, sizeof(sa.in6), uaddr))
			return 0;
	} else if (addrlen >= sizeof(sa.in)) {
		if (bpf_probe_read_user(&sa.in, sizeof(sa.in), uaddr))
			return 0;
	} else {
		return 0;
	}
	if (sa.family != AF_INET && !(sa.family == AF_INET6 && addrlen >= sizeof(sa.in6)))
		return 0;
	d->family = sa.family;
	__builtin_memset(d->daddr, 0, sizeof(d->daddr));
	if (sa.family == AF_INET) {
		d->dport = __builtin_bswap16(sa.in.port_be);
		__builtin_memcpy(d->daddr, sa.in.addr, 4);
	} else {
		d->dport = __builtin_bswap16(sa.in6.port_be);
		__builtin_memcpy(d->daddr, sa.in6.addr, 16);
	}
	return 1;
}

/* A connect record for `fd` to `d` with result `ret` (the sensor reserves and submits it: map calls
   stay in each sensor's own file for bcc). */
static __always_inline void fill_connect(struct connect_event *e, s32 fd, s32 ret, const struct dest *d)
{
	fill_header(&e->hdr, EVENT_CONNECT, 0, sizeof(*e));
	e->fd = fd;
	e->ret = ret;
	e->family = d->family;
	e->dport = d->dport;
	e->reserved = 0;
	__builtin_memcpy(e->daddr, d->daddr, 16);
}

#endif /* COALMINE_SOCKADDR_BPF_H */
