/* SPDX-License-Identifier: Apache-2.0 */
/* exec sensor: one record per successful exec (filename + argv as the program got it), one per exit. */
#include "common.bpf.h"

BPF_PERCPU_ARRAY(exec_scratch, struct exec_event, 1); /* too large for the stack */

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
static __always_inline u8 read_args(struct exec_event *e)
{
	void *mm = KFIELD(void *, bpf_get_current_task_btf(), TASK_MM_OFF);
	unsigned long start, end;
	u8 flags = 0;

	e->args_len = 0;
	e->args_total = 0;
	if (!mm)
		return EXEC_ARGV_FAULT;
	start = KFIELD(unsigned long, mm, MM_ARG_START_OFF);
	end = KFIELD(unsigned long, mm, MM_ARG_END_OFF);
	if (end <= start)
		return end == start ? 0 : EXEC_ARGV_FAULT;
	u64 len = end - start;
	e->args_total = len > 0xFFFFFFFFULL ? 0xFFFFFFFF : len;
	if (len > ARGS_BUF - 1) { /* ARGS_BUF - 1: then "& (ARGS_BUF - 1)" is a no-op the verifier follows */
		len = ARGS_BUF - 1;
		flags |= EXEC_ARGS_TRUNCATED;
	}
	barrier_var(len);
	len &= ARGS_BUF - 1;
	if (bpf_probe_read_user(e->args, len, (void *)start))
		return flags | EXEC_ARGV_FAULT;
	e->args_len = len;
	return flags;
}

int on_sched_exec(struct tracepoint__sched__sched_process_exec *args)
{
	u32 zero = 0;
	struct exec_event *e = exec_scratch.lookup(&zero);

	if (!e)
		return 0;
	u8 flags = read_args(e);
	u32 args_len = e->args_len;
	barrier_var(args_len);
	args_len &= ARGS_BUF - 1; /* read_args never stores more than ARGS_BUF - 1 */
	u32 size = __builtin_offsetof(struct exec_event, args) + args_len;
	fill_header(&e->hdr, EVENT_EXEC, flags, size);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
				  (void *)args + (args->data_loc_filename & 0xFFFF));
	if (events.ringbuf_output(e, size, SUBMIT_FLAGS))
		drop(EVENT_EXEC);
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
	fill_header(&e->hdr, EVENT_EXIT, 0, sizeof(*e));
	events.ringbuf_submit(e, SUBMIT_FLAGS);
	return 0;
}
