// SPDX-License-Identifier: Apache-2.0
// Times the syscall workloads the agent hooks: ns per operation, one line per op.
// usage: ops OP ITERATIONS    OP = connect | connect_write | fork_exec | udp_sendto | open_close | close_badfd |
//                                getppid | write_devnull
// prints: wall-clock ns/op, CPU ns/op
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int listener;

static void *accept_loop(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listener, NULL, NULL);
		if (fd >= 0)
			close(fd);
	}
	return NULL;
}

/* CPU time of this process and its waited-for children: immune to the VM stealing the CPU. */
static long long cpu_ns(void)
{
	struct rusage self, kids;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	long long us = (self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) * 1000000LL +
		       self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec + kids.ru_stime.tv_usec;
	return us * 1000;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr,
			"usage: %s connect|connect_write|fork_exec|udp_sendto|open_close|close_badfd|getppid|write_devnull "
			"ITERATIONS\n",
			argv[0]);
		return 2;
	}
	const char *op = argv[1];
	long n = atol(argv[2]);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char payload[64];
	memset(payload, 'x', sizeof(payload));

	if (strcmp(op, "close_badfd") == 0) { /* a hooked syscall that does nothing: the cost of a hook call */
		long long t0 = now_ns(), c0 = cpu_ns();
		for (long i = 0; i < n; i++)
			close(-1);
		printf("%.1f %.1f\n", (double)(now_ns() - t0) / n, (double)(cpu_ns() - c0) / n);
		return 0;
	}
	if (strcmp(op, "getppid") == 0) { /* a syscall no probe hooks: what tracing any syscall costs every one */
		long long t0 = now_ns(), c0 = cpu_ns();
		for (long i = 0; i < n; i++)
			syscall(SYS_getppid);
		printf("%.1f %.1f\n", (double)(now_ns() - t0) / n, (double)(cpu_ns() - c0) / n);
		return 0;
	}
	if (strcmp(op, "write_devnull") == 0) { /* the hot path: write() on an fd the agent does not track */
		int fd = open("/dev/null", O_WRONLY);
		long long t0 = now_ns(), c0 = cpu_ns();
		for (long i = 0; i < n; i++)
			if (write(fd, payload, sizeof(payload)) != sizeof(payload))
				return 1;
		printf("%.1f %.1f\n", (double)(now_ns() - t0) / n, (double)(cpu_ns() - c0) / n);
		return 0;
	}
	if (strcmp(op, "open_close") == 0) { /* the GPU sensor's open hooks on an ordinary file: every open pays them */
		long long t0 = now_ns(), c0 = cpu_ns();
		for (long i = 0; i < n; i++) {
			int fd = open("/etc/hostname", O_RDONLY);
			if (fd < 0) {
				perror("open");
				return 1;
			}
			close(fd);
		}
		printf("%.1f %.1f\n", (double)(now_ns() - t0) / n, (double)(cpu_ns() - c0) / n);
		return 0;
	}
	if (strcmp(op, "udp_sendto") == 0) { /* the DNS sensor's send path: sendto() with an address, not port 53 */
		socklen_t len = sizeof(addr);
		int sink = socket(AF_INET, SOCK_DGRAM, 0), fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (bind(sink, (struct sockaddr *)&addr, sizeof(addr)) || getsockname(sink, (struct sockaddr *)&addr, &len)) {
			perror("bind");
			return 1;
		}
		long long t0 = now_ns(), c0 = cpu_ns();
		for (long i = 0; i < n; i++) {
			if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&addr, sizeof(addr)) != sizeof(payload)) {
				perror("sendto");
				return 1;
			}
			if (i % 64 == 63) { /* drain the receiver now and then, so its buffer never drops (no ENOBUFS path) */
				char buf[64];
				while (recv(sink, buf, sizeof(buf), MSG_DONTWAIT) > 0)
					;
			}
		}
		printf("%.1f %.1f\n", (double)(now_ns() - t0) / n, (double)(cpu_ns() - c0) / n);
		return 0;
	}
	if (strcmp(op, "fork_exec") != 0) {
		socklen_t len = sizeof(addr);
		listener = socket(AF_INET, SOCK_STREAM, 0);
		if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) || listen(listener, 4096) ||
		    getsockname(listener, (struct sockaddr *)&addr, &len)) {
			perror("listen");
			return 1;
		}
		pthread_t t;
		pthread_create(&t, NULL, accept_loop, NULL);
	}
	long long start = now_ns(), cpu_start = cpu_ns();
	for (long i = 0; i < n; i++) {
		if (strcmp(op, "fork_exec") == 0) {
			pid_t pid = fork();
			if (pid == 0) {
				char *args[] = {"/bin/true", NULL};
				execv(args[0], args);
				_exit(127);
			}
			waitpid(pid, NULL, 0);
			continue;
		}
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		/* close with RST: thousands of TIME_WAIT sockets would exhaust ephemeral ports across rounds */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
			perror("connect");
			return 1;
		}
		if (strcmp(op, "connect_write") == 0 && write(fd, payload, sizeof(payload)) != sizeof(payload)) {
			perror("write");
			return 1;
		}
		close(fd);
	}
	printf("%.1f %.1f\n", (double)(now_ns() - start) / n, (double)(cpu_ns() - cpu_start) / n);
	return 0;
}
