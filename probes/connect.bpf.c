/* SPDX-License-Identifier: Apache-2.0 */
/* connect and socket sensors: IPv4/IPv6 connect() destination, fd and result, arming first-payload capture;
   a socket dup'ed onto stdio; raw and ICMP sockets as they are created, and TUN/TAP interfaces (TUNSETIFF).
   One compile for both (probes/sensors.py): fewer compiled modules, a lower memory peak. */
#include "ringbuf.bpf.h"
#include "sock.bpf.h"
#include "sockaddr.bpf.h"
#include "task.bpf.h"
#include "tracked.bpf.h"

/*
 * The connect in flight on this thread, from entry to exit, in task-local
 * storage: neither hook touches a shared hash, whose update and delete take
 * a bucket lock (kernel/bpf/hashtab.c htab_lock_bucket), and the storage
 * goes with the thread (kernel/bpf/bpf_task_storage.c, Linux 5.11).
 * bench/README.md has the difference.
 */
struct connect_call {
	s32 fd;
	struct dest dest;
	u32 armed; /* set at entry to an IPv4/IPv6 connect, cleared at its exit */
};

BPF_TASK_STORAGE(connect_calls, struct connect_call);
/*
 * Connected sockets awaiting their first payload, by (process, fd): the
 * set-associative table of tracked.bpf.h. Entries go on the first send, on
 * close(), or, for processes that exit without closing (the kernel closes
 * their fds, no close() runs), in the agent's sweep (forget_socket below).
 * When both of a socket's sets are full the connection is reported but not
 * tracked, counted in tracked_full.
 */
BPF_TABLE_PUBLIC("array", u32, struct tracked_set, tracked, TRACKED_SETS);
BPF_TABLE_PUBLIC("array", u32, struct tracked_filter, tracked_filter, 1);
BPF_PERCPU_ARRAY(tracked_full, u64, 1);
BPF_ARRAY(sweep_key, u64, 1);

/* The ring buffer was full: count it (per-CPU slot, no atomics needed). */
static __always_inline void drop(u32 kind)
{
	u64 *n = lost.lookup(&kind);
	if (n)
		(*n)++;
}

/* This thread's stash, created on first use when `create`; 0 when absent or out of memory. */
static __always_inline struct connect_call *this_call(int create)
{
	return connect_calls.task_storage_get(bpf_get_current_task_btf(), 0,
					      create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* Not an IPv4/IPv6 connect: make sure its exit does not report a stale one. */
static __always_inline int skip(void)
{
	struct connect_call *call = this_call(0);

	if (call)
		call->armed = 0;
	return 0;
}

static __always_inline int enter_connect(s32 fd, const void *uaddr, u32 addrlen)
{
	struct connect_call *call;
	struct dest d;

	if (!read_dest(uaddr, addrlen, &d))
		return skip(); /* AF_UNIX, AF_NETLINK, ...: not network egress */
	call = this_call(1);
	if (!call) { /* no memory for the stash: the connect goes unreported, counted */
		drop(EVENT_CONNECT);
		return 0;
	}
	call->fd = fd;
	call->dest = d;
	call->armed = 1;
	return 0;
}

/* A socket, or a copy of it, goes untracked (its first payload unseen): count it. */
static __always_inline void count_not_tracked(void)
{
	u32 zero = 0;
	u64 *full = tracked_full.lookup(&zero);

	if (full)
		(*full)++;
}

/* `key`'s home set *h and spill set *o (the same set when the table has one), and the filter; 0 when a
   lookup failed (never: they are arrays, indexed in range). */
static __always_inline struct tracked_filter *tracked_sets_of(u64 key, struct tracked_set **h,
							      struct tracked_set **o)
{
	u32 home = tracked_home(key), spill = tracked_spill(key), zero = 0;

	*h = tracked.lookup(&home);
	*o = tracked.lookup(&spill);
	return *h && *o ? tracked_filter.lookup(&zero) : 0;
}

/* Track `key`, where `sock` went, for its first payload (a connect() again on the same fd overwrites and
   counts nothing; a new socket counts in the filter). */
static __always_inline void track_key(u64 key, struct tracked_sock *sock)
{
	struct tracked_set *h, *o;
	struct tracked_filter *f = tracked_sets_of(key, &h, &o);

	if (f && !tracked_add(h, o, f, key, sock))
		count_not_tracked();
}

/*
 * Arm first-payload capture for the socket `call` connected. A socket
 * connected to port 53 is a DNS socket: it stays tracked until close, and
 * each message it sends or receives is a DNS record (payload.bpf.c).
 */
#define DNS_PORT 53

static __always_inline void track(const struct connect_call *call)
{
	struct tracked_sock sock = {.family = call->dest.family, .dport = call->dest.dport, .exec_id = exec_id()};

	if (call->dest.dport == DNS_PORT)
		sock.shared = TRACKED_DNS;

	__builtin_memcpy(sock.daddr, call->dest.daddr, 16);
	track_key(sock_key(call->fd), &sock);
}

static __always_inline int exit_connect(long ret)
{
	struct connect_call *call = this_call(0);

	if (!call || !call->armed)
		return 0;
	call->armed = 0;
	if (ret == 0 || ret == -EINPROGRESS)
		track(call);
	struct connect_event *e = events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		drop(EVENT_CONNECT);
		return 0;
	}
	fill_connect(e, call->fd, ret, &call->dest);
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
	return 0;
}

/* Forget `key` in whichever of its sets holds it, and uncount it: 1 when this call removed it. */
static __always_inline int untrack(u64 key)
{
	struct tracked_set *h, *o;
	struct tracked_filter *f = tracked_sets_of(key, &h, &o);

	return f ? tracked_take(h, o, f, key, 0) : 0;
}

/* Forget `key` if the filter `f` says it may be tracked: most keys stop at the filter. */
static __always_inline void forget(const struct tracked_filter *f, u64 key)
{
	if (f->count[filter_slot(key)])
		untrack(key);
}

/* A closed fd number is reused for files: forget it so its next write is not a "payload". */
static __always_inline int enter_close(u32 fd)
{
	u32 zero = 0;
	struct tracked_filter *f = tracked_filter.lookup(&zero);

	if (f) /* every close() on the node lands here */
		forget(f, sock_key(fd));
	return 0;
}

/*
 * fds closed without close(): dup2()/dup3() replace `newfd`, close_range()
 * closes a span (with CLOSE_RANGE_CLOEXEC it only marks them, and the exec
 * check, task.bpf.h exec_id(), covers what the exec then closes). A span is
 * walked up to the process's fd table size, at most CLOSE_RANGE_SCAN fds:
 * each is a filter check, and a child closing everything before an exec
 * has a small table and no tracked sockets. A tracked fd beyond the scan
 * keeps its entry until the number's next close(), send or the process's
 * exit.
 */
#define CLOSE_RANGE_CLOEXEC 4
#define CLOSE_RANGE_SCAN 256

/* Forget this process's fds first..last (last < its fd table size), at most CLOSE_RANGE_SCAN of them. */
static __always_inline void forget_span(const struct tracked_filter *f, u32 first, u32 last)
{
	u64 tgid = sock_key(0);

	for (u32 i = 0; i < CLOSE_RANGE_SCAN; i++) {
		u32 fd = first + i;
		if (fd > last)
			break;
		forget(f, tgid | fd);
	}
}

/* The set and way where `key` is tracked, or 0 (a look, not a claim: the entry stays). */
static __always_inline struct tracked_set *tracked_find(u64 key, u32 *way)
{
	struct tracked_set *h, *o;
	struct tracked_filter *f = tracked_sets_of(key, &h, &o);

	if (!f || !f->count[filter_slot(key)])
		return 0;
	return tracked_where(h, o, key, way);
}

/*
 * A copy of a TCP socket awaiting its first payload is tracked too, on the
 * fd number the copy gets. Shells send this way: bash's `echo login >&3`
 * writes to fd 1 after dup2(3, 1), and `cmd >&3` does it in a forked
 * child, whose oldfd is its parent's socket (the parent's entry is looked
 * up then); `exec {fd}<>/dev/tcp/...` moves the socket above 9 with
 * fcntl(F_DUPFD, 10) and closes the original; `nc -e` puts the socket on
 * 0, 1 and 2 before the exec. Both entries are marked shared and keep the
 * socket's write_seq at this moment: the first send through either checks
 * it has not moved (a send through the other came first), so a connection
 * still leaves at most one payload record. UDP sockets are not followed.
 *
 * dup_source() fills *copy with the entry a copy of `oldfd` gets, and
 * marks the original shared; 0 when oldfd is no such socket.
 */
static __always_inline int dup_source(u32 oldfd, struct tracked_sock *copy)
{
	void *task = bpf_get_current_task_btf();
	void *parent = KFIELD(void *, task, TASK_REAL_PARENT_OFF);
	u32 way = 0;
	struct tracked_set *set = tracked_find(sock_key(oldfd), &way);

	if (!set && parent)
		set = tracked_find(tracked_key(KFIELD(u32, parent, TASK_TGID_OFF), oldfd), &way);
	if (!set || way >= TRACKED_WAYS)
		return 0;
	s64 seq = tcp_write_seq(fd_sock(oldfd), set->dport[way]); /* the same connection, and TCP */
	if (seq < 0 || (set->shared[way] & TRACKED_SHARED && set->write_seq[way] != seq))
		return 0; /* not TCP, another socket, or a copy of it has sent already */
	copy->family = set->family[way];
	copy->dport = set->dport[way];
	copy->exec_id = exec_id();
	copy->shared = TRACKED_SHARED;
	copy->write_seq = seq;
	__builtin_memcpy(copy->daddr, &set->daddr[way * 16], 16);
	set->write_seq[way] = seq; /* the original entry too (plain stores: a race only costs the dedupe) */
	set->shared[way] |= TRACKED_SHARED;
	return 1;
}

/*
 * An IPv4/IPv6 socket landing on fd 0, 1 or 2 is reported whatever its
 * state (the reverse-shell sensor, issue 13): bash's `>& /dev/tcp/h/p`,
 * python's os.dup2(s.fileno(), 0), `nc -e` before its exec. dup2() and
 * dup3() are seen at entry (`done` 0: the socket is still on oldfd, newfd
 * holds what it held); dup() and fcntl(F_DUPFD) at exit, on the number they
 * returned (`done` 1).
 */
static __always_inline void report_stdio(s32 oldfd, u32 newfd, u8 how, int done)
{
	void *sk = fd_sock(done ? newfd : (u32)oldfd);
	u16 family = sock_inet_family(sk);
	struct stdio_event *e;

	if (!family || newfd >= STDIO_FDS)
		return;
	e = events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		drop(EVENT_STDIO);
		return;
	}
	sock_ends(sk, family, e);
	u8 fds = stdio_inet_fds();
	if (!done)
		fds |= 1 << newfd;
	fill_stdio(e, newfd, oldfd, how, fds);
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
}

/* dup2()/dup3(oldfd, newfd): newfd loses what it held, and gets oldfd's socket. */
static __always_inline void dup_fd(u32 oldfd, u32 newfd, u8 how)
{
	struct tracked_sock copy = {};

	if (oldfd == newfd) /* dup2(fd, fd) closes nothing; dup3(fd, fd) fails */
		return;
	if (newfd < STDIO_FDS)
		report_stdio(oldfd, newfd, how, 0);
	enter_close(newfd);
	if (dup_source(oldfd, &copy))
		track_key(sock_key(newfd), &copy);
}

/*
 * dup() and fcntl(F_DUPFD / F_DUPFD_CLOEXEC) pick the new number
 * themselves: the copy is made ready at entry, kept in task-local storage,
 * and tracked at exit under the number the call returned. Every fcntl()
 * exit on the node checks dups_armed first, the threads inside such a
 * call (almost always 0), and returns.
 */
#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030

struct dup_call {
	struct tracked_sock copy;
	u32 armed;
	u8 track; /* track the copy (its source awaits a first payload) */
	u8 stdio; /* the copy may land on 0..2 and its source is an IPv4/IPv6 socket: report_stdio() */
	u8 how;   /* STDIO_DUP or STDIO_FCNTL */
	s32 oldfd;
};

BPF_TASK_STORAGE(dup_calls, struct dup_call);
BPF_ARRAY(dups_armed, u64, 1);

/* `lowest`: the lowest number the call may return (dup(): 0; fcntl(F_DUPFD, n): n). */
static __always_inline void enter_dup_any(u32 oldfd, u64 lowest, u8 how)
{
	u32 zero = 0;
	u64 *armed = dups_armed.lookup(&zero);
	struct tracked_sock copy = {};
	struct dup_call *call;

	if (!armed)
		return;
	int track = dup_source(oldfd, &copy);
	int stdio = lowest < STDIO_FDS && stdio_hole() && fd_is_inet(oldfd);
	if (!track && !stdio)
		return;
	call = dup_calls.task_storage_get(bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!call) { /* no memory: this copy goes untracked (the original still is), or unreported */
		if (track)
			count_not_tracked();
		else
			drop(EVENT_STDIO);
		return;
	}
	call->copy = copy;
	call->track = track;
	call->stdio = stdio;
	call->how = how;
	call->oldfd = oldfd;
	arm(&call->armed, armed);
}

static __always_inline void exit_dup_any(long ret)
{
	u32 zero = 0;
	u64 *armed = dups_armed.lookup(&zero);
	struct dup_call *call;

	if (!armed || !*armed)
		return;
	call = dup_calls.task_storage_get(bpf_get_current_task_btf(), 0, 0);
	if (!call || !disarm(&call->armed, armed))
		return;
	if (ret < 0)
		return;
	if (call->track)
		track_key(sock_key(ret), &call->copy);
	if (call->stdio && ret < STDIO_FDS)
		report_stdio(call->oldfd, ret, call->how, 1);
}

int on_enter_dup(struct tracepoint__syscalls__sys_enter_dup *args)
{
	enter_dup_any(args->fildes, 0, STDIO_DUP);
	return 0;
}

int on_exit_dup(struct tracepoint__syscalls__sys_exit_dup *args)
{
	exit_dup_any(args->ret);
	return 0;
}

int on_enter_fcntl(struct tracepoint__syscalls__sys_enter_fcntl *args)
{
	if (args->cmd == F_DUPFD || args->cmd == F_DUPFD_CLOEXEC)
		enter_dup_any(args->fd, args->arg, STDIO_FCNTL);
	return 0;
}

int on_exit_fcntl(struct tracepoint__syscalls__sys_exit_fcntl *args)
{
	exit_dup_any(args->ret);
	return 0;
}

#ifdef HOOK_ON_ENTER_DUP2
int on_enter_dup2(struct tracepoint__syscalls__sys_enter_dup2 *args)
{
	dup_fd(args->oldfd, args->newfd, STDIO_DUP2);
	return 0;
}
#endif

int on_enter_dup3(struct tracepoint__syscalls__sys_enter_dup3 *args)
{
	dup_fd(args->oldfd, args->newfd, STDIO_DUP3);
	return 0;
}

#ifdef HOOK_ON_ENTER_CLOSE_RANGE
int on_enter_close_range(struct tracepoint__syscalls__sys_enter_close_range *args)
{
	u32 first = args->fd, last = args->max_fd, size = 0, zero = 0;
	struct tracked_filter *f = tracked_filter.lookup(&zero);

	if (!f || args->flags & CLOSE_RANGE_CLOEXEC || !current_fdt(&size) || first >= size)
		return 0;
	forget_span(f, first, last < size ? last : size - 1);
	return 0;
}
#endif

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

/*
 * Never attached: the agent runs it (BPF_PROG_TEST_RUN, probes/testrun.py)
 * to forget the entry sweep_key names, one whose process has exited, and
 * uncount it in the filter, atomically with the probes that count
 * (probes/loader.py Probes.sweep()). Returns 1 when it deleted the entry,
 * 0 when it was already gone.
 */
int forget_socket(struct __sk_buff *skb)
{
	u32 zero = 0;
	u64 *want = sweep_key.lookup(&zero);

	return want ? untrack(*want) : 0;
}

/* The socket sensor. */

#define AF_PACKET 17
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define SOCK_TYPE_MASK 0xf /* include/linux/net.h: the type without SOCK_NONBLOCK, SOCK_CLOEXEC */
#define IPPROTO_ICMP 1
#define IPPROTO_ICMPV6 58
/* include/uapi/linux/if_tun.h: _IOW('T', 202, int); the number is tun's own */
#define TUNSETIFF 0x400454ca

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
	arm(&call->armed, armed);
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
	if (!call || !disarm(&call->armed, armed))
		return 0;
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
