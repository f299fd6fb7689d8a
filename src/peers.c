/* Peer slot identity, shared by channels and pools (src/peers.h). */
#include "peers.h"

#include "internal.h"
#include "os/os.h"

int ferry__peer_id_alive(const struct ferry__peer_id *id) {
  struct ferry__peer_id *p = (struct ferry__peer_id *)id;
  return ferry__proc_alive(ferry__load_acquire(&p->pid),
                           ferry__load_relaxed(&p->start),
                           ferry__load_relaxed(&p->boot));
}

void ferry__peer_id_fill(struct ferry__peer_id *id) {
  uint64_t start = 0;
  ferry_os_proc_start(ferry_os_pid(), &start);
  ferry__store_relaxed(&id->start, start);
  ferry__store_relaxed(&id->boot, ferry_os_boot_id());
  ferry__store_release(&id->pid, ferry_os_pid());
}

void ferry__peer_id_clear(struct ferry__peer_id *id) {
  ferry__store_relaxed(&id->pid, 0);
  ferry__store_relaxed(&id->start, 0);
  ferry__store_relaxed(&id->boot, 0);
}
