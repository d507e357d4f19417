/* How fast this machine runs right now, as a number to print beside a
 * benchmark's: the shared vCPUs here have run the same code at speeds 2.5x
 * apart on different days, with no steal time shown and no performance
 * counters to read (perf has none in this VM). The loop is one chain of
 * dependent additions: each waits for the one before, a cycle at least, and
 * the x86-64 cores here run the loop at one a cycle, so additions per second
 * is about the clock the program actually got. Written here because it is
 * a few lines and no packaged tool reports this without counters. */
#include <stdio.h>
#include <time.h>

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void) {
  const unsigned long rounds = 500000000UL;
  double best = 1e9;
  for (int run = 0; run < 3; run++) {
    unsigned long x = 0;
    double start = seconds();
    for (unsigned long i = 0; i < rounds; i++)
      __asm__ volatile("add $1, %0" : "+r"(x));
    double took = seconds() - start;
    if (took < best)
      best = took;
  }
  printf("%.2f G dependent additions/s\n", rounds / best / 1e9);
  return 0;
}
