/* SPDX-License-Identifier: Apache-2.0 */
/* This process's sockets: the key of an fd, the struct sock behind it, and the TCP state the sensors check. */
#ifndef COALMINE_SOCK_BPF_H
#define COALMINE_SOCK_BPF_H

#include "task.bpf.h"
#include "tracked.bpf.h"

#define IPPROTO_TCP 6
#define TCP_CLOSE 7 /* enum tcp_state: a socket never connected (or done with) */

/* The key of this process's `fd` in the tracked-socket table (task.bpf.h current_tgid(): a plain load). */
static __always_inline u64 sock_key(u32 fd)
{
	return tracked_key(current_tgid(), fd);
}

/* The struct sock of an open `file`, or 0 when it is no socket: its private data is a struct socket that
   points back at the file (other files keep other objects there). Two reads. */
static __always_inline void *file_sock(void *file)
{
	void *sock = 0;
	struct {
		void *file;
		void *sk;
	} socket = {};

	_Static_assert(SOCKET_SK_OFF == SOCKET_FILE_OFF + 8, "struct socket: file, then sk");
	if (bpf_probe_read_kernel(&sock, sizeof(sock), file + FILE_PRIVATE_DATA_OFF) || !sock)
		return 0;
	if (bpf_probe_read_kernel(&socket, sizeof(socket), sock + SOCKET_FILE_OFF) || socket.file != file)
		return 0;
	return socket.sk;
}

/* This process's `fd`'s struct sock, or 0 when the fd holds no socket. Three reads. */
static __always_inline void *fd_sock(u32 fd)
{
	u32 size;
	void *fdt = current_fdt(&size), **fds, *file = 0;

	if (!fdt || fd >= size)
		return 0;
	fds = KFIELD(void **, fdt, FDT_FD_OFF);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	return file_sock(file);
}

/* Whether sk is a TCP socket that has never connected (TCP_CLOSE). */
static __always_inline int tcp_unconnected(void *sk)
{
	u16 protocol = 0;
	u8 state = 0;

	return sk && !bpf_probe_read_kernel(&protocol, sizeof(protocol), sk + SOCK_PROTOCOL_OFF) &&
	       protocol == IPPROTO_TCP && !bpf_probe_read_kernel(&state, sizeof(state), sk + SOCK_STATE_OFF) &&
	       state == TCP_CLOSE;
}

/* A TCP socket's write_seq (the next byte a send queues: it moves on the first send, whatever the
   fd), or -1 for any other socket, or one connected to another port than `dport` (host order). */
static __always_inline s64 tcp_write_seq(void *sk, u16 dport)
{
	u16 protocol = 0, dport_be = 0;
	u32 seq = 0;

	if (!sk || bpf_probe_read_kernel(&protocol, sizeof(protocol), sk + SOCK_PROTOCOL_OFF) ||
	    protocol != IPPROTO_TCP || bpf_probe_read_kernel(&dport_be, sizeof(dport_be), sk + SOCK_DPORT_OFF) ||
	    __builtin_bswap16(dport_be) != dport || bpf_probe_read_kernel(&seq, sizeof(seq), sk + TCP_WRITE_SEQ_OFF))
		return -1;
	return seq;
}

/*
 * An IPv4/IPv6 socket on stdio (struct stdio_event): the reverse-shell
 * sensor's half in connect.bpf.c (dup2/dup3/dup/fcntl onto 0..2) and in
 * exec.bpf.c (a new program with one there). Its ends come from the struct
 * sock, at BTF offsets: a few reads, on these rare paths only.
 */
#if !(defined(SOCK_FAMILY_OFF) && defined(SOCK_DADDR_OFF) && defined(SOCK_RCV_SADDR_OFF) && \
      defined(SOCK_NUM_OFF) && defined(SOCK_V6_DADDR_OFF) && defined(SOCK_V6_RCV_SADDR_OFF))
#error "the stdio sensor needs struct sock_common's offsets from BTF (probes/btf.py TASK_FIELDS)"
#endif
#define SOCK_AF_INET 2
#define SOCK_AF_INET6 10
#define STDIO_FDS 3

/* sk's address family when it is an IPv4/IPv6 socket, else 0. */
static __always_inline u16 sock_inet_family(void *sk)
{
	u16 family = 0;

	if (!sk || bpf_probe_read_kernel(&family, sizeof(family), sk + SOCK_FAMILY_OFF))
		return 0;
	return family == SOCK_AF_INET || family == SOCK_AF_INET6 ? family : 0;
}

/* Fill e's proto, state and both ends from sk, an IPv4/IPv6 socket of `family` (sock_inet_family()). */
static __always_inline void sock_ends(void *sk, u16 family, struct stdio_event *e)
{
	u16 protocol = 0, dport_be = 0, sport = 0;
	u8 state = 0;

	bpf_probe_read_kernel(&protocol, sizeof(protocol), sk + SOCK_PROTOCOL_OFF);
	bpf_probe_read_kernel(&state, sizeof(state), sk + SOCK_STATE_OFF);
	bpf_probe_read_kernel(&dport_be, sizeof(dport_be), sk + SOCK_DPORT_OFF);
	bpf_probe_read_kernel(&sport, sizeof(sport), sk + SOCK_NUM_OFF);
	__builtin_memset(e->daddr, 0, sizeof(e->daddr));
	__builtin_memset(e->saddr, 0, sizeof(e->saddr));
	if (family == SOCK_AF_INET) {
		bpf_probe_read_kernel(e->daddr, 4, sk + SOCK_DADDR_OFF);
		bpf_probe_read_kernel(e->saddr, 4, sk + SOCK_RCV_SADDR_OFF);
	} else {
		bpf_probe_read_kernel(e->daddr, 16, sk + SOCK_V6_DADDR_OFF);
		bpf_probe_read_kernel(e->saddr, 16, sk + SOCK_V6_RCV_SADDR_OFF);
	}
	e->family = family;
	e->proto = protocol > 0xFF ? 0xFF : protocol;
	e->state = state;
	e->dport = __builtin_bswap16(dport_be);
	e->sport = sport;
}

/* Whether this process's `fd` holds an IPv4/IPv6 socket. */
static __always_inline int fd_is_inet(u32 fd)
{
	return sock_inet_family(fd_sock(fd)) != 0;
}

/* Bit i set when this process's fd i (0..2) holds an IPv4/IPv6 socket: the three file pointers in one read,
   and a file on two of them (stdout and stderr, most often) looked at once. */
static __always_inline u8 stdio_inet_fds(void)
{
	u32 size = 0;
	void *fdt = current_fdt(&size), *files[STDIO_FDS] = {};
	u8 fds = 0;

	if (!fdt || size < STDIO_FDS) /* never: a table has room for NR_OPEN_DEFAULT (BITS_PER_LONG) fds */
		return 0;
	if (bpf_probe_read_kernel(files, sizeof(files), KFIELD(void **, fdt, FDT_FD_OFF)))
		return 0;
#pragma unroll
	for (u32 i = 0; i < STDIO_FDS; i++) {
		if (!files[i])
			continue;
		if (i > 0 && files[i] == files[i - 1]) {
			fds |= (fds >> (i - 1) & 1) << i;
			continue;
		}
		if (sock_inet_family(file_sock(files[i])))
			fds |= 1 << i;
	}
	return fds;
}

/* Whether one of fds 0..2 is free: only then can dup() or fcntl(F_DUPFD, <= 2) land on one. */
static __always_inline int stdio_hole(void)
{
	u32 size = 0;
	void *fdt = current_fdt(&size), **fds, *file = 0;

	if (!fdt)
		return 0;
	fds = KFIELD(void **, fdt, FDT_FD_OFF);
#pragma unroll
	for (u32 i = 0; i < STDIO_FDS; i++) {
		if (i >= size)
			return 1;
		if (bpf_probe_read_kernel(&file, sizeof(file), &fds[i]) || !file)
			return 1;
	}
	return 0;
}

/* The rest of a stdio record whose socket sock_ends() filled: header, fds, how. */
static __always_inline void fill_stdio(struct stdio_event *e, s32 fd, s32 oldfd, u8 how, u8 fds)
{
	fill_header(&e->hdr, EVENT_STDIO, 0, sizeof(*e));
	e->fd = fd;
	e->oldfd = oldfd;
	e->how = how;
	e->fds = fds;
	e->reserved = 0;
	e->reserved2 = 0;
}

#endif /* COALMINE_SOCK_BPF_H */
