/* SPDX-License-Identifier: Apache-2.0 */
/* The shared record ring buffer and lost counters as a sensor sees them, and how records are submitted. */
#ifndef COALMINE_RINGBUF_BPF_H
#define COALMINE_RINGBUF_BPF_H

#include "events.h"

/*
 * The ring buffer and the lost counters live in common.bpf.c, which the loader
 * compiles first and exports; each sensor imports them by name ("extern"), so
 * all records share one ring buffer and arrive in one global order.
 *
 * bcc rewrites map calls (events.ringbuf_reserve, lost.lookup) only when they
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
 * Records are submitted without waking the reader. By default a commit
 * queues an irq_work to wake the reader whenever the reader has caught up
 * (kernel/bpf/ringbuf.c bpf_ringbuf_commit()), which for a reader that keeps
 * up is nearly every record: an interrupt per record, a VM exit under
 * virtualisation (bench/README.md has its cost). The reader drains the ring
 * buffer on a short timer instead (probes/loader.py POLL_INTERVAL_MS). Only
 * the one record that fills the ring past half wakes it at once
 * (BPF_RB_FORCE_WAKEUP, Documentation/bpf/ringbuf.rst), so a burst is
 * drained before the ring is full and its records are not lost, with one
 * wakeup per half ring however fast records come.
 *
 * bcc has no method for bpf_ringbuf_query(): the loader passes the shared
 * ring buffer's map fd (EVENTS_MAP_FD) and its size in pages.
 */
#if !(defined(EVENTS_MAP_FD) && defined(RINGBUF_PAGES))
#error "the sensors need the shared ring buffer's fd and size (probes/loader.py, probes/cflags.py)"
#endif
#define RINGBUF_HALF ((u64)RINGBUF_PAGES * PAGE_SIZE / 2)

/* Submit flags for a record of `reserved` bytes just reserved: wake the reader when it crossed half the ring. */
static __always_inline u64 submit_flags(u64 reserved)
{
	u64 used = bpf_ringbuf_query((void *)bpf_pseudo_fd(1, EVENTS_MAP_FD), BPF_RB_AVAIL_DATA);

	/* used counts this record, with its 8-byte header and padding to 8 */
	return used >= RINGBUF_HALF && used < RINGBUF_HALF + reserved + 16 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/*
 * Make clang forget what it knows about `var`, so that a bounds check it can
 * prove redundant stays in the program for the verifier (libbpf's barrier_var,
 * tools/lib/bpf/bpf_helpers.h): copies into a record filled in place need it.
 */
#define barrier_var(var) asm volatile("" : "+r"(var))

#endif /* COALMINE_RINGBUF_BPF_H */
