/* The core's clock while it runs, for the peak FLOP/s of step_profile.py (--ghz): a chain of
 * dependent integer adds retires one add per cycle, so adds per second is the clock.
 * /proc/cpuinfo's "cpu MHz" is the nominal clock in a VM and misses the boost.
 *
 *     gcc -O1 -o /tmp/clock benchmarks/clock.c && /tmp/clock
 *
 * Run it on a quiet machine: another process on the core halves what it sees. */
#include <stdio.h>
#include <time.h>

#define ADD "add $1, %0\n\t"

int main(void) {
    const long loops = 200000000L; /* 10 dependent adds each */
    long x = 0;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0; i < loops; i++) {
        __asm__ volatile(ADD ADD ADD ADD ADD ADD ADD ADD ADD ADD : "+r"(x));
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double seconds = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) * 1e-9;
    printf("%.2f GHz (%ld adds in %.3f s)\n", x / seconds / 1e9, x, seconds);
    return 0;
}
