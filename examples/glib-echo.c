/* SPDX-License-Identifier: MIT */
/*
 * examples/glib-echo.c - the line echo server inside a GLib main loop.
 *
 *   glib-echo [--address ADDR] [--port PORT] [--idle SECONDS]
 *
 * The program's main loop is GLib's (as in a GTK application); eddy runs as
 * one GSource in it. The source watches eddy's backend fd, tells GLib how
 * long eddy can wait (its next timer), and runs one eddy iteration,
 * without blocking, whenever either says eddy has work. Everything else
 * is plain eddy: a TCP server whose handler echoes lines. --idle closes
 * connections that stay silent that long (an eddy timer, so it shows that
 * eddy's timers fire on time under GLib too). SIGINT and SIGTERM reach
 * GLib (g_unix_signal_add), which quits its loop; eddy then lets the open
 * connections finish for up to a second.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib-unix.h>

#include <eddy.h>

#include "serve.h"

/* ---- eddy as a GSource --------------------------------------------------- */

typedef struct {
  GSource base; /* first: GLib allocates and casts the whole struct */
  eddy_loop_t *loop;
  gpointer fd_tag;
} EddySource;

/* GLib's timeout is in whole milliseconds: round up, so GLib never wakes
 * just before an eddy timer is due and spins until it is. */
static gint timeout_ms(double seconds)
{
  if (seconds < 0)
    return -1;
  if (seconds * 1000.0 >= (double)G_MAXINT)
    return G_MAXINT;
  gint ms = (gint)(seconds * 1000.0);
  return ms < seconds * 1000.0 ? ms + 1 : ms;
}

static gboolean eddy_source_prepare(GSource *base, gint *timeout)
{
  EddySource *src = (EddySource *)base;
  double next = eddy_loop_next_timeout(src->loop);

  *timeout = timeout_ms(next);
  return next == 0; /* ready now: GLib skips its poll wait */
}

static gboolean eddy_source_check(GSource *base)
{
  EddySource *src = (EddySource *)base;

  return (g_source_query_unix_fd(base, src->fd_tag) & G_IO_IN) != 0 ||
         eddy_loop_next_timeout(src->loop) == 0;
}

static gboolean eddy_source_dispatch(GSource *base, GSourceFunc cb,
                                     gpointer data)
{
  EddySource *src = (EddySource *)base;
  int rc = eddy_loop_run_once(src->loop, 0);

  if (rc < 0) {
    g_printerr("glib-echo: eddy loop failed: %s\n", eddy_strerror(rc));
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs eddy_source_funcs = {
  .prepare = eddy_source_prepare,
  .check = eddy_source_check,
  .dispatch = eddy_source_dispatch,
};

/* A GSource that drives @p loop from the thread-default GLib context.
 * NULL if the loop has no backend fd (the poll backend). */
static GSource *eddy_source_new(eddy_loop_t *loop)
{
  int fd = eddy_loop_backend_fd(loop);
  if (fd < 0) {
    g_printerr("glib-echo: cannot embed the %s backend: %s\n",
               eddy_loop_backend_name(loop), eddy_strerror(fd));
    return NULL;
  }
  GSource *base = g_source_new(&eddy_source_funcs, sizeof(EddySource));
  EddySource *src = (EddySource *)base;
  src->loop = loop;
  src->fd_tag = g_source_add_unix_fd(base, fd, G_IO_IN);
  g_source_set_name(base, "eddy");
  return base;
}

/* ---- the echo server (serve.c's echo protocol) ---------------------------- */

static gboolean on_quit_signal(gpointer main_loop)
{
  g_main_loop_quit(main_loop);
  return G_SOURCE_CONTINUE;
}

static const char usage[] =
    "usage: glib-echo [--address ADDR] [--port PORT] [--idle SECONDS]\n"
    "Echoes every line back, from inside a GLib main loop. The default port\n"
    "is 8888 (0 picks a free one); --idle closes silent connections.\n";

static int parse_args(int argc, char **argv, const char **address, int *port,
                      double *idle)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(usage, stdout);
      exit(0);
    }
    if (i + 1 >= argc)
      return -1;
    const char *opt = argv[i], *val = argv[++i];
    char *end;
    errno = 0;
    if (strcmp(opt, "--address") == 0) {
      *address = val;
    } else if (strcmp(opt, "--port") == 0) {
      long v = strtol(val, &end, 10);
      if (errno != 0 || end == val || *end != '\0' || v < 0 || v > 65535)
        return -1;
      *port = (int)v;
    } else if (strcmp(opt, "--idle") == 0) {
      *idle = strtod(val, &end);
      if (errno != 0 || end == val || *end != '\0' || !(*idle >= 0))
        return -1;
    } else {
      return -1;
    }
  }
  return 0;
}

int main(int argc, char **argv)
{
  const char *address = NULL;
  int port = 8888;
  double idle = 0;

  if (parse_args(argc, argv, &address, &port, &idle) < 0) {
    fputs(usage, stderr);
    return 2;
  }
  eddy_tcp_server_options_t options;
  eddy_tcp_server_options_init(&options);
  options.stream.allow_half_open = 1;
  options.stream.idle_timeout = idle;
  eddy_loop_t *loop = eddy_loop_new();
  eddy_tcp_server_t *srv = loop ? eddy_tcp_server_new(loop, &options) : NULL;
  GSource *source = loop ? eddy_source_new(loop) : NULL;
  if (srv == NULL || source == NULL) {
    if (loop == NULL || srv == NULL)
      perror("glib-echo");
    eddy_tcp_server_free(srv);
    eddy_loop_free(loop);
    return 1;
  }
  eddy_tcp_server_set_handler(srv, serve_echo_handler, NULL);
  int rc = eddy_tcp_server_listen(srv, port, address);
  if (rc < 0) {
    fprintf(stderr, "cannot listen on %s:%d: %s\n", address ? address : "*",
            port, eddy_strerror(rc));
    g_source_unref(source);
    eddy_tcp_server_free(srv);
    eddy_loop_free(loop);
    return 1;
  }

  GMainLoop *main_loop = g_main_loop_new(NULL, FALSE);
  g_source_attach(source, NULL);
  g_unix_signal_add(SIGINT, on_quit_signal, main_loop);
  g_unix_signal_add(SIGTERM, on_quit_signal, main_loop);
  serve_print_listening(srv);
  g_main_loop_run(main_loop);

  /* GLib's loop has ended; eddy's own finishes the shutdown. */
  g_source_destroy(source);
  g_source_unref(source);
  serve_shutdown(loop, srv);
  g_main_loop_unref(main_loop);
  return 0;
}
