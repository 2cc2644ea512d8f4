/*
 * Copyright (C) ngx_tsdb authors
 *
 * Owner-pid spinlock.  The word is 0 when free and the owner's pid when
 * held.  Waiters spin, then yield, and every TS_PLOCK_CHECK rounds ask
 * whether the owner still runs; a dead owner's pid is replaced by the
 * caller's with a compare-and-swap, so at most one waiter takes over.
 * The lock is meant for critical sections of a few microseconds that do
 * no I/O: a live owner is always waited for.
 */

#include <sched.h>

#include "ts_plock.h"


#define TS_PLOCK_SPIN   64
#define TS_PLOCK_CHECK  256


static int ts_plock_try(int64_t *lock, int64_t pid, ts_pid_alive_pt alive,
    int check);


int
ts_plock_lock(int64_t *lock, int64_t pid, ts_pid_alive_pt alive)
{
    int       rc, i;
    unsigned  round;

    for (round = 1; /* void */ ; round++) {
        rc = ts_plock_try(lock, pid, alive, round % TS_PLOCK_CHECK == 0);
        if (rc >= 0) {
            return rc;
        }

        for (i = 0; i < TS_PLOCK_SPIN; i++) {
            if (__atomic_load_n(lock, __ATOMIC_RELAXED) == 0) {
                break;
            }
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }

        if (i == TS_PLOCK_SPIN) {
            sched_yield();
        }
    }
}


int
ts_plock_trylock(int64_t *lock, int64_t pid, ts_pid_alive_pt alive)
{
    return ts_plock_try(lock, pid, alive, 1);
}


void
ts_plock_unlock(int64_t *lock, int64_t pid)
{
    int64_t  owner;

    owner = pid;

    /* a no-op if the lock was taken over from us: we were thought dead */

    (void) __atomic_compare_exchange_n(lock, &owner, 0, 0, __ATOMIC_RELEASE,
                                       __ATOMIC_RELAXED);
}


static int
ts_plock_try(int64_t *lock, int64_t pid, ts_pid_alive_pt alive, int check)
{
    int64_t  owner;

    owner = 0;

    if (__atomic_compare_exchange_n(lock, &owner, pid, 0, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
    {
        return 0;
    }

    if (!check || alive == NULL || owner == 0 || alive(owner)) {
        return TS_ERR_AGAIN;
    }

    if (__atomic_compare_exchange_n(lock, &owner, pid, 0, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
    {
        return 1;
    }

    return TS_ERR_AGAIN;
}
