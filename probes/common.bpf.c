/* SPDX-License-Identifier: Apache-2.0 */
/* Owner of the maps every sensor shares: the record ring buffer and lost counters. */
#include "events.h"

#ifndef RINGBUF_PAGES
#define RINGBUF_PAGES 1024 /* 4 MiB with 4 KiB pages; a power of two */
#endif

BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);
__attribute__((section("maps/export"))) struct events_table_t __events;

/* Records dropped because the ring buffer was full, per CPU, by enum event_kind. */
BPF_TABLE_PUBLIC("percpu_array", u32, u64, lost, EVENT_KIND_MAX);

/*
 * Never attached: the loader runs it (BPF_PROG_TEST_RUN, probes/testrun.py)
 * to pair the jiffies the records carry with CLOCK_MONOTONIC
 * (probes/clock.py JiffyClock): clock_pair[0] = bpf_jiffies64(), then
 * [1] = bpf_ktime_get_ns().
 */
BPF_ARRAY(clock_pair, u64, 2);

int sample_clocks(struct __sk_buff *skb)
{
	u32 zero = 0, one = 1;
	u64 *jiffies = clock_pair.lookup(&zero), *ns = clock_pair.lookup(&one);

	if (!jiffies || !ns)
		return 0;
	*jiffies = bpf_jiffies64();
	*ns = bpf_ktime_get_ns();
	return 0;
}
