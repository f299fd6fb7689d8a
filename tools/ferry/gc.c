/*
 * ferry gc: removes the named segments that nobody can be using any more.
 *
 * The rule (also in cli_gc_usage and docs/reliability.md): a segment is
 * stale, and removed, when its creator has died, no process attached to it
 * as a channel or pool peer is alive and, on Linux, no other live process maps
 * it; or when its creator died while creating it (open reports that
 * half-initialised segment as FERRY_EBADHDR). Everything else is kept:
 * whatever a live process created, is attached to or maps, and whatever gc
 * cannot judge safely (a damaged or foreign object, one it may not open, one
 * still being created, a creator whose liveness the OS will not tell).
 * Deleting someone's live data is worse than leaving a stale object behind,
 * so every doubt keeps the segment.
 *
 * Public API only. The Linux-only parts (the object's identity, and which
 * processes map it, from /proc/PID/maps) sit behind GC_PROC; elsewhere gc
 * relies on the creator and channel and pool peers alone.
 */
#if defined(_WIN32)
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* getline */
#endif

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>
#define GC_PROC 1
#endif

#include "cli.h"
#include "ferry.h"

const char cli_gc_usage[] =
    "usage: ferry gc [--dry-run] [--json] [NAME...]\n"
    "\n"
    "Removes stale named segments, channels and pools: those whose creator\n"
    "and every process attached to them have died. With NAMEs it looks at\n"
    "those segments only; otherwise at every named segment (ferry.* in\n"
    "/dev/shm on Linux). File-backed segments are never touched. Prints one "
    "line per\n"
    "segment removed (\"removed NAME (creator pid N dead)\"), one per segment\n"
    "kept because it cannot be judged, and a summary line.\n"
    "\n"
    "A segment is removed when\n"
    "  - its creator has died, no process attached to it (a channel's senders\n"
    "    and receivers, a pool's peers) is alive and, on Linux, no other live\n"
    "    process maps it; or\n"
    "  - its creator died while creating it (a half-initialised segment,\n"
    "    which open reports as FERRY_EBADHDR).\n"
    "It is never removed while a live process created it, is attached to it\n"
    "or maps it. It is kept, and reported, when it cannot be judged safely: a\n"
    "damaged or foreign object (bad magic, version or size), one you may not\n"
    "open (FERRY_EACCES), one still being created (FERRY_ETIMEDOUT), or one\n"
    "whose creator's liveness the system will not tell. Remove those with\n"
    "'ferry rm NAME' once you know nobody uses them.\n"
    "\n"
    "Beware: 'ferry create' is itself the creator of what it creates, and it\n"
    "exits at once. Such a segment is stale as soon as no live process has it\n"
    "open, even if its data is still wanted: do not run gc while segments\n"
    "made that way wait for their users.\n"
    "\n"
    "On Linux, processes that gc may not inspect (other users', unless gc\n"
    "runs as root) are not seen as mapping a segment; gc also assumes it runs\n"
    "in the same pid namespace as the programs that use the segments. A\n"
    "process that opens a segment in the instant between gc's check and the\n"
    "removal keeps a mapping of the removed segment.\n"
    "\n"
    "options:\n"
    "  --dry-run   report what would be removed; remove nothing\n"
    "  --json      one JSON object: {\"dry_run\":BOOL,\"removed\":[...],\n"
    "              \"kept\":[...],\"live\":[...],\"failed\":[...]}; with\n"
    "              --dry-run \"removed\" lists what would be removed\n"
    "\n"
    "Exit status: 0 success, also when there is nothing to remove; 1 when a\n"
    "removal failed or a NAME given does not exist (one error line each).\n";

/* ------------------------------------------------------------------------ */
/* Judging one segment                                                      */

enum verdict {
  V_GONE,  /* no such segment (any more) */
  V_LIVE,  /* a live process created it, is attached to it or maps it */
  V_STALE, /* remove it */
  V_KEEP   /* cannot be judged safely: keep it and say why */
};

struct judgement {
  enum verdict v;
  uint64_t creator_pid;
  int half_init;       /* V_STALE: the creator died while creating it */
  unsigned dead_peers; /* V_STALE: attached processes that have died */
  int err;             /* V_KEEP: the ferry code why, 0 for "cannot tell" */
  char why[640];       /* V_KEEP, V_LIVE: the reason, for people */
  unsigned long long dev, ino; /* Linux: the object judged */
};

static void keep(struct judgement *j, int err, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void keep(struct judgement *j, int err, const char *fmt, ...) {
  va_list ap;
  j->v = V_KEEP;
  j->err = err;
  va_start(ap, fmt);
  vsnprintf(j->why, sizeof j->why, fmt, ap);
  va_end(ap);
}

/* Keeps J with ferry code ERR and the library's detail message. */
static void keep_err(struct judgement *j, int err) {
  const char *m = ferry_errmsg();
  keep(j, err, "%s", m && m[0] ? m : ferry_strerror(err));
}

static void live(struct judgement *j, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void live(struct judgement *j, const char *fmt, ...) {
  va_list ap;
  j->v = V_LIVE;
  va_start(ap, fmt);
  vsnprintf(j->why, sizeof j->why, fmt, ap);
  va_end(ap);
}

/* Open reports a segment whose creator died before publishing the header
 * as FERRY_EBADHDR with the detail "OSNAME was left half-initialised by
 * process PID, which has died: ..." (src/segment.c, seg_attach). That is
 * the one open failure gc treats as stale; every other one keeps the
 * segment. Should the wording ever change, gc keeps such segments (the safe
 * side) and tests/cli.c's gc tests fail. */
static int half_init_pid(const char *name, const char *msg, uint64_t *pid) {
  static const char key[] = " was left half-initialised by process ";
  char osname[FERRY_NAME_MAX + 16];
  unsigned long long v = 0;
  size_t len;
  int n = 0;
  if (ferry_segment_os_name(name, 0, osname, sizeof osname) != 0)
    return 0;
  len = strlen(osname);
  if (!msg || strncmp(msg, osname, len) != 0 ||
      strncmp(msg + len, key, sizeof key - 1) != 0)
    return 0;
  msg += len + sizeof key - 1;
  if (msg[0] < '0' || msg[0] > '9' || sscanf(msg, "%llu%n", &v, &n) != 1 ||
      strncmp(msg + n, ", which has died", 16) != 0)
    return 0;
  *pid = v;
  return 1;
}

#ifdef GC_PROC
/* The identity of the object now named NAME (/dev/shm/ferry.NAME). 0,
 * FERRY_ENOENT when there is none, or FERRY_EIO. */
static int id_by_name(const char *name, unsigned long long *dev,
                      unsigned long long *ino) {
  char osname[FERRY_NAME_MAX + 16], path[FERRY_NAME_MAX + 32];
  struct stat st;
  if (ferry_segment_os_name(name, 0, osname, sizeof osname) != 0)
    return FERRY_EINVAL;
  snprintf(path, sizeof path, "/dev/shm%s", osname);
  if (stat(path, &st) != 0)
    return errno == ENOENT ? FERRY_ENOENT : FERRY_EIO;
  *dev = (unsigned long long)st.st_dev;
  *ino = (unsigned long long)st.st_ino;
  return 0;
}

/* A live process other than this one that maps the object (DEV, INO): its
 * pid, 0 if there is none, -1 if /proc cannot be read. Processes whose maps
 * we may not read (another user's, unless we are root) are not seen. */
static long mapped_by(unsigned long long dev, unsigned long long ino) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  char *line = NULL;
  size_t cap = 0;
  long self = (long)getpid(), found = 0;
  if (!d)
    return -1;
  while (!found && (e = readdir(d)) != NULL) {
    char path[64], *end;
    long pid = strtol(e->d_name, &end, 10);
    FILE *f;
    if (e->d_name[0] < '1' || e->d_name[0] > '9' || *end || pid == self)
      continue;
    snprintf(path, sizeof path, "/proc/%ld/maps", pid);
    f = fopen(path, "r");
    if (!f)
      continue; /* gone, or not ours to read */
    /* "start-end perms offset major:minor inode path" */
    while (getline(&line, &cap, f) > 0) {
      unsigned maj, min;
      unsigned long long i;
      if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &i) == 3 &&
          i == ino && maj == major((dev_t)dev) && min == minor((dev_t)dev)) {
        found = pid;
        break;
      }
    }
    fclose(f);
  }
  free(line);
  closedir(d);
  return found;
}
#endif

/* The attached processes of channel or pool NAME, as (pid, alive, role)
 * triples; *N of them. Returns a ferry code (with the detail message). */
struct gc_peer {
  uint64_t pid;
  int32_t alive;
  const char *role;
};

static int list_channel_peers(const char *name, struct gc_peer *out,
                              size_t *n) {
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *ch = NULL;
  ferry_channel_info *ci;
  uint32_t i;
  int rc;
  o.open_timeout_ms = -1;
  /* an observer neither attaches nor writes */
  rc = ferry_channel_open(&ch, name, FERRY_RDONLY, FERRY_OBSERVE, &o);
  if (rc != 0)
    return rc;
  ci = (ferry_channel_info *)calloc(1, sizeof *ci); /* ~12 KiB */
  if (!ci) {
    ferry_channel_close(ch);
    return FERRY_ENOMEM;
  }
  rc = ferry_channel_get_info(ch, ci, sizeof *ci);
  ferry_channel_close(ch);
  for (i = 0; rc == 0 && i < ci->npeers && i < FERRY_CHANNEL_PEERS_MAX; i++) {
    const ferry_channel_peer *p = &ci->peers[i];
    out[i].pid = p->pid;
    out[i].alive = p->alive;
    out[i].role = p->role == FERRY_SENDER     ? "sender"
                  : p->role == FERRY_RECEIVER ? "receiver"
                                              : "peer";
    *n = i + 1;
  }
  free(ci);
  return rc;
}

static int list_pool_peers(const char *name, struct gc_peer *out, size_t *n) {
  ferry_pool *p = NULL;
  ferry_pool_info *in = NULL;
  uint32_t i;
  int rc = cli_pool_inspect(name, &p, &in); /* an observer */
  if (rc != 0)
    return rc;
  for (i = 0; i < in->npeers && i < FERRY_POOL_PEERS_MAX; i++) {
    out[i].pid = in->peers[i].pid;
    /* a slot without a pid yet is being filled in: treat it as alive */
    out[i].alive = in->peers[i].pid ? in->peers[i].alive : 1;
    out[i].role = "pool peer";
    *n = i + 1;
  }
  free(in);
  ferry_pool_close(p);
  return 0;
}

/* Decides about channel or pool NAME, whose creator (J->creator_pid) is
 * dead: live if an attached process lives, kept if one's liveness is
 * unknown or the peers cannot be read, else stale with J->dead_peers
 * counted. */
static void judge_peers(const char *name, uint32_t payload,
                        struct judgement *j) {
  struct gc_peer *peers;
  size_t i, n = 0;
  int rc;
  peers = (struct gc_peer *)calloc(FERRY_CHANNEL_PEERS_MAX, sizeof *peers);
  if (!peers) {
    keep(j, FERRY_ENOMEM, "out of memory");
    return;
  }
  rc = payload == FERRY_PAYLOAD_POOL ? list_pool_peers(name, peers, &n)
                                     : list_channel_peers(name, peers, &n);
  if (rc == FERRY_ENOENT) {
    j->v = V_GONE;
  } else if (rc == FERRY_ENOMEM) {
    keep(j, FERRY_ENOMEM, "out of memory");
  } else if (rc != 0) {
    keep_err(j, rc);
  } else {
    j->v = V_STALE;
    for (i = 0; i < n; i++) {
      if (peers[i].alive > 0) {
        live(j, "%s pid %llu alive", peers[i].role,
             (unsigned long long)peers[i].pid);
        break;
      }
      if (peers[i].alive < 0) {
        keep(j, 0, "cannot tell whether %s pid %llu is alive", peers[i].role,
             (unsigned long long)peers[i].pid);
        break;
      }
      j->dead_peers++;
    }
  }
  free(peers);
}

/* Decides what to do with segment NAME. */
static void judge(const char *name, struct judgement *j) {
  ferry_segment_opts o = FERRY_SEGMENT_OPTS_INIT;
  ferry_segment *seg = NULL;
  ferry_segment_info info;
  char msg[512] = "";
  int rc;
  memset(j, 0, sizeof *j);
  rc = ferry_name_check(name);
  if (rc != 0) {
    keep_err(j, rc); /* a foreign object under the ferry. prefix */
    return;
  }
#ifdef GC_PROC
  rc = id_by_name(name, &j->dev, &j->ino);
  if (rc == FERRY_ENOENT) {
    j->v = V_GONE;
    return;
  }
  if (rc != 0) {
    keep(j, rc, "cannot stat the object");
    return;
  }
#endif
  o.timeout_ms = -1; /* never wait for a creator */
  rc = ferry_segment_open(&seg, name, FERRY_RDONLY, 0, &o);
  if (rc == FERRY_ENOENT) {
    j->v = V_GONE;
    return;
  }
  if (rc != 0) /* the next ferry call clears the detail message */
    snprintf(msg, sizeof msg, "%s", ferry_errmsg());
  if (rc == FERRY_EBADHDR && half_init_pid(name, msg, &j->creator_pid)) {
    j->half_init = 1;
    j->v = V_STALE;
  } else if (rc != 0) {
    keep(j, rc, "%s", msg[0] ? msg : ferry_strerror(rc));
    return;
  } else {
    rc = ferry_segment_get_info(seg, &info, sizeof info);
#ifdef GC_PROC
    {
      struct stat st;
      if (fstat((int)ferry_segment_handle(seg), &st) != 0 ||
          (unsigned long long)st.st_dev != j->dev ||
          (unsigned long long)st.st_ino != j->ino) {
        ferry_segment_close(seg);
        keep(j, 0, "replaced while gc examined it");
        return;
      }
    }
#endif
    if (rc != 0) {
      keep_err(j, rc);
      ferry_segment_close(seg);
      return;
    }
    ferry_segment_close(seg);
    j->creator_pid = info.creator_pid;
    if (info.creator_alive > 0) {
      live(j, "creator pid %llu alive", (unsigned long long)info.creator_pid);
      return;
    }
    if (info.creator_alive < 0) {
      keep(j, 0, "cannot tell whether creator pid %llu is alive",
           (unsigned long long)info.creator_pid);
      return;
    }
    j->v = V_STALE;
    if (info.payload == FERRY_PAYLOAD_CHANNEL ||
        info.payload == FERRY_PAYLOAD_POOL) {
      judge_peers(name, info.payload, j);
      if (j->v != V_STALE)
        return;
    }
  }
#ifdef GC_PROC
  {
    unsigned long long dev = 0, ino = 0;
    long pid;
    if (j->half_init &&
        (id_by_name(name, &dev, &ino) != 0 || dev != j->dev || ino != j->ino)) {
      keep(j, 0, "replaced while gc examined it");
      return;
    }
    /* last, so that little time passes between this and the removal */
    pid = mapped_by(j->dev, j->ino);
    if (pid > 0)
      live(j, "mapped by pid %ld", pid);
    else if (pid < 0)
      keep(j, 0, "cannot read /proc to see which processes map it");
  }
#endif
}

/* Removes stale segment NAME: 0, or a ferry code with a detail message. */
static int gc_remove(const char *name, const struct judgement *j) {
#ifdef GC_PROC
  unsigned long long dev = 0, ino = 0;
  int rc = id_by_name(name, &dev, &ino);
  if (rc == FERRY_ENOENT)
    return rc;
  if (rc != 0 || dev != j->dev || ino != j->ino)
    return FERRY_EAGAIN; /* replaced since it was judged: leave it */
#else
  (void)j;
#endif
  return ferry_segment_unlink(name, 0);
}

/* ------------------------------------------------------------------------ */
/* The command                                                              */

struct gc_entry {
  char *name;
  struct judgement j;
  int removed;   /* removed (or, dry run, would be) */
  int fail_err;  /* removal (or NAME) failed with this code */
  char msg[512]; /* its detail */
};

/* "creator pid N dead, K dead peers" or "half-initialised, creator pid N
 * dead". */
static void stale_reason(const struct judgement *j, char *buf, size_t cap) {
  if (j->half_init)
    snprintf(buf, cap, "half-initialised, creator pid %llu dead",
             (unsigned long long)j->creator_pid);
  else if (j->dead_peers > 0)
    snprintf(buf, cap, "creator pid %llu dead, %u dead peer%s",
             (unsigned long long)j->creator_pid, j->dead_peers,
             j->dead_peers == 1 ? "" : "s");
  else
    snprintf(buf, cap, "creator pid %llu dead",
             (unsigned long long)j->creator_pid);
}

static void print_text(const struct gc_entry *e, size_t n, int dry) {
  size_t i, removed = 0, live_n = 0, kept = 0, failed = 0;
  char buf[128];
  for (i = 0; i < n; i++) {
    if (e[i].fail_err) {
      failed++;
    } else if (e[i].removed) {
      removed++;
      stale_reason(&e[i].j, buf, sizeof buf);
      fputs(dry ? "would remove " : "removed ", stdout);
      cli_put_clean(stdout, e[i].name);
      printf(" (%s)\n", buf);
    } else if (e[i].j.v == V_LIVE) {
      live_n++;
    } else if (e[i].j.v == V_KEEP) {
      kept++;
      fputs("kept ", stdout);
      cli_put_clean(stdout, e[i].name);
      fputs(" (", stdout);
      if (e[i].j.err)
        printf("%s: ", ferry_err_name(e[i].j.err));
      cli_put_clean(stdout, e[i].j.why);
      puts(")");
    }
  }
  printf("%s%zu %s, %zu live, %zu kept", dry ? "dry run: " : "", removed,
         dry ? "would be removed" : "removed", live_n, kept);
  if (failed)
    printf(", %zu failed", failed);
  putchar('\n');
}

static void print_json(const struct gc_entry *e, size_t n, int dry) {
  static const char *const keys[] = {"removed", "kept", "live", "failed"};
  size_t i, k;
  printf("{\"dry_run\":%s", dry ? "true" : "false");
  for (k = 0; k < 4; k++) {
    int first = 1;
    printf(",\"%s\":[", keys[k]);
    for (i = 0; i < n; i++) {
      const struct gc_entry *x = &e[i];
      int sel = k == 0   ? x->removed && !x->fail_err
                : k == 1 ? !x->removed && !x->fail_err && x->j.v == V_KEEP
                : k == 2 ? !x->fail_err && x->j.v == V_LIVE
                         : x->fail_err != 0;
      if (!sel)
        continue;
      if (!first)
        putchar(',');
      first = 0;
      fputs("{\"name\":", stdout);
      cli_json_str(x->name);
      if (k == 0) {
        printf(",\"creator_pid\":%llu,\"half_initialised\":%s,"
               "\"dead_peers\":%u}",
               (unsigned long long)x->j.creator_pid,
               x->j.half_init ? "true" : "false", x->j.dead_peers);
      } else if (k == 1) {
        fputs(",\"error\":", stdout);
        if (x->j.err)
          printf("\"%s\"", ferry_err_name(x->j.err));
        else
          fputs("null", stdout);
        fputs(",\"message\":", stdout);
        cli_json_str(x->j.why);
        putchar('}');
      } else if (k == 2) {
        fputs(",\"reason\":", stdout);
        cli_json_str(x->j.why);
        putchar('}');
      } else {
        printf(",\"error\":\"%s\",\"message\":", ferry_err_name(x->fail_err));
        cli_json_str(x->msg);
        putchar('}');
      }
    }
    putchar(']');
  }
  puts("}");
}

int cli_cmd_gc(int argc, char **argv) {
  enum { O_DRY_RUN, O_JSON };
  static const struct optspec specs[] = {
      {"dry-run", 0}, {"json", 0}, {NULL, 0}};
  struct cli_names l = {NULL, 0, 0, 0};
  struct gc_entry *e = NULL;
  struct args a;
  size_t i;
  int rc, dry, status = EXIT_OK, explicit_names;

  rc = cli_parse_args(argv[0], argc, argv, specs, &a);
  if (rc != 0)
    return rc;
  if (a.help) {
    fputs(cli_gc_usage, stdout);
    return EXIT_OK;
  }
  dry = a.value[O_DRY_RUN] != NULL;
  explicit_names = a.npos > 0;

#ifdef GC_PROC
  /* Liveness comes from /proc: without it every process would look dead. */
  {
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
      return cli_fail(argv[0], NULL, FERRY_EIO,
                      "cannot read /proc/self/stat, so cannot tell which "
                      "processes are alive; nothing removed");
    fclose(f);
  }
#endif

  if (explicit_names) {
    for (i = 0; i < (size_t)a.npos && !l.oom; i++)
      cli_names_push(a.pos[i], &l);
  } else {
    rc = ferry_segment_list(cli_names_push, &l);
    if (rc != 0 && !l.oom) {
      cli_fail_line(argv[0], NULL, rc);
      status = EXIT_FAIL;
      goto out;
    }
    if (l.n > 1)
      cli_names_sort(&l);
  }
  if (l.oom || (l.n > 0 && !(e = (struct gc_entry *)calloc(l.n, sizeof *e)))) {
    fprintf(stderr, "ferry: %s: out of memory\n", argv[0]);
    status = EXIT_FAIL;
    goto out;
  }

  for (i = 0; i < l.n; i++) {
    struct gc_entry *x = &e[i];
    x->name = l.v[i];
    if (explicit_names && (rc = ferry_name_check(x->name)) != 0) {
      const char *m = ferry_errmsg();
      x->fail_err = rc;
      snprintf(x->msg, sizeof x->msg, "%s", m && m[0] ? m : "invalid name");
      continue;
    }
    judge(x->name, &x->j);
    if (x->j.v == V_GONE) {
      if (explicit_names) {
        x->fail_err = FERRY_ENOENT;
        snprintf(x->msg, sizeof x->msg, "segment %s does not exist", x->name);
      }
      continue;
    }
    if (x->j.v != V_STALE)
      continue;
    if (dry) {
      x->removed = 1;
      continue;
    }
    rc = gc_remove(x->name, &x->j);
    if (rc == 0) {
      x->removed = 1;
    } else if (rc == FERRY_ENOENT) {
      x->j.v = V_GONE; /* someone else removed it meanwhile */
    } else if (rc == FERRY_EAGAIN) {
      keep(&x->j, 0, "replaced while gc examined it");
    } else {
      const char *m = ferry_errmsg();
      x->fail_err = rc;
      snprintf(x->msg, sizeof x->msg, "%s", m && m[0] ? m : ferry_strerror(rc));
    }
  }

  for (i = 0; i < l.n; i++)
    if (e[i].fail_err) {
      cli_fail(argv[0], e[i].name, e[i].fail_err, "%s", e[i].msg);
      status = EXIT_FAIL;
    }
  fflush(stderr);
  if (a.value[O_JSON])
    print_json(e, l.n, dry);
  else
    print_text(e, l.n, dry);

out:
  cli_names_free(&l);
  free(e);
  return status;
}
