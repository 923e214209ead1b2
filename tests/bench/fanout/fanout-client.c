/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Opens many connections to a streaming server, reads everything and counts
 * the multipart delimiters each connection receives during a measuring
 * window.
 *
 * fanout-client HOST PORT N_CLIENTS BOUNDARY WARMUP_S WINDOW_S [PATH]
 *
 * With PATH it sends an HTTP GET for it on every connection (HTTP servers);
 * without, it only reads (tcpserversink). BOUNDARY "auto" takes it from the
 * HTTP response's Content-Type. Prints "connected N", then at the end
 * "closed N" and one "frames bytes" line per client, counted within the
 * window. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct client
{
  int fd;
  char delim[256];
  size_t delim_len;
  /* The HTTP response header, until the boundary is known. */
  char head[4096];
  size_t head_len;
  unsigned long long frames;
  unsigned long long bytes;
  /* The end of the previous read, for delimiters split across reads. */
  char carry[256];
  size_t carry_len;
};

static double
now_s (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Consumes the HTTP response header and learns the boundary from it;
 * returns how many bytes of data belonged to the header. */
static size_t
parse_head (struct client *c, const char *data, size_t len)
{
  size_t take = len < sizeof (c->head) - 1 - c->head_len
                    ? len
                    : sizeof (c->head) - 1 - c->head_len;
  memcpy (c->head + c->head_len, data, take);
  c->head_len += take;
  c->head[c->head_len] = '\0';
  char *end = strstr (c->head, "\r\n\r\n");
  if (!end)
    return take;
  size_t used = (end + 4 - c->head) - (c->head_len - take);
  char *b = strstr (c->head, "boundary=");
  if (b) {
    b += 9;
    size_t n = strcspn (b, "\r\n;");
    c->delim_len = snprintf (c->delim, sizeof (c->delim), "--%.*s\r\n", (int) n,
        b);
  }
  return used;
}

static size_t
count_delimiters (struct client *c, const char *data, size_t len)
{
  const char *delim = c->delim;
  size_t delim_len = c->delim_len;
  size_t count = 0;
  /* Look at carry + the head of data for a delimiter across the seam. */
  if (c->carry_len > 0) {
    char seam[512];
    size_t head = len < delim_len - 1 ? len : delim_len - 1;
    memcpy (seam, c->carry, c->carry_len);
    memcpy (seam + c->carry_len, data, head);
    if (memmem (seam, c->carry_len + head, delim, delim_len))
      count++;
  }
  const char *p = data, *end = data + len;
  while ((p = memmem (p, end - p, delim, delim_len)) != NULL) {
    count++;
    p += delim_len;
  }
  c->carry_len = len < delim_len - 1 ? len : delim_len - 1;
  memcpy (c->carry, end - c->carry_len, c->carry_len);
  return count;
}

int
main (int argc, char **argv)
{
  if (argc < 7) {
    fprintf (stderr,
        "usage: %s HOST PORT N_CLIENTS BOUNDARY WARMUP_S WINDOW_S [PATH]\n",
        argv[0]);
    return 2;
  }
  const char *host = argv[1];
  int port = atoi (argv[2]);
  int n = atoi (argv[3]);
  const char *boundary = argv[4];
  double warmup = atof (argv[5]), window = atof (argv[6]);
  const char *path = argc > 7 ? argv[7] : NULL;

  struct client *clients = calloc (n, sizeof (*clients));
  int ep = epoll_create1 (0);
  struct sockaddr_in addr = {0};
  addr.sin_family = AF_INET;
  addr.sin_port = htons (port);
  inet_pton (AF_INET, host, &addr.sin_addr);

  for (int i = 0; i < n; i++) {
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    if (connect (fd, (struct sockaddr *) &addr, sizeof (addr)) < 0) {
      perror ("connect");
      return 1;
    }
    if (path) {
      char req[512];
      int len = snprintf (req, sizeof (req),
          "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path, host, port);
      if (write (fd, req, len) != len) {
        perror ("write");
        return 1;
      }
    }
    clients[i].fd = fd;
    if (strcmp (boundary, "auto") != 0)
      clients[i].delim_len = snprintf (clients[i].delim,
          sizeof (clients[i].delim), "--%s\r\n", boundary);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &clients[i]};
    epoll_ctl (ep, EPOLL_CTL_ADD, fd, &ev);
  }
  printf ("connected %d\n", n);
  fflush (stdout);

  static char buf[1 << 18];
  struct epoll_event events[256];
  double start = now_s ();
  double window_start = start + warmup, window_end = window_start + window;
  int counting = 0, closed = 0;

  for (;;) {
    double t = now_s ();
    if (t >= window_end)
      break;
    if (!counting && t >= window_start) {
      counting = 1;
      for (int i = 0; i < n; i++)
        clients[i].frames = clients[i].bytes = 0;
    }
    int timeout_ms = (int) (((counting ? window_end : window_start) - t) *
                            1000) +
                     1;
    int k = epoll_wait (ep, events, 256, timeout_ms);
    for (int e = 0; e < k; e++) {
      struct client *c = events[e].data.ptr;
      ssize_t r = read (c->fd, buf, sizeof (buf));
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN)
          continue;
        epoll_ctl (ep, EPOLL_CTL_DEL, c->fd, NULL);
        closed++;
        continue;
      }
      c->bytes += r;
      size_t skip = c->delim_len == 0 ? parse_head (c, buf, r) : 0;
      if (c->delim_len > 0 && (size_t) r > skip)
        c->frames += count_delimiters (c, buf + skip, r - skip);
    }
  }
  printf ("closed %d\n", closed);
  for (int i = 0; i < n; i++)
    printf ("%llu %llu\n", clients[i].frames, clients[i].bytes);
  for (int i = 0; i < n; i++)
    close (clients[i].fd);
  free (clients);
  return 0;
}
