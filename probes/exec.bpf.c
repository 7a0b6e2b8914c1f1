/* SPDX-License-Identifier: Apache-2.0 */
/* exec sensor: one record per successful exec (filename + bounded argv), one per process exit. */
#include "common.bpf.h"

#ifndef EXEC_STASH_MAX
#define EXEC_STASH_MAX 1024 /* execs in flight at once */
#endif

/*
 * argv is read at syscall entry, while it is still in the caller's memory,
 * and kept by thread id until sched_process_exec confirms the exec. It cannot
 * stay per-CPU: exec migrates the task (sched_exec) between the two hooks.
 */
BPF_TABLE("lru_hash", u32, struct exec_event, exec_stash, EXEC_STASH_MAX);
BPF_PERCPU_ARRAY(exec_scratch, struct exec_event, 1); /* too large for the stack */

/* The ring buffer was full: count it (per-CPU slot, no atomics needed). */
static __always_inline void drop(u32 kind)
{
	u64 *n = lost.lookup(&kind);
	if (n)
		(*n)++;
}

static __always_inline u8 read_argv(struct exec_event *e, const char *const *argv)
{
	u32 len = 0;
	u8 flags = 0;
	const char *arg;
	int i;

	e->args_count = 0;
#pragma unroll
	for (i = 0; i < MAX_ARGS; i++) {
		arg = 0;
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i])) {
			flags |= EXEC_ARGV_FAULT;
			goto out;
		}
		if (!arg)
			goto out;
		barrier_var(len);
		if (len > ARGS_BUF - ARG_LEN)
			goto out;
		long n = bpf_probe_read_user_str(&e->args[len], ARG_LEN, arg);
		if (n <= 0 || n > ARG_LEN) {
			flags |= EXEC_ARGV_FAULT;
			goto out;
		}
		if (n == ARG_LEN) {
			char next = 0;
			bpf_probe_read_user(&next, 1, arg + ARG_LEN - 1);
			if (next)
				flags |= EXEC_ARG_CLIPPED;
		}
		len += n;
		e->args_count++;
	}
	arg = 0;
	bpf_probe_read_user(&arg, sizeof(arg), &argv[MAX_ARGS]);
	if (arg)
		flags |= EXEC_ARGS_TRUNCATED;
out:
	e->args_len = len;
	return flags;
}

static __always_inline int enter_exec(const char *const *argv)
{
	u32 zero = 0;
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct exec_event *e = exec_scratch.lookup(&zero);

	if (!e)
		return 0;
	e->hdr.flags = read_argv(e, argv);
	exec_stash.update(&tid, e);
	return 0;
}

static __always_inline int exit_exec(void)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();

	exec_stash.delete(&tid); /* a failed exec leaves its argv behind */
	return 0;
}

int on_enter_execve(struct tracepoint__syscalls__sys_enter_execve *args)
{
	return enter_exec(args->argv);
}

int on_enter_execveat(struct tracepoint__syscalls__sys_enter_execveat *args)
{
	return enter_exec(args->argv);
}

int on_exit_execve(struct tracepoint__syscalls__sys_exit_execve *args)
{
	return exit_exec();
}

int on_exit_execveat(struct tracepoint__syscalls__sys_exit_execveat *args)
{
	return exit_exec();
}

int on_sched_exec(struct tracepoint__sched__sched_process_exec *args)
{
	/* old_pid: the thread that called execve; a non-leader thread takes the tgid. */
	u32 old_tid = args->old_pid;
	u32 zero = 0;
	struct exec_event *e = exec_stash.lookup(&old_tid);
	u8 flags;

	if (!e) {
		e = exec_scratch.lookup(&zero);
		if (!e)
			return 0;
		e->args_count = 0;
		e->args_len = 0;
		e->hdr.flags = EXEC_NO_ARGV;
	}
	flags = e->hdr.flags;
	u32 args_len = e->args_len;
	if (args_len > ARGS_BUF)
		args_len = ARGS_BUF;
	u32 size = __builtin_offsetof(struct exec_event, args) + args_len;
	fill_header(&e->hdr, EVENT_EXEC, flags, size);
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename),
				  (void *)args + (args->data_loc_filename & 0xFFFF));
	if (events.ringbuf_output(e, size, SUBMIT_FLAGS))
		drop(EVENT_EXEC);
	exec_stash.delete(&old_tid);
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
