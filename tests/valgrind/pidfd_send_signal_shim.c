/*
 * For `./dev memcheck --containers` only: valgrind (up to 3.27 at least)
 * does not implement pidfd_send_signal (syscall 424) and fails it with
 * ENOSYS, and liblxc calls it to attach (get_attach_context), to stop,
 * shut down and reboot a container; the crate calls it to kill attached
 * processes. Preloaded into the test binary under valgrind, this turns
 * syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) into kill() of the
 * pid the pidfd names (its fdinfo), which valgrind knows. A pidfd of a
 * process that has ended says "Pid: -1": ESRCH, as the kernel says. Every
 * other syscall() goes to glibc's unchanged. Memory behaviour of liblxc and
 * the crate is unaffected; only the signal delivery is emulated.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

static long pidfd_pid(int fd)
{
	char path[64], buf[1024];
	ssize_t n;
	int f;
	char *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -2;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -2;
	buf[n] = '\0';
	p = strstr(buf, "\nPid:");
	if (!p)
		return -2;
	return strtol(p + 5, NULL, 10);
}

/* Programs the test binary starts (the crate's helper, attached programs)
 * are not under valgrind: they do not get the shim either. Only in the
 * valgrind client (valgrind sets VALGRIND_LAUNCHER there), not in the
 * shell script that starts valgrind itself. */
__attribute__((constructor)) static void drop_from_environment(void)
{
	if (getenv("VALGRIND_LAUNCHER"))
		unsetenv("LD_PRELOAD");
}

static int emulated(int pidfd, int sig, const void *info, unsigned int flags)
{
	long pid = pidfd_pid(pidfd);

	if (info || flags) {
		errno = EINVAL;
		return -1;
	}
	if (pid == -2) {
		errno = EBADF;
		return -1;
	}
	if (pid <= 0) {
		errno = ESRCH;
		return -1;
	}
	return kill((pid_t)pid, sig);
}

/* glibc 2.36 and later wrap the syscall; liblxc uses the wrapper when it
 * was built with one. */
int pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags)
{
	return emulated(pidfd, sig, info, flags);
}

long syscall(long nr, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);

	if (nr == SYS_pidfd_send_signal)
		return emulated((int)a[0], (int)a[1], (const void *)a[2], (unsigned int)a[3]);

	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
