/*
 * platform/user.c: the lf_platform.h shim for userspace (tests, benchmarks,
 * the demonstration). Hosted: this file may use libc; the core may not.
 *
 * The "CPU id" of a thread is the participant number it was given with
 * lf_platform_user_set_cpu(); threads that never set one report 0.
 */
#include "lf_platform.h"
#include "platform_user.h"

#include <stdio.h>
#include <stdlib.h>

static _Thread_local unsigned lf_user_cpu;

unsigned lf_platform_cpu_id(void)
{
	return lf_user_cpu;
}

void lf_platform_user_set_cpu(unsigned cpu)
{
	lf_user_cpu = cpu;
}

_Noreturn void lf_platform_panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "lfalloc panic: %s:%d: %s (cpu %u)\n", file, line, what,
		lf_user_cpu);
	fflush(stderr);
	abort();
}
