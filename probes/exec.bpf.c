/* SPDX-License-Identifier: Apache-2.0 */
/* exec sensor: one record per successful exec (filename + argv as the program got it), one per exit. */
#include "ringbuf.bpf.h"
#include "sock.bpf.h"
#include "task.bpf.h"

/* The ring buffer was full: count it (per-CPU slot, no atomics needed). */
static __always_inline void drop(u32 kind)
{
	u64 *n = lost.lookup(&kind);
	if (n)
		(*n)++;
}

/*
 * argv is read after the exec, from the new program's own argv area
 * (current->mm->arg_start .. arg_end, offsets from BTF), not at execve()
 * entry: at entry another thread can still rewrite the strings between our
 * read and the kernel's copy (the "Phantom attack" on syscall-entry tracers,
 * DEF CON 29), and reading there costs a per-thread stash of the whole
 * record. Here argv is what the program received, in one contiguous read.
 */
struct argv_area {
	unsigned long start;
	u32 len;   /* bytes to copy: at most ARGS_BUF - 1 */
	u32 total; /* the area's size, saturated at 2^32 - 1 */
	u8 flags;  /* EXEC_ARGS_TRUNCATED, EXEC_ARGV_FAULT */
};

/* This (new) program's argv area; a task without an mm, or a bad area, is EXEC_ARGV_FAULT. */
static __always_inline void argv_area(struct argv_area *a)
{
	void *mm = KFIELD(void *, bpf_get_current_task_btf(), TASK_MM_OFF);
	unsigned long start = 0, end = 0;
	u8 flags = 0;

	if (mm) {
		start = KFIELD(unsigned long, mm, MM_ARG_START_OFF);
		end = KFIELD(unsigned long, mm, MM_ARG_END_OFF);
	}
	if (!mm || end < start) {
		flags = EXEC_ARGV_FAULT;
		end = start;
	}
	u64 total = end - start;
	u32 len = total;
	if (total > ARGS_BUF - 1) {
		len = ARGS_BUF - 1;
		flags |= EXEC_ARGS_TRUNCATED;
	}
	a->start = start;
	a->len = len;
	a->total = total > 0xFFFFFFFFULL ? 0xFFFFFFFF : total;
	a->flags = flags;
}

/*
 * One exec record, reserved in the ring buffer with room for `cap` bytes of
 * argv and filled in place: no per-CPU scratch record and no second copy
 * (bench/README.md). `cap` is a constant power of two at each call site, so
 * the verifier knows the record's size (bpf_ringbuf_reserve() takes a
 * constant: ARG_CONST_ALLOC_SIZE_OR_ZERO, kernel/bpf/ringbuf.c); the
 * header's size field says how much of it is used (probes/reader.py passes
 * on only that).
 */
static __always_inline void send_exec(const void *filename, unsigned long start, u32 len, u32 total, u8 flags,
				      const u32 cap)
{
	struct exec_event *e = events.ringbuf_reserve(__builtin_offsetof(struct exec_event, args) + cap);

	if (!e) {
		drop(EVENT_EXEC);
		return;
	}
	barrier_var(len);
	len &= cap - 1; /* len < cap already: a no-op the verifier can follow */
	if (len && bpf_probe_read_user(e->args, len, (void *)start)) {
		flags |= EXEC_ARGV_FAULT;
		len = 0;
	}
	e->args_len = len;
	e->args_total = total;
	fill_header(&e->hdr, EVENT_EXEC, flags, __builtin_offsetof(struct exec_event, args) + len);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	events.ringbuf_submit(e, submit_flags(__builtin_offsetof(struct exec_event, args) + cap));
}

/* The exec record in the smallest of three sizes that holds argv: most fit in 256 bytes, and a small
   record keeps the ring's footprint (and cache misses) small. */
static __always_inline void send_exec_sized(const void *filename, const struct argv_area *a)
{
	if (a->len < 256)
		send_exec(filename, a->start, a->len, a->total, a->flags, 256);
	else if (a->len < 1024)
		send_exec(filename, a->start, a->len, a->total, a->flags, 1024);
	else
		send_exec(filename, a->start, a->len, a->total, a->flags, ARGS_BUF);
}

#ifndef EXIT_HAS_GROUP_DEAD
/* Without sched_process_exit's group_dead: whether the exiting thread is the one whose id is the tgid. */
static __always_inline int leader_exits(void)
{
	u64 id = bpf_get_current_pid_tgid();

	return (u32)id == id >> 32;
}
#endif

static __always_inline void send_exit(void)
{
	struct exit_event *e = events.ringbuf_reserve(sizeof(*e));

	if (!e) {
		drop(EVENT_EXIT);
		return;
	}
	fill_exit_header(&e->hdr);
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
}

/*
 * A new program that starts with an IPv4/IPv6 socket on fd 0, 1 or 2 (`nc
 * -e /bin/sh`, a reverse shell's exec, inetd's accepted connection): one
 * stdio record after the exec record, for the lowest of them (the
 * reverse-shell sensor, issue 13). Three fd lookups per exec.
 */
static __always_inline void send_exec_stdio(void)
{
	u8 fds = stdio_inet_fds();

	if (!fds)
		return;
	u32 fd = fds & 1 ? 0 : fds & 2 ? 1 : 2;
	void *sk = fd_sock(fd);
	u16 family = sock_inet_family(sk);
	if (!family)
		return; /* closed meanwhile by another thread */
	struct stdio_event *e = events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		drop(EVENT_STDIO);
		return;
	}
	sock_ends(sk, family, e);
	fill_stdio(e, fd, -1, STDIO_EXEC, fds);
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
}

int on_sched_exec(struct tracepoint__sched__sched_process_exec *args)
{
	struct argv_area argv;

	argv_area(&argv);
	send_exec_sized((void *)args + (args->data_loc_filename & 0xFFFF), &argv);
	send_exec_stdio();
	return 0;
}

int on_sched_exit(struct tracepoint__sched__sched_process_exit *args)
{
#ifdef EXIT_HAS_GROUP_DEAD
	int process = args->group_dead; /* the last thread: the whole process, not one thread */
#else
	int process = leader_exits();
#endif
	if (process)
		send_exit();
	return 0;
}
