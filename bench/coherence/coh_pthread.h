/*
 * coh_pthread.h: the pthread locks of the red-black-tree baseline
 * (bench_vas_rb.c), as the coherence accounting mode runs them.
 *
 * Its logical CPUs are coroutines on one OS thread, so a real pthread lock
 * held by one of them would block the thread (or fail with EDEADLK) when
 * another asks for it. coh_vas_rb.c includes this header after <pthread.h>
 * and before bench_vas_rb.c, so that the baseline calls these instead:
 * each does what glibc's lock does to the lock word (the first 32 bits of
 * the pthread object, which glibc's own lock word also is), as atomic
 * accesses recorded in the directory, and a waiter reads the word until it
 * may try again (a futex waiter sleeps instead; the reads of a waiter hit
 * its own cached copy until the holder writes, so the count is the same):
 *
 *   mutex   lock: compare-exchange 0 -> 1; unlock: exchange with 0.
 *   rwlock  word: bit 0 a writer, bits 1.. the readers. rdlock: one
 *           read-modify-write adding a reader (when no writer holds it);
 *           wrlock: compare-exchange 0 -> 1; unlock: one read-modify-write
 *           (a reader out, or the writer out).
 *
 * init and destroy are glibc's own (outside the measured operations; they
 * leave the word 0).
 */
#ifndef COH_PTHREAD_H
#define COH_PTHREAD_H

#include <pthread.h>

int coh_pthread_mutex_lock(pthread_mutex_t *m);
int coh_pthread_mutex_unlock(pthread_mutex_t *m);
int coh_pthread_rwlock_rdlock(pthread_rwlock_t *l);
int coh_pthread_rwlock_wrlock(pthread_rwlock_t *l);
int coh_pthread_rwlock_unlock(pthread_rwlock_t *l);

#define pthread_mutex_lock coh_pthread_mutex_lock
#define pthread_mutex_unlock coh_pthread_mutex_unlock
#define pthread_rwlock_rdlock coh_pthread_rwlock_rdlock
#define pthread_rwlock_wrlock coh_pthread_rwlock_wrlock
#define pthread_rwlock_unlock coh_pthread_rwlock_unlock

#endif /* COH_PTHREAD_H */
