/*
 * platform_user.h: userspace-only additions to the lf_platform.h shim.
 *
 * Example: examples/buddy_example.c (a thread per "CPU").
 */
#ifndef LF_PLATFORM_USER_H
#define LF_PLATFORM_USER_H

/* Set the participant number lf_platform_cpu_id() returns on this thread. */
void lf_platform_user_set_cpu(unsigned cpu);

#endif
