/* The floor for a runtime wrapper: exec the runtime and nothing else.
 * Usage: floor [RUNTIME] ARGS...  argv[1] is the runtime (default /usr/sbin/runc). */
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    const char *rt = argc > 1 ? argv[1] : "/usr/sbin/runc";
    char **args = argc > 1 ? argv + 1 : argv;
    execv(rt, args);
    perror(rt);
    return 127;
}
