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
 * a short timer instead (probes/loader.py POLL_INTERVAL_MS).
 */
#define SUBMIT_FLAGS BPF_RB_NO_WAKEUP

#define barrier_var(var) asm volatile("" : "+r"(var))

/*
 * The headers bcc compiles against may come from another kernel, so no
 * struct field is read through them: TASK_REAL_PARENT_OFF and TASK_TGID_OFF
 * come from the running kernel's BTF (probes/btf.py). Without them ppid is 0.
 */
static __always_inline u32 current_ppid(void)
{
#if defined(TASK_REAL_PARENT_OFF) && defined(TASK_TGID_OFF)
	void *task = (void *)bpf_get_current_task();
	void *parent = 0;
	u32 ppid = 0;

	bpf_probe_read_kernel(&parent, sizeof(parent), task + TASK_REAL_PARENT_OFF);
	if (parent)
		bpf_probe_read_kernel(&ppid, sizeof(ppid), parent + TASK_TGID_OFF);
	return ppid;
#else
	return 0;
#endif
}

#ifndef TRACKED_MAX
#define TRACKED_MAX 65536 /* connected sockets awaiting their first payload */
#endif

/* The value of connect.bpf.c's exported `tracked` map, which payload.bpf.c reads... */
struct tracked_sock {
	u16 family;
	u16 dport;
	u8 daddr[16];
};

/* ...and its key: this process's fd. */
static __always_inline u64 sock_key(u32 fd)
{
	return (bpf_get_current_pid_tgid() & 0xFFFFFFFF00000000ULL) | fd;
}

static __always_inline void fill_header(struct event_header *h, u8 kind, u8 flags, u16 size)
{
	u64 id = bpf_get_current_pid_tgid();

	h->kind = kind;
	h->flags = flags;
	h->size = size;
	h->reserved = 0;
	h->ktime_ns = bpf_ktime_get_ns();
	h->pid = (u32)id;
	h->tgid = id >> 32;
	h->ppid = current_ppid();
	h->uid = (u32)bpf_get_current_uid_gid();
	h->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

#endif /* COALMINE_COMMON_BPF_H */
