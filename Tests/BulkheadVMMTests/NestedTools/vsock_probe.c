/* vsock_probe.c — both ends of the nested boot's vsock check, as a static program for L1 and L2
 * (busybox has no vsock). Each mode moves one line each way and prints what came back:
 *   connect-vsock CID PORT MSG   (L2) connect, send MSG, print "reply=<line>"
 *   listen-vsock PORT            (L2) accept one, print "got=<line>", answer "guest got <line>"
 *   listen-unix PATH             (L1) accept one on the VMM's <uds_path>_<port>, answer "host got <line>"
 *   connect-unix PATH PORT MSG   (L1) Firecracker's host side: "CONNECT PORT\n", expect "OK ...",
 *                                send MSG, print "reply=<line>"; retried until the guest listens.
 * Every mode gives up after 60 s (alarm) and exits non-zero on any failure. */
#define _GNU_SOURCE
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int read_line(int fd, char *line, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r <= 0) return -1;
    if (c == '\n') break;
    line[n++] = c;
  }
  line[n] = 0;
  return 0;
}

static int send_line(int fd, const char *prefix, const char *text) {
  char buffer[600];
  int n = snprintf(buffer, sizeof buffer, "%s%s\n", prefix, text);
  return write(fd, buffer, (size_t)n) == n ? 0 : -1;
}

static int fail(const char *what) { perror(what); return 1; }

static int unix_address(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a->sun_path) return -1;
  strcpy(a->sun_path, path);
  return 0;
}

/* Listens on the bound `fd`, accepts one stream, prints "got=<line>" and answers "<prefix><line>". */
static int answer_one(int fd, const char *prefix) {
  char line[512];
  if (listen(fd, 1) < 0) return fail("listen");
  int c = accept(fd, NULL, NULL);
  if (c < 0 || read_line(c, line, sizeof line) < 0 || send_line(c, prefix, line) < 0) return fail("accept");
  printf("got=%s\n", line);
  return 0;
}

int main(int argc, char **argv) {
  char line[512];
  alarm(60);
  if (argc == 5 && !strcmp(argv[1], "connect-vsock")) {
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = (unsigned)atoi(argv[2]), .svm_port = (unsigned)atoi(argv[3])};
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) return fail("vsock connect");
    if (send_line(fd, "", argv[4]) < 0 || read_line(fd, line, sizeof line) < 0) return fail("vsock exchange");
    printf("reply=%s\n", line);
    return 0;
  }
  if (argc == 3 && !strcmp(argv[1], "listen-vsock")) {
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = (unsigned)atoi(argv[2])};
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) return fail("vsock bind");
    return answer_one(fd, "guest got ");
  }
  if (argc == 3 && !strcmp(argv[1], "listen-unix")) {
    struct sockaddr_un a;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || unix_address(&a, argv[2]) < 0) return fail("unix socket");
    unlink(argv[2]);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) return fail("unix bind");
    return answer_one(fd, "host got ");
  }
  if (argc == 5 && !strcmp(argv[1], "connect-unix")) {
    struct sockaddr_un a;
    if (unix_address(&a, argv[2]) < 0) return fail("unix path");
    for (;;) {
      int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      if (fd < 0) return fail("unix socket");
      char connect_line[64];
      snprintf(connect_line, sizeof connect_line, "CONNECT %s", argv[3]);
      if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && send_line(fd, "", connect_line) == 0 &&
          read_line(fd, line, sizeof line) == 0 && !strncmp(line, "OK ", 3)) {
        if (send_line(fd, "", argv[4]) < 0 || read_line(fd, line, sizeof line) < 0) return fail("unix exchange");
        printf("reply=%s\n", line);
        return 0;
      }
      close(fd);  /* the VMM is not up yet, or nothing listens in the guest yet */
      usleep(100000);
    }
  }
  fprintf(stderr, "usage: vsock_probe connect-vsock CID PORT MSG | listen-vsock PORT | listen-unix PATH | connect-unix PATH PORT MSG\n");
  return 2;
}
