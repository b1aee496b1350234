// Repository locks (docs/FORMAT.md, "Locks"): `locks/<random id>` objects
// holding {host, pid, time, exclusive}. Backup, restore and check take shared
// locks; destructive commands take an exclusive one. A lock is refreshed
// (rewritten) every 5 minutes while held. Stale locks are removed
// automatically with a notice: a lock whose holder is provably gone (same
// host, dead pid) or that has not been refreshed for 30 minutes.
//
// Without delete permission (append-only credentials, e.g. an S3 backup role
// with s3:PutObject but no s3:DeleteObject) nothing fails: a lock that cannot
// be deleted is overwritten with a "released" marker instead (other lockers
// ignore it at once; the next command with delete permission removes it), a
// held lock is then refreshed in place, and stale locks that cannot be
// removed are ignored, each with a warning. Without write permission
// (read-only credentials) Acquire throws kPermission and leaves nothing.
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
  bool released = false;  // released by a holder that could not delete it: not a lock any more
};

class Lock {
 public:
  static constexpr int64_t kStaleAfterSeconds = 30 * 60;
  static constexpr int64_t kRefreshSeconds = 5 * 60;

  // Takes a lock. Conflicting live locks: waits up to `wait_seconds` (polling),
  // then throws Error(kLocked) naming the holder. Credentials that may not
  // write the lock object: throws what the backend throws (kPermission),
  // having written nothing.
  static std::unique_ptr<Lock> Acquire(Repository* repo, bool exclusive, int64_t wait_seconds = 0);
  ~Lock();  // releases (removes the lock object, or marks it released: see above)

  // Rewrites the lock now and returns its storage modification time (ns,
  // UTC, the storage's clock): prune's "now" for grace periods, so a client
  // with a wrong clock cannot shorten them. Throws what the backend throws.
  int64_t Touch();
  // Throws Error(kLocked) if the lock object is gone: another process judged
  // it stale (e.g. this one was suspended for 30 minutes) and may have
  // started an exclusive operation such as prune. A backup calls this before
  // writing its snapshot, which then is not written.
  void CheckHeld();

  // Lists all locks; when `remove_stale`, removes stale and released ones
  // (with a notice) and leaves them out; those it may not remove are left
  // out too, with one warning.
  static std::vector<LockInfo> List(Repository* repo, bool remove_stale);

 private:
  Lock(Repository* repo, bool exclusive);
  Bytes Encode(bool released) const;  // the sealed lock object
  void Write();
  // Removes lock object `id`, or, when that is refused (no delete
  // permission), marks it released (overwrites it), remembers the refusal
  // (delete_error_) and parks it for reuse; returns true then. Throws what
  // the backend throws.
  bool Drop(const Id& id);
  void RefreshLoop();

  Repository* repo_;
  bool exclusive_;
  Id id_;
  std::string delete_error_;  // why the last delete was refused ("" = none was): refresh in place from then on
  Id parked_;                 // a lock object of ours marked released, reused by the next Write
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool lost_ = false;  // the lock object was removed by someone else
  std::thread refresher_;
};

}  // namespace bulwark::repo
