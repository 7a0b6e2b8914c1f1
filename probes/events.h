/* SPDX-License-Identifier: Apache-2.0 */
/* coalmine record layouts: the one source of truth for the probes and probes/layout.py. */
#ifndef COALMINE_EVENTS_H
#define COALMINE_EVENTS_H

/*
 * Plain fixed-width types only, so that the host `cc` compiles this header
 * too (tests/probes/test_layout.py compares every size and offset with the
 * Python mirror). Every field is naturally aligned: no implicit padding.
 */
#ifndef __BPF__
#include <linux/types.h>
#endif

#define COMM_LEN 16
#define FILENAME_LEN 256
#define ARGS_BUF 4096 /* argv kept per exec: ARGS_BUF - 1 bytes (a power of two, for the verifier) */
#define PAYLOAD_MAX 256
#define IFNAMSIZ 16
#define GPU_PATH_MAX 128 /* bytes of an opened device path kept */
#define DNS_MAX 512 /* a DNS message kept per record: the classic UDP limit (RFC 1035 4.2.1) */

/* Append only: a shipped value never changes meaning. */
enum event_kind {
	EVENT_EXEC = 1,
	EVENT_EXIT = 2,
	EVENT_CONNECT = 3,
	EVENT_PAYLOAD = 4,
	EVENT_STDIO = 5,
	EVENT_SOCKET = 6,
	EVENT_TUN = 7,
	EVENT_DNS = 8,
	EVENT_GPU_OPEN = 9,
	EVENT_KIND_MAX = 16, /* size of the lost-records counter array */
};

/* header.flags, per kind */
enum exec_flags {
	EXEC_ARGS_TRUNCATED = 1 << 0, /* argv is longer than ARGS_BUF bytes: the last string is cut */
	EXEC_ARGV_FAULT = 1 << 3,     /* argv could not be read (no mm, or pages not present) */
};

enum payload_flags {
	PAYLOAD_TRUNCATED = 1 << 0, /* the syscall sent more than was captured */
};

enum payload_syscall {
	SYSCALL_WRITE = 1,
	SYSCALL_SENDTO = 2,
	SYSCALL_WRITEV = 3,
	SYSCALL_SENDMSG = 4,
	SYSCALL_SENDMMSG = 5,
	SYSCALL_READ = 6,
	SYSCALL_RECVFROM = 7,
	SYSCALL_RECVMSG = 8,
};

struct event_header {
	__u8 kind;
	__u8 flags;
	__u16 size;      /* bytes of this record, header included */
	__u32 reserved;
	__u64 ktime_ns;  /* bpf_jiffies64() from the kernel; CLOCK_MONOTONIC ns once read (probes/reader.py) */
	__u32 pid;       /* thread id, initial pid namespace */
	__u32 tgid;      /* process id, initial pid namespace */
	__u32 ppid;      /* real_parent->tgid, 0 when unknown */
	__u32 uid;
	__u64 cgroup_id; /* cgroup v2 id = inode of the cgroup directory */
	char comm[COMM_LEN];
};

/*
 * Sent with only args_len bytes of args: size = offsetof(args) + args_len.
 * args is the new program's argv as the kernel laid it out (mm->arg_start..arg_end):
 * NUL-terminated strings back to back, the last one cut when EXEC_ARGS_TRUNCATED.
 */
struct exec_event {
	struct event_header hdr;
	__u32 args_len;   /* bytes in args */
	__u32 args_total; /* bytes of the whole argv area */
	char filename[FILENAME_LEN];
	char args[ARGS_BUF];
};

/* Only kind, pid, tgid, comm and the time are read: ppid, uid and cgroup_id are 0 (the exec had them). */
struct exit_event {
	struct event_header hdr;
};

struct connect_event {
	struct event_header hdr;
	__s32 fd;
	__s32 ret; /* 0, or -errno; -EINPROGRESS means the connect started */
	__u16 family;
	__u16 dport; /* host byte order */
	__u32 reserved;
	__u8 daddr[16]; /* IPv4 in the first 4 bytes */
};

/* Sent with only data_len bytes of data: size = offsetof(data) + data_len. */
struct payload_event {
	struct event_header hdr;
	__s32 fd;
	__u32 len_raw; /* bytes the syscall was asked to send (first iovecs for vectored I/O) */
	__u16 family;
	__u16 dport;
	__u16 data_len;
	__u8 syscall;  /* enum payload_syscall */
	__u8 reserved;
	__u8 daddr[16];
	__u8 data[PAYLOAD_MAX];
};

/* How an IPv4/IPv6 socket came to be on fd 0, 1 or 2 (struct stdio_event). */
enum stdio_how {
	STDIO_DUP2 = 1,
	STDIO_DUP3 = 2,
	STDIO_DUP = 3,
	STDIO_FCNTL = 4, /* F_DUPFD, F_DUPFD_CLOEXEC */
	STDIO_EXEC = 5,  /* the new program of an exec has it there */
};

/*
 * An IPv4/IPv6 socket on a process's fd 0, 1 or 2: the reverse-shell signal
 * (issue 13). The socket's ends are read from its struct sock.
 */
struct stdio_event {
	struct event_header hdr;
	__s32 fd;    /* the stdio fd it is on (an exec: the lowest of them) */
	__s32 oldfd; /* the fd copied; -1 for an exec or when the call does not say */
	__u8 how;    /* enum stdio_how */
	__u8 fds;    /* bit i set: fd i (0..2) holds an IPv4/IPv6 socket once the call is done */
	__u8 proto;  /* sk_protocol: IPPROTO_TCP 6, IPPROTO_UDP 17, ... */
	__u8 state;  /* sk_state: include/net/tcp_states.h (UDP: TCP_ESTABLISHED once connected, else TCP_CLOSE) */
	__u16 family;
	__u16 dport; /* host byte order */
	__u16 sport; /* host byte order */
	__u16 reserved;
	__u32 reserved2;
	__u8 daddr[16]; /* IPv4 in the first 4 bytes */
	__u8 saddr[16];
};

/* socket(2) creating a raw socket, or an ICMP/ICMPv6 datagram ("ping") socket. */
struct socket_event {
	struct event_header hdr;
	__s32 ret;     /* the new fd, or -errno */
	__u32 family;  /* AF_* */
	__u32 type;    /* SOCK_* without SOCK_NONBLOCK/SOCK_CLOEXEC */
	__u32 protocol;
};

/* ioctl(fd, TUNSETIFF, &ifr): the process creates or attaches a TUN/TAP interface. */
struct tun_event {
	struct event_header hdr;
	__s32 fd;
	__u16 ifr_flags; /* IFF_TUN 0x1, IFF_TAP 0x2, IFF_NO_PI 0x1000, ... */
	__u16 reserved;
	char ifname[IFNAMSIZ]; /* as requested; empty lets the kernel pick */
};

enum dns_direction {
	DNS_QUERY = 1,  /* sent to port 53 */
	DNS_ANSWER = 2, /* received on a socket that sent to port 53 */
};

/*
 * One DNS message, sent or received (issue 13: the DNS sensor). Sent with
 * only data_len bytes of data: size = offsetof(data) + data_len; flags:
 * PAYLOAD_TRUNCATED when the message was longer.
 */
struct dns_event {
	struct event_header hdr;
	__s32 fd;
	__u32 len_raw;  /* bytes sent or received */
	__u16 family;
	__u16 port;     /* the name server's (host byte order) */
	__u16 data_len;
	__u8 syscall;   /* enum payload_syscall */
	__u8 direction; /* enum dns_direction */
	__u8 proto;     /* IPPROTO_UDP 17, IPPROTO_TCP 6 (TCP: the message follows a 2-byte length) */
	__u8 reserved[7];
	__u8 server[16]; /* the name server's address, IPv4 in the first 4 bytes */
	__u8 data[DNS_MAX];
};

enum gpu_open_how {
	GPU_OPEN_PATH = 1,    /* the path begins with a GPU device prefix (probes/gpu.py) */
	GPU_OPEN_DEVICE = 2,  /* another path, opened: its inode is a char device of a GPU major */
	GPU_OPEN_FAILED = 3,  /* another path whose open failed as a device without a driver does (ENXIO, ENODEV):
				 the agent looks at what the path is */
};

/* An open of a GPU device file (issue 14): one per process and device (and per failed path). */
struct gpu_open_event {
	struct event_header hdr;
	__s32 ret;     /* the fd, or -errno */
	__u32 major;   /* of the inode's device number, when the open succeeded (0 otherwise) */
	__u32 minor;
	__u8 how;      /* enum gpu_open_how */
	__u8 reserved[3];
	char path[GPU_PATH_MAX]; /* as passed to the call (relative to its dfd or cwd when not absolute) */
};

#endif /* COALMINE_EVENTS_H */
