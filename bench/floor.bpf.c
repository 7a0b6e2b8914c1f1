/* SPDX-License-Identifier: Apache-2.0 */
/* The benchmark's floor: an empty program on every tracepoint the agent hooks. */
int empty(void *ctx)
{
	return 0;
}

/* Not part of the floor: counts the syscalls the workload makes (bench/run.py syscalls_per_op). */
BPF_ARRAY(syscalls, u64, 1);

int count_syscalls(void *ctx)
{
	char comm[16] = {};
	u32 zero = 0;

	bpf_get_current_comm(comm, sizeof(comm));
	/* the workload ("ops") and the program its fork_exec runs ("true") */
	if ((comm[0] == 'o' && comm[1] == 'p' && comm[2] == 's' && comm[3] == 0) ||
	    (comm[0] == 't' && comm[1] == 'r' && comm[2] == 'u' && comm[3] == 'e' && comm[4] == 0)) {
		u64 *n = syscalls.lookup(&zero);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	return 0;
}

/*
 * Not part of the floor either: how much slower the hook path runs inside
 * each op than in a hot loop. `mark` on raw_syscalls:sys_enter/sys_exit
 * notes the time; `timed`, on the syscall tracepoints the agent hooks, runs
 * next on the same syscall and adds up the time in between: the kernel's
 * dispatch from one syscall probe to the next program (bench/run.py
 * context_factors).
 */
struct span {
	u64 sum_ns;
	u64 count;
};
BPF_PERCPU_ARRAY(marked_at, u64, 1);
BPF_PERCPU_ARRAY(spans, struct span, 1);

int mark(void *ctx)
{
	u32 zero = 0;
	u64 *at = marked_at.lookup(&zero);

	if (at)
		*at = bpf_ktime_get_ns();
	return 0;
}

int timed(void *ctx)
{
	u64 now = bpf_ktime_get_ns();
	u32 zero = 0;
	u64 *at = marked_at.lookup(&zero);
	struct span *s = spans.lookup(&zero);

	if (!at || !s)
		return 0;
	if (*at && now - *at < 100000) { /* a preempted syscall would skew the sum: skip gaps over 100 us */
		s->sum_ns += now - *at;
		s->count++;
	}
	*at = 0;
	return 0;
}
