/* SPDX-License-Identifier: MIT */
/*
 * The registry of live loops: an id of two bytes per loop, so that the
 * objects a server holds by the thousand (futures, streams) name their loop
 * in the padding they already have rather than in a pointer of their own
 * (bench/RESULTS.md, issue 17).
 *
 * The table is written under a lock, when a loop is made or freed, and read
 * without one: each thread reads only the entries of loops it was handed,
 * which were written before eddy_loop_new() returned them. It is static
 * (512 KiB of address space, a page of it resident per 512 live loops), so
 * an entry never moves under a reader.
 */
#include <errno.h>
#include <pthread.h>

#include "loop/loop_impl.h"

eddy_loop_t *eddy__loops[EDDY__LOOPS_MAX + 1];

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned last_id; /* where the search for a free id starts */

int eddy__loop_register(eddy_loop_t *loop)
{
  int rc = -EMFILE; /* 65,535 loops alive at once */

  pthread_mutex_lock(&registry_lock);
  for (unsigned i = 0; i < EDDY__LOOPS_MAX; i++) {
    unsigned id = (last_id + i) % EDDY__LOOPS_MAX + 1;
    if (eddy__loops[id] == NULL) {
      eddy__loops[id] = loop;
      eddy__head(loop)->id = (uint16_t)id;
      last_id = id;
      rc = 0;
      break;
    }
  }
  pthread_mutex_unlock(&registry_lock);
  return rc;
}

void eddy__loop_unregister(eddy_loop_t *loop)
{
  pthread_mutex_lock(&registry_lock);
  eddy__loops[eddy__head(loop)->id] = NULL;
  pthread_mutex_unlock(&registry_lock);
}
