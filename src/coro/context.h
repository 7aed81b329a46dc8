/* SPDX-License-Identifier: MIT */
/*
 * Switching between stacks (not installed). Two implementations of one
 * interface:
 *
 *   - x86-64 (ELF): switch_x86_64.S saves the six callee-saved registers
 *     and the SSE/x87 control words on the old stack and loads them from
 *     the new one: a few instructions and no system call;
 *   - everywhere else, and with -DEDDY_CORO_UCONTEXT (the test of the
 *     portable path): swapcontext(), which also saves and restores the
 *     signal mask with a rt_sigprocmask system call on every switch.
 *
 * bench/future_bench's "coroutine await" (a then-step awaited: two
 * futures, two loop tasks, a switch there and back) measured 97-110 ns
 * with the assembly and 565-803 ns with swapcontext on the same machine
 * (2026-12-06, a shared x86-64 VM), so the switch pair costs some 25 ns
 * against hundreds: less than the then-hop (40-48 ns) it replaces.
 *
 * eddy__ctx_make() prepares a context that, switched to, calls entry(arg)
 * on the given stack; entry must never return (it switches away for good).
 */
#ifndef EDDY_CORO_CONTEXT_H
#define EDDY_CORO_CONTEXT_H

#include <stddef.h>

#if defined(__x86_64__) && defined(__ELF__) && !defined(EDDY_CORO_UCONTEXT)
#define EDDY__CORO_ASM_SWITCH 1

struct eddy__ctx {
  void *sp; /* the saved stack pointer, registers pushed below it */
};

/* switch_x86_64.S: saves the current context's stack pointer in *from_sp,
 * then continues from to_sp. Returns when something switches back. */
void eddy__coro_switch(void **from_sp, void *to_sp);

static inline void eddy__ctx_switch(struct eddy__ctx *from,
                                    struct eddy__ctx *to)
{
  eddy__coro_switch(&from->sp, to->sp);
}
#else
#include <ucontext.h>

struct eddy__ctx {
  ucontext_t uc;
};

static inline void eddy__ctx_switch(struct eddy__ctx *from,
                                    struct eddy__ctx *to)
{
  swapcontext(&from->uc, &to->uc);
}
#endif

/* Makes @c start entry(arg) on the stack [lo, lo + size). Returns 0, or a
 * negative errno from getcontext(). */
int eddy__ctx_make(struct eddy__ctx *c, void *lo, size_t size,
                   void (*entry)(void *), void *arg);

#endif
