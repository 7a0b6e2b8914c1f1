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

/* This process's `fd`'s struct sock, or 0 when the fd holds no socket: its file's private data is a struct
   socket that points back at the file (other files keep other objects there). Three reads. */
static __always_inline void *fd_sock(u32 fd)
{
	u32 size;
	void *fdt = current_fdt(&size), **fds, *file = 0, *sock = 0;
	struct {
		void *file;
		void *sk;
	} socket = {};

	_Static_assert(SOCKET_SK_OFF == SOCKET_FILE_OFF + 8, "struct socket: file, then sk");
	if (!fdt || fd >= size)
		return 0;
	fds = KFIELD(void **, fdt, FDT_FD_OFF);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	if (bpf_probe_read_kernel(&sock, sizeof(sock), file + FILE_PRIVATE_DATA_OFF) || !sock)
		return 0;
	if (bpf_probe_read_kernel(&socket, sizeof(socket), sock + SOCKET_FILE_OFF) || socket.file != file)
		return 0;
	return socket.sk;
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

#endif /* COALMINE_SOCK_BPF_H */
