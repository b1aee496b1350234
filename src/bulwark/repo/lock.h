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
  std::thread refresher_;
};

}  // namespace bulwark::repo
