/* SPDX-License-Identifier: Apache-2.0 */
/* The tracked-socket table (set-associative, in an array map) and the filter in front of it. */
#ifndef COALMINE_TRACKED_BPF_H
#define COALMINE_TRACKED_BPF_H

/*
 * No kernel header and no helper call: given the fixed-width typedefs (u8 to
 * u64) and __always_inline, the host `cc` compiles this header too
 * (tests/probes/test_tracked.py checks its constants and hashes against the
 * Python mirror, probes/tracked.py). The maps themselves are declared in
 * connect.bpf.c (and imported by payload.bpf.c), and each sensor looks the
 * sets up itself: bcc rewrites map calls only in a sensor's own file.
 */

/*
 * Connected sockets awaiting their first payload (probes/cflags.py passes
 * it: config tracked_sockets), in connect.bpf.c's exported `tracked` map.
 *
 * It is a set-associative table in an array map, not a hash map: a key
 * lives in one of the TRACKED_WAYS ways of its home set (tracked_home), or,
 * when that set is full, of a second set (tracked_spill); the home set
 * counts how many of its keys live elsewhere. A set's keys and that count
 * share one cache line, so every operation is an inlined array lookup (the
 * verifier inlines array map lookups: kernel/bpf/arraymap.c
 * array_map_gen_lookup), a scan of one line (two only while the home set
 * has spilled) and a compare-and-swap: no helper call, no bucket lock
 * (kernel/bpf/hashtab.c htab_lock_bucket), no free list. bench/README.md
 * compares it with a BPF hash map.
 */
#ifndef TRACKED_MAX
#define TRACKED_MAX 16384
#endif
#define TRACKED_WAYS 7 /* and the spill count: 8 words, one cache line */
#define TRACKED_SETS ((TRACKED_MAX + TRACKED_WAYS - 1) / TRACKED_WAYS) /* room for TRACKED_MAX, rounded up */
/* A way being written (connect) or read (first payload) holds its key with this bit: no other key,
   which is tgid << 32 | fd with tgid < 2^22, matches it meanwhile. */
#define TRACKED_BUSY (1ULL << 63)

/* tracked_sock.shared bits */
#define TRACKED_SHARED 1 /* another fd holds the socket too (a dup): the first send checks write_seq */
#define TRACKED_DNS 2    /* a socket that talks to port 53: kept, every message is a DNS record, until close */
#define TRACKED_SENT 4   /* a DNS socket whose first payload was reported */

/* Where a connected socket went, kept for its first payload record (a DNS socket: for each message). */
struct tracked_sock {
	u16 family;
	u16 dport;
	u8 daddr[16];
	u16 exec_id; /* the process's exec count when it connected (exec_id()) */
	u8 shared;    /* TRACKED_* bits */
	u32 write_seq; /* shared: the TCP send sequence when it was duplicated, before any byte */
};

/* Scalar arrays only, no array of structs (bcc cannot describe one to Python: loader.tracked_keys). */
struct tracked_set {
	u64 key[TRACKED_WAYS]; /* tracked_key(), 0 when the way is free */
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

/* The key of a socket: a process's fd (sock.bpf.h sock_key() for this process's). */
static __always_inline u64 tracked_key(u32 tgid, u32 fd)
{
	return (u64)tgid << 32 | fd;
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
 * Track `key` in its home set h or, counting the spill, its spill set o,
 * and count it in the filter f; a key tracked already gets the new
 * destination and counts nothing. 1 when it is tracked, 0 when both sets
 * are full. The callers look the sets up (bcc rewrites map calls only in a
 * sensor's own file): connect.bpf.c at connect(), payload.bpf.c for a
 * socket first seen sending to port 53.
 */
static __always_inline int tracked_add(struct tracked_set *h, struct tracked_set *o, struct tracked_filter *f, u64 key,
				       const struct tracked_sock *sock)
{
	u32 i = 0;
	struct tracked_set *at = tracked_where(h, o, key, &i);

	if (at && tracked_update_at(at, i, key, sock))
		return 1;
	if (tracked_insert(h, key, sock))
		goto counted;
	if (o != h) {
		__sync_fetch_and_add(&h->spilled, 1); /* before the key shows there, so no lookup misses it */
		if (tracked_insert(o, key, sock))
			goto counted;
		__sync_fetch_and_add(&h->spilled, -1);
	}
	return 0;
counted:
	__sync_fetch_and_add(&f->count[filter_slot(key)], 1);
	return 1;
}

/* The way's socket, copied without taking it (a DNS socket stays tracked until close). */
static __always_inline void tracked_peek(const struct tracked_set *set, u32 i, struct tracked_sock *out)
{
	if (i >= TRACKED_WAYS)
		return;
	out->family = set->family[i];
	out->dport = set->dport[i];
	out->exec_id = set->exec_id[i];
	out->shared = set->shared[i];
	out->write_seq = set->write_seq[i];
	__builtin_memcpy(out->daddr, &set->daddr[i * 16], 16);
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
	tracked_peek(set, i, out);
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

#endif /* COALMINE_TRACKED_BPF_H */
