// Repository locks (docs/FORMAT.md, "Locks"): `locks/<random id>` objects
// holding {host, pid, time, exclusive}. Backup, restore and check take shared
// locks; destructive commands take an exclusive one. A lock is refreshed
// (rewritten) every 5 minutes while held. Stale locks are removed
// automatically with a notice: a lock whose holder is provably gone (same
// host, dead pid) or that has not been refreshed for 30 minutes.
//
// Thread-safety: a Lock object is used by one thread; its refresher runs on
// its own thread.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "bulwark/repo/repository.h"

namespace bulwark::repo {

struct LockInfo {
  Id id;
  std::string host, username;
  int64_t pid = 0;
  int64_t time_ns = 0;  // last refresh, holder's clock, UTC
  bool exclusive = false;
};

class Lock {
 public:
  static constexpr int64_t kStaleAfterSeconds = 30 * 60;
  static constexpr int64_t kRefreshSeconds = 5 * 60;

  // Takes a lock. Conflicting live locks: waits up to `wait_seconds` (polling),
  // then throws Error(kLocked) naming the holder.
  static std::unique_ptr<Lock> Acquire(Repository* repo, bool exclusive, int64_t wait_seconds = 0);
  ~Lock();  // releases (removes the lock object)

  // Rewrites the lock now and returns its storage modification time (ns,
  // UTC, the storage's clock): prune's "now" for grace periods, so a client
  // with a wrong clock cannot shorten them. Throws what the backend throws.
  int64_t Touch();
  // Throws Error(kLocked) if the lock object is gone: another process judged
  // it stale (e.g. this one was suspended for 30 minutes) and may have
  // started an exclusive operation such as prune. A backup calls this before
  // writing its snapshot, which then is not written.
  void CheckHeld();

  // Lists all locks; removes stale ones (with a notice) when `remove_stale`.
  static std::vector<LockInfo> List(Repository* repo, bool remove_stale);

 private:
  Lock(Repository* repo, bool exclusive);
  void Write();
  void RefreshLoop();

  Repository* repo_;
  bool exclusive_;
  Id id_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool lost_ = false;  // the lock object was removed by someone else
  std::thread refresher_;
};

}  // namespace bulwark::repo
