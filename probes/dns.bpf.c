/* SPDX-License-Identifier: Apache-2.0 */
/* DNS sensor, receive side: the answers DNS sockets get (the send side is in payload.bpf.c). */
#include "ringbuf.bpf.h"
#include "sock.bpf.h"
#include "sockaddr.bpf.h"
#include "task.bpf.h"
#include "tracked.bpf.h"
#include "dns.bpf.h"

BPF_TABLE("extern", u32, struct tracked_set, tracked, TRACKED_SETS);
BPF_TABLE("extern", u32, struct tracked_filter, tracked_filter, 1);

/* The ring buffer was full: count it (per-CPU slot, no atomics needed). */
static __always_inline void drop(u32 kind)
{
	u64 *n = lost.lookup(&kind);
	if (n)
		(*n)++;
}

/*
 * A read on a DNS socket (one connect.bpf.c or payload.bpf.c tracked as
 * such), from entry to exit, in task-local storage: the buffer, where the
 * source address goes (recvfrom, recvmsg), and the name server the socket
 * talks to. Every read(), recvfrom() and recvmsg() on the node checks the
 * tracked-socket filter at entry (as write() does) and, at exit,
 * dns_reads_armed: the threads inside such a call (almost always 0).
 */
struct dns_read {
	const void *buf;
	const void *addr; /* the caller's sockaddr for the source, or 0 */
	struct tracked_sock server;
	s32 fd;
	u8 syscall;
	u8 armed;
};

BPF_TASK_STORAGE(dns_reads, struct dns_read);
BPF_ARRAY(dns_reads_armed, u64, 1);

/* The DNS socket `fd` of this process, if it is one: its name server in *server. */
static __always_inline int dns_socket(u32 fd, struct tracked_sock *server)
{
	u64 key = sock_key(fd);
	u32 zero = 0, way = 0, home, spill;
	struct tracked_filter *f = tracked_filter.lookup(&zero);

	if (!f || !f->count[filter_slot(key)])
		return 0;
	home = tracked_home(key);
	spill = tracked_spill(key);
	struct tracked_set *h = tracked.lookup(&home), *o = tracked.lookup(&spill);
	if (!h || !o)
		return 0;
	struct tracked_set *at = tracked_where(h, o, key, &way);
	if (!at || way >= TRACKED_WAYS || !(at->shared[way] & TRACKED_DNS))
		return 0;
	tracked_peek(at, way, server);
	return 1;
}

static __always_inline void enter_read(u32 fd, const void *buf, const void *addr, u8 syscall)
{
	u32 zero = 0;
	struct tracked_sock server = {};
	struct dns_read *call;
	u64 *armed;

	if (!dns_socket(fd, &server))
		return;
	armed = dns_reads_armed.lookup(&zero);
	call = dns_reads.task_storage_get(bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!armed || !call) { /* no memory for the stash: this answer goes unreported, counted */
		drop(EVENT_DNS);
		return;
	}
	call->buf = buf;
	call->addr = addr;
	call->server = server;
	call->fd = fd;
	call->syscall = syscall;
	if (!call->armed) {
		call->armed = 1;
		__sync_fetch_and_add(armed, 1);
	}
}

static __always_inline void exit_read(long ret)
{
	u32 zero = 0;
	u64 *armed = dns_reads_armed.lookup(&zero);
	struct dns_read *call;
	struct dest from;

	if (!armed || !*armed)
		return;
	call = dns_reads.task_storage_get(bpf_get_current_task_btf(), 0, 0);
	if (!call || !call->armed)
		return;
	call->armed = 0;
	__sync_fetch_and_add(armed, -1);
	if (ret <= 0)
		return;
	/* an unconnected socket's answer names its source: the name server it came from */
	if (call->addr && read_dest(call->addr, sizeof(struct sockaddr_in6_user), &from)) {
		call->server.family = from.family;
		call->server.dport = from.dport;
		__builtin_memcpy(call->server.daddr, from.daddr, 16);
	}
	struct dns_event *e = events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		drop(EVENT_DNS);
		return;
	}
	u64 n = ret < DNS_MAX ? ret : DNS_MAX;
	asm volatile("if %0 <= %1 goto +1\n\t%0 = %1" : "+r"(n) : "i"(DNS_MAX));
	if (bpf_probe_read_user(e->data, n, call->buf))
		n = 0;
	void *sk = fd_sock(call->fd);
	u16 protocol = 0;
	if (sk)
		bpf_probe_read_kernel(&protocol, sizeof(protocol), sk + SOCK_PROTOCOL_OFF);
	fill_dns(e, call->fd, ret, n, call->syscall, DNS_ANSWER, protocol, &call->server);
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
}

int on_enter_read(struct tracepoint__syscalls__sys_enter_read *args)
{
	enter_read(args->fd, args->buf, 0, SYSCALL_READ);
	return 0;
}

int on_exit_read(struct tracepoint__syscalls__sys_exit_read *args)
{
	exit_read(args->ret);
	return 0;
}

int on_enter_recvfrom(struct tracepoint__syscalls__sys_enter_recvfrom *args)
{
	enter_read(args->fd, args->ubuf, args->addr, SYSCALL_RECVFROM);
	return 0;
}

int on_exit_recvfrom(struct tracepoint__syscalls__sys_exit_recvfrom *args)
{
	exit_read(args->ret);
	return 0;
}

/* uapi struct user_msghdr up to msg_iovlen, and one iovec (x86_64/arm64 sizes). */
struct recv_msghdr {
	void *name;
	s32 namelen;
	u32 pad;
	const struct {
		const void *base;
		u64 len;
	} *iov;
	u64 iovlen;
};

/* recvmsg(): the answer lands in the first iovec (a resolver's one buffer). */
int on_enter_recvmsg(struct tracepoint__syscalls__sys_enter_recvmsg *args)
{
	struct tracked_sock server;
	struct recv_msghdr msg = {};
	struct {
		const void *base;
		u64 len;
	} v = {};

	if (!dns_socket(args->fd, &server)) /* the filter first: the msghdr is read only for DNS sockets */
		return 0;
	if (bpf_probe_read_user(&msg, sizeof(msg), args->msg) || !msg.iovlen ||
	    bpf_probe_read_user(&v, sizeof(v), msg.iov))
		return 0;
	enter_read(args->fd, v.base, msg.name, SYSCALL_RECVMSG);
	return 0;
}

int on_exit_recvmsg(struct tracepoint__syscalls__sys_exit_recvmsg *args)
{
	exit_read(args->ret);
	return 0;
}
