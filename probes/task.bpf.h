/* SPDX-License-Identifier: Apache-2.0 */
/* The current task's fields, read at offsets from the running kernel's BTF, and the record header built from them. */
#ifndef COALMINE_TASK_BPF_H
#define COALMINE_TASK_BPF_H

#include "events.h"

/*
 * The headers bcc compiles against may come from another kernel, so no
 * struct field is read through them: the *_OFF macros come from the running
 * kernel's BTF (probes/btf.py TASK_FIELDS), all of them.
 */
#if !(defined(TASK_PID_OFF) && defined(TASK_TGID_OFF) && defined(TASK_REAL_PARENT_OFF) && \
      defined(TASK_CRED_OFF) && defined(TASK_COMM_OFF) && defined(TASK_CGROUPS_OFF) && \
      defined(TASK_MM_OFF) && defined(CRED_UID_OFF) && defined(CSS_SET_DFL_CGRP_OFF) && \
      defined(CGROUP_KN_OFF) && defined(KERNFS_NODE_ID_OFF) && defined(MM_ARG_START_OFF) && \
      defined(MM_ARG_END_OFF) && defined(TASK_SELF_EXEC_ID_OFF) && defined(TASK_FILES_OFF) && \
      defined(FILES_FDT_OFF) && defined(FDT_MAX_FDS_OFF) && defined(FDT_FD_OFF) && \
      defined(FILE_PRIVATE_DATA_OFF) && defined(SOCKET_FILE_OFF) && defined(SOCKET_SK_OFF) && \
      defined(SOCK_PROTOCOL_OFF) && defined(TCP_WRITE_SEQ_OFF) && defined(SOCK_DPORT_OFF) && \
      defined(SOCK_STATE_OFF))
#error "the probes need the running kernel's BTF offsets (probes/cflags.py cflags())"
#endif
/* A field of a BTF-typed kernel pointer, read with a plain load (see fill_header). */
#define KFIELD(type, ptr, off) (*(type *)((void *)(ptr) + (off)))

/*
 * This process's id: a plain load through the current task, not the
 * bpf_get_current_pid_tgid() helper call: every close() and write() on the
 * node computes it (sock.bpf.h sock_key()). bench/README.md has the
 * difference.
 */
static __always_inline u32 current_tgid(void)
{
	return KFIELD(u32, bpf_get_current_task_btf(), TASK_TGID_OFF);
}

/*
 * An fd number can lose its socket without a close() call: dup2()/dup3()
 * onto it and close_range() over it (connect.bpf.c forgets those), and an
 * exec, which closes close-on-exec fds inside the kernel with no hook to
 * see it. Each tracked socket keeps the low bits of the process's exec
 * count (task->self_exec_id, a plain load) from its connect; a send after
 * an exec checks that the fd still holds a socket (fd_sock()) before
 * it is believed. A socket the program inherits keeps its payload.
 */
static __always_inline u16 exec_id(void)
{
	return KFIELD(u32, bpf_get_current_task_btf(), TASK_SELF_EXEC_ID_OFF);
}

/* This process's fd table (struct fdtable), and in *size the number of fds it has room for; 0 when none. */
static __always_inline void *current_fdt(u32 *size)
{
	void *files = KFIELD(void *, bpf_get_current_task_btf(), TASK_FILES_OFF);
	void *fdt = files ? KFIELD(void *, files, FILES_FDT_OFF) : 0;

	*size = fdt ? KFIELD(u32, fdt, FDT_MAX_FDS_OFF) : 0;
	return fdt;
}

/*
 * The header is filled with plain loads through the task pointer that
 * bpf_get_current_task_btf() returns: the verifier checks each offset
 * against the kernel's BTF (a wrong one fails the load, it is never read
 * silently) and makes each load fault-safe (kernel/bpf/verifier.c turns a
 * load through a PTR_TO_BTF_ID into a BPF_PROBE_MEM one; the helper is in
 * include/uapi/linux/bpf.h since Linux 5.11). One helper call and a dozen
 * loads replace six helpers (uid, cgroup id, comm, two probe reads for
 * ppid); bench/run.py prints the per-program parts.
 *
 * The time is bpf_jiffies64(), the last timer tick (1/CONFIG_HZ: 4 ms at
 * HZ=250), a plain load; the reader turns it into CLOCK_MONOTONIC ns
 * (probes/clock.py JiffyClock). bpf_ktime_get_ns() reads the clocksource,
 * on x86 an ordered TSC read (arch/x86/kernel/tsc.c read_tsc():
 * rdtsc_ordered()), which waits for every load still in flight, and the
 * loads of a record's cold paths are many; bench/README.md has the A/B.
 */
/* The part of every header read from the task itself (hot in any context); returns the task. */
static __always_inline void *fill_header_self(struct event_header *h, u8 kind, u8 flags, u16 size)
{
	void *task = bpf_get_current_task_btf();

	h->kind = kind;
	h->flags = flags;
	h->size = size;
	h->reserved = 0;
	h->ktime_ns = bpf_jiffies64();
	h->pid = KFIELD(u32, task, TASK_PID_OFF);
	h->tgid = KFIELD(u32, task, TASK_TGID_OFF);
	/* comm is char[16] at an 8-aligned offset: two 8-byte loads, not sixteen 1-byte ones */
	*(u64 *)h->comm = KFIELD(u64, task, TASK_COMM_OFF);
	*(u64 *)(h->comm + 8) = KFIELD(u64, task, TASK_COMM_OFF + 8);
	return task;
}

static __always_inline void fill_header(struct event_header *h, u8 kind, u8 flags, u16 size)
{
	void *task = fill_header_self(h, kind, flags, size);
	void *parent = KFIELD(void *, task, TASK_REAL_PARENT_OFF);
	void *cred = KFIELD(void *, task, TASK_CRED_OFF);
	void *cset = KFIELD(void *, task, TASK_CGROUPS_OFF);
	void *cgrp = KFIELD(void *, cset, CSS_SET_DFL_CGRP_OFF);
	void *kn = KFIELD(void *, cgrp, CGROUP_KN_OFF);

	h->ppid = KFIELD(u32, parent, TASK_TGID_OFF);
	h->uid = KFIELD(u32, cred, CRED_UID_OFF);
	h->cgroup_id = KFIELD(u64, kn, KERNFS_NODE_ID_OFF); /* = bpf_get_current_cgroup_id() */
}

/*
 * The header of a process-exit record: who and when, nothing the process
 * table does not already have from the exec (ppid, uid and cgroup id are
 * 0): in the exit path the parent, cred and cgroup chain are five cold
 * loads, the task's last.
 */
static __always_inline void fill_exit_header(struct event_header *h)
{
	fill_header_self(h, EVENT_EXIT, 0, sizeof(struct exit_event));
	h->ppid = 0;
	h->uid = 0;
	h->cgroup_id = 0;
}

/*
 * A syscall seen at entry and finished at exit (dup(), fcntl(), socket(),
 * a DNS socket's read) keeps what its exit needs in task-local storage,
 * with an `armed` flag there and a node-wide count of the threads armed: an
 * exit hook on a syscall every process makes reads the count first and
 * returns when it is 0, without a storage lookup. arm() and disarm() keep
 * flag and count in step.
 */
static __always_inline void arm(u32 *flag, u64 *count)
{
	if (!*flag) {
		*flag = 1;
		__sync_fetch_and_add(count, 1);
	}
}

/* 1 when the flag was set (the exit has work to do), and clears it. */
static __always_inline int disarm(u32 *flag, u64 *count)
{
	if (!*flag)
		return 0;
	*flag = 0;
	__sync_fetch_and_add(count, -1);
	return 1;
}

#endif /* COALMINE_TASK_BPF_H */
