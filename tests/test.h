/* A small test runner: TEST(name) { ... } functions, CHECK / CHECK_EQ_* assertions, each test
 * run in its own forked process with a timeout, "N passed, N failed" at the end. A test file
 * is one executable registered with ctest. Run one test: ./test_x NAME.
 * EMBER_TEST_KEEP=1 keeps each test's temporary directory (test_tmpdir()). */
#ifndef EMBER_TEST_H
#define EMBER_TEST_H

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*test_fn)(void);
struct test_case {
    const char *name;
    test_fn fn;
};
#define TEST_MAX 512
static struct test_case test_cases[TEST_MAX];
static int test_count;
static char test_tmp[1024];

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void test_register_##name(void)                            \
    {                                                                                              \
        if (test_count < TEST_MAX)                                                                 \
            test_cases[test_count++] = (struct test_case){#name, test_##name};                     \
    }                                                                                              \
    static void test_##name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define CHECK_MSG(cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ != check_b_) {                                                                \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    check_a_, check_b_);                                                           \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
#define CHECK_EQ_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (strcmp(check_a_, check_b_) != 0) {                                                     \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a,  \
                    #b, check_a_, check_b_);                                                       \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)
/* An Ember call that must return 0; prints em_errmsg() otherwise. */
#define CHECK_OK(call)                                                                             \
    do {                                                                                           \
        int check_rc_ = (call);                                                                    \
        if (check_rc_ != 0) {                                                                      \
            fprintf(stderr, "%s:%d: %s returned %d: %s\n", __FILE__, __LINE__, #call, check_rc_,   \
                    em_errmsg());                                                                  \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* A fresh temporary directory for the running test. */
static inline const char *test_tmpdir(void)
{
    return test_tmp;
}

static int test_run_one(const struct test_case *tc, int timeout_s)
{
    const char *base = getenv("EMBER_TEST_TMP");
    if (!base) base = "/tmp";
    mkdir(base, 0777);
    snprintf(test_tmp, sizeof test_tmp, "%s/%s-%d-XXXXXX", base, tc->name, (int)getpid());
    if (!mkdtemp(test_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        alarm((unsigned)timeout_s);
        tc->fn();
        exit(0); /* not _exit: LeakSanitizer checks at exit in sanitizer builds */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && WIFSIGNALED(status))
        fprintf(stderr, "test %s killed by signal %d%s\n", tc->name, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    if (!getenv("EMBER_TEST_KEEP")) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmp);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", test_tmp);
    }
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    int timeout_s = getenv("EMBER_TEST_TIMEOUT") ? atoi(getenv("EMBER_TEST_TIMEOUT")) : 240;
    int passed = 0, failed = 0;
    for (int i = 0; i < test_count; i++) {
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++) want |= strcmp(argv[a], test_cases[i].name) == 0;
            if (!want) continue;
        }
        fflush(NULL);
        if (test_run_one(&test_cases[i], timeout_s) == 0) {
            printf("ok   %s\n", test_cases[i].name);
            passed++;
        } else {
            printf("FAIL %s\n", test_cases[i].name);
            failed++;
        }
        fflush(stdout);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
