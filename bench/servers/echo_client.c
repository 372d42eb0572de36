/* isle — MIT licensed. */
/*
 * echo_client: N connections, each sending 64 bytes and waiting for their
 * echo before sending again, for a fixed time (BENCH.md, servers/echo).
 *
 *   echo_client PORT CONNECTIONS SECONDS
 *
 * One thread, epoll. Prints one line:
 *   rps=... p99_us=... roundtrips=...
 * Exits non-zero if a connection fails or an echo comes back wrong.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG 64
#define HIST_US 100000 /* latency histogram, 1 us buckets up to 100 ms */

typedef struct conn_s {
  int fd;
  size_t got;
  uint64_t sent_ns;
  char buf[MSG];
} conn_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char payload[MSG];

static int send_one(conn_t *c) {
  c->got = 0;
  c->sent_ns = now_ns();
  return write(c->fd, payload, MSG) == MSG ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: echo_client PORT CONNECTIONS SECONDS\n");
    return 2;
  }
  int port = atoi(argv[1]), n = atoi(argv[2]);
  double secs = atof(argv[3]);
  if (port <= 0 || n <= 0 || secs <= 0) {
    fprintf(stderr, "echo_client: bad arguments\n");
    return 2;
  }
  for (int i = 0; i < MSG; i++)
    payload[i] = (char)('a' + i % 26);
  static uint64_t hist[HIST_US + 1];
  conn_t *conns = calloc((size_t)n, sizeof *conns);
  int ep = epoll_create1(0);
  struct sockaddr_in addr = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  for (int i = 0; i < n; i++) {
    conn_t *c = &conns[i];
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
      perror("echo_client: connect");
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  }
  uint64_t start = now_ns(), end = start + (uint64_t)(secs * 1e9), trips = 0;
  for (int i = 0; i < n; i++)
    if (send_one(&conns[i]) != 0) {
      perror("echo_client: write");
      return 1;
    }
  struct epoll_event evs[256];
  uint64_t t = start;
  while (t < end) {
    int k = epoll_wait(ep, evs, 256, 100);
    t = now_ns();
    for (int e = 0; e < k; e++) {
      conn_t *c = evs[e].data.ptr;
      ssize_t r = read(c->fd, c->buf + c->got, MSG - c->got);
      if (r <= 0) {
        fprintf(stderr, "echo_client: connection lost (%s)\n",
                r ? strerror(errno) : "EOF");
        return 1;
      }
      c->got += (size_t)r;
      if (c->got < MSG)
        continue;
      if (memcmp(c->buf, payload, MSG) != 0) {
        fprintf(stderr, "echo_client: wrong echo\n");
        return 1;
      }
      uint64_t us = (t - c->sent_ns) / 1000;
      hist[us < HIST_US ? us : HIST_US]++;
      trips++;
      if (t < end && send_one(c) != 0) {
        perror("echo_client: write");
        return 1;
      }
    }
  }
  double elapsed = (double)(now_ns() - start) / 1e9;
  uint64_t want = trips - trips / 100, seen = 0, p99 = 0;
  for (uint64_t us = 0; us <= HIST_US; us++) {
    seen += hist[us];
    if (seen >= want) {
      p99 = us;
      break;
    }
  }
  printf("rps=%.0f p99_us=%llu roundtrips=%llu\n", (double)trips / elapsed,
         (unsigned long long)p99, (unsigned long long)trips);
  for (int i = 0; i < n; i++)
    close(conns[i].fd);
  free(conns);
  return 0;
}
