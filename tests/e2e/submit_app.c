/* A tiny "driver" for tests/e2e/test_submit.sh: a program run by `ember submit` (client or
 * cluster mode) that does not need libember, so that each run's behaviour is fixed by its
 * arguments alone:
 *
 *   submit_app env FILE [ARGS...]   writes its EMBER_* environment, cwd= and arg= lines to FILE
 *                                   (atomically: FILE.tmp then rename) and exits 0
 *   submit_app fail-once MARKER     no MARKER: creates it, says so on stderr, exits 1;
 *                                   MARKER present: says so on stdout, exits 0
 *   submit_app fail                 says so on stderr and exits 3
 *   submit_app sleep PIDS           appends its pid to PIDS and sleeps until killed
 *
 * Output lines are flushed at once (stdout may be a file). Built by the test with cc only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int write_env(const char *path, int argc, char **argv)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "submit_app: cannot write %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    for (char **e = environ; *e; e++)
        if (!strncmp(*e, "EMBER_", 6)) fprintf(f, "%s\n", *e);
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) fprintf(f, "cwd=%s\n", cwd);
    for (int i = 0; i < argc; i++) fprintf(f, "arg=%s\n", argv[i]);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "submit_app: cannot write %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "env")) return write_env(argv[2], argc - 3, argv + 3);
    if (argc == 3 && !strcmp(argv[1], "fail-once")) {
        if (access(argv[2], F_OK) == 0) {
            printf("submit_app: marker %s found: succeeding (pid %d)\n", argv[2], (int)getpid());
            return 0;
        }
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) close(fd);
        fprintf(stderr, "submit_app: no marker %s: created it, failing (pid %d)\n", argv[2],
                (int)getpid());
        return 1;
    }
    if (argc == 2 && !strcmp(argv[1], "fail")) {
        fprintf(stderr, "submit_app: failing on purpose\n");
        return 3;
    }
    if (argc == 3 && !strcmp(argv[1], "sleep")) {
        FILE *f = fopen(argv[2], "a");
        if (!f) return 1;
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
        printf("submit_app: sleeping (pid %d)\n", (int)getpid());
        for (;;) pause();
    }
    fprintf(stderr,
            "usage: submit_app env FILE [ARGS...] | fail-once MARKER | fail | sleep PIDS\n");
    return 2;
}
