/*
 * The C side of the fleet benchmark (bench/fleet): liblxc called directly,
 * the floor. Speaks the shared harness's line protocol:
 *
 *   fleet_c OP LXCPATH N      (environment: LXCBENCH_IMAGE, LXCBENCH_FLEET)
 *
 * One sample: from nothing to LXCBENCH_FLEET (50) running containers, each
 * started daemonized and waited for RUNNING, one after another:
 *   fleet_from_image  a base made from the image (the local template with
 *                     LXCBENCH_IMAGE/meta.tar.xz and rootfs.tar.xz), then
 *                     each container an overlay snapshot of it
 *                     (clone with LXC_CLONE_SNAPSHOT, bdev "overlay")
 *   fleet_full_copy   the same base, each container a full copy (dir)
 *   fleet_busybox     each container made by the busybox template
 * Every container has lxc.net.0.type = empty. After each sample (not
 * timed) everything is stopped and destroyed, also on failure.
 *
 *   gcc -O2 fleet_c.c $(pkg-config --cflags --libs lxc) -o fleet_c
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lxc/lxccontainer.h>

#define IMPL "c"
#define MAX_FLEET 500

static const char *op, *lxcpath;
static int fleet = 50;
static struct lxc_container *made[MAX_FLEET + 1];
static int nmade;
/* Per container: making it (clone or create), starting it (to RUNNING). */
static double *make_us, *start_us;
static int ntimed;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Stops and destroys what a sample made, copies first, then the base. */
static void clean(void)
{
	for (int i = nmade - 1; i >= 0; i--) {
		struct lxc_container *c = made[i];

		if (c->is_running(c)) {
			c->stop(c);
			c->wait(c, "STOPPED", 10);
		}
		if (c->is_defined(c))
			c->destroy(c);
		lxc_container_put(c);
	}
	nmade = 0;
}

static struct lxc_container *fresh(const char *name)
{
	struct lxc_container *c = lxc_container_new(name, lxcpath);

	if (!c)
		return NULL;
	made[nmade++] = c;
	if (c->is_defined(c)) {
		fprintf(stderr, "[c] %s exists already\n", name);
		return NULL;
	}
	if (!c->set_config_item(c, "lxc.net.0.type", "empty"))
		return NULL;
	return c;
}

static bool run_up(struct lxc_container *c)
{
	return c->start(c, 0, NULL) && c->wait(c, "RUNNING", 10);
}

static bool sample(void)
{
	const char *image = getenv("LXCBENCH_IMAGE");
	char name[64], meta[4096], rootfs[4096];
	struct lxc_container *base = NULL;

	if (strcmp(op, "fleet_busybox") != 0) {
		char *args[] = {"--metadata", meta, "--fstree", rootfs, NULL};

		if (!image)
			return false;
		snprintf(meta, sizeof(meta), "%s/meta.tar.xz", image);
		snprintf(rootfs, sizeof(rootfs), "%s/rootfs.tar.xz", image);
		base = fresh("fb-c");
		if (!base || !base->create(base, "local", NULL, NULL, LXC_CREATE_QUIET, args)) {
			fprintf(stderr, "[c] create of the base failed\n");
			return false;
		}
	}
	for (int i = 0; i < fleet; i++) {
		struct lxc_container *c;
		double tm = now_us(), tr;

		snprintf(name, sizeof(name), "fb-c-%02d", i);
		if (!base) {
			c = fresh(name);
			if (!c || !c->create(c, "busybox", NULL, NULL, LXC_CREATE_QUIET, NULL)) {
				fprintf(stderr, "[c] create of %s failed\n", name);
				return false;
			}
		} else {
			bool snap = strcmp(op, "fleet_from_image") == 0;

			c = base->clone(base, name, NULL, snap ? LXC_CLONE_SNAPSHOT : 0, snap ? "overlay" : NULL,
					NULL, 0, NULL);
			if (!c) {
				fprintf(stderr, "[c] clone to %s failed\n", name);
				return false;
			}
			/* The handle clone returns cannot start a full dir copy
			 * on liblxc 5.0.2 ("Failed to open dir:..." at the
			 * rootfs pinning: its lxc.rootfs.path keeps the "dir:"
			 * prefix unparsed); a handle opened afresh can. A
			 * snapshot's handle starts as it is. */
			if (!snap) {
				lxc_container_put(c);
				c = lxc_container_new(name, lxcpath);
				if (!c)
					return false;
			}
			made[nmade++] = c;
		}
		tr = now_us();
		if (!run_up(c)) {
			fprintf(stderr, "[c] start of %s failed\n", name);
			return false;
		}
		make_us[ntimed] = tr - tm;
		start_us[ntimed++] = now_us() - tr;
	}
	return true;
}

int main(int argc, char *argv[])
{
	double *s;
	int n;

	if (argc != 4) {
		fprintf(stderr, "usage: %s OP LXCPATH N\n", argv[0]);
		return 2;
	}
	op = argv[1];
	lxcpath = argv[2];
	n = atoi(argv[3]);
	if (getenv("LXCBENCH_FLEET"))
		fleet = atoi(getenv("LXCBENCH_FLEET"));
	if (n <= 0 || fleet <= 0 || fleet > MAX_FLEET)
		return 2;
	if (strcmp(op, "fleet_from_image") && strcmp(op, "fleet_full_copy") && strcmp(op, "fleet_busybox")) {
		printf("op=%s impl=%s unsupported=\"unknown op\"\n", op, IMPL);
		return 0;
	}
	s = calloc((size_t)n, sizeof(*s));
	make_us = calloc((size_t)n * (size_t)fleet, sizeof(double));
	start_us = calloc((size_t)n * (size_t)fleet, sizeof(double));
	if (!s || !make_us || !start_us)
		return 1;
	for (int i = 0; i < n; i++) {
		double t0 = now_us();
		bool ok = sample();

		s[i] = now_us() - t0;
		clean();
		if (!ok) {
			printf("op=%s impl=%s error=\"a create, copy or start failed\"\n", op, IMPL);
			return 1;
		}
	}
	qsort(s, (size_t)n, sizeof(*s), cmp);
	{
		double med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
		double p95 = s[(int)(0.95 * n + 0.999) - 1 < 0 ? 0 : (int)(0.95 * n + 0.999) - 1];

		qsort(make_us, (size_t)ntimed, sizeof(double), cmp);
		qsort(start_us, (size_t)ntimed, sizeof(double), cmp);
		printf("op=%s impl=%s n=%d median_us=%.3f p95_us=%.3f ops_s=%.2f fleet=%d per_container_us=%.0f "
		       "make_med_us=%.0f start_med_us=%.0f\n",
		       op, IMPL, n, med, p95, 1e6 / med, fleet, med / fleet, make_us[ntimed / 2], start_us[ntimed / 2]);
	}
	free(s);
	return 0;
}
