// Storage backends: where repository objects live.
//
// A backend stores opaque named objects. Names are relative paths such as
// "config", "keys/<hex>", "data/<2 hex>/<hex>", "index/<hex>",
// "snapshots/<hex>", "locks/<hex>" (docs/FORMAT.md, "Object names").
// Backends never interpret object contents.
//
// Errors: every method throws bulwark::Error. kNotFound for a missing object,
// kNoSpace for a full disk, kPermission for denied access, kIo otherwise;
// messages name the backend location and the object.
//
// Thread-safety: all methods may be called concurrently from many threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/base/bytes.h"
#include "bulwark/base/error.h"
#include "bulwark/storage/s3/settings.h"

namespace bulwark::storage {

struct ObjectInfo {
  std::string name;      // full object name, e.g. "data/3f/3fa9..."
  uint64_t size = 0;     // bytes
  int64_t mtime_ns = 0;  // storage's modification time, ns since the Unix epoch (UTC)
  // Object Lock: retain-until date (ns, UTC) when Stat saw one; 0 = not locked
  // or unknown (List never fills it).
  int64_t retain_until_ns = 0;
};

// What a backend can do; decorators and callers adapt to it.
struct Capabilities {
  bool atomic_put = true;        // a Put is visible all-or-nothing
  int max_connections = 8;       // useful parallelism for uploads/downloads
  bool local = false;            // objects are files on this host
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Human-readable location for messages ("/srv/repo", "s3:bucket/prefix").
  virtual std::string Location() const = 0;
  virtual Capabilities capabilities() const = 0;

  // Stores `data` under `name`, atomically and durably (when Put returns the
  // object survives a crash). Overwrites an existing object of that name.
  virtual void Put(const std::string& name, ByteSpan data) = 0;
  // Returns the whole object.
  virtual Bytes Get(const std::string& name) = 0;
  // Returns `length` bytes from `offset`; kCorrupt if the object is shorter.
  virtual Bytes GetRange(const std::string& name, uint64_t offset, uint64_t length) = 0;
  // Like GetRange, into `*buf` (grown when too small, never shrunk: no
  // allocation on hot paths); returns the bytes inside it.
  virtual ByteSpan GetRangeInto(const std::string& name, uint64_t offset, uint64_t length, Bytes* buf) {
    *buf = GetRange(name, offset, length);
    return ByteSpan(*buf);
  }
  // Returns nullopt if the object does not exist.
  virtual std::optional<ObjectInfo> Stat(const std::string& name) = 0;
  // All objects whose name starts with `prefix` (e.g. "data/"), any order.
  virtual std::vector<ObjectInfo> List(const std::string& prefix) = 0;
  // Removes an object; removing a missing object is not an error.
  virtual void Remove(const std::string& name) = 0;
  // Creates whatever structure a new repository needs (directories). Throws
  // kAlreadyExists if a repository ("config") already exists there.
  virtual void Create() = 0;
  // Object Lock (WORM): from now on every object except repository locks
  // and prune marks (IsObjectLockExempt) is written with `mode`
  // ("governance" | "compliance") and the retain-until date `retain_seconds`
  // after this call (one date for every object this process writes, so a
  // snapshot and the packs its backup wrote share it). Throws kUnsupported
  // where the storage has no object lock (local directories).
  virtual void SetObjectLock(const std::string& mode, int64_t retain_seconds) {
    throw Error(ErrorCode::kUnsupported, "object lock needs an S3 repository; " + Location() + " does not support it");
  }
  // Object Lock: moves the retain-until date of `name` to `retain_until_ns`
  // (ns, UTC; S3 PutObjectRetention, in the mode given to SetObjectLock).
  // Only ever extends: callers pass a date later than the current one (S3
  // refuses to shorten a retention without a governance bypass, which
  // bulwark never asks for). Throws kNotFound for a missing object,
  // kPermission when refused, kUnsupported without object lock.
  virtual void ExtendRetention(const std::string& name, int64_t retain_until_ns) {
    throw Error(ErrorCode::kUnsupported, "object lock needs an S3 repository; " + Location() + " does not support it");
  }
};

// Forwards every call to another backend. Decorators (fault injection,
// retries, metrics) derive from it and override only what they change, so a
// method added to Backend needs forwarding in one place.
class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::shared_ptr<Backend> inner) : inner_(std::move(inner)) {}
  std::string Location() const override { return inner_->Location(); }
  Capabilities capabilities() const override { return inner_->capabilities(); }
  void Put(const std::string& name, ByteSpan data) override { inner_->Put(name, data); }
  Bytes Get(const std::string& name) override { return inner_->Get(name); }
  Bytes GetRange(const std::string& name, uint64_t offset, uint64_t length) override {
    return inner_->GetRange(name, offset, length);
  }
  ByteSpan GetRangeInto(const std::string& name, uint64_t offset, uint64_t length, Bytes* buf) override {
    return inner_->GetRangeInto(name, offset, length, buf);
  }
  std::optional<ObjectInfo> Stat(const std::string& name) override { return inner_->Stat(name); }
  std::vector<ObjectInfo> List(const std::string& prefix) override { return inner_->List(prefix); }
  void Remove(const std::string& name) override { inner_->Remove(name); }
  void Create() override { inner_->Create(); }
  void SetObjectLock(const std::string& mode, int64_t retain_seconds) override {
    inner_->SetObjectLock(mode, retain_seconds);
  }
  void ExtendRetention(const std::string& name, int64_t retain_until_ns) override {
    inner_->ExtendRetention(name, retain_until_ns);
  }

 protected:
  Backend& inner() { return *inner_; }

 private:
  std::shared_ptr<Backend> inner_;
};

// Objects written without Object Lock even in a locked repository: locks
// ("locks/...") must be removable when released, and prune marks
// ("marked/...") are prune's own bookkeeping (losing one only delays a
// deletion; see docs/FORMAT.md).
inline bool IsObjectLockExempt(const std::string& name) {
  return name.rfind("locks/", 0) == 0 || name.rfind("marked/", 0) == 0;
}

// Opens a backend for a repository URL: a local path ("/srv/repo",
// "local:/srv/repo", relative paths), "s3:BUCKET/PREFIX" or
// "s3://HOST[:PORT]/BUCKET/PREFIX" (s3/s3.h; credentials from the AWS
// environment or shared files; `s3_config` and `s3_flags` as in
// s3::ParseUrl, ignored for other URLs), or "memory:" (tests).
std::unique_ptr<Backend> Open(const std::string& url, const s3::S3Settings& s3_config = {},
                              const s3::S3Settings& s3_flags = {});

// The in-memory backend: the reference implementation for the conformance
// tests. Objects vanish with the process. It also models Object Lock
// strictly (a bucket without versioning): after SetObjectLock, a retained
// object can be neither overwritten nor removed (kPermission) until its
// retain-until date, by `clock` (ns since the Unix epoch, UTC; default the
// system clock; tests pass a fake one to let time pass).
std::unique_ptr<Backend> NewMemoryBackend(std::function<int64_t()> clock = nullptr);

}  // namespace bulwark::storage
