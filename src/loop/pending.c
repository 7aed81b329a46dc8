/* Temporary: stand-ins until signal.c, threadpool.c and run_until.c land
 * (they need the future module). */
#include "loop/loop_impl.h"

int eddy__loop_until_ready(const eddy_loop_t *loop) { (void)loop; return 0; }
void eddy__signals_fini(eddy_loop_t *loop) { (void)loop; }
int eddy__signals_after_fork(eddy_loop_t *loop) { (void)loop; return 0; }
void eddy__pool_fini(eddy_loop_t *loop) { (void)loop; }
int eddy__pool_after_fork(eddy_loop_t *loop) { (void)loop; return 0; }
