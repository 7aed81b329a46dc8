/* SPDX-License-Identifier: MIT */
/*
 * Preparing a context to start on a new stack (context.h).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "coro/context.h"

#ifdef EDDY__CORO_ASM_SWITCH
void eddy__coro_start(void);

int eddy__ctx_make(struct eddy__ctx *c, void *lo, size_t size,
                   void (*entry)(void *), void *arg)
{
  /* What eddy__coro_switch() pops, lowest address first: the control
   * words, r15, r14, r13, r12 (entry), rbx (arg), rbp, then the return
   * address (eddy__coro_start). After the ret, rsp is 16-byte aligned, as
   * the ABI wants it before the call eddy__coro_start makes. */
  uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
  uint64_t *sp = (uint64_t *)(top - 16 - 8 * 8);

  memset(sp, 0, 8 * 8 + 16);
  sp[0] = 0x1f80 | ((uint64_t)0x037f << 32); /* MXCSR, x87 CW: the ABI's */
  sp[4] = (uint64_t)(uintptr_t)entry;
  sp[5] = (uint64_t)(uintptr_t)arg;
  sp[7] = (uint64_t)(uintptr_t)eddy__coro_start;
  c->sp = sp;
  return 0;
}
#else
/* makecontext() passes int arguments only: the pointers travel as halves. */
static void start(unsigned entry_hi, unsigned entry_lo, unsigned arg_hi,
                  unsigned arg_lo)
{
  uintptr_t e = ((uintptr_t)entry_hi << 16 << 16) | entry_lo;
  uintptr_t a = ((uintptr_t)arg_hi << 16 << 16) | arg_lo;
  void (*entry)(void *);

  memcpy(&entry, &e, sizeof entry);
  entry((void *)a);
}

int eddy__ctx_make(struct eddy__ctx *c, void *lo, size_t size,
                   void (*entry)(void *), void *arg)
{
  uintptr_t e, a = (uintptr_t)arg;

  memcpy(&e, &entry, sizeof e);
  if (getcontext(&c->uc) < 0)
    return -errno;
  c->uc.uc_stack.ss_sp = lo;
  c->uc.uc_stack.ss_size = size;
  c->uc.uc_link = NULL; /* entry never returns */
  makecontext(&c->uc, (void (*)(void))start, 4, (unsigned)(e >> 16 >> 16),
              (unsigned)e, (unsigned)(a >> 16 >> 16), (unsigned)a);
  return 0;
}
#endif
