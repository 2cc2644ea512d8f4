/*
 * Copyright (C) ngx_tsdb authors
 *
 * A spinlock in shared memory whose word holds the owner's pid, so that
 * a process killed while holding it can be detected and the lock taken
 * over.  Whoever takes a lock over a dead owner must repair what the
 * lock protects before using it (ts_plock_lock() returns 1 then).
 */

#ifndef TS_PLOCK_H
#define TS_PLOCK_H


#include "ts_core.h"


/* 0: taken; 1: taken over from a dead owner, repair first. */
int ts_plock_lock(int64_t *lock, int64_t pid, ts_pid_alive_pt alive);

/* Never blocks: 0 if taken, 1 taken over, TS_ERR_AGAIN if held. */
int ts_plock_trylock(int64_t *lock, int64_t pid, ts_pid_alive_pt alive);

void ts_plock_unlock(int64_t *lock, int64_t pid);


#endif /* TS_PLOCK_H */
