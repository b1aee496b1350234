#include <chrono>
#include <functional>
#include <map>
#include <mutex>

#include "bulwark/base/error.h"
#include "bulwark/storage/backend.h"
#include "bulwark/storage/s3/s3.h"
#include "bulwark/storage/local.h"

namespace bulwark::storage {
namespace {

int64_t SystemNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class MemoryBackend : public Backend {
 public:
  explicit MemoryBackend(std::function<int64_t()> clock) : clock_(clock ? std::move(clock) : SystemNowNs) {}
  std::string Location() const override { return "memory:"; }
  Capabilities capabilities() const override { return {true, 8, false}; }

  void Put(const std::string& name, ByteSpan data) override {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = clock_();
    CheckNotRetained(name, now, "overwrite");
    int64_t retain = lock_mode_.empty() || IsObjectLockExempt(name) ? 0 : lock_until_ns_;
    objects_[name] = {Bytes(data.begin(), data.end()), now, retain};
  }
  Bytes Get(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    return Find(name).data;
  }
  Bytes GetRange(const std::string& name, uint64_t offset, uint64_t length) override {
    std::lock_guard<std::mutex> lock(mu_);
    const Object& o = Find(name);
    if (offset > o.data.size() || length > o.data.size() - offset)
      throw Error(ErrorCode::kCorrupt, "memory:" + name + ": object is shorter than expected (truncated)");
    return Bytes(o.data.begin() + static_cast<ptrdiff_t>(offset), o.data.begin() + static_cast<ptrdiff_t>(offset + length));
  }
  std::optional<ObjectInfo> Stat(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(name);
    if (it == objects_.end()) return std::nullopt;
    return ObjectInfo{name, it->second.data.size(), it->second.mtime_ns, it->second.retain_until_ns};
  }
  std::vector<ObjectInfo> List(const std::string& prefix) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ObjectInfo> out;
    for (auto it = objects_.lower_bound(prefix); it != objects_.end() && it->first.rfind(prefix, 0) == 0; ++it)
      out.push_back({it->first, it->second.data.size(), it->second.mtime_ns});
    return out;
  }
  void Remove(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    CheckNotRetained(name, clock_(), "remove");
    objects_.erase(name);
  }
  void SetObjectLock(const std::string& mode, int64_t retain_seconds) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (mode != "governance" && mode != "compliance")
      throw Error(ErrorCode::kInvalidArgument, "object lock mode must be governance or compliance, got '" + mode + "'");
    lock_mode_ = mode;
    lock_until_ns_ = clock_() + retain_seconds * 1000000000;
  }
  void ExtendRetention(const std::string& name, int64_t retain_until_ns) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (lock_mode_.empty()) Backend::ExtendRetention(name, retain_until_ns);
    auto it = objects_.find(name);
    if (it == objects_.end()) throw Error(ErrorCode::kNotFound, "memory:" + name + ": no such object");
    if (retain_until_ns < it->second.retain_until_ns)
      throw Error(ErrorCode::kPermission, "memory:" + name + ": retention can only be extended");
    it->second.retain_until_ns = retain_until_ns;
  }
  void Create() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (objects_.count("config")) throw Error(ErrorCode::kAlreadyExists, "a repository already exists at memory:");
  }

 private:
  struct Object {
    Bytes data;
    int64_t mtime_ns;
    int64_t retain_until_ns = 0;
  };
  // Object Lock without versioning: a retained object stays as it is.
  void CheckNotRetained(const std::string& name, int64_t now, const char* what) {
    auto it = objects_.find(name);
    if (it != objects_.end() && it->second.retain_until_ns > now)
      throw Error(ErrorCode::kPermission, std::string("memory:") + name + ": cannot " + what +
                                              ": Object Lock retains it");
  }
  const Object& Find(const std::string& name) {
    auto it = objects_.find(name);
    if (it == objects_.end()) throw Error(ErrorCode::kNotFound, "memory:" + name + ": no such object");
    return it->second;
  }
  std::function<int64_t()> clock_;
  std::mutex mu_;
  std::map<std::string, Object> objects_;
  std::string lock_mode_;
  int64_t lock_until_ns_ = 0;
};

}  // namespace

std::unique_ptr<Backend> NewMemoryBackend(std::function<int64_t()> clock) {
  return std::make_unique<MemoryBackend>(std::move(clock));
}

std::unique_ptr<Backend> Open(const std::string& url, const s3::S3Settings& s3_config, const s3::S3Settings& s3_flags) {
  if (url.empty()) throw Error(ErrorCode::kInvalidArgument, "no repository given (use --repo or BULWARK_REPOSITORY)");
  if (url == "memory:") return NewMemoryBackend();
  if (url.rfind("local:", 0) == 0) return NewLocalBackend(url.substr(6));
  if (url.rfind("s3:", 0) == 0) {
    s3::S3Options o = s3::ParseUrl(url, s3_config, s3_flags);
    return s3::NewS3Backend(o, s3::LoadCredentials(o.profile));
  }
  return NewLocalBackend(url);
}

}  // namespace bulwark::storage
