/*
 * lxc-rs-helper: runs one liblxc call in a fresh, single-threaded process.
 *
 * The `lxc` crate embeds this program and starts it with fork+exec (see
 * lxc/src/helper.rs for why). It is not meant to be run by hand.
 *
 * Usage:
 *   lxc-rs-helper RESULT_FD OP NAME LXCPATH [OPTION VALUE]... [-- ARG...]
 *   lxc-rs-helper serve SOCKET_FD   (the server: see its section below)
 *   lxc-rs-helper walk SOCKET_FD ROOT SENDFDS [PATTERN]...
 *                                   (an image export's reader: see below)
 *
 * OP is one of create, clone, snapshot, restore, start, destroy,
 * destroy_with_snapshots, snapshot_destroy, snapshot_destroy_all, rename.
 * Options:
 *   config FILE       clear the loaded configuration, then load FILE
 *   noconfig 1        clear the loaded configuration (the caller had none)
 *   log.file F, log.level L, log.prefix P, log.name N, log.lxcpath P,
 *   log.quiet 0|1     lxc_log_init with these (the caller's Log::init)
 *   create: template T, bdev B, flags N, fstype S, fssize N, zfsroot S,
 *           lvm.vg S, lvm.lv S, lvm.thinpool S, dir S, rbd.name S,
 *           rbd.pool S, cachepath P (LXC_CACHE_PATH for the template);
 *           the ARGs are the template's arguments
 *   clone:  newname S, newpath S, flags N, bdev B, bdevdata S, newsize N;
 *           the ARGs are the clone hook's arguments
 *   snapshot: comment FILE
 *   restore: snapname S, newname S (snapshot_restore)
 *   start:  useinit 0|1, closeallfds 0|1; the ARGs are init's argv
 *   snapshot_destroy: snapname S
 *   rename: newname S
 *   expect.rootfs S, expect.managed S   before the call, the loaded
 *           configuration's lxc.rootfs.path and lxc.rootfs.managed must
 *           read so (the values the caller checked before a call that
 *           deletes the root filesystem); otherwise it reports "stale"
 *
 * It writes one line to RESULT_FD and exits 0:
 *   "ok ERRNO ERROR_NUM VALUE\n" or "fail ERRNO ERROR_NUM -\n", or
 *   "stale 0 0 -\n" when an expect.* option does not hold, "gone 0 0 -\n" when
 *   a call on an existing container finds none, "noload ERRNO 0 -\n" when
 *   lxc_container_new fails (a configuration file that does not parse);
 *   nothing is done then
 * where VALUE is the snapshot's number for snapshot and "-" otherwise.
 * Before the line of a start come "cgroup LINE\n" lines: the lines of the
 * helper's own /proc/self/cgroup after the call (a daemonized start's caller
 * is moved into the new monitor cgroups by liblxc's monitor_enter, every
 * series 4.0 to 7.0) and, when the start succeeded, those of the new init's
 * /proc/PID/cgroup (the payload cgroups): the crate notes the cgroups the
 * start made from them instead of searching every hierarchy by name.
 * Bad usage exits 2 without a result line.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdint.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lxc/lxccontainer.h>

#define MAX_OPTS 32

struct opt {
	const char *key;
	const char *value;
};

static struct opt opts[MAX_OPTS];
static int nopts;

static const char *get(const char *key)
{
	for (int i = 0; i < nopts; i++)
		if (strcmp(opts[i].key, key) == 0)
			return opts[i].value;
	return NULL;
}

static long long get_num(const char *key, long long dflt)
{
	const char *v = get(key);
	return v ? strtoll(v, NULL, 10) : dflt;
}

static bool get_bool(const char *key)
{
	return get_num(key, 0) != 0;
}

/* Every signal back to its default action, none blocked: the caller may
 * ignore SIGCHLD (which exec keeps), and liblxc's monitor must see its
 * children die. */
static void reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		(void)sigaction(sig, &sa, NULL); /* EINVAL for glibc's own: fine */
	}
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

static int result_fd = -1;

/* Writes all of BUF (LEN bytes) to the result descriptor. */
static bool write_result(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(result_fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		buf += w;
		len -= (size_t)w;
	}
	return true;
}

static void report(bool ok, int err, int error_num, long long value)
{
	char line[128];
	int n;

	if (ok && value >= 0)
		n = snprintf(line, sizeof(line), "ok %d %d %lld\n", err, error_num, value);
	else
		n = snprintf(line, sizeof(line), "%s %d %d -\n", ok ? "ok" : "fail", err, error_num);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)write_result(line, (size_t)n);
	close(result_fd);
}

/* Whether the loaded configuration's KEY reads EXPECTED (when given). An
 * unset key reads as empty: liblxc returns 0 and writes nothing then. */
static bool config_reads(struct lxc_container *c, const char *key, const char *expected)
{
	char *buf;
	bool same;
	int n, got;

	if (!expected)
		return true;
	n = c->get_config_item(c, key, NULL, 0);
	if (n <= 0)
		return expected[0] == '\0';
	buf = calloc((size_t)n + 1, 1);
	if (!buf)
		return false;
	got = c->get_config_item(c, key, buf, n + 1);
	same = got == n && strcmp(buf, expected) == 0;
	free(buf);
	return same;
}

/* A refusal before liblxc's call: WORD is stale, gone or noload. */
static void report_refusal(const char *word, int err)
{
	char line[64];
	int n;

	n = snprintf(line, sizeof(line), "%s %d 0 -\n", word, err);
	if (n > 0 && (size_t)n < sizeof(line))
		(void)write_result(line, (size_t)n);
	close(result_fd);
}

/* Writes each line of PATH (a /proc/.../cgroup file) as "cgroup LINE\n".
 * Best effort: the crate treats a missing line as a cgroup not to note. */
static void report_cgroups(const char *path)
{
	char buf[16384];
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	while (len < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	for (char *line = buf, *end; *line; line = end + 1) {
		end = strchr(line, '\n');
		if (!end)
			break; /* a cut line (the buffer is full) is not reported */
		if (end == line)
			continue;
		if (!write_result("cgroup ", 7) || !write_result(line, (size_t)(end - line + 1)))
			return;
	}
}

/* The calls that act on a container that exists: refused with "gone" when
 * it does not (any more). (The snapshot destroys need only the container's
 * name and lxcpath, as in liblxc.) */
static bool needs_defined(const char *op)
{
	static const char *const ops[] = {"destroy", "destroy_with_snapshots", "rename", "restore"};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i]) == 0)
			return true;
	return false;
}

/* The option OP cannot go without, if any. */
static const char *required_option(const char *op)
{
	static const struct {
		const char *op, *key;
	} table[] = {{"clone", "newname"},	    {"restore", "snapname"}, {"restore", "newname"},
		     {"snapshot_destroy", "snapname"}, {"rename", "newname"}};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(op, table[i].op) == 0 && !get(table[i].key))
			return table[i].key;
	return NULL;
}

static int usage(const char *why)
{
	fprintf(stderr, "lxc-rs-helper: %s (this program is run by the lxc crate)\n", why);
	return 2;
}

static void init_log(void)
{
	struct lxc_log log;

	if (!get("log.file") && !get("log.level") && !get("log.prefix") && !get("log.name") &&
	    !get("log.quiet"))
		return;
	memset(&log, 0, sizeof(log));
	log.name = get("log.name");
	log.lxcpath = get("log.lxcpath");
	log.file = get("log.file");
	log.level = get("log.level");
	log.prefix = get("log.prefix");
	log.quiet = get_bool("log.quiet");
	(void)lxc_log_init(&log);
}

static int run_op(int argc, char *argv[])
{
	struct lxc_container *c;
	const char *op, *name, *lxcpath, *v;
	char **args = NULL;
	bool ok = false;
	long long value = -1;
	int err, i;

	if (argc < 5)
		return usage("too few arguments");
	{
		char *end;
		long fd = strtol(argv[1], &end, 10);

		if (*argv[1] == '\0' || *end != '\0' || fd < 3 || fd > 65535)
			return usage("bad result descriptor");
		result_fd = (int)fd;
	}
	op = argv[2];
	name = argv[3];
	lxcpath = argv[4];
	for (i = 5; i < argc; i += 2) {
		if (strcmp(argv[i], "--") == 0) {
			args = &argv[i + 1];
			break;
		}
		if (i + 1 >= argc || nopts == MAX_OPTS)
			return usage("bad option list");
		opts[nopts].key = argv[i];
		opts[nopts].value = argv[i + 1];
		nopts++;
	}
	if (required_option(op)) {
		fprintf(stderr, "lxc-rs-helper: %s needs %s\n", op, required_option(op));
		return usage("missing option");
	}
	/* The caller's result pipe must not reach liblxc's children. */
	(void)fcntl(result_fd, F_SETFD, FD_CLOEXEC);

	init_log();

	errno = 0;
	c = lxc_container_new(name, lxcpath);
	if (!c) {
		/* A configuration file that does not parse, mostly. */
		report_refusal("noload", errno > 0 ? errno : 0);
		return 0;
	}
	if (needs_defined(op) && !c->is_defined(c)) {
		report_refusal("gone", 0);
		lxc_container_put(c);
		return 0;
	}

	if (get("config") || get("noconfig")) {
		c->clear_config(c);
		v = get("config");
		if (v && !c->load_config(c, v)) {
			report(false, errno, 0, -1);
			lxc_container_put(c);
			return 0;
		}
	}

	if (!config_reads(c, "lxc.rootfs.path", get("expect.rootfs")) ||
	    !config_reads(c, "lxc.rootfs.managed", get("expect.managed"))) {
		report_refusal("stale", 0);
		lxc_container_put(c);
		return 0;
	}

	errno = 0;
	if (strcmp(op, "create") == 0) {
		/* liblxc 6.0.6 appended rbd.rbduser to struct bdev_specs (72 to
		 * 80 bytes on LP64): a helper built with an older header and
		 * run with a newer library would hand it a struct whose tail
		 * liblxc reads past, from this stack. The bytes after the
		 * header's struct are zero, as a caller of the newer header
		 * leaves a member it does not set (rbduser: the global
		 * lxc.bdev.rbd.rbduser), up to far more than any release's
		 * struct (lxc_sys::layouts, LARGEST_BDEV_SPECS_SIZE, checked
		 * against BDEV_SPECS_BUFFER in create.rs). */
		struct {
			struct bdev_specs s;
			unsigned char tail[128];
		} padded;
		bool have_specs = false;

		memset(&padded, 0, sizeof(padded));
		/* The template inherits the environment (also through
		 * lxc-usernsexec for an id-mapped container). */
		if (get("cachepath") && setenv("LXC_CACHE_PATH", get("cachepath"), 1) < 0) {
			report(false, errno, 0, -1);
			lxc_container_put(c);
			return 0;
		}
#define specs padded.s
#define SPEC(key, field)                                     \
	do {                                                 \
		const char *s_ = get(key);                   \
		if (s_) {                                    \
			field = (char *)s_;                  \
			have_specs = true;                   \
		}                                            \
	} while (0)
		SPEC("fstype", specs.fstype);
		SPEC("zfsroot", specs.zfs.zfsroot);
		SPEC("lvm.vg", specs.lvm.vg);
		SPEC("lvm.lv", specs.lvm.lv);
		SPEC("lvm.thinpool", specs.lvm.thinpool);
		SPEC("dir", specs.dir);
		SPEC("rbd.name", specs.rbd.rbdname);
		SPEC("rbd.pool", specs.rbd.rbdpool);
#undef SPEC
		if (get("fssize")) {
			specs.fssize = (uint64_t)get_num("fssize", 0);
			have_specs = true;
		}
		if (get("specs"))
			have_specs = true;
		ok = c->create(c, get("template"), get("bdev"), have_specs ? &specs : NULL,
			       (int)get_num("flags", 0), args);
#undef specs
	} else if (strcmp(op, "clone") == 0) {
		struct lxc_container *c2;

		c2 = c->clone(c, get("newname"), get("newpath"), (int)get_num("flags", 0), get("bdev"),
			      get("bdevdata"), (uint64_t)get_num("newsize", 0), args);
		ok = c2 != NULL;
		err = errno;
		if (c2)
			lxc_container_put(c2);
		errno = err;
	} else if (strcmp(op, "snapshot") == 0) {
		int n = c->snapshot(c, get("comment"));
		ok = n >= 0;
		if (ok)
			value = n;
	} else if (strcmp(op, "restore") == 0) {
		ok = c->snapshot_restore(c, get("snapname"), get("newname"));
	} else if (strcmp(op, "start") == 0) {
		ok = c->want_daemonize(c, true) && c->want_close_all_fds(c, get_bool("closeallfds"));
		if (ok)
			ok = c->start(c, get_bool("useinit") ? 1 : 0, args);
		err = errno;
		report_cgroups("/proc/self/cgroup");
		if (ok) {
			pid_t init = c->init_pid(c);
			char path[64];

			if (init > 0) {
				snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)init);
				report_cgroups(path);
			}
		}
		errno = err;
	} else if (strcmp(op, "destroy") == 0) {
		ok = c->destroy(c);
	} else if (strcmp(op, "destroy_with_snapshots") == 0) {
		ok = c->destroy_with_snapshots(c);
	} else if (strcmp(op, "snapshot_destroy") == 0) {
		ok = c->snapshot_destroy(c, get("snapname"));
	} else if (strcmp(op, "snapshot_destroy_all") == 0) {
		ok = c->snapshot_destroy_all(c);
	} else if (strcmp(op, "rename") == 0) {
		ok = c->rename(c, get("newname"));
	} else {
		lxc_container_put(c);
		return usage("unknown operation");
	}
	err = errno;
	report(ok, err > 0 ? err : 0, c->error_num, value);
	lxc_container_put(c);
	return 0;
}

/* ----- the server ---------------------------------------------------------
 *
 * "lxc-rs-helper serve FD": FD is one end of a SOCK_SEQPACKET socket pair
 * whose other end the crate keeps. The program forks at once and its parent
 * exits, so the server is nobody's child to wait for (it goes to the
 * nearest subreaper, as a daemon does); then it keeps one child forked
 * ahead, the spare, which reads one request (one message) from the socket,
 * tells the server, which forks the next spare, and serves it; until the
 * crate's end is closed (the process that started it ended). The spare runs
 * the request as a fresh helper would: the same code, in a copy of a
 * single-threaded process that has called nothing of liblxc's, so the exec
 * and the dynamic loading of liblxc (about 1.5 ms) are paid once, not per
 * call, and the fork is paid before the request comes.
 *
 * A request is one message of NUL-terminated strings: the umask in octal,
 * which of the standard descriptors follow ("012", a subset), the number of
 * arguments, the arguments (those of the usage above after RESULT_FD; a
 * value "@config" stands for the configuration descriptor), then the
 * environment, one "NAME=VALUE" each. Its descriptors, in order: the result
 * pipe, the working directory, the standard descriptors named, and the
 * configuration memfd when an argument is "@config". Anything malformed is
 * dropped, with its descriptors closed: the caller then reads the end of
 * its result pipe without a line.
 */

#define MAX_REQUEST (256 * 1024)
#define MAX_REQUEST_FDS 8
#define MAX_REQUEST_ARGS 256
/* The line a spare writes first on a request's result pipe when it takes
 * the request: a served call that reads nothing at all ran nowhere (the
 * server died before a spare took it), and the crate sends it again. */
#define TAKEN_LINE "taken\n"
/* A server with no request for this long ends (see serve()). */
#define IDLE_MS 5000

/* The next NUL-terminated string of [*p, end), or NULL. */
static char *next_string(char **p, char *end)
{
	char *s = *p, *z;

	if (s >= end)
		return NULL;
	z = memchr(s, '\0', (size_t)(end - s));
	if (!z)
		return NULL;
	*p = z + 1;
	return s;
}

/* In the forked child: sets up what the caller's own helper would have
 * inherited, then runs the request. Returns the exit status. */
static int serve_one(char *buf, size_t len, int *fds, int nfds)
{
	char *p = buf, *end = buf + len, *s, *stdio, *args[MAX_REQUEST_ARGS + 3];
	char result_arg[16], config_arg[32];
	int next = 0, result, cwd, config = -1, nargs;
	bool options = true;
	long n;

	s = next_string(&p, end);
	if (!s || nfds < 2)
		return 2;
	umask((mode_t)strtol(s, NULL, 8) & 0777);
	stdio = next_string(&p, end);
	s = next_string(&p, end);
	if (!stdio || !s)
		return 2;
	n = strtol(s, NULL, 10);
	if (n < 0 || n > MAX_REQUEST_ARGS)
		return 2;
	nargs = (int)n;
	result = fds[next++];
	cwd = fds[next++];
	/* A standard descriptor the caller did not have open keeps the
	 * server's /dev/null, as an exec'd helper opens it onto a closed one:
	 * closed, liblxc's own descriptors would land on 0 to 2, and a
	 * daemonized start's null_stdfds() would overwrite them. */
	for (int std = 0; std < 3; std++) {
		if (strchr(stdio, '0' + std) && (next >= nfds || dup2(fds[next++], std) < 0))
			return 2;
	}
	if (fchdir(cwd) < 0)
		return 2;
	args[0] = "lxc-rs-helper";
	snprintf(result_arg, sizeof(result_arg), "%d", result);
	args[1] = result_arg;
	for (int i = 0; i < nargs; i++) {
		s = next_string(&p, end);
		if (!s)
			return 2;
		/* The value of the "config" option only (options come in
		 * pairs after OP NAME LXCPATH, before "--"). */
		if (i >= 3 && (i - 3) % 2 == 0 && strcmp(s, "--") == 0)
			options = false;
		if (options && i >= 4 && (i - 3) % 2 == 1 && strcmp(args[1 + i], "config") == 0 &&
		    strcmp(s, "@config") == 0) {
			if (config < 0) {
				if (next >= nfds)
					return 2;
				config = fds[next++];
			}
			snprintf(config_arg, sizeof(config_arg), "/proc/self/fd/%d", config);
			s = config_arg;
		}
		args[2 + i] = s;
	}
	args[2 + nargs] = NULL;
	/* The rest is the caller's environment. */
	if (clearenv() != 0)
		return 2;
	while ((s = next_string(&p, end)))
		if (strchr(s, '=') && putenv(s) != 0)
			return 2;
	/* Only the result pipe and the configuration stay open (both
	 * close-on-exec: received with MSG_CMSG_CLOEXEC). */
	for (int i = 0; i < nfds; i++)
		if (fds[i] != result && fds[i] != config)
			close(fds[i]);
	return run_op(2 + nargs, args);
}

/* Closes every descriptor from FIRST up (close_range, or one by one up to
 * the limit on kernels before 5.9). */
static void close_from(int first)
{
	struct rlimit rl;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned int)first, ~0U, 0) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576)
		rl.rlim_cur = 1048576;
	for (int fd = first; fd < (int)rl.rlim_cur; fd++)
		close(fd);
}

/* The server's spare (see serve()): waits for the next request on SOCK and
 * serves it, after telling the server on NOTE. It dies with the server
 * while it waits: a spare left alone would keep the socket open with
 * nobody to read past its one request. */
static _Noreturn void spare(int sock, int note, pid_t caller, pid_t server)
{
	static char buf[MAX_REQUEST];

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != server)
		_exit(0);
	for (;;) {
		union {
			char buf[CMSG_SPACE(MAX_REQUEST_FDS * sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
			struct cmsghdr align;
		} control;
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = control.buf,
				     .msg_controllen = sizeof(control.buf)};
		int fds[MAX_REQUEST_FDS], nfds = 0;
		bool from_caller = false;
		ssize_t got;

		got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			/* The crate's end is closed, or the socket drained
			 * after the server's idle time: the server ends. */
			(void)write(note, "e", 1);
			_exit(0);
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			if (cm->cmsg_level != SOL_SOCKET)
				continue;
			if (cm->cmsg_type == SCM_CREDENTIALS && cm->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
				struct ucred cred;

				memcpy(&cred, CMSG_DATA(cm), sizeof(cred));
				/* The process that started the server, with the
				 * ids it had then (a process that dropped its
				 * privileges since gets a new server). */
				from_caller = cred.pid == caller && cred.uid == getuid() && cred.gid == getgid();
				continue;
			}
			if (cm->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
				if (nfds < MAX_REQUEST_FDS)
					fds[nfds++] = fd;
				else
					close(fd);
			}
		}
		if (from_caller && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			/* A helper now: it outlives the server, as a forked
			 * helper always did, and the server makes the next
			 * spare. (A server killed meanwhile reads nothing:
			 * this helper then holds the socket's last reference
			 * and closes it, so the crate's next send fails and
			 * starts another server. A request sent after the
			 * server died and before its spare did is lost with
			 * the socket: the crate reads nothing, not even the
			 * taken line, and sends it again.) */
			(void)prctl(PR_SET_PDEATHSIG, 0);
			/* First on the result pipe: the crate sends a call
			 * that got nothing at all back once more, to a new
			 * server (see TAKEN_LINE). */
			if (nfds > 0)
				(void)write(fds[0], TAKEN_LINE, sizeof(TAKEN_LINE) - 1);
			(void)write(note, "t", 1);
			close(note);
			close(sock);
			reset_signals();
			exit(serve_one(buf, (size_t)got, fds, nfds));
		}
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

static int serve(const char *arg)
{
	static const int quiet[] = {SIGINT, SIGQUIT, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE};
	char *end;
	long v = strtol(arg, &end, 10);
	int sock, null, one = 1;
	bool draining = false;
	pid_t caller, self, server;
	int silent = 0;

	if (*arg == '\0' || *end != '\0' || v < 3 || v > 65535)
		return usage("bad socket descriptor");
	sock = (int)v;
	if (fcntl(sock, F_SETFD, FD_CLOEXEC) < 0)
		return usage("bad socket descriptor");
	/* Nothing of the caller's kept open but the socket (moved to 3): its
	 * standard descriptors come with each request, its directory too, and
	 * whatever else it left inheritable must not stay open in a process
	 * that outlives the caller's use of it, nor reach a helper. */
	if (sock != 3) {
		if (dup3(sock, 3, O_CLOEXEC) < 0)
			return 1;
		sock = 3;
	}
	close_from(4);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || chdir("/") < 0)
		return 1;
	if (null > 3)
		close(null);
	/* Only the crate's process may ask: each request carries its sender's
	 * credentials, checked below. */
	if (setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
		return 1;
	caller = getppid();
	self = fork();
	if (self < 0)
		return 1;
	if (self > 0) {
		/* The server's pid, sent before this process exits: the crate
		 * reads it once it has waited for this process. */
		if (send(sock, &self, sizeof(self), MSG_NOSIGNAL) != (ssize_t)sizeof(self))
			return 1;
		_exit(0);
	}
	/* A terminal's signals to the caller's process group do not stop or
	 * end the server (its helpers get their defaults back). The children
	 * are reaped by the kernel. */
	for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
		signal(quiet[i], SIG_IGN);
	signal(SIGCHLD, SIG_IGN);
	server = getpid();
	/* One spare at a time: a child forked ahead of the next request, which
	 * takes that request from the socket itself and serves it. The crate's
	 * call then waits for one wake-up (the spare's) instead of two (the
	 * server's, then its fork's). The spare says 't' on its pipe when it
	 * took a request (the server forks the next spare) and 'e' when the
	 * socket ended (the crate's end closed, or drained after the idle
	 * time: the server ends). */
	for (;;) {
		int note[2];
		char word = 0;
		pid_t pid;

		if (pipe2(note, O_CLOEXEC) < 0)
			return 1;
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			close(note[0]);
			spare(sock, note[1], caller, server);
		}
		close(note[1]);
		for (;;) {
			struct pollfd pfd = {.fd = note[0], .events = POLLIN};
			int ready = poll(&pfd, 1, draining ? -1 : IDLE_MS);
			ssize_t n;

			if (ready < 0 && errno == EINTR)
				continue;
			if (ready == 0) {
				/* Idle: no new request is accepted (a sender gets
				 * EPIPE and starts another server), the ones
				 * already queued are served, then the server
				 * ends, so that it does not keep the cgroups and
				 * namespaces of a context no longer used. The
				 * spare's wait for a request then ends. */
				if (shutdown(sock, SHUT_RD) < 0)
					return 0;
				draining = true;
				continue;
			}
			n = read(note[0], &word, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				word = 0; /* the spare died without a word: killed */
			break;
		}
		close(note[0]);
		if (word == 'e' || (word == 0 && draining))
			return 0;
		/* Spares that die before they take anything (killed, or
		 * failing at their start) are replaced, but not without end:
		 * after three in a row the server ends, and the crate's next
		 * call starts another (or runs a helper of its own). */
		silent = word == 0 ? silent + 1 : 0;
		if (silent >= 3)
			return 1;
	}
}


/* ----- the walk of an image export ----------------------------------------
 *
 * "lxc-rs-helper walk SOCKET_FD ROOT SENDFDS [PATTERN]...": the crate runs
 * it through lxc-usernsexec with an unprivileged container's id mapping,
 * as root of a user namespace that owns the container's files, so that it
 * can read all of them and sees their owners as the container does. It
 * visits ROOT and all below it (through directory descriptors, links not
 * followed, names in byte order, a directory before what it holds) and
 * sends one SOCK_SEQPACKET message per member on SOCKET_FD: a struct
 * walk_msg, the member's name ("./", "./a", "./a/b") and, for a symbolic
 * link, its target; with SENDFDS 1, a regular file's message carries a
 * read-only descriptor of it. Members whose name matches a PATTERN
 * (fnmatch(3), no flags: tar's anchored exclusion) are skipped, with all
 * below them, and so is what is mounted below ROOT (another mount id:
 * tar's --one-file-system; the mount point itself stays, empty), and a
 * tree deeper than WALK_MAX_DEPTH (or a quarter of the open files' soft
 * limit) fails.
 * The last message is kind 'Z' (done) or 'X' (failed: errno and the
 * member). The crate builds the archive from that. */
struct walk_msg {
	uint32_t kind; /* 'E' member, 'Z' done, 'X' failed */
	uint32_t mode, uid, gid;
	int32_t err;
	uint32_t name_len, link_len;
	uint32_t pad;
	uint64_t size, nlink, dev, ino, rdev;
	int64_t mtime;
};

#define WALK_MAX_DEPTH 4096

static int walk_sock = -1;
static uint64_t walk_root_mnt; /* 0: unknown (a kernel before 5.8) */
/* WALK_MAX_DEPTH, or a quarter of the soft limit of open files (a
 * directory per level stays open). */
static int walk_max_depth = WALK_MAX_DEPTH;
static bool walk_fds;
static char **walk_patterns;
static int walk_npatterns;

static bool walk_send(const struct walk_msg *m, const char *name, const char *link, int fd)
{
	struct iovec iov[3] = {
		{(void *)m, sizeof(*m)},
		{(void *)name, m->name_len},
		{(void *)link, m->link_len},
	};
	char control[CMSG_SPACE(sizeof(int))];
	struct msghdr hdr = {.msg_iov = iov, .msg_iovlen = link ? 3 : 2};

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(control, 0, sizeof(control));
		hdr.msg_control = control;
		hdr.msg_controllen = sizeof(control);
		c = CMSG_FIRSTHDR(&hdr);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		if (sendmsg(walk_sock, &hdr, MSG_NOSIGNAL) >= 0)
			return true;
		if (errno != EINTR)
			return false;
	}
}

/* Reports ERR at member NAME and ends the walk. */
static void walk_fail(int err, const char *name)
{
	struct walk_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = 'X';
	m.err = err;
	m.name_len = (uint32_t)strlen(name);
	(void)walk_send(&m, name, NULL, -1);
	_exit(1);
}

/* The mount id of NAME in DIRFD (statx STATX_MNT_ID, read from the
 * kernel's struct statx: glibc's of older releases lacks the member), or 0
 * where the kernel does not say. */
static uint64_t walk_mnt_id(int dirfd, const char *name, int flags)
{
	unsigned char buf[256];
	uint32_t mask;
	uint64_t id;

	memset(buf, 0, sizeof(buf));
	if (syscall(SYS_statx, dirfd, name, flags | AT_SYMLINK_NOFOLLOW, 0x1000U /* STATX_MNT_ID */, buf) < 0)
		return 0;
	memcpy(&mask, buf, sizeof(mask));
	if (!(mask & 0x1000U))
		return 0;
	memcpy(&id, buf + 144, sizeof(id));
	return id;
}

static bool walk_excluded(const char *name)
{
	for (int i = 0; i < walk_npatterns; i++)
		if (fnmatch(walk_patterns[i], name, 0) == 0)
			return true;
	return false;
}

static int walk_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk_member(const struct stat *st, const char *name, const char *link, int fd)
{
	struct walk_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = 'E';
	m.mode = st->st_mode;
	m.uid = st->st_uid;
	m.gid = st->st_gid;
	m.size = (uint64_t)(st->st_size > 0 ? st->st_size : 0);
	m.nlink = st->st_nlink;
	m.dev = st->st_dev;
	m.ino = st->st_ino;
	m.rdev = st->st_rdev;
	m.mtime = st->st_mtime;
	m.name_len = (uint32_t)strlen(name);
	m.link_len = link ? (uint32_t)strlen(link) : 0;
	if (!walk_send(&m, name, link, fd))
		_exit(1);
}

/* Visits DIRFD (member NAME, DEPTH levels below the root) and all below
 * it; closes DIRFD. */
static void walk_dir(int dirfd, const char *name, int depth)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (fstat(dirfd, &st) < 0)
		walk_fail(errno, name);
	walk_member(&st, strcmp(name, ".") == 0 ? "./" : name, NULL, -1);
	d = fdopendir(dirfd);
	if (!d)
		walk_fail(errno, name);
	errno = 0;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				walk_fail(ENOMEM, name);
		}
		names[n] = strdup(e->d_name);
		if (!names[n++])
			walk_fail(ENOMEM, name);
		errno = 0;
	}
	if (errno)
		walk_fail(errno, name);
	qsort(names, n, sizeof(*names), walk_cmp);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(name) + 1 + strlen(names[i]) + 1;
		char *child = malloc(len);
		int fd;

		if (!child)
			walk_fail(ENOMEM, name);
		snprintf(child, len, "%s/%s", name, names[i]);
		if (walk_excluded(child)) {
			free(child);
			free(names[i]);
			continue;
		}
		if (fstatat(dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT) /* else: removed meanwhile */
				walk_fail(errno, child);
			free(child);
			free(names[i]);
			continue;
		}
		if (walk_root_mnt != 0) {
			uint64_t mnt = walk_mnt_id(dirfd, names[i], 0);

			if (mnt != 0 && mnt != walk_root_mnt) {
				/* A mount point stays, empty; not entered. */
				if (S_ISDIR(st.st_mode))
					walk_member(&st, child, NULL, -1);
				free(child);
				free(names[i]);
				continue;
			}
		}
		if (S_ISDIR(st.st_mode)) {
			if (depth + 1 >= walk_max_depth)
				walk_fail(ELOOP, child);
			fd = openat(dirfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				walk_fail(errno, child);
			walk_dir(fd, child, depth + 1);
		} else if (S_ISLNK(st.st_mode)) {
			/* Used before the next recursion: one buffer serves all. */
			static char link[PATH_MAX + 1];
			ssize_t r = readlinkat(dirfd, names[i], link, PATH_MAX);

			if (r < 0)
				walk_fail(errno, child);
			link[r] = '\0';
			walk_member(&st, child, link, -1);
		} else if (S_ISREG(st.st_mode) && walk_fds) {
			fd = openat(dirfd, names[i], O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
			if (fd < 0)
				walk_fail(errno, child);
			walk_member(&st, child, NULL, fd);
			close(fd);
		} else {
			walk_member(&st, child, NULL, -1);
		}
		free(child);
		free(names[i]);
	}
	free(names);
	closedir(d);
}

static int walk(int argc, char *argv[])
{
	struct walk_msg m;
	int root;

	if (argc < 5)
		return usage("walk SOCKET_FD ROOT SENDFDS [PATTERN]...");
	walk_sock = atoi(argv[2]);
	walk_fds = strcmp(argv[4], "1") == 0;
	walk_patterns = argv + 5;
	walk_npatterns = argc - 5;
	root = open(argv[3], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		walk_fail(errno, "./");
	walk_root_mnt = walk_mnt_id(root, "", AT_EMPTY_PATH);
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < WALK_MAX_DEPTH)
			walk_max_depth = rl.rlim_cur / 4 < 16 ? 16 : (int)(rl.rlim_cur / 4);
	}
	walk_dir(root, ".", 0);
	memset(&m, 0, sizeof(m));
	m.kind = 'Z';
	return walk_send(&m, "", NULL, -1) ? 0 : 1;
}

int main(int argc, char *argv[])
{
	/* A closed standard descriptor gets /dev/null: liblxc (and what it
	 * runs) would otherwise take 0 to 2 for its own descriptors and have
	 * them clobbered as stdio. */
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDWR);

			if (n >= 0 && n != fd) {
				(void)dup2(n, fd);
				close(n);
			}
		}
	}
	reset_signals();
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "walk") == 0)
		return walk(argc, argv);
	return run_op(argc, argv);
}
