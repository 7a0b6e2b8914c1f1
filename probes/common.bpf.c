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
