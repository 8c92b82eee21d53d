/*
 * runstat: run a command and record its wall time and peak resident set
 * size, like GNU time -f "%e %M", without needing that package.
 *
 * The peak RSS the kernel reports for a child includes the memory of the
 * process that forked it (the high-water mark survives fork and exec), so
 * the benchmark driver, a Python process, cannot measure its clients
 * directly: this small program forks them instead.
 *
 * It also samples the child's RssAnon (/proc/PID/status) every 2 ms: its
 * own memory, without the shared library pages that count in the peak RSS.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The child's RssAnon in KiB, or -1 (gone, or not yet exec'd into). */
static long
rss_anon(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* wait4 for pid, sampling its RssAnon meanwhile; the peak in *anon. */
static int
wait_sampling(pid_t pid, int *status, struct rusage *ru, long *anon)
{
	const struct timespec tick = { 0, 2000000 };
	pid_t r;

	*anon = 0;
	while ((r = wait4(pid, status, WNOHANG, ru)) == 0) {
		long kib = rss_anon(pid);

		if (kib > *anon)
			*anon = kib;
		nanosleep(&tick, NULL);
	}
	return r < 0 ? -1 : 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct rusage ru;
	FILE *out;
	double t0;
	long anon;
	pid_t pid;
	int status;

	if (argc < 4 || strcmp(argv[1], "-o") != 0) {
		fprintf(stderr, "usage: runstat -o FILE COMMAND [ARG...]\n"
		    "Runs COMMAND; writes \"seconds=S maxrss_kib=K maxanon_kib=A\" to FILE;\n"
		    "exits with its status (128+N when killed by signal N).\n");
		return 64;
	}
	if ((out = fopen(argv[2], "w")) == NULL) {
		perror(argv[2]);
		return 70;
	}
	t0 = now();
	if ((pid = fork()) < 0) {
		perror("fork");
		return 70;
	}
	if (pid == 0) {
		/* Do not outlive a benchmark that was killed. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execvp(argv[3], argv + 3);
		perror(argv[3]);
		_exit(127);
	}
	if (wait_sampling(pid, &status, &ru, &anon) < 0) {
		perror("wait4");
		return 70;
	}
	fprintf(out, "seconds=%.6f maxrss_kib=%ld maxanon_kib=%ld\n", now() - t0, ru.ru_maxrss,
	    anon);
	if (fclose(out) != 0) {
		perror(argv[2]);
		return 70;
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
