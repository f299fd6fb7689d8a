/*
 * ferry create --pool and the pool sections of ferry info: a pool's
 * blocks (free, in use), its attached processes and who holds which
 * block. Public API only (include/ferry.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ferry.h"

/* Blocks in use listed one by one, at most (text; JSON lists more). */
#define TEXT_BLOCKS 64
#define JSON_BLOCKS 4096

int cli_pool_create(const char *cmd, const char *name, uint64_t block_size,
                    uint64_t blocks, uint32_t max_peers, uint32_t mode,
                    uint32_t seg_flags) {
  ferry_pool_opts o = FERRY_POOL_OPTS_INIT;
  ferry_pool *p = NULL;
  int rc;
  o.block_size = block_size;
  o.block_count = (uint32_t)blocks;
  o.max_peers = max_peers;
  o.mode = mode;
  o.seg_flags = seg_flags;
  rc = ferry_pool_open(&p, name, FERRY_CREATE | FERRY_EXCL, &o);
  if (rc != 0) {
    cli_fail_line(cmd, name, rc);
    return EXIT_FAIL;
  }
  ferry_pool_close(p);
  return EXIT_OK;
}

int cli_pool_inspect(const char *name, ferry_pool **p, ferry_pool_info **in) {
  ferry_pool_opts o = FERRY_POOL_OPTS_INIT;
  int rc;
  *in = NULL;
  o.open_timeout_ms = -1;
  rc = ferry_pool_open(p, name, FERRY_RDONLY, &o); /* an observer */
  if (rc != 0)
    return rc;
  *in = (ferry_pool_info *)calloc(1, sizeof **in);
  if (!*in) {
    ferry_pool_close(*p);
    *p = NULL;
    return FERRY_ENOMEM;
  }
  rc = ferry_pool_get_info(*p, *in, sizeof **in);
  if (rc != 0) {
    ferry_pool_close(*p);
    *p = NULL;
    free(*in);
    *in = NULL;
  }
  return rc;
}

static const char *peer_state_str(uint32_t st) {
  return st == 1   ? "attaching"
         : st == 2 ? "attached"
         : st == 3 ? "retiring"
                   : "free";
}

static const char *alive_word(int32_t alive) {
  return alive > 0 ? "yes" : alive == 0 ? "no" : "?";
}

/* The peer in slot SLOT, or NULL. */
static const ferry_pool_peer *slot_peer(const ferry_pool_info *in,
                                        uint32_t slot) {
  uint32_t i;
  for (i = 0; i < in->npeers && i < FERRY_POOL_PEERS_MAX; i++)
    if (in->peers[i].slot == slot)
      return &in->peers[i];
  return NULL;
}

void cli_pool_print_text(const ferry_pool *p, const ferry_pool_info *in) {
  char a[32], b[32];
  uint32_t i, listed = 0;
  printf("%-15s %u blocks of %llu bytes (%s), %s apart\n",
         "pool:", (unsigned)in->block_count, (unsigned long long)in->block_size,
         cli_fmt_size(in->block_size, a, sizeof a),
         cli_fmt_size(in->block_stride, b, sizeof b));
  printf("%-15s %u in use, %u free\n", "blocks:", (unsigned)in->used,
         (unsigned)in->free);
  printf("%-15s %llu\n", "allocs:", (unsigned long long)in->allocs);
  printf("%-15s %llu references of dead processes, %llu processes\n",
         "reclaimed:", (unsigned long long)in->reclaimed,
         (unsigned long long)in->retired);
  printf("%-15s %u of %u\n", "peers:", (unsigned)in->npeers,
         (unsigned)in->max_peers);
  if (in->npeers) {
    printf("  %-5s %-10s %-6s %-10s %-8s %s\n", "SLOT", "PID", "ALIVE", "STATE",
           "HELD", "ALLOCS");
    for (i = 0; i < in->npeers && i < FERRY_POOL_PEERS_MAX; i++) {
      const ferry_pool_peer *q = &in->peers[i];
      printf("  %-5u %-10llu %-6s %-10s %-8u %llu\n", (unsigned)q->slot,
             (unsigned long long)q->pid, alive_word(q->alive),
             peer_state_str(q->state), (unsigned)q->held,
             (unsigned long long)q->allocs);
    }
  }
  if (in->used == 0)
    return;
  printf("blocks in use:\n  %-8s %-9s %-18s %s\n", "BLOCK", "GEN", "HANDLE",
         "HELD BY");
  for (i = 0; i < in->block_count; i++) {
    ferry_pool_block bl;
    uint32_t s;
    const char *sep = "";
    if (ferry_pool_block_info(p, i, &bl, sizeof bl) != 0 || !bl.holders)
      continue;
    if (listed++ == TEXT_BLOCKS) {
      printf("  ... (%u in use; 'ferry info --json' lists more)\n",
             (unsigned)in->used);
      break;
    }
    printf("  %-8u %-9u 0x%016llx ", (unsigned)bl.index, (unsigned)bl.gen,
           (unsigned long long)bl.handle);
    for (s = 0; s < 64; s++) {
      const ferry_pool_peer *q;
      if (!(bl.holders & (UINT64_C(1) << s)))
        continue;
      q = slot_peer(in, s);
      if (q)
        printf("%spid %llu (%s)", sep, (unsigned long long)q->pid,
               q->alive > 0    ? "alive"
               : q->alive == 0 ? "dead"
                               : "alive?");
      else
        printf("%sslot %u (no process)", sep, (unsigned)s);
      sep = ", ";
    }
    putchar('\n');
  }
}

void cli_pool_print_json(const ferry_pool *p, const ferry_pool_info *in) {
  uint32_t i, listed = 0;
  printf(",\"pool\":{\"block_size\":%llu,\"block_stride\":%llu,"
         "\"block_count\":%u,\"max_peers\":%u,\"free\":%u,\"used\":%u,"
         "\"allocs\":%llu,\"reclaimed\":%llu,\"retired\":%llu,\"peers\":[",
         (unsigned long long)in->block_size,
         (unsigned long long)in->block_stride, (unsigned)in->block_count,
         (unsigned)in->max_peers, (unsigned)in->free, (unsigned)in->used,
         (unsigned long long)in->allocs, (unsigned long long)in->reclaimed,
         (unsigned long long)in->retired);
  for (i = 0; i < in->npeers && i < FERRY_POOL_PEERS_MAX; i++) {
    const ferry_pool_peer *q = &in->peers[i];
    printf("%s{\"slot\":%u,\"pid\":%llu,\"alive\":%s,\"state\":\"%s\","
           "\"held\":%u,\"allocs\":%llu}",
           i ? "," : "", (unsigned)q->slot, (unsigned long long)q->pid,
           q->alive > 0    ? "true"
           : q->alive == 0 ? "false"
                           : "null",
           peer_state_str(q->state), (unsigned)q->held,
           (unsigned long long)q->allocs);
  }
  fputs("],\"blocks\":[", stdout);
  for (i = 0; i < in->block_count && listed < JSON_BLOCKS; i++) {
    ferry_pool_block bl;
    uint32_t s, n = 0;
    if (ferry_pool_block_info(p, i, &bl, sizeof bl) != 0 || !bl.holders)
      continue;
    printf("%s{\"index\":%u,\"gen\":%u,\"handle\":\"0x%016llx\","
           "\"holders\":[",
           listed++ ? "," : "", (unsigned)bl.index, (unsigned)bl.gen,
           (unsigned long long)bl.handle);
    for (s = 0; s < 64; s++) {
      const ferry_pool_peer *q;
      if (!(bl.holders & (UINT64_C(1) << s)))
        continue;
      q = slot_peer(in, s);
      printf("%s{\"slot\":%u,\"pid\":%llu,\"alive\":%s}", n++ ? "," : "",
             (unsigned)s, q ? (unsigned long long)q->pid : 0ull,
             !q              ? "null"
             : q->alive > 0  ? "true"
             : q->alive == 0 ? "false"
                             : "null");
    }
    fputs("]}", stdout);
  }
  printf("],\"blocks_truncated\":%s}", listed < in->used ? "true" : "false");
}
