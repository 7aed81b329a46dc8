/* SPDX-License-Identifier: MIT */
/*
 * tests/test_version.c - eddy/version.h against configure's version and
 * against the library: the macros, EDDY_VERSION_AT_LEAST's ordering, and
 * eddy_version()/eddy_version_string().
 */
#include <stdio.h>
#include <stdlib.h>

#include <check.h>

#include "eddy.h"

/* Usable in #if: a program that guards a newer API this way must compile. */
#if !EDDY_VERSION_AT_LEAST(0, 0, 0) || EDDY_VERSION_AT_LEAST(EDDY_VERSION_MAJOR + 1, 0, 0)
#error "EDDY_VERSION_AT_LEAST is wrong in #if"
#endif

START_TEST(test_macros_match_configure)
{
  char buf[32];
  snprintf(buf, sizeof buf, "%d.%d.%d", EDDY_VERSION_MAJOR, EDDY_VERSION_MINOR,
           EDDY_VERSION_PATCH);
  /* PACKAGE_VERSION is AC_INIT's, from config.h. */
  ck_assert_str_eq(buf, PACKAGE_VERSION);
  ck_assert_str_eq(EDDY_VERSION_STRING, PACKAGE_VERSION);
}
END_TEST

START_TEST(test_at_least)
{
  const int ma = EDDY_VERSION_MAJOR, mi = EDDY_VERSION_MINOR, pa = EDDY_VERSION_PATCH;
  ck_assert(EDDY_VERSION_AT_LEAST(ma, mi, pa));
  ck_assert(!EDDY_VERSION_AT_LEAST(ma, mi, pa + 1));
  ck_assert(!EDDY_VERSION_AT_LEAST(ma, mi + 1, 0));
  ck_assert(!EDDY_VERSION_AT_LEAST(ma + 1, 0, 0));
  if (pa > 0)
    ck_assert(EDDY_VERSION_AT_LEAST(ma, mi, pa - 1));
  if (mi > 0)
    ck_assert(EDDY_VERSION_AT_LEAST(ma, mi - 1, 255));
  if (ma > 0)
    ck_assert(EDDY_VERSION_AT_LEAST(ma - 1, 255, 255));
  /* The encoding orders minor over patch and major over both. */
  ck_assert_int_lt(EDDY_VERSION_ENCODE(0, 1, 255), EDDY_VERSION_ENCODE(0, 2, 0));
  ck_assert_int_lt(EDDY_VERSION_ENCODE(0, 255, 255), EDDY_VERSION_ENCODE(1, 0, 0));
}
END_TEST

START_TEST(test_runtime_matches_headers)
{
  /* Built in the same tree, the library is the headers' version. */
  ck_assert_uint_eq(eddy_version(), EDDY_VERSION_NUMBER);
  ck_assert_str_eq(eddy_version_string(), EDDY_VERSION_STRING);
  ck_assert_uint_eq(eddy_version() >> 16, EDDY_VERSION_MAJOR);
  ck_assert_uint_eq((eddy_version() >> 8) & 0xff, EDDY_VERSION_MINOR);
  ck_assert_uint_eq(eddy_version() & 0xff, EDDY_VERSION_PATCH);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("version");
  TCase *tc = tcase_create("version");
  tcase_add_test(tc, test_macros_match_configure);
  tcase_add_test(tc, test_at_least);
  tcase_add_test(tc, test_runtime_matches_headers);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
