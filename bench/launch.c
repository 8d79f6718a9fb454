/* Prints CLOCK_MONOTONIC (ns) to stderr, then execs argv[1..]: with bench/stamp.c as the
 * runtime, the difference is the time from the caller's exec to the runtime's start. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec t;
    if (argc < 2) return 2;
    clock_gettime(CLOCK_MONOTONIC, &t);
    fprintf(stderr, "%lld\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    execv(argv[1], argv + 1);
    return 127;
}
