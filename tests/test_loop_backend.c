/* SPDX-License-Identifier: MIT */
/*
 * tests/test_loop_backend.c - choosing a backend, and io_uring's fallback.
 *
 * EDDY_BACKEND=io_uring asks for io_uring but settles for epoll where the
 * kernel refuses it (containers' seccomp policies, kernel.io_uring_disabled);
 * naming the backend in eddy_loop_new_with_backend() never falls back. The
 * refusal is made real with a seccomp filter that fails io_uring_setup with
 * EPERM, in the test's own forked process.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <check.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include "eddy.h"

static int have_io_uring(void)
{
  eddy_loop_t *loop = eddy_loop_new_with_backend(EDDY_BACKEND_IO_URING);
  if (loop == NULL)
    return 0;
  eddy_loop_free(loop);
  return 1;
}

/* From here on io_uring_setup fails with EPERM in this process. */
static void refuse_io_uring(void)
{
#ifdef __NR_io_uring_setup
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { sizeof filter / sizeof *filter, filter };
  ck_assert(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
  ck_assert(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
#endif
}

START_TEST(test_io_uring_by_name)
{
  eddy_loop_t *loop = eddy_loop_new_with_backend(EDDY_BACKEND_IO_URING);
  if (loop == NULL) {
    /* Built without liburing, or a kernel without io_uring: a clear errno. */
    ck_assert(errno == ENOSYS || errno == EPERM || errno == EINVAL);
    return;
  }
  ck_assert_str_eq(eddy_loop_backend_name(loop), "io_uring");
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_environment_falls_back)
{
  refuse_io_uring();
  ck_assert(!have_io_uring());
#ifdef EDDY_HAVE_LIBURING
  ck_assert_int_eq(errno, EPERM); /* the kernel's word, passed on */
#endif
  setenv("EDDY_BACKEND", "io_uring", 1);
  eddy_loop_t *loop = eddy_loop_new();
  ck_assert_ptr_nonnull(loop);
  ck_assert_str_eq(eddy_loop_backend_name(loop), "epoll");
  /* And it works: a timer fires. */
  eddy_future_t *f = eddy_sleep(loop, 0.001);
  ck_assert_int_eq(eddy_loop_run_until(loop, f, 10.0), 0);
  eddy_future_unref(f);
  eddy_loop_free(loop);
}
END_TEST

START_TEST(test_environment_picks_io_uring)
{
  if (!have_io_uring())
    return; /* nothing to pick here */
  setenv("EDDY_BACKEND", "io_uring", 1);
  eddy_loop_t *loop = eddy_loop_new();
  ck_assert_ptr_nonnull(loop);
  ck_assert_str_eq(eddy_loop_backend_name(loop), "io_uring");
  eddy_loop_free(loop);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("loop_backend");
  TCase *tc = tcase_create("choice");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_io_uring_by_name);
  tcase_add_test(tc, test_environment_falls_back);
  tcase_add_test(tc, test_environment_picks_io_uring);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_FORK); /* the seccomp filter stays in its child */
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
