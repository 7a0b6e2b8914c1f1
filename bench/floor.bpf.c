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
