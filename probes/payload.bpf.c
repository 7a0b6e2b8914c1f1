/* SPDX-License-Identifier: Apache-2.0 */
/* first-payload and DNS sensors: the first bytes sent on each socket connect.bpf.c tracked, once; and every
   DNS message sent to port 53 and received on a DNS socket. One compile for both (probes/sensors.py): each
   compiled module keeps its compiler state for the agent's life, so fewer modules, a lower memory peak. */
#include "ringbuf.bpf.h"
#include "sock.bpf.h"
#include "sockaddr.bpf.h"
#include "task.bpf.h"
#include "tracked.bpf.h"
#include "dns.bpf.h"

#define MAX_IOV 4 /* vectored sends: gather from the first iovecs only */
#define DNS_PORT 53

struct iovec_user {
	const void *base;
	u64 len;
};

/* uapi struct user_msghdr up to msg_iovlen (x86_64/arm64: pointers and size_t are 8 bytes). */
struct msghdr_user {
	void *name;
	s32 namelen;
	u32 pad;
	const struct iovec_user *iov;
	u64 iovlen;
};

BPF_TABLE("extern", u32, struct tracked_set, tracked, TRACKED_SETS);
BPF_TABLE("extern", u32, struct tracked_filter, tracked_filter, 1);
/* Tracked fds that no longer held a socket at their first send (closed by an exec, reused): per CPU. */
BPF_PERCPU_ARRAY(tracked_stale, u64, 1);

/* The ring buffer was full: count it (per-CPU slot, no atomics needed). */
static __always_inline void drop(u32 kind)
{
	u64 *n = lost.lookup(&kind);
	if (n)
		(*n)++;
}

/*
 * The record is reserved in the ring buffer and filled in place (no per-CPU
 * scratch record, no second copy). The header's size field says how much of
 * it is used, and only that leaves the reader (probes/reader.py); but the
 * ring advances by the whole reservation (kernel/bpf/ringbuf.c
 * __bpf_ringbuf_reserve(): the producer moves by the size reserved, rounded
 * up to 8), so it is kept close to what is used: records packed densely
 * share cache lines, and the next record, of any sensor, lands in a line
 * this CPU already owns (bench/README.md has the A/B against reserving
 * every send at the vectored size). A flat send takes the smallest of three
 * sizes that holds its bytes; a vectored send reserves a spill area behind
 * PAYLOAD_MAX bytes, which the verifier needs because its copies land at a
 * variable offset.
 */
#define PAYLOAD_DATA_OFF __builtin_offsetof(struct payload_event, data)
#define PAYLOAD_VEC_RESERVE (PAYLOAD_DATA_OFF + 3 * PAYLOAD_MAX)

/*
 * The hot path: write() and friends on every fd of every process land here.
 * An fd that connect.bpf.c did not track stops at the filter (tracked.bpf.h),
 * or, when its slot is shared, after a scan of its sets.
 * The one thread whose claim succeeds owns the payload: at most one record
 * per connection, even when threads race on the same socket. `sock` gets
 * the destination the connect saw; 0 when the fd is not ours.
 */
#define CLAIM_PAYLOAD 1 /* the connection's first payload: a payload record */
#define CLAIM_DNS 2     /* a DNS socket's message: a DNS record */

static __always_inline int claim(u32 fd, struct tracked_sock *sock)
{
	u64 key = sock_key(fd);
	u32 zero = 0, slot = filter_slot(key), way = 0;
	struct tracked_filter *f = tracked_filter.lookup(&zero);

	if (!f || !f->count[slot])
		return 0;
	u32 home = tracked_home(key), spill = tracked_spill(key);
	struct tracked_set *h = tracked.lookup(&home), *o = tracked.lookup(&spill);
	if (!h || !o)
		return 0;
	struct tracked_set *at = tracked_where(h, o, key, &way);
	if (at && way < TRACKED_WAYS && at->shared[way] & TRACKED_DNS) {
		tracked_peek(at, way, sock);
		if (sock->exec_id != exec_id() && !fd_sock(fd)) { /* an exec closed it; the number holds a file */
			tracked_take(h, o, f, key, 0);
			goto stale;
		}
		if (sock->shared & TRACKED_SENT)
			return CLAIM_DNS;
		at->shared[way] |= TRACKED_SENT; /* a plain store: a race costs a second payload record */
		return CLAIM_DNS | CLAIM_PAYLOAD;
	}
	if (!tracked_take(h, o, f, key, sock))
		return 0;
	if (sock->shared & TRACKED_SHARED) { /* a dup of it may have sent first: then this is not the first send */
		void *sk = fd_sock(fd);
		if (sk)
			return tcp_write_seq(sk, sock->dport) == sock->write_seq ? CLAIM_PAYLOAD : 0;
	} else if (sock->exec_id == exec_id() || fd_sock(fd)) {
		return CLAIM_PAYLOAD;
	}
stale:;
	u64 *stale = tracked_stale.lookup(&zero); /* an exec closed the socket; the number now holds a file */
	if (stale)
		(*stale)++;
	return 0;
}

/*
 * The DNS sensor's send side (issue 13 item 5). A message to port 53 is a
 * DNS record, up to DNS_MAX bytes: on a socket connected there (connect.bpf.c
 * tracks it as a DNS socket, kept until close), or sent with an address
 * there (sendto, sendmsg, sendmmsg), after which the socket is tracked the
 * same way so that its answers are seen (the receive side, below). Only the DNS records
 * read the socket's protocol (UDP, or TCP with its 2-byte length prefix).
 */
static __always_inline void dns_message(u32 fd, const void *buf, u64 len, u8 syscall, const struct tracked_sock *sock)
{
	struct dns_event *e;
	void *sk;
	u16 protocol = 0;

	if (!len)
		return;
	e = events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		drop(EVENT_DNS);
		return;
	}
	u64 n = len < DNS_MAX ? len : DNS_MAX;
	asm volatile("if %0 <= %1 goto +1\n\t%0 = %1" : "+r"(n) : "i"(DNS_MAX));
	if (bpf_probe_read_user(e->data, n, buf))
		n = 0;
	sk = fd_sock(fd);
	if (sk)
		bpf_probe_read_kernel(&protocol, sizeof(protocol), sk + SOCK_PROTOCOL_OFF);
	fill_dns(e, fd, len, n, syscall, DNS_QUERY, protocol, sock);
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
}

/* A socket seen sending to port 53 with an address: track it as a DNS socket, for its answers. */
static __always_inline void track_dns(u32 fd, const struct dest *d)
{
	u64 key = sock_key(fd);
	u32 zero = 0, home = tracked_home(key), spill = tracked_spill(key);
	struct tracked_filter *f = tracked_filter.lookup(&zero);
	struct tracked_set *h = tracked.lookup(&home), *o = tracked.lookup(&spill);
	struct tracked_sock sock = {.family = d->family, .dport = d->dport, .exec_id = exec_id(),
				    .shared = TRACKED_DNS | TRACKED_SENT};

	__builtin_memcpy(sock.daddr, d->daddr, 16);
	if (f && h && o)
		tracked_add(h, o, f, key, &sock); /* no room: its answers go unseen (the queries are not) */
}

/* A message sent with an address: a DNS record and a tracked DNS socket when the address is port 53. */
static __always_inline int dns_to(u32 fd, const void *uaddr, u32 addrlen, const void *buf, u64 len, u8 syscall)
{
	struct dest d;
	struct tracked_sock sock = {};

	if (!read_dest(uaddr, addrlen, &d) || d.dport != DNS_PORT)
		return 0;
	sock.family = d.family;
	sock.dport = d.dport;
	__builtin_memcpy(sock.daddr, d.daddr, 16);
	dns_message(fd, buf, len, syscall, &sock);
	track_dns(fd, &d);
	return 1;
}

/* A record of `reserve` bytes for the socket claimed; 0 when the ring buffer is full (counted). */
static __always_inline struct payload_event *open_record(u32 fd, u8 syscall, const struct tracked_sock *sock,
							 const u32 reserve)
{
	struct payload_event *e = events.ringbuf_reserve(reserve);

	if (!e) {
		drop(EVENT_PAYLOAD);
		return 0;
	}
	e->fd = fd;
	e->family = sock->family;
	e->dport = sock->dport;
	e->syscall = syscall;
	e->reserved = 0;
	__builtin_memcpy(e->daddr, sock->daddr, 16);
	return e;
}

static __always_inline void emit(struct payload_event *e, u32 captured, u64 total, const u32 reserve)
{
	if (captured > PAYLOAD_MAX)
		captured = PAYLOAD_MAX;
	u32 size = PAYLOAD_DATA_OFF + captured;
	e->data_len = captured;
	e->len_raw = total > 0xFFFFFFFFULL ? 0xFFFFFFFF : total;
	fill_header(&e->hdr, EVENT_PAYLOAD, total > captured ? PAYLOAD_TRUNCATED : 0, size);
	events.ringbuf_submit(e, submit_flags(reserve));
}

/* The first n (<= cap) of count bytes at buf, in a record with room for `cap` (a constant at each call). */
static __always_inline void send_flat_in(u32 fd, const void *buf, u64 count, u32 n, u8 syscall,
					 const struct tracked_sock *sock, const u32 cap)
{
	struct payload_event *e = open_record(fd, syscall, sock, PAYLOAD_DATA_OFF + cap);

	if (!e)
		return;
	/* never clamps (the caller chose cap >= n), but the verifier needs the bound on the register the
	   call gets; in C, clang drops the clamp it can prove redundant */
	u64 len = n;
	asm volatile("if %0 <= %1 goto +1\n\t%0 = %1" : "+r"(len) : "i"(cap));
	if (bpf_probe_read_user(e->data, len, buf))
		len = 0;
	emit(e, len, count, PAYLOAD_DATA_OFF + cap);
}

/* The payload of a send from one buffer, for the socket `sock` (claimed, or just connected by Fast Open). */
static __always_inline int capture_flat(u32 fd, const void *buf, u64 count, u8 syscall,
					const struct tracked_sock *sock)
{
	u32 n = count < PAYLOAD_MAX ? count : PAYLOAD_MAX;
	if (n <= 64)
		send_flat_in(fd, buf, count, n, syscall, sock, 64);
	else if (n <= 128)
		send_flat_in(fd, buf, count, n, syscall, sock, 128);
	else
		send_flat_in(fd, buf, count, n, syscall, sock, PAYLOAD_MAX);
	return 0;
}

static __always_inline int send_flat(u32 fd, const void *buf, u64 count, u8 syscall)
{
	struct tracked_sock sock;

	if (!count)
		return 0; /* nothing sent yet: keep waiting for the first real payload */
	int claimed = claim(fd, &sock);
	if (claimed & CLAIM_DNS)
		dns_message(fd, buf, count, syscall, &sock);
	if (claimed & CLAIM_PAYLOAD)
		capture_flat(fd, buf, count, syscall, &sock);
	return 0;
}

/* The payload of a vectored send: the first MAX_IOV iovecs, gathered. */
static __always_inline int capture_vec(u32 fd, const struct iovec_user *iov, u64 iovcnt, u8 syscall,
				       const struct tracked_sock *sock)
{
	struct payload_event *e = open_record(fd, syscall, sock, PAYLOAD_VEC_RESERVE);
	if (!e)
		return 0;
	u32 off = 0;
	u64 total = 0;
	int i;
#pragma unroll
	for (i = 0; i < MAX_IOV; i++) {
		struct iovec_user v = {};
		if (i >= iovcnt)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), &iov[i]))
			break;
		total += v.len;
		if (off >= PAYLOAD_MAX || !v.len)
			continue;
		u32 n = v.len < PAYLOAD_MAX - off ? v.len : PAYLOAD_MAX - off;
		barrier_var(off);
		barrier_var(n);
		n &= 2 * PAYLOAD_MAX - 1; /* n <= PAYLOAD_MAX already: a no-op the verifier can follow */
		if (bpf_probe_read_user(&e->data[off & (PAYLOAD_MAX - 1)], n, v.base))
			break;
		off += n;
	}
	emit(e, off, total, PAYLOAD_VEC_RESERVE);
	return 0;
}

/* A DNS message sent from iovecs: the first one, or the second after a TCP length prefix alone in the first. */
static __always_inline void dns_vec(u32 fd, const struct iovec_user *iov, u64 iovcnt, u8 syscall,
				    const struct tracked_sock *sock)
{
	struct iovec_user v[2] = {};

	if (!iovcnt || bpf_probe_read_user(&v[0], sizeof(v[0]), &iov[0]))
		return;
	if (v[0].len <= 2 && iovcnt > 1 && !bpf_probe_read_user(&v[1], sizeof(v[1]), &iov[1]))
		v[0] = v[1];
	dns_message(fd, v[0].base, v[0].len, syscall, sock);
}

static __always_inline int send_vec(u32 fd, const struct iovec_user *iov, u64 iovcnt, u8 syscall)
{
	struct tracked_sock sock;

	if (!iovcnt)
		return 0;
	int claimed = claim(fd, &sock);
	if (claimed & CLAIM_DNS)
		dns_vec(fd, iov, iovcnt, syscall, &sock);
	if (claimed & CLAIM_PAYLOAD)
		capture_vec(fd, iov, iovcnt, syscall, &sock);
	return 0;
}

#define MSG_FASTOPEN 0x20000000

/*
 * TCP Fast Open: sendto() or sendmsg() with MSG_FASTOPEN and an address
 * connects and sends in one call, with no connect() for connect.bpf.c to
 * see. On a TCP socket that has never connected (on any other the flag
 * makes the call fail) the connect is reported here, at entry, as started
 * (-EINPROGRESS: its result is not known yet), and the call's bytes are the
 * connection's first payload: 1, with the destination in *sock. Taken at
 * entry, a send the kernel then refuses (Fast Open off in
 * net.ipv4.tcp_fastopen) is reported too: the attempt is the signal. Two
 * threads sending the first bytes on one socket at once may both report it.
 */
static __always_inline int fast_open(u32 fd, const void *uaddr, u32 addrlen, struct tracked_sock *sock)
{
	struct dest d;

	if (!tcp_unconnected(fd_sock(fd)) || !read_dest(uaddr, addrlen, &d))
		return 0;
	struct connect_event *e = events.ringbuf_reserve(sizeof(*e));
	if (e) {
		fill_connect(e, fd, -EINPROGRESS, &d);
		events.ringbuf_submit(e, submit_flags(sizeof(*e)));
	} else {
		drop(EVENT_CONNECT);
	}
	sock->family = d.family;
	sock->dport = d.dport;
	__builtin_memcpy(sock->daddr, d.daddr, 16);
	return 1;
}

/* A sendmsg() to port 53 by address, that may connect (Fast Open), or a tracked socket's send. */
static __always_inline int send_msg(u32 fd, const struct msghdr_user *msg, u32 fastopen)
{
	struct tracked_sock sock;
	struct iovec_user v = {};
	struct dest d;

	if (msg->name && read_dest(msg->name, msg->namelen, &d) && d.dport == DNS_PORT) {
		if (msg->iovlen && !bpf_probe_read_user(&v, sizeof(v), msg->iov))
			dns_to(fd, msg->name, msg->namelen, v.base, v.len, SYSCALL_SENDMSG);
		return 0;
	}
	if (fastopen && msg->name && fast_open(fd, msg->name, msg->namelen, &sock))
		return msg->iovlen ? capture_vec(fd, msg->iov, msg->iovlen, SYSCALL_SENDMSG, &sock) : 0;
	return send_vec(fd, msg->iov, msg->iovlen, SYSCALL_SENDMSG);
}

int on_enter_write(struct tracepoint__syscalls__sys_enter_write *args)
{
	return send_flat(args->fd, args->buf, args->count, SYSCALL_WRITE);
}

int on_enter_sendto(struct tracepoint__syscalls__sys_enter_sendto *args)
{
	struct tracked_sock sock;

	if (!args->addr) /* send(), or sendto() on a connected socket */
		return send_flat(args->fd, args->buff, args->len, SYSCALL_SENDTO);
	if (dns_to(args->fd, args->addr, args->addr_len, args->buff, args->len, SYSCALL_SENDTO))
		return 0;
	if (args->flags & MSG_FASTOPEN && fast_open(args->fd, args->addr, args->addr_len, &sock))
		return args->len ? capture_flat(args->fd, args->buff, args->len, SYSCALL_SENDTO, &sock) : 0;
	return send_flat(args->fd, args->buff, args->len, SYSCALL_SENDTO);
}

int on_enter_writev(struct tracepoint__syscalls__sys_enter_writev *args)
{
	return send_vec(args->fd, (const struct iovec_user *)args->vec, args->vlen, SYSCALL_WRITEV);
}

/*
 * Every sendmsg() reads its msghdr's first 32 bytes: one with an address may
 * be a DNS query (dns_to()). Its iovecs are read only for a DNS query or a
 * tracked socket.
 */
int on_enter_sendmsg(struct tracepoint__syscalls__sys_enter_sendmsg *args)
{
	struct msghdr_user msg = {};

	if (bpf_probe_read_user(&msg, sizeof(msg), args->msg))
		return 0;
	if (!msg.name && !(args->flags & MSG_FASTOPEN)) {
		u64 key = sock_key(args->fd);
		u32 zero = 0;
		struct tracked_filter *f = tracked_filter.lookup(&zero);
		if (!f || !f->count[filter_slot(key)]) /* untracked: skip reading the iovecs */
			return 0;
	}
	return send_msg(args->fd, &msg, args->flags & MSG_FASTOPEN);
}

/* uapi struct mmsghdr: a user_msghdr (56 bytes on 64-bit), then msg_len. */
struct mmsghdr_user {
	struct msghdr_user hdr;
	u64 control;
	u64 controllen;
	u32 flags;
	u32 pad;
	u32 msg_len;
	u32 pad2;
};

#define MMSG_DNS 2 /* messages of one sendmmsg() kept as DNS records: glibc sends the A and AAAA queries so */

/*
 * sendmmsg(): glibc's resolver sends its A and AAAA queries in one call
 * (resolv/res_send.c send_dg) on a socket connected to the name server. The
 * first MMSG_DNS messages of a DNS socket, or of a vector addressed to port
 * 53, are DNS records; the first message is a tracked socket's first payload.
 */
int on_enter_sendmmsg(struct tracepoint__syscalls__sys_enter_sendmmsg *args)
{
	const struct mmsghdr_user *vec = (const void *)args->mmsg;
	struct mmsghdr_user m = {};
	struct tracked_sock sock;

	if (!args->vlen || bpf_probe_read_user(&m, sizeof(m), &vec[0]))
		return 0;
	if (m.hdr.name) {
		struct iovec_user v = {};
		for (int i = 0; i < MMSG_DNS; i++) {
			if (i >= args->vlen || (i && bpf_probe_read_user(&m, sizeof(m), &vec[i])))
				break;
			if (!m.hdr.name || !m.hdr.iovlen || bpf_probe_read_user(&v, sizeof(v), m.hdr.iov) ||
			    !dns_to(args->fd, m.hdr.name, m.hdr.namelen, v.base, v.len, SYSCALL_SENDMMSG))
				break;
		}
		return 0;
	}
	int claimed = claim(args->fd, &sock);
	if (claimed & CLAIM_PAYLOAD)
		capture_vec(args->fd, m.hdr.iov, m.hdr.iovlen, SYSCALL_SENDMMSG, &sock);
	if (!(claimed & CLAIM_DNS))
		return 0;
	for (int i = 0; i < MMSG_DNS; i++) {
		if (i >= args->vlen || (i && bpf_probe_read_user(&m, sizeof(m), &vec[i])))
			break;
		dns_vec(args->fd, m.hdr.iov, m.hdr.iovlen, SYSCALL_SENDMMSG, &sock);
	}
	return 0;
}

/* The DNS sensor, receive side. */

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
	u32 armed;
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
	arm(&call->armed, armed);
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
	if (!call || !disarm(&call->armed, armed))
		return;
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
