#include "bulwark/repo/lock.h"

#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>
#include <nlohmann/json.hpp>

#include "bulwark/base/error.h"
#include "bulwark/base/json.h"
#include "bulwark/base/log.h"
#include "bulwark/base/sys.h"

namespace bulwark::repo {

using nlohmann::json;

namespace {

LockInfo Decode(Repository* repo, const storage::ObjectInfo& o) {
  LockInfo info;
  info.id = Id::FromHexOrThrow(o.name.substr(o.name.rfind('/') + 1));
  Bytes raw = repo->backend().Get(o.name);
  Bytes body = OpenObject(repo->aead(), ObjectType::kLock, raw, repo->backend().Location() + "/" + o.name);
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorCode::kCorrupt, o.name + ": not valid JSON");
  info.host = j.value("host", "");
  info.username = j.value("username", "");
  info.pid = JsonInt(j, "pid", o.name, false);
  info.time_ns = JsonInt(j, "time_ns", o.name, false);
  info.exclusive = j.value("exclusive", false);
  return info;
}

std::string Describe(const LockInfo& l) {
  return std::string(l.exclusive ? "exclusive" : "shared") + " lock " + l.id.Short() + " held by pid " +
         std::to_string(l.pid) + " on " + l.host + " (" + l.username + ") since " + FormatTime(l.time_ns);
}

}  // namespace

std::vector<LockInfo> Lock::List(Repository* repo, bool remove_stale) {
  std::vector<LockInfo> out;
  std::string host = sys::Hostname();
  int64_t now = NowNs();
  for (const auto& o : repo->backend().List("locks/")) {
    LockInfo l;
    try {
      l = Decode(repo, o);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kNotFound) continue;  // released meanwhile
      if (remove_stale && e.code() == ErrorCode::kCorrupt) {
        // A lock object that cannot be read (e.g. written under a removed key
        // or damaged) only gets in the way; locks carry no data.
        log::Warn(std::string("removing unreadable lock: ") + e.what());
        repo->backend().Remove(o.name);
        continue;
      }
      throw;
    }
    bool dead = l.host == host && !sys::ProcessAlive(l.pid);
    // Age by storage timestamp too: robust against the holder's clock.
    int64_t age_s = std::min(now - l.time_ns, now - o.mtime_ns) / 1000000000;
    bool expired = age_s > kStaleAfterSeconds;
    if (remove_stale && (dead || expired)) {
      log::Info("removing stale " + Describe(l) + (dead ? ": that process is gone" : ": not refreshed for 30 minutes"));
      try {
        repo->backend().Remove(o.name);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::kPermission) throw;
        // Append-only credentials (e.g. an S3 backup role without delete):
        // the stale lock stays, but it is provably stale, so it is ignored.
        log::Warn("cannot remove stale lock " + l.id.Short() + " (no delete permission); ignoring it");
      }
      continue;
    }
    out.push_back(l);
  }
  return out;
}

Lock::Lock(Repository* repo, bool exclusive) : repo_(repo), exclusive_(exclusive) {}

void Lock::Write() {
  json j = {{"host", sys::Hostname()},     {"username", sys::Username()}, {"pid", static_cast<int64_t>(getpid())},
            {"time", FormatTime(NowNs())}, {"time_ns", NowNs()},          {"exclusive", exclusive_}};
  std::string s = j.dump();
  Bytes obj = SealObject(repo_->aead(), ObjectType::kLock, AsBytes(s));
  Id old = id_;
  id_ = crypto::RandomId();
  repo_->backend().Put(Repository::ObjectName(ObjectType::kLock, id_), obj);
  if (old.IsZero()) return;
  try {
    repo_->backend().Remove(Repository::ObjectName(ObjectType::kLock, old));
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kPermission) throw;
    // Without delete permission the old lock object stays; it ages into a
    // stale lock that others ignore (see List).
    log::Warn("cannot remove the previous lock object " + old.Short() + " (no delete permission)");
  }
}

std::unique_ptr<Lock> Lock::Acquire(Repository* repo, bool exclusive, int64_t wait_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  std::unique_ptr<Lock> lock(new Lock(repo, exclusive));
  auto last_write = std::chrono::steady_clock::now();
  auto drop_own = [&] {
    if (lock->id_.IsZero()) return;
    repo->backend().Remove(Repository::ObjectName(ObjectType::kLock, lock->id_));
    lock->id_ = Id{};
  };
  thread_local std::mt19937 rng(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    std::optional<LockInfo> conflict;
    bool keep_waiting_with_own = false;
    auto others = List(repo, true);
    if (exclusive) {
      // Writer preference: an exclusive waiter keeps its lock object while it
      // waits, so new shared lockers back off and a stream of backups cannot
      // starve a prune. Of two exclusive waiters the smaller id goes first.
      if (lock->id_.IsZero()) {
        lock->Write();
        last_write = std::chrono::steady_clock::now();
        continue;
      }
      for (const auto& l : others) {
        if (l.id == lock->id_) continue;
        conflict = l;
        if (l.exclusive && l.id < lock->id_) {
          keep_waiting_with_own = false;
          break;
        }
        keep_waiting_with_own = true;
      }
      if (!conflict) break;
      if (!keep_waiting_with_own) drop_own();
    } else {
      for (const auto& l : others)
        if (l.id != lock->id_ && l.exclusive) conflict = l;
      if (!conflict) {
        if (lock->id_.IsZero()) {
          lock->Write();
          continue;  // re-check: an exclusive locker may have arrived concurrently
        }
        break;
      }
      drop_own();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      drop_own();
      throw Error(ErrorCode::kLocked, "repository " + repo->backend().Location() + " is locked: " + Describe(*conflict) +
                                          " (use --lock-wait to wait, or 'bulwark unlock' if that process is gone "
                                          "on another host)");
    }
    if (!lock->id_.IsZero() &&
        std::chrono::steady_clock::now() - last_write > std::chrono::seconds(kRefreshSeconds)) {
      lock->Write();  // a waiting lock is refreshed like a held one
      last_write = std::chrono::steady_clock::now();
    }
    int base = std::min(5000, 200 * (attempt + 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(base / 2 + rng() % (base / 2 + 1)));
  }
  lock->refresher_ = std::thread([l = lock.get()] { l->RefreshLoop(); });
  return lock;
}

int64_t Lock::Touch() {
  std::lock_guard<std::mutex> guard(mu_);
  Write();
  auto st = repo_->backend().Stat(Repository::ObjectName(ObjectType::kLock, id_));
  if (!st) throw Error(ErrorCode::kLocked, "lock " + id_.Short() + " vanished right after it was written");
  return st->mtime_ns;
}

void Lock::CheckHeld() {
  std::lock_guard<std::mutex> guard(mu_);
  if (lost_ || !repo_->backend().Stat(Repository::ObjectName(ObjectType::kLock, id_)))
    throw Error(ErrorCode::kLocked, "this process's lock on " + repo_->backend().Location() +
                                        " was removed by another process (it was considered stale); stopping so "
                                        "that nothing refers to data a concurrent prune may have removed");
}

void Lock::RefreshLoop() {
  std::unique_lock<std::mutex> guard(mu_);
  while (!cv_.wait_for(guard, std::chrono::seconds(kRefreshSeconds), [&] { return stop_; })) {
    try {
      if (!repo_->backend().Stat(Repository::ObjectName(ObjectType::kLock, id_))) {
        lost_ = true;
        log::Warn("lock " + id_.Short() + " was removed by another process; this operation will not commit");
        continue;
      }
      Write();
    } catch (const Error& e) {
      log::Warn(std::string("refreshing lock: ") + e.what());
    }
  }
}

Lock::~Lock() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
  try {
    if (!id_.IsZero()) repo_->backend().Remove(Repository::ObjectName(ObjectType::kLock, id_));
  } catch (const Error& e) {
    log::Warn(std::string("releasing lock: ") + e.what());
  }
}

}  // namespace bulwark::repo
