/*
 * A yardstick for the event loop: the smallest correct epoll echo server in C,
 * written the way a C programmer writes one (level-triggered, EPOLLOUT only
 * while output waits), so that `compare` can set `server4` beside what the
 * kernel's own interface costs without Rust, mio or line framing in between.
 *
 *   benches/c/build.sh && compare --external 'c-epoll=target/c/epoll_echo 127.0.0.1 {port}'
 *
 * Usage: epoll_echo [HOST] [PORT]   (defaults 127.0.0.1 and 5000; port 0 = any)
 * The first line on stdout is `listening on IP:PORT`, as switchboard's servers.
 *
 * Per connection: one descriptor, registered for EPOLLIN. A read goes into one
 * buffer shared by every connection and is sent straight back. Only what the
 * socket refuses is copied into the connection's own buffer; then the interest
 * becomes EPOLLOUT alone (stop reading: a client that does not read its
 * replies cannot make the server buffer without bound), and back to EPOLLIN
 * once it is drained. So a client that takes its replies costs one recv and one
 * send per message, plus its share of epoll_wait, and no epoll_ctl.
 *
 * Bytes are echoed as they come, whatever the framing; the only line this
 * server reads is a whole `bye` or `exit` (any case, `\r` allowed), after which
 * it echoes up to that line's end (`bye\n` is the protocol's answer) and closes.
 * Linux only. Stops on SIGINT or SIGTERM (the default action).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUFFER (64 * 1024)
#define BACKLOG 1024 /* switchboard's servers use the same */

struct conn {
    int fd;
    int closing;         /* answered `bye`: close once `out` is sent */
    unsigned line_len;   /* bytes of the current line so far (saturates) */
    char head[6];        /* its first bytes, to spot `bye` and `exit` */
    char *out;           /* what the socket has not taken yet */
    size_t out_len, out_sent;
};

static char scratch[READ_BUFFER];

static void die(const char *what) {
    fprintf(stderr, "epoll_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void drop(int ep, struct conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
}

static void want(int ep, struct conn *c, unsigned events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int is_goodbye(const struct conn *c) {
    unsigned n = c->line_len;
    if (n > 0 && c->head[n - 1] == '\r')
        n--;
    return (n == 3 && strncasecmp(c->head, "bye", 3) == 0) ||
           (n == 4 && strncasecmp(c->head, "exit", 4) == 0);
}

/* How many of the `n` bytes read to echo: all of them, or up to the end of a
 * goodbye line (and then the connection closes). memchr finds the line ends, so
 * a long line costs what it costs glibc, not a loop over every byte. */
static size_t until_goodbye(struct conn *c, const char *buf, size_t n) {
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(buf + i, '\n', n - i);
        size_t end = nl != NULL ? (size_t)(nl - buf) : n;
        while (c->line_len < sizeof c->head && i < end)
            c->head[c->line_len++] = buf[i++];
        if (nl == NULL)
            return n;
        i = end + 1;
        if (is_goodbye(c)) {
            c->closing = 1;
            return i;
        }
        c->line_len = 0;
    }
    return n;
}

/* Sends what waits in `c->out`; 0 when all of it went, 1 when some waits, -1 on error. */
static int flush(struct conn *c) {
    while (c->out_sent < c->out_len) {
        ssize_t k = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (k < 0)
            return -1;
        c->out_sent += (size_t)k;
    }
    c->out_len = c->out_sent = 0;
    return 0;
}

static void on_readable(int ep, struct conn *c) {
    ssize_t n = recv(c->fd, scratch, sizeof scratch, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0)
        return drop(ep, c); /* end of input (every reply already went) or error */
    size_t echo = until_goodbye(c, scratch, (size_t)n);
    size_t sent = 0;
    while (sent < echo) {
        ssize_t k = send(c->fd, scratch + sent, echo - sent, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (k < 0)
            return drop(ep, c);
        sent += (size_t)k;
    }
    if (sent < echo) {
        c->out = realloc(c->out, echo - sent);
        if (c->out == NULL)
            return drop(ep, c);
        memcpy(c->out, scratch + sent, echo - sent);
        c->out_len = echo - sent;
        c->out_sent = 0;
        want(ep, c, EPOLLOUT);
    } else if (c->closing) {
        drop(ep, c);
    }
}

static void on_writable(int ep, struct conn *c) {
    int r = flush(c);
    if (r < 0 || (r == 0 && c->closing))
        return drop(ep, c);
    if (r == 0)
        want(ep, c, EPOLLIN);
}

static int listen_on(const char *host, const char *port) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
    int err = getaddrinfo(host, port, &hints, &ai);
    if (err != 0) {
        fprintf(stderr, "epoll_echo: %s port %s: %s\n", host, port, gai_strerror(err));
        exit(1);
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        fprintf(stderr, "epoll_echo: cannot bind %s port %s: %s\n", host, port, strerror(errno));
        exit(1);
    }
    freeaddrinfo(ai);
    if (listen(fd, BACKLOG) < 0)
        die("listen");

    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char ip[INET6_ADDRSTRLEN];
    getsockname(fd, (struct sockaddr *)&sa, &len);
    if (sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        printf("listening on [%s]:%u\n", ip, ntohs(a->sin6_port));
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&sa;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        printf("listening on %s:%u\n", ip, ntohs(a->sin_port));
    }
    fflush(stdout);
    return fd;
}

static void accept_all(int ep, int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("epoll_echo: accept"); /* EMFILE: the next wait retries */
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (c == NULL || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
    }
}

int main(int argc, char **argv) {
    const char *host = argc > 1 ? argv[1] : "127.0.0.1";
    const char *port = argc > 2 ? argv[2] : "5000";
    int lfd = listen_on(host, port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, events[256];
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        die("epoll_ctl");
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL)
                accept_all(ep, lfd);
            else if (c->out_len > 0)
                on_writable(ep, c); /* EPOLLOUT, or EPOLLERR/HUP: flush reports it */
            else
                on_readable(ep, c);
        }
    }
}
