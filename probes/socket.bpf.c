/* SPDX-License-Identifier: Apache-2.0 */
/* socket sensor: raw and ICMP sockets as they are created, and TUN/TAP interfaces (TUNSETIFF). */
#include "ringbuf.bpf.h"
#include "task.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define SOCK_TYPE_MASK 0xf /* include/linux/net.h: the type without SOCK_NONBLOCK, SOCK_CLOEXEC */
#define IPPROTO_ICMP 1
#define IPPROTO_ICMPV6 58
/* include/uapi/linux/if_tun.h: _IOW('T', 202, int); the number is tun's own */
#define TUNSETIFF 0x400454ca

/* The ring buffer was full: count it (per-CPU slot, no atomics needed). */
static __always_inline void drop(u32 kind)
{
	u64 *n = lost.lookup(&kind);
	if (n)
		(*n)++;
}

/*
 * The socket() in flight on this thread, from entry to exit, in task-local
 * storage (as connect.bpf.c keeps its connect). Every socket() exit on the
 * node checks sockets_armed, the threads inside such a call (almost always
 * 0), and returns.
 */
struct socket_call {
	u32 family;
	u32 type;
	u32 protocol;
	u32 armed;
};

BPF_TASK_STORAGE(socket_calls, struct socket_call);
BPF_ARRAY(sockets_armed, u64, 1);

/*
 * What an ICMP tunnel needs: a raw socket (ptunnel-ng, hans, icmpsh, udp2raw
 * use SOCK_RAW with IPPROTO_ICMP), or the unprivileged ICMP datagram socket
 * (net/ipv4/ping.c, the one ping itself uses where ping_group_range allows).
 * Raw sockets of other protocols and AF_PACKET ones are reported too: the
 * rule decides what they mean.
 */
static __always_inline int wanted(u32 family, u32 type, u32 protocol)
{
	if (family != AF_INET && family != AF_INET6 && family != AF_PACKET)
		return 0;
	type &= SOCK_TYPE_MASK;
	return type == SOCK_RAW || (type == SOCK_DGRAM && (protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6));
}

int on_enter_socket(struct tracepoint__syscalls__sys_enter_socket *args)
{
	u32 zero = 0;
	u64 *armed;
	struct socket_call *call;

	if (!wanted(args->family, args->type, args->protocol))
		return 0;
	armed = sockets_armed.lookup(&zero);
	if (!armed)
		return 0;
	call = socket_calls.task_storage_get(bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!call) { /* no memory for the stash: the socket goes unreported, counted */
		drop(EVENT_SOCKET);
		return 0;
	}
	call->family = args->family;
	call->type = args->type & SOCK_TYPE_MASK;
	call->protocol = args->protocol;
	if (!call->armed) {
		call->armed = 1;
		__sync_fetch_and_add(armed, 1);
	}
	return 0;
}

int on_exit_socket(struct tracepoint__syscalls__sys_exit_socket *args)
{
	u32 zero = 0;
	u64 *armed = sockets_armed.lookup(&zero);
	struct socket_call *call;

	if (!armed || !*armed)
		return 0;
	call = socket_calls.task_storage_get(bpf_get_current_task_btf(), 0, 0);
	if (!call || !call->armed)
		return 0;
	call->armed = 0;
	__sync_fetch_and_add(armed, -1);
	struct socket_event *e = events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		drop(EVENT_SOCKET);
		return 0;
	}
	fill_header(&e->hdr, EVENT_SOCKET, 0, sizeof(*e));
	e->ret = args->ret;
	e->family = call->family;
	e->type = call->type;
	e->protocol = call->protocol;
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
	return 0;
}

/* uapi struct ifreq up to ifr_flags: the name, then the union whose first member is a short. */
struct ifreq_user {
	char name[IFNAMSIZ];
	u16 flags;
};

/*
 * Every ioctl() on the node lands here and stops at one compare. TUNSETIFF
 * is reported at entry, whatever it then returns: the attempt is the signal
 * (as a refused Fast Open is, payload.bpf.c).
 */
int on_enter_ioctl(struct tracepoint__syscalls__sys_enter_ioctl *args)
{
	struct ifreq_user ifr = {};

	if (args->cmd != TUNSETIFF)
		return 0;
	struct tun_event *e = events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		drop(EVENT_TUN);
		return 0;
	}
	bpf_probe_read_user(&ifr, sizeof(ifr), (void *)args->arg);
	fill_header(&e->hdr, EVENT_TUN, 0, sizeof(*e));
	e->fd = args->fd;
	e->ifr_flags = ifr.flags;
	e->reserved = 0;
	__builtin_memcpy(e->ifname, ifr.name, IFNAMSIZ);
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
	return 0;
}
