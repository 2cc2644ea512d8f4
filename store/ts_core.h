/*
 * Copyright (C) ngx_tsdb authors
 *
 * Interfaces the store takes from its host (nginx, or a test): locks
 * over shared memory, process liveness, output sinks.
 */

#ifndef TS_CORE_H
#define TS_CORE_H


#include <stddef.h>
#include <stdint.h>

#include "ts_error.h"


/* A lock shared by all processes, e.g. a process-shared mutex. */
typedef struct {
    void               (*lock)(void *data);
    void               (*unlock)(void *data);
    void                *data;
} ts_lock_t;


/* Tells whether a process id still runs; used to find dead owners. */
typedef int (*ts_pid_alive_pt)(int64_t pid);

/* Receives output; returns 0, or -1 to stop. */
typedef int (*ts_write_pt)(void *data, const char *p, size_t len);


#endif /* TS_CORE_H */
