/* SPDX-License-Identifier: Apache-2.0 */
/* The DNS record, as the DNS sensor's send and receive sides (payload.bpf.c) fill it. */
#ifndef COALMINE_DNS_BPF_H
#define COALMINE_DNS_BPF_H

#include "task.bpf.h"
#include "tracked.bpf.h"

/* Everything but the data, which the sensor read into e->data (n of the message's len bytes). */
static __always_inline void fill_dns(struct dns_event *e, s32 fd, u64 len, u32 n, u8 syscall, u8 direction,
				     u16 protocol, const struct tracked_sock *server)
{
	fill_header(&e->hdr, EVENT_DNS, len > n ? PAYLOAD_TRUNCATED : 0, __builtin_offsetof(struct dns_event, data) + n);
	e->fd = fd;
	e->len_raw = len > 0xFFFFFFFFULL ? 0xFFFFFFFF : len;
	e->family = server->family;
	e->port = server->dport;
	e->data_len = n;
	e->syscall = syscall;
	e->direction = direction;
	e->proto = protocol > 0xFF ? 0xFF : protocol;
	__builtin_memset(e->reserved, 0, sizeof(e->reserved));
	__builtin_memcpy(e->server, server->daddr, 16);
}

#endif /* COALMINE_DNS_BPF_H */
