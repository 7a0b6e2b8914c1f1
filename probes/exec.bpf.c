/* SPDX-License-Identifier: Apache-2.0 */
/* exec and gpu sensors: one record per successful exec (filename + argv as the program got it), one per exit;
   opens of GPU device files, by path prefix and by device number. One compile for both (probes/sensors.py):
   each compiled module keeps its compiler state for the agent's life, so fewer modules, a lower peak. */
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

/* The gpu sensor (issue 14): opens of GPU device files. */

#if !(defined(GPU_PREFIX_MATCH) && defined(GPU_MAJOR_MATCH) && defined(FILE_INODE_OFF) && defined(INODE_RDEV_OFF) && \
      defined(TASK_START_TIME_OFF) && defined(TASK_GROUP_LEADER_OFF))
#error "the GPU sensor needs its prefixes, majors and inode offsets (probes/cflags.py, probes/gpu.py)"
#endif
#define GPU_PREFIX_MAX 16 /* bytes of the longest prefix (probes/gpu.py PREFIX_MAX) */
#define GPU_HEAD 24       /* bytes of a path read for the compare: a prefix and its NUL fit */
#define ENXIO 6
#define ENODEV 19
#define MINORBITS 20 /* include/linux/kdev_t.h: the kernel's dev_t */

/*
 * Every open on the node: its path pointer, by thread, in a per-CPU slot
 * (a few stores, no storage lookup). The exit believes it only when the
 * same thread wrote it (a thread preempted in between loses it: the open
 * of a path that is not a GPU prefix then reports no path).
 */
struct open_slot {
	const char *filename;
	u32 tid;
	u32 check_rdev; /* the path may hold a device node of the GPU's: see enter_open() */
};

BPF_PERCPU_ARRAY(open_slots, struct open_slot, 1);

/* A GPU-prefixed open in flight on this thread, from entry to exit, in task-local storage. */
struct gpu_call {
	const char *filename;
	u32 armed;
};

BPF_TASK_STORAGE(gpu_calls, struct gpu_call);
BPF_ARRAY(gpu_armed, u64, 1);

/* (process, device) pairs, and (process, failed path) pairs, reported: one record each. */
struct gpu_seen_key {
	u32 tgid;
	u32 rdev;
	u64 start;     /* the process's start time (its leader's): a pid reused later is another process */
	u64 path_hash; /* of the path, for failed opens; 0 otherwise */
};

BPF_TABLE("lru_hash", struct gpu_seen_key, u8, gpu_seen, 16384);

/* Whether h begins with the n bytes of s (a string literal: the loop unrolls to compares with constants). */
static __always_inline int prefix_eq(const char *h, const char *s, const u32 n)
{
#pragma unroll
	for (u32 i = 0; i < GPU_PREFIX_MAX; i++)
		if (i < n && h[i] != s[i])
			return 0;
	return n <= GPU_PREFIX_MAX;
}
#define PREFIX(h, s) prefix_eq(h, s, sizeof(s) - 1)

/* FNV-1a of a path: the key of a failed open's one report (bounded loop, Linux 5.3). */
static __always_inline u64 path_hash(const char *path)
{
	u64 x = 0xcbf29ce484222325ULL;

	for (u32 i = 0; i < GPU_PATH_MAX; i++) {
		if (!path[i])
			break;
		x = (x ^ (u8)path[i]) * 0x100000001b3ULL;
	}
	return x;
}

/* Report once per key: 1 when this call is the first to see it. */
static __always_inline int first_time(u32 rdev, u64 hash)
{
	void *leader = KFIELD(void *, bpf_get_current_task_btf(), TASK_GROUP_LEADER_OFF);
	struct gpu_seen_key key = {
		.tgid = current_tgid(), .rdev = rdev, .start = KFIELD(u64, leader, TASK_START_TIME_OFF), .path_hash = hash};
	u8 one = 1;

	return gpu_seen.insert(&key, &one) == 0; /* BPF_NOEXIST: fails when present */
}

/* One record, once per process and device (an open that worked) or per path (one that failed). */
static __always_inline void report(s32 ret, u32 rdev, u8 how, const char *filename)
{
	struct gpu_open_event *e = events.ringbuf_reserve(sizeof(*e));

	if (!e) {
		drop(EVENT_GPU_OPEN);
		return;
	}
	e->path[0] = 0;
	if (filename)
		bpf_probe_read_user_str(e->path, sizeof(e->path), filename);
	if (!first_time(ret >= 0 ? rdev : 0, ret >= 0 ? 0 : path_hash(e->path) | 1)) {
		events.ringbuf_discard(e, BPF_RB_NO_WAKEUP);
		return;
	}
	e->ret = ret;
	e->major = rdev >> MINORBITS;
	e->minor = rdev & ((1U << MINORBITS) - 1);
	e->how = how;
	e->reserved[0] = e->reserved[1] = e->reserved[2] = 0;
	fill_header(&e->hdr, EVENT_GPU_OPEN, 0, sizeof(*e));
	events.ringbuf_submit(e, submit_flags(sizeof(*e)));
}

/* The device number of this process's `fd`'s inode (0 for a file that is no device). Three reads. */
static __always_inline u32 fd_rdev(u32 fd)
{
	u32 size = 0, rdev = 0;
	void *fdt = current_fdt(&size), *file = 0, *inode = 0;

	if (!fdt || fd >= size)
		return 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &KFIELD(void **, fdt, FDT_FD_OFF)[fd]) || !file)
		return 0;
	if (bpf_probe_read_kernel(&inode, sizeof(inode), file + FILE_INODE_OFF) || !inode)
		return 0;
	bpf_probe_read_kernel(&rdev, sizeof(rdev), inode + INODE_RDEV_OFF);
	return rdev;
}

/*
 * Entry: the fixed-size read of the path's head and the compare with the
 * GPU prefixes (probes/gpu.py), which every open on the node costs; a match
 * is kept in task storage for the exit.
 */
/*
 * Entry: the fixed-size read of the path's head and the compare with the
 * GPU prefixes (probes/gpu.py), which every open on the node costs; a match
 * is kept in task storage for the exit. Paths under the system's own trees
 * (/usr, /lib, /etc, /proc, /sys: the dynamic loader's and every program's
 * start-up opens) are not checked for a GPU's device number at exit: a GPU
 * node made there (by root) is a bypass the README states.
 */
static __always_inline void enter_open(const char *filename)
{
	u32 zero = 0;
	char head[GPU_HEAD] = {};
	struct open_slot *slot = open_slots.lookup(&zero);
	long n = bpf_probe_read_user_str(head, sizeof(head), filename);

	if (slot) {
		slot->filename = filename;
		slot->tid = KFIELD(u32, bpf_get_current_task_btf(), TASK_PID_OFF);
		slot->check_rdev = !(PREFIX(head, "/usr/") || PREFIX(head, "/lib") || PREFIX(head, "/etc/") ||
				     PREFIX(head, "/proc/") || PREFIX(head, "/sys/"));
	}
	if (n <= 0 || !(GPU_PREFIX_MATCH(head)))
		return;
	u64 *armed = gpu_armed.lookup(&zero);
	struct gpu_call *call = gpu_calls.task_storage_get(bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!armed || !call) { /* no memory for the stash: this open goes unreported, counted */
		drop(EVENT_GPU_OPEN);
		return;
	}
	call->filename = filename;
	arm(&call->armed, armed);
}

static __always_inline void exit_open(long ret)
{
	u32 zero = 0;
	u64 *armed = gpu_armed.lookup(&zero);
	struct gpu_call *call;
	struct open_slot *slot;

	if (armed && *armed) {
		call = gpu_calls.task_storage_get(bpf_get_current_task_btf(), 0, 0);
		if (call && disarm(&call->armed, armed)) {
			report(ret, ret >= 0 ? fd_rdev(ret) : 0, GPU_OPEN_PATH, call->filename);
			return;
		}
	}
	if (ret >= 0) { /* another path: a GPU only by its device number */
		slot = open_slots.lookup(&zero);
		u32 tid = KFIELD(u32, bpf_get_current_task_btf(), TASK_PID_OFF);
		int ours = slot && slot->tid == tid;
		if (ours && !slot->check_rdev)
			return;
		u32 rdev = fd_rdev(ret);
		if (!rdev || !(GPU_MAJOR_MATCH(rdev >> MINORBITS)))
			return;
		report(ret, rdev, GPU_OPEN_DEVICE, ours ? slot->filename : 0);
		return;
	}
	if (ret != -ENXIO && ret != -ENODEV)
		return;
	slot = open_slots.lookup(&zero);
	if (slot && slot->tid == KFIELD(u32, bpf_get_current_task_btf(), TASK_PID_OFF))
		report(ret, 0, GPU_OPEN_FAILED, slot->filename);
}

int on_enter_openat(struct tracepoint__syscalls__sys_enter_openat *args)
{
	enter_open(args->filename);
	return 0;
}

int on_exit_openat(struct tracepoint__syscalls__sys_exit_openat *args)
{
	exit_open(args->ret);
	return 0;
}

int on_enter_openat2(struct tracepoint__syscalls__sys_enter_openat2 *args)
{
	enter_open(args->filename);
	return 0;
}

int on_exit_openat2(struct tracepoint__syscalls__sys_exit_openat2 *args)
{
	exit_open(args->ret);
	return 0;
}

#ifdef HOOK_ON_ENTER_OPEN
int on_enter_open(struct tracepoint__syscalls__sys_enter_open *args)
{
	enter_open(args->filename);
	return 0;
}

int on_exit_open(struct tracepoint__syscalls__sys_exit_open *args)
{
	exit_open(args->ret);
	return 0;
}
#endif
