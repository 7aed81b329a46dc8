/* SPDX-License-Identifier: MIT */
/*
 * Telling AddressSanitizer and valgrind about coroutine stacks (not
 * installed). Both track "the" stack of a thread; without these calls ASan
 * reports false stack overflows and use-after-returns after a switch, and
 * valgrind takes a switch for a huge stack allocation and warns.
 *
 * ASan: every switch is bracketed by __sanitizer_start_switch_fiber() (on
 * the old stack, naming the new one) and __sanitizer_finish_switch_fiber()
 * (on the new one, learning the old one's bounds). valgrind: each mapped
 * stack is registered once, when mapped, and deregistered when unmapped.
 * Without the tools these are empty inline functions.
 */
#ifndef EDDY_CORO_SANITIZERS_H
#define EDDY_CORO_SANITIZERS_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define EDDY__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDDY__ASAN 1
#endif
#endif

#ifdef EDDY__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>

static inline void eddy__asan_start_switch(void **fake_stack_save,
                                           const void *bottom, size_t size)
{
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
}

static inline void eddy__asan_finish_switch(void *fake_stack_save,
                                            const void **bottom_old,
                                            size_t *size_old)
{
  __sanitizer_finish_switch_fiber(fake_stack_save, bottom_old, size_old);
}

static inline void eddy__asan_unpoison(void *p, size_t n)
{
  __asan_unpoison_memory_region(p, n);
}
#else
static inline void eddy__asan_start_switch(void **fake_stack_save,
                                           const void *bottom, size_t size)
{
  (void)fake_stack_save, (void)bottom, (void)size;
}

static inline void eddy__asan_finish_switch(void *fake_stack_save,
                                            const void **bottom_old,
                                            size_t *size_old)
{
  (void)fake_stack_save, (void)bottom_old, (void)size_old;
}

static inline void eddy__asan_unpoison(void *p, size_t n)
{
  (void)p, (void)n;
}
#endif

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>

static inline unsigned eddy__valgrind_stack_register(void *lo, size_t size)
{
  return VALGRIND_STACK_REGISTER(lo, (char *)lo + size);
}

static inline void eddy__valgrind_stack_deregister(unsigned id)
{
  VALGRIND_STACK_DEREGISTER(id);
}
#else
static inline unsigned eddy__valgrind_stack_register(void *lo, size_t size)
{
  (void)lo, (void)size;
  return 0;
}

static inline void eddy__valgrind_stack_deregister(unsigned id)
{
  (void)id;
}
#endif

#endif
