/*
 * ferry send and ferry recv: standard input into a channel, a channel onto
 * standard output, byte for byte.
 *
 * Framing (send): one message per line, the line's '\n' included; the last
 * line goes as it is, with or without a '\n'; a line longer than the
 * channel's largest message (or than SEND_LINE_MAX) is cut into several
 * messages. With --chunk, messages of a fixed size, the last one shorter.
 * recv writes each message's bytes and adds nothing, so `ferry send` then
 * `ferry recv` reproduces the input exactly, empty lines, a missing final
 * newline and binary data included.
 *
 * Nothing is lost silently: send ends the stream (ferry_channel_close_send)
 * only after its whole input went out, so a receiver that sees the end has
 * everything; on an error it leaves the stream open and the receiver times
 * out. An ended stream stays ended (the library has no way to reopen it),
 * so send refuses such a channel rather than race a receiver that already
 * saw the end. recv reports overrun losses (broadcast --overrun) and exits
 * 1.
 */
#if defined(_WIN32)
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* read */
#endif

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#else
#include <unistd.h>
#endif

#include "cli.h"
#include "ferry.h"

/* A line longer than this goes as several messages even when the channel
 * would carry it whole: it bounds send's buffer. */
#define SEND_LINE_MAX ((size_t)8 << 20)
/* send reads standard input this much at a time (at least). */
#define SEND_READ_MIN ((size_t)4 << 20)
/* recv takes up to this many messages per peek. */
#define RECV_BATCH 64
/* recv's standard-output buffer. */
#define RECV_OUT_BUF ((size_t)1 << 20)

#define DEFAULT_TIMEOUT_NS (INT64_C(10) * 1000000000)
/* "--timeout 0": no limit (the library caps long waits itself). */
#define NO_LIMIT_NS INT64_MAX

/* ------------------------------------------------------------------------ */
/* The OS-dependent lines                                                   */

/* Binary standard streams: no newline translation on Windows. */
static void set_binary(FILE *f) {
#ifdef _WIN32
  _setmode(_fileno(f), _O_BINARY);
#else
  (void)f;
#endif
}

/* Reads what standard input has, up to CAP bytes, waiting only for the
 * first byte: a live stream (a pipe) gets its lines sent as they come, and
 * a file is read in large blocks. Returns the count, 0 at the end, or -1
 * with errno set. */
static long read_stdin(void *buf, size_t cap) {
  if (cap > INT_MAX)
    cap = INT_MAX;
  for (;;) {
#ifdef _WIN32
    int n = _read(0, buf, (unsigned)cap);
#else
    ssize_t n = read(0, buf, cap);
#endif
    if (n >= 0)
      return (long)n;
    if (errno != EINTR)
      return -1;
  }
}

/* ------------------------------------------------------------------------ */
/* Shared                                                                   */

/* --timeout: the default, or the value (0 = no limit). */
static int timeout_arg(const char *cmd, const char *v, int64_t *ns) {
  if (!v) {
    *ns = DEFAULT_TIMEOUT_NS;
    return 0;
  }
  if (cli_parse_seconds(v, ns) != 0)
    return cli_usage_error(cmd,
                           "bad timeout '%s': expected seconds, e.g. 10 or "
                           "0.5 (0 for no limit)",
                           v);
  if (*ns == 0)
    *ns = NO_LIMIT_NS;
  return 0;
}

/* The channel's flags, and whether its stream was ended. */
static int channel_state(ferry_channel *ch, uint32_t *flags, int *closed) {
  ferry_channel_info *ci = (ferry_channel_info *)calloc(1, sizeof *ci);
  int rc = ci ? ferry_channel_get_info(ch, ci, sizeof *ci) : FERRY_ENOMEM;
  if (rc == 0) {
    *flags = ci->flags;
    *closed = ci->closed != 0;
  }
  free(ci);
  return rc;
}

/* The limit for messages: "within 10 s". */
static const char *timeout_text(int64_t ns, char *buf, size_t cap) {
  char s[64];
  if (ns == NO_LIMIT_NS)
    snprintf(buf, cap, "without a limit");
  else
    snprintf(buf, cap, "within %s s", cli_fmt_seconds(ns, s, sizeof s));
  return buf;
}

/* ------------------------------------------------------------------------ */
/* ferry send                                                               */

const char cli_send_usage[] =
    "usage: ferry send NAME [--chunk BYTES] [--timeout SECONDS] "
    "[--keep-open]\n"
    "\n"
    "Sends standard input through the channel NAME (of any kind; create it\n"
    "first with 'ferry create NAME --channel KIND') and, at the end of the\n"
    "input, ends the stream so that receivers finish.\n"
    "\n"
    "Framing: by default one message per line, the line's newline included.\n"
    "A last line without a newline is sent as it is; a line longer than the\n"
    "channel's largest message (or than 8 MiB) goes as several messages.\n"
    "With --chunk, messages of BYTES bytes each, the last one shorter.\n"
    "Either way 'ferry recv' writes back exactly the bytes that were sent.\n"
    "A broadcast channel delivers only to receivers attached at the time.\n"
    "A stream, once ended, stays ended: send refuses a channel whose stream\n"
    "an earlier sender ended (FERRY_ECLOSED); create it again.\n"
    "\n"
    "options:\n"
    "  --chunk BYTES      fixed-size messages (suffixes K, M, G as for\n"
    "                     create), at most the channel's largest message\n"
    "  --timeout SECONDS  how long one message may wait for room (default\n"
    "                     10; decimals allowed; 0 = no limit). On timeout,\n"
    "                     send fails with FERRY_ETIMEDOUT and leaves the\n"
    "                     stream open\n"
    "  --keep-open        do not end the stream at the end of the input\n"
    "                     (one of several senders of an mpsc channel)\n";

struct sender {
  const char *cmd, *name;
  ferry_channel *ch;
  int64_t timeout_ns;
};

static int send_msg(struct sender *s, const unsigned char *p, size_t n) {
  int rc = ferry_channel_send(s->ch, p, n, s->timeout_ns);
  if (rc == 0)
    return 0;
  if (rc == FERRY_ETIMEDOUT) {
    char t[64];
    return cli_fail(s->cmd, s->name, rc,
                    "no room for the next message %s: is a receiver "
                    "running? (--timeout sets the limit)",
                    timeout_text(s->timeout_ns, t, sizeof t));
  }
  return cli_fail(s->cmd, s->name, rc, "cannot send a %llu-byte message: %s",
                  (unsigned long long)n, ferry_strerror(rc));
}

/* Sends standard input: messages of up to UNIT bytes, cut at newlines
 * unless CHUNKED. */
static int send_stream(struct sender *s, size_t unit, int chunked) {
  size_t cap = 2 * unit > SEND_READ_MIN ? 2 * unit : SEND_READ_MIN;
  size_t start = 0, end = 0;
  unsigned char *buf = (unsigned char *)malloc(cap);
  int eof = 0, rc = 0;
  if (!buf) {
    fprintf(stderr, "ferry: %s: out of memory\n", s->cmd);
    return EXIT_FAIL;
  }
  for (;;) {
    long got;
    /* Send every complete message in [start, end). */
    while (rc == 0 && end > start) {
      size_t avail = end - start, n;
      if (chunked) {
        if (avail < unit && !eof)
          break;
        n = avail < unit ? avail : unit;
      } else {
        const unsigned char *nl = (const unsigned char *)memchr(
            buf + start, '\n', avail < unit ? avail : unit);
        if (nl)
          n = (size_t)(nl - (buf + start)) + 1;
        else if (avail >= unit || eof)
          n = avail < unit ? avail : unit;
        else
          break; /* wait for the rest of the line */
      }
      rc = send_msg(s, buf + start, n);
      start += n;
    }
    if (rc != 0 || eof)
      break;
    /* Less than UNIT bytes are left: make room behind them. */
    if (start == end) {
      start = end = 0;
    } else if (cap - end < cap / 2) {
      memmove(buf, buf + start, end - start);
      end -= start;
      start = 0;
    }
    got = read_stdin(buf + end, cap - end);
    if (got < 0) {
      rc = cli_fail(s->cmd, s->name, FERRY_EIO,
                    "cannot read standard input: %s", strerror(errno));
      break;
    }
    if (got == 0)
      eof = 1;
    end += (size_t)got;
  }
  free(buf);
  return rc;
}

int cli_cmd_send(int argc, char **argv) {
  enum { O_CHUNK, O_TIMEOUT, O_KEEP_OPEN };
  static const struct optspec specs[] = {
      {"chunk", 1}, {"timeout", 1}, {"keep-open", 0}, {NULL, 0}};
  struct sender s;
  struct args a;
  uint64_t chunk = 0, max_msg, unit;
  uint32_t flags = 0;
  int rc, closed = 0;

  rc = cli_parse_args(argv[0], argc, argv, specs, &a);
  if (rc != 0)
    return rc;
  if (a.help) {
    fputs(cli_send_usage, stdout);
    return EXIT_OK;
  }
  if (a.npos == 0)
    return cli_usage_error(argv[0], "missing NAME");
  if (a.npos > 1)
    return cli_usage_error(argv[0], "unexpected argument '%s'", a.pos[1]);
  if (a.value[O_CHUNK] && (cli_parse_size(a.value[O_CHUNK], &chunk) != 0 ||
                           chunk > (uint64_t)SIZE_MAX / 4))
    return cli_usage_error(argv[0],
                           "bad chunk size '%s': expected a positive integer "
                           "with an optional suffix K, M or G",
                           a.value[O_CHUNK]);
  memset(&s, 0, sizeof s);
  rc = timeout_arg(argv[0], a.value[O_TIMEOUT], &s.timeout_ns);
  if (rc != 0)
    return rc;
  s.cmd = argv[0];
  s.name = a.pos[0];

  rc = ferry_channel_open(&s.ch, s.name, 0, FERRY_SENDER, NULL);
  if (rc != 0) {
    cli_fail_line(argv[0], s.name, rc);
    return EXIT_FAIL;
  }
  /* A stream, once ended, stays ended: a receiver that saw the end would
   * miss what we sent. */
  rc = channel_state(s.ch, &flags, &closed);
  if (rc != 0 || closed) {
    ferry_channel_close(s.ch);
    if (rc != 0)
      return cli_fail(argv[0], s.name, rc, "cannot read the channel: %s",
                      ferry_strerror(rc));
    return cli_fail(argv[0], s.name, FERRY_ECLOSED,
                    "an earlier sender ended this channel's stream; create "
                    "the channel again to send another");
  }
  max_msg = ferry_channel_max_msg(s.ch);
  if (chunk > max_msg) {
    ferry_channel_close(s.ch);
    return cli_fail(argv[0], s.name, FERRY_EMSGSIZE,
                    "--chunk %llu is larger than the channel's largest "
                    "message, %llu bytes",
                    (unsigned long long)chunk, (unsigned long long)max_msg);
  }
  unit = chunk ? chunk : max_msg < SEND_LINE_MAX ? max_msg : SEND_LINE_MAX;
  set_binary(stdin);
  rc = send_stream(&s, (size_t)unit, chunk != 0);
  if (rc == 0 && !a.value[O_KEEP_OPEN]) {
    int e = ferry_channel_close_send(s.ch);
    if (e != 0)
      rc = cli_fail(argv[0], s.name, e, "cannot end the stream: %s",
                    ferry_strerror(e));
  }
  ferry_channel_close(s.ch);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* ferry recv                                                               */

const char cli_recv_usage[] =
    "usage: ferry recv NAME [--timeout SECONDS]\n"
    "\n"
    "Receives from the channel NAME (of any kind) and writes each message's\n"
    "bytes to standard output, adding nothing, until the sender ends the\n"
    "stream; then exits 0. On a broadcast channel it gets what is sent\n"
    "after it attached. Messages lost to overrun (a broadcast channel\n"
    "created with --overrun whose sender got a whole ring ahead) are never\n"
    "lost silently: recv writes the others, then says how many were lost\n"
    "and exits 1.\n"
    "\n"
    "options:\n"
    "  --timeout SECONDS  how long to wait for each message (default 10;\n"
    "                     decimals allowed; 0 = no limit). On timeout, recv\n"
    "                     fails with FERRY_ETIMEDOUT\n";

/* Standard output's buffer, static: main() flushes after recv returns. */
static char recv_out_buf[RECV_OUT_BUF];

struct receiver {
  const char *cmd, *name;
  ferry_channel *ch;
  int64_t timeout_ns;
  int overrun;          /* broadcast --overrun: copy, then release */
  unsigned char *stage; /* the copy */
  size_t stage_cap;
};

static int write_failed(const struct receiver *r) {
  return cli_fail(r->cmd, r->name, FERRY_EIO, "cannot write the output: %s",
                  strerror(errno));
}

/* Writes N peeked messages and releases them. */
static int recv_batch(struct receiver *r, const ferry_msg *msgs, int n) {
  int i, rc;
  if (!r->overrun) {
    /* Zero-copy: straight from the ring into stdout's buffer. */
    for (i = 0; i < n; i++)
      if (msgs[i].len &&
          fwrite(msgs[i].data, 1, msgs[i].len, stdout) != msgs[i].len)
        return write_failed(r);
    rc = ferry_channel_release(r->ch);
  } else {
    /* The sender may overwrite what we read: copy it, and keep the copy
     * only if the release says it was intact. */
    size_t total = 0, off = 0;
    for (i = 0; i < n; i++)
      total += msgs[i].len;
    if (total > r->stage_cap) {
      unsigned char *p = (unsigned char *)realloc(r->stage, total);
      if (!p) {
        fprintf(stderr, "ferry: %s: out of memory\n", r->cmd);
        return EXIT_FAIL;
      }
      r->stage = p;
      r->stage_cap = total;
    }
    for (i = 0; i < n; i++) {
      if (msgs[i].len)
        memcpy(r->stage + off, msgs[i].data, msgs[i].len);
      off += msgs[i].len;
    }
    rc = ferry_channel_release(r->ch);
    if (rc == FERRY_EOVERRUN)
      return 0; /* overwritten meanwhile: lost, and counted as lost */
    if (rc == 0 && total && fwrite(r->stage, 1, total, stdout) != total)
      return write_failed(r);
  }
  if (rc != 0)
    return cli_fail(r->cmd, r->name, rc, "cannot release messages: %s",
                    ferry_strerror(rc));
  return 0;
}

static int recv_stream(struct receiver *r) {
  ferry_msg msgs[RECV_BATCH];
  for (;;) {
    int n = ferry_channel_peek(r->ch, msgs, RECV_BATCH, 0);
    if (n == FERRY_EAGAIN) {
      /* Idle: show what we have, then wait. */
      if (fflush(stdout) != 0)
        return write_failed(r);
      n = ferry_channel_peek(r->ch, msgs, RECV_BATCH, r->timeout_ns);
    }
    if (n == FERRY_ECLOSED)
      return 0;
    if (n == FERRY_ETIMEDOUT) {
      char t[64];
      return cli_fail(r->cmd, r->name, n,
                      "no message %s (--timeout sets the limit)",
                      timeout_text(r->timeout_ns, t, sizeof t));
    }
    if (n < 0)
      return cli_fail(r->cmd, r->name, n, "cannot receive: %s",
                      ferry_strerror(n));
    n = recv_batch(r, msgs, n);
    if (n != 0)
      return n;
  }
}

int cli_cmd_recv(int argc, char **argv) {
  enum { O_TIMEOUT };
  static const struct optspec specs[] = {{"timeout", 1}, {NULL, 0}};
  struct receiver r;
  struct args a;
  uint64_t lost;
  uint32_t flags = 0;
  int rc, closed = 0;

  rc = cli_parse_args(argv[0], argc, argv, specs, &a);
  if (rc != 0)
    return rc;
  if (a.help) {
    fputs(cli_recv_usage, stdout);
    return EXIT_OK;
  }
  if (a.npos == 0)
    return cli_usage_error(argv[0], "missing NAME");
  if (a.npos > 1)
    return cli_usage_error(argv[0], "unexpected argument '%s'", a.pos[1]);
  memset(&r, 0, sizeof r);
  rc = timeout_arg(argv[0], a.value[O_TIMEOUT], &r.timeout_ns);
  if (rc != 0)
    return rc;
  r.cmd = argv[0];
  r.name = a.pos[0];

  set_binary(stdout);
  setvbuf(stdout, recv_out_buf, _IOFBF, sizeof recv_out_buf);
  rc = ferry_channel_open(&r.ch, r.name, 0, FERRY_RECEIVER, NULL);
  if (rc != 0) {
    cli_fail_line(argv[0], r.name, rc);
    return EXIT_FAIL;
  }
  rc = channel_state(r.ch, &flags, &closed);
  if (rc != 0) {
    ferry_channel_close(r.ch);
    return cli_fail(argv[0], r.name, rc, "cannot read the channel: %s",
                    ferry_strerror(rc));
  }
  r.overrun = (flags & FERRY_CHANNEL_OVERRUN) != 0;

  rc = recv_stream(&r);
  lost = ferry_channel_lost(r.ch);
  ferry_channel_close(r.ch);
  free(r.stage);
  if (rc == 0 && lost > 0) {
    fflush(stdout);
    return cli_fail(argv[0], r.name, FERRY_EOVERRUN,
                    "%llu message%s lost: the sender overran this receiver "
                    "(the others were written)",
                    (unsigned long long)lost, lost == 1 ? " was" : "s were");
  }
  return rc;
}
