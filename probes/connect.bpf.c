/* SPDX-License-Identifier: Apache-2.0 */
/* connect sensor: IPv4/IPv6 connect() destination, fd and result; arms first-payload capture. */
#include "common.bpf.h"

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

struct connect_call {
	s32 fd;
	u16 family;
	u16 dport;
	u8 daddr[16];
};

BPF_HASH(connect_calls, u32, struct connect_call, 10240);
BPF_TABLE_PUBLIC("lru_hash", u64, struct tracked_sock, tracked, TRACKED_MAX);
BPF_TABLE_PUBLIC("array", u32, struct tracked_filter, tracked_filter, 1);

/* The ring buffer was full: count it (per-CPU slot, no atomics needed). */
static __always_inline void drop(u32 kind)
{
	u64 *n = lost.lookup(&kind);
	if (n)
		(*n)++;
}

static __always_inline int enter_connect(s32 fd, const void *uaddr, u32 addrlen)
{
	struct connect_call call = {.fd = fd};
	u32 tid = (u32)bpf_get_current_pid_tgid();
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
	call.family = sa.family;
	if (sa.family == AF_INET) {
		call.dport = __builtin_bswap16(sa.in.port_be);
		__builtin_memcpy(call.daddr, sa.in.addr, 4);
	} else if (sa.family == AF_INET6 && addrlen >= sizeof(sa.in6)) {
		call.dport = __builtin_bswap16(sa.in6.port_be);
		__builtin_memcpy(call.daddr, sa.in6.addr, 16);
	} else {
		return 0; /* AF_UNIX, AF_NETLINK, ...: not network egress */
	}
	connect_calls.update(&tid, &call);
	return 0;
}

static __always_inline int exit_connect(long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct connect_call *call = connect_calls.lookup(&tid);

	if (!call)
		return 0;
	if (ret == 0 || ret == -EINPROGRESS) {
		struct tracked_sock sock = {.family = call->family, .dport = call->dport};
		u64 key = sock_key(call->fd);
		u32 zero = 0;
		struct tracked_filter *f = tracked_filter.lookup(&zero);
		__builtin_memcpy(sock.daddr, call->daddr, 16);
		/* A new entry counts in the filter; a connect() again on the same fd
		   (UDP, getaddrinfo's address sorting) overwrites and counts nothing. */
		if (tracked.insert(&key, &sock) == 0) {
			if (f)
				__sync_fetch_and_add(&f->count[filter_slot(key)], 1);
		} else {
			tracked.update(&key, &sock);
		}
	}
	struct connect_event *e = events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		drop(EVENT_CONNECT);
		connect_calls.delete(&tid);
		return 0;
	}
	fill_header(&e->hdr, EVENT_CONNECT, 0, sizeof(*e));
	e->fd = call->fd;
	e->ret = ret;
	e->family = call->family;
	e->dport = call->dport;
	e->reserved = 0;
	__builtin_memcpy(e->daddr, call->daddr, 16);
	events.ringbuf_submit(e, SUBMIT_FLAGS);
	connect_calls.delete(&tid);
	return 0;
}

/* A closed fd number is reused for files: forget it so its next write is not a "payload". */
static __always_inline int enter_close(u32 fd)
{
	u64 key = sock_key(fd);
	u32 zero = 0, slot = filter_slot(key);
	struct tracked_filter *f = tracked_filter.lookup(&zero);

	/* Every close() on the node lands here: most stop at the filter; a lookup
	   is lockless, a delete takes the bucket lock. */
	if (!f || !f->count[slot])
		return 0;
	if (tracked.lookup(&key) && tracked.delete(&key) == 0)
		__sync_fetch_and_add(&f->count[slot], -1);
	return 0;
}

int on_enter_connect(struct tracepoint__syscalls__sys_enter_connect *args)
{
	return enter_connect(args->fd, args->uservaddr, args->addrlen);
}

int on_exit_connect(struct tracepoint__syscalls__sys_exit_connect *args)
{
	return exit_connect(args->ret);
}

int on_enter_close(struct tracepoint__syscalls__sys_enter_close *args)
{
	return enter_close(args->fd);
}
