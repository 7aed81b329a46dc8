/* Placeholder replaced below. */
#include <stdlib.h>
#include "tests/tls_fixtures.h"
Suite *tfx_peers_suite(void) { return suite_create("tls_peers"); }
