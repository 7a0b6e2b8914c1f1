/* SPDX-License-Identifier: Apache-2.0 */
/* exec sensor: one record per successful exec (filename + argv as the program got it), one per exit. */
#include "common.bpf.h"

/* The ring buffer was full: count it (per-CPU slot, no atomics needed). */
static __always_inline void drop(u32 kind)
{
	u64 *n = lost.lookup(&kind);
	if (n)
		(*n)++;
}

/*
 * One exec record, reserved in the ring buffer with room for `cap` bytes of
 * argv and filled in place: no per-CPU scratch record and no second copy
 * (~150 ns an exec on the test VM). `cap` is a constant power of two at each
 * call site, so the verifier knows the record's size; the header's size
 * field says how much of it is used (probes/loader.py sends only that).
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

/*
 * argv is read after the exec, from the new program's own argv area
 * (current->mm->arg_start .. arg_end, offsets from BTF), not at execve()
 * entry: at entry another thread can still rewrite the strings between our
 * read and the kernel's copy (the "Phantom attack" on syscall-entry tracers,
 * DEF CON 29), and reading there costs a per-thread stash of the whole
 * record. Here argv is what the program received, in one contiguous read.
 */
int on_sched_exec(struct tracepoint__sched__sched_process_exec *args)
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
	u32 total32 = total > 0xFFFFFFFFULL ? 0xFFFFFFFF : total;
	const void *filename = (void *)args + (args->data_loc_filename & 0xFFFF);
	/* Most argv fit in 256 bytes: a small record keeps the ring's footprint (and cache misses) small. */
	if (len < 256)
		send_exec(filename, start, len, total32, flags, 256);
	else if (len < 1024)
		send_exec(filename, start, len, total32, flags, 1024);
	else
		send_exec(filename, start, len, total32, flags, ARGS_BUF);
	return 0;
}

int on_sched_exit(struct tracepoint__sched__sched_process_exit *args)
{
#ifdef EXIT_HAS_GROUP_DEAD
	if (!args->group_dead) /* a thread, not the whole process */
		return 0;
#else
	u64 id = bpf_get_current_pid_tgid();
	if ((u32)id != id >> 32)
		return 0;
#endif
	struct exit_event *e = events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		drop(EVENT_EXIT);
		return 0;
	}
	fill_exit_header(&e->hdr);
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
	return 0;
}
