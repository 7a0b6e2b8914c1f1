/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by every sensor: the record ring buffer, lost-record counters, header filling. */
#ifndef COALMINE_COMMON_BPF_H
#define COALMINE_COMMON_BPF_H

#include "events.h"

/*
 * The ring buffer and the lost counters live in common.bpf.c, which the loader
 * compiles first and exports; each sensor imports them by name ("extern"), so
 * all records share one ring buffer and arrive in one global order.
 *
 * bcc rewrites map calls (events.ringbuf_output, lost.lookup) only when they
 * are written in the main source file, never in a header or a macro, so each
 * sensor has its own two-line drop() and calls the ring buffer itself.
 */
struct events_table_t {
	int key;
	u32 leaf;
	int (*ringbuf_output)(void *, u64, u64);
	void *(*ringbuf_reserve)(u64);
	void (*ringbuf_discard)(void *, u64);
	void (*ringbuf_submit)(void *, u64);
	u32 max_entries;
};
__attribute__((section("maps/extern"))) struct events_table_t events = {.max_entries = 0};
BPF_TABLE("extern", u32, u64, lost, EVENT_KIND_MAX);

/*
 * Make clang forget what it knows about `var`, so that a bounds check it can
 * prove redundant stays in the program for the verifier (libbpf's barrier_var).
 */
/*
 * Records are submitted without waking the reader: a wakeup is an irq_work
 * (an IPI, a VM exit under virtualisation) that cost ~20 us per record on
 * the test VM, 300x an empty program. The reader drains the ring buffer on
 * a short timer instead (probes/loader.py POLL_INTERVAL_MS). Only the one
 * record that fills the ring past half wakes it at once, so a burst is
 * drained before the ring is full and its records are not lost (one wakeup
 * per half ring: a few ns a record even when records fill the ring faster
 * than the timer drains it).
 *
 * bcc has no method for bpf_ringbuf_query(): the loader passes the shared
 * ring buffer's map fd (EVENTS_MAP_FD) and its size in pages.
 */
#if !(defined(EVENTS_MAP_FD) && defined(RINGBUF_PAGES))
#error "the sensors need the shared ring buffer's fd and size (probes/loader.py)"
#endif
#define RINGBUF_HALF ((u64)RINGBUF_PAGES * PAGE_SIZE / 2)

/* Submit flags for a record of `reserved` bytes just reserved: wake the reader when it crossed half the ring. */
static __always_inline u64 submit_flags(u64 reserved)
{
	u64 used = bpf_ringbuf_query((void *)bpf_pseudo_fd(1, EVENTS_MAP_FD), BPF_RB_AVAIL_DATA);

	/* used counts this record, with its 8-byte header and padding to 8 */
	return used >= RINGBUF_HALF && used < RINGBUF_HALF + reserved + 16 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

#define barrier_var(var) asm volatile("" : "+r"(var))

/*
 * The headers bcc compiles against may come from another kernel, so no
 * struct field is read through them: the *_OFF macros come from the running
 * kernel's BTF (probes/btf.py TASK_FIELDS), all of them.
 */
#if !(defined(TASK_PID_OFF) && defined(TASK_TGID_OFF) && defined(TASK_REAL_PARENT_OFF) && \
      defined(TASK_CRED_OFF) && defined(TASK_COMM_OFF) && defined(TASK_CGROUPS_OFF) && \
      defined(TASK_MM_OFF) && defined(CRED_UID_OFF) && defined(CSS_SET_DFL_CGRP_OFF) && \
      defined(CGROUP_KN_OFF) && defined(KERNFS_NODE_ID_OFF) && defined(MM_ARG_START_OFF) && \
      defined(MM_ARG_END_OFF) && defined(TASK_SELF_EXEC_ID_OFF) && defined(TASK_FILES_OFF) && \
      defined(FILES_FDT_OFF) && defined(FDT_MAX_FDS_OFF) && defined(FDT_FD_OFF) && \
      defined(FILE_PRIVATE_DATA_OFF) && defined(SOCKET_FILE_OFF) && defined(SOCKET_SK_OFF) && \
      defined(SOCK_PROTOCOL_OFF) && defined(TCP_WRITE_SEQ_OFF) && defined(SOCK_DPORT_OFF) && \
      defined(SOCK_STATE_OFF))
#error "the probes need the running kernel's BTF offsets (probes/loader.py cflags())"
#endif
/* A field of a BTF-typed kernel pointer, read with a plain load (see fill_header). */
#define KFIELD(type, ptr, off) (*(type *)((void *)(ptr) + (off)))

/*
 * Connected sockets awaiting their first payload (probes/loader.py passes
 * it: config tracked_sockets), in connect.bpf.c's exported `tracked` map.
 *
 * It is a set-associative table in an array map, not a hash map: a key
 * lives in one of the TRACKED_WAYS ways of its home set (tracked_home), or,
 * when that set is full, of a second set (tracked_spill); the home set
 * counts how many of its keys live elsewhere. A set's keys and that count
 * share one cache line, so every operation is an inlined array lookup, a
 * scan of one line (two only while the home set has spilled) and a
 * compare-and-swap: no helper call, no bucket lock, no free list (a BPF
 * hash map's insert and delete cost ~200-280 ns more per connection on the
 * test VM, and looking in both sets always ~50 ns more than the count).
 */
#ifndef TRACKED_MAX
#define TRACKED_MAX 16384
#endif
#define TRACKED_WAYS 7 /* and the spill count: 8 words, one cache line */
#define TRACKED_SETS ((TRACKED_MAX + TRACKED_WAYS - 1) / TRACKED_WAYS) /* room for TRACKED_MAX, rounded up */
/* A way being written (connect) or read (first payload) holds its key with this bit: no other key,
   which is tgid << 32 | fd with tgid < 2^22, matches it meanwhile. */
#define TRACKED_BUSY (1ULL << 63)

/* Where a connected socket went, kept for its first payload record. */
struct tracked_sock {
	u16 family;
	u16 dport;
	u8 daddr[16];
	u16 exec_id; /* the process's exec count when it connected (exec_id()) */
	u8 shared;    /* another fd holds the socket too (a dup): the first send checks write_seq */
	u32 write_seq; /* shared: the TCP send sequence when it was duplicated, before any byte */
};

/* Scalar arrays only, no array of structs (bcc cannot describe one to Python: loader.tracked_keys). */
struct tracked_set {
	u64 key[TRACKED_WAYS]; /* sock_key(), 0 when the way is free */
	u64 spilled;           /* keys whose home is this set, living in their spill set */
	u8 daddr[TRACKED_WAYS * 16];
	u16 family[TRACKED_WAYS];
	u16 dport[TRACKED_WAYS];
	u16 exec_id[TRACKED_WAYS];
	u32 write_seq[TRACKED_WAYS];
	u8 shared[TRACKED_WAYS];
	u8 pad[1]; /* 256 bytes: whole cache lines */
};
_Static_assert(sizeof(struct tracked_set) == 256, "a tracked set is 4 cache lines");

/*
 * The key of a socket: this process's fd. The tgid is a plain load through
 * the current task (bpf_get_current_task_btf() is inlined by the JIT on
 * recent kernels), not a helper call: every close() and write() on the
 * node computes it (~10-20 ns a call less on the test VM).
 */
static __always_inline u64 sock_key(u32 fd)
{
	return ((u64)KFIELD(u32, bpf_get_current_task_btf(), TASK_TGID_OFF) << 32) | fd;
}

/*
 * An fd number can lose its socket without a close() call: dup2()/dup3()
 * onto it and close_range() over it (connect.bpf.c forgets those), and an
 * exec, which closes close-on-exec fds inside the kernel with no hook to
 * see it. Each tracked socket keeps the low bits of the process's exec
 * count (task->self_exec_id, a plain load) from its connect; a send after
 * an exec checks that the fd still holds a socket (fd_sock()) before
 * it is believed. A socket the program inherits keeps its payload.
 */
static __always_inline u16 exec_id(void)
{
	return KFIELD(u32, bpf_get_current_task_btf(), TASK_SELF_EXEC_ID_OFF);
}

/* This process's fd table (struct fdtable), and in *size the number of fds it has room for; 0 when none. */
static __always_inline void *current_fdt(u32 *size)
{
	void *files = KFIELD(void *, bpf_get_current_task_btf(), TASK_FILES_OFF);
	void *fdt = files ? KFIELD(void *, files, FILES_FDT_OFF) : 0;

	*size = fdt ? KFIELD(u32, fdt, FDT_MAX_FDS_OFF) : 0;
	return fdt;
}

/* This process's `fd`'s struct sock, or 0 when the fd holds no socket: its file's private data is a struct
   socket that points back at the file (other files keep other objects there). Three reads. */
static __always_inline void *fd_sock(u32 fd)
{
	u32 size;
	void *fdt = current_fdt(&size), **fds, *file = 0, *sock = 0;
	struct {
		void *file;
		void *sk;
	} socket = {};

	_Static_assert(SOCKET_SK_OFF == SOCKET_FILE_OFF + 8, "struct socket: file, then sk");
	if (!fdt || fd >= size)
		return 0;
	fds = KFIELD(void **, fdt, FDT_FD_OFF);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	if (bpf_probe_read_kernel(&sock, sizeof(sock), file + FILE_PRIVATE_DATA_OFF) || !sock)
		return 0;
	if (bpf_probe_read_kernel(&socket, sizeof(socket), sock + SOCKET_FILE_OFF) || socket.file != file)
		return 0;
	return socket.sk;
}

#define IPPROTO_TCP 6
#define TCP_CLOSE 7 /* enum tcp_state: a socket never connected (or done with) */
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

/* Whether sk is a TCP socket that has never connected (TCP_CLOSE). */
static __always_inline int tcp_unconnected(void *sk)
{
	u16 protocol = 0;
	u8 state = 0;

	return sk && !bpf_probe_read_kernel(&protocol, sizeof(protocol), sk + SOCK_PROTOCOL_OFF) &&
	       protocol == IPPROTO_TCP && !bpf_probe_read_kernel(&state, sizeof(state), sk + SOCK_STATE_OFF) &&
	       state == TCP_CLOSE;
}

/* A TCP socket's write_seq (the next byte a send queues: it moves on the first send, whatever the
   fd), or -1 for any other socket, or one connected to another port than `dport` (host order). */
static __always_inline s64 tcp_write_seq(void *sk, u16 dport)
{
	u16 protocol = 0, dport_be = 0;
	u32 seq = 0;

	if (!sk || bpf_probe_read_kernel(&protocol, sizeof(protocol), sk + SOCK_PROTOCOL_OFF) ||
	    protocol != IPPROTO_TCP || bpf_probe_read_kernel(&dport_be, sizeof(dport_be), sk + SOCK_DPORT_OFF) ||
	    __builtin_bswap16(dport_be) != dport || bpf_probe_read_kernel(&seq, sizeof(seq), sk + TCP_WRITE_SEQ_OFF))
		return -1;
	return seq;
}

/*
 * The two sets a key may live in (the same one when the table has one set:
 * then it never spills). A 32-bit hash times the set count, high half: a
 * set number without a division (Lemire's multiply-shift range reduction).
 */
static __always_inline u32 tracked_home(u64 key)
{
	return (((key * 0x9E3779B97F4A7C15ULL) >> 22 & 0xFFFFFFFFULL) * TRACKED_SETS) >> 32;
}

static __always_inline u32 tracked_spill(u64 key)
{
	return (((key ^ (key >> 29)) * 0xBF58476D1CE4E5B9ULL >> 32) * TRACKED_SETS) >> 32;
}

/* The way of `set` holding `key`, or -1. */
static __always_inline int tracked_way(const struct tracked_set *set, u64 key)
{
#pragma unroll
	for (int i = 0; i < TRACKED_WAYS; i++)
		if (set->key[i] == key)
			return i;
	return -1;
}

/* The set, home or (after a spill) spill, whose way *i holds `key`; 0 when neither does. */
static __always_inline struct tracked_set *tracked_where(struct tracked_set *home, struct tracked_set *spill, u64 key,
							 u32 *i)
{
	*i = tracked_way(home, key);
	if (*i < TRACKED_WAYS)
		return home;
	if (!home->spilled || spill == home)
		return 0;
	*i = tracked_way(spill, key);
	return *i < TRACKED_WAYS ? spill : 0;
}

/* Write `sock` into way i, which holds key | TRACKED_BUSY, then publish the key (a full barrier). */
static __always_inline void tracked_fill(struct tracked_set *set, u32 i, u64 key, const struct tracked_sock *sock)
{
	if (i >= TRACKED_WAYS)
		return;
	set->family[i] = sock->family;
	set->dport[i] = sock->dport;
	set->exec_id[i] = sock->exec_id;
	set->shared[i] = sock->shared;
	set->write_seq[i] = sock->write_seq;
	__builtin_memcpy(&set->daddr[i * 16], sock->daddr, 16);
	__sync_lock_test_and_set(&set->key[i], key);
}

/* A connect() again on a socket way i of `set` tracks (UDP, getaddrinfo's address sorting): new destination. */
static __always_inline int tracked_update_at(struct tracked_set *set, u32 i, u64 key, const struct tracked_sock *sock)
{
	if (i >= TRACKED_WAYS)
		return 0;
	if (__sync_val_compare_and_swap(&set->key[i], key, key | TRACKED_BUSY) != key)
		return 0; /* taken meanwhile (a close() on another thread) */
	tracked_fill(set, i, key, sock);
	return 1;
}

/* Track `key` in a free way of `set`: 1 when it took one. */
static __always_inline int tracked_insert(struct tracked_set *set, u64 key, const struct tracked_sock *sock)
{
#pragma unroll
	for (int i = 0; i < TRACKED_WAYS; i++) {
		if (set->key[i] == 0 && __sync_val_compare_and_swap(&set->key[i], 0, key | TRACKED_BUSY) == 0) {
			tracked_fill(set, i, key, sock);
			return 1;
		}
	}
	return 0;
}

/*
 * The hot-path filter in front of `tracked`: one page of counters, one per
 * hash of a key, each at least the number of tracked sockets whose key
 * hashes there. close() and write() on the whole node check their slot and
 * return when it is 0, without touching the table, whose sets are cold in
 * a fresh process (the one page of counters stays cached). A count only
 * goes up when a socket is tracked and only down when its way is freed (by
 * a send, a close(), or the agent's sweep of exited processes: connect.bpf.c
 * forget_socket), so it never hides a tracked socket.
 */
#define FILTER_SLOTS 1024

struct tracked_filter {
	u32 count[FILTER_SLOTS];
};

static __always_inline u32 filter_slot(u64 key)
{
	return (u32)((key * 0x9E3779B97F4A7C15ULL) >> 54) & (FILTER_SLOTS - 1); /* Fibonacci hash, top 10 bits */
}

/*
 * Free way i of `set`, which holds `key`: 1 when this call freed it. With
 * `out`, copy where the socket went first, holding the way busy meanwhile
 * (the first payload owns it); without, one compare-and-swap (close(), the
 * sweep).
 */
static __always_inline int tracked_take_at(struct tracked_set *set, u32 i, u64 key, struct tracked_sock *out)
{
	if (i >= TRACKED_WAYS)
		return 0;
	if (!out)
		return __sync_val_compare_and_swap(&set->key[i], key, 0) == key;
	if (__sync_val_compare_and_swap(&set->key[i], key, key | TRACKED_BUSY) != key)
		return 0; /* another thread took it first */
	out->family = set->family[i];
	out->dport = set->dport[i];
	out->exec_id = set->exec_id[i];
	out->shared = set->shared[i];
	out->write_seq = set->write_seq[i];
	__builtin_memcpy(out->daddr, &set->daddr[i * 16], 16);
	__sync_lock_test_and_set(&set->key[i], 0);
	return 1;
}

/*
 * Forget `key` in its home set `home`, or, after a spill, in its spill set
 * `spill`, and uncount it in the filter `f`: 1 when this call took it. The
 * callers look the sets up (bcc rewrites map calls only in a sensor's own
 * file): connect.bpf.c untrack() and payload.bpf.c claim().
 */
static __always_inline int tracked_take(struct tracked_set *home, struct tracked_set *spill,
					struct tracked_filter *f, u64 key, struct tracked_sock *out)
{
	u32 i = 0;
	struct tracked_set *set = tracked_where(home, spill, key, &i);

	if (!set || !tracked_take_at(set, i, key, out))
		return 0;
	if (set != home)
		__sync_fetch_and_add(&home->spilled, -1);
	__sync_fetch_and_add(&f->count[filter_slot(key)], -1);
	return 1;
}

/*
 * The header is filled with plain loads through the task pointer that
 * bpf_get_current_task_btf() returns: the verifier checks each offset
 * against the kernel's BTF (a wrong one fails the load, it is never read
 * silently) and makes each load fault-safe. One helper call and a dozen
 * loads replace six helpers (uid, cgroup id, comm, two probe reads for
 * ppid): ~0.8 against ~1.1 us per exit record in the cold path on the test
 * VM (bench/run.py prints the per-program parts).
 *
 * The time is bpf_jiffies64(), the last timer tick (1/CONFIG_HZ: 4 ms at
 * HZ=250), a plain load; the reader turns it into CLOCK_MONOTONIC ns
 * (probes/loader.py JiffyClock). bpf_ktime_get_ns() is an ordered TSC read,
 * which waits for every load still in flight: in the cold paths of connect,
 * first payload, exec and exit it cost 50-280 ns a record on the test VM,
 * and the programs cost ~30% less per op without it (A/B, kernel-timed).
 */
/* The part of every header read from the task itself (hot in any context); returns the task. */
static __always_inline void *fill_header_self(struct event_header *h, u8 kind, u8 flags, u16 size)
{
	void *task = bpf_get_current_task_btf();

	h->kind = kind;
	h->flags = flags;
	h->size = size;
	h->reserved = 0;
	h->ktime_ns = bpf_jiffies64();
	h->pid = KFIELD(u32, task, TASK_PID_OFF);
	h->tgid = KFIELD(u32, task, TASK_TGID_OFF);
	/* comm is char[16] at an 8-aligned offset: two 8-byte loads, not sixteen 1-byte ones */
	*(u64 *)h->comm = KFIELD(u64, task, TASK_COMM_OFF);
	*(u64 *)(h->comm + 8) = KFIELD(u64, task, TASK_COMM_OFF + 8);
	return task;
}

static __always_inline void fill_header(struct event_header *h, u8 kind, u8 flags, u16 size)
{
	void *task = fill_header_self(h, kind, flags, size);
	void *parent = KFIELD(void *, task, TASK_REAL_PARENT_OFF);
	void *cred = KFIELD(void *, task, TASK_CRED_OFF);
	void *cset = KFIELD(void *, task, TASK_CGROUPS_OFF);
	void *cgrp = KFIELD(void *, cset, CSS_SET_DFL_CGRP_OFF);
	void *kn = KFIELD(void *, cgrp, CGROUP_KN_OFF);

	h->ppid = KFIELD(u32, parent, TASK_TGID_OFF);
	h->uid = KFIELD(u32, cred, CRED_UID_OFF);
	h->cgroup_id = KFIELD(u64, kn, KERNFS_NODE_ID_OFF); /* = bpf_get_current_cgroup_id() */
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

/*
 * The header of a process-exit record: who and when, nothing the process
 * table does not already have from the exec (ppid, uid and cgroup id are
 * 0): in the exit path the parent, cred and cgroup chain are five cold
 * loads (~100 ns on the test VM).
 */
static __always_inline void fill_exit_header(struct event_header *h)
{
	fill_header_self(h, EVENT_EXIT, 0, sizeof(struct exit_event));
	h->ppid = 0;
	h->uid = 0;
	h->cgroup_id = 0;
}

#endif /* COALMINE_COMMON_BPF_H */
