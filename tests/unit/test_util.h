// Helpers shared by the unit tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "bulwark/base/bytes.h"
#include "bulwark/base/error.h"
#include "bulwark/storage/backend.h"

namespace bulwark {

// Runs `fn` and returns the code of the bulwark::Error it throws; fails the
// test if it throws nothing.
template <typename Fn>
ErrorCode CodeOf(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "expected a bulwark::Error";
  return ErrorCode::kInternal;
}

// Runs `fn` and returns the message of the bulwark::Error it throws,
// expecting (gtest) the code `code`; fails the test and returns "" if it
// throws nothing.
template <typename Fn>
std::string MessageOf(ErrorCode code, Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a bulwark::Error";
  return "";
}

// Expects (gtest) that the string `haystack` contains `needle`.
#ifndef EXPECT_CONTAINS
#define EXPECT_CONTAINS(haystack, needle)                                                   \
  do {                                                                                      \
    const std::string h_ = (haystack);                                                      \
    EXPECT_NE(h_.find(needle), std::string::npos) << "'" << needle << "' not in: " << h_; \
  } while (0)
#endif

// `n` deterministic pseudo-random bytes (splitmix64 stream from `seed`):
// incompressible test data that is the same on every run.
inline Bytes RandomData(size_t n, uint64_t seed) {
  Bytes out(n);
  uint64_t x = seed;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    std::memcpy(out.data() + i, &z, std::min<size_t>(8, n - i));
  }
  return out;
}

// A handle on a shared store that refuses, as S3 refuses what a key's
// policy does not allow (403 AccessDenied: kPermission), writes and deletes
// of objects whose names start with one of the given prefixes ("" = every
// object). `deletes_left` deletes of such objects still pass first (a
// permission that goes away mid-operation).
class RestrictedBackend : public storage::ForwardingBackend {
 public:
  RestrictedBackend(std::shared_ptr<storage::Backend> store, std::vector<std::string> no_put,
                    std::vector<std::string> no_remove, int deletes_left = 0)
      : ForwardingBackend(std::move(store)),
        no_put_(std::move(no_put)),
        no_remove_(std::move(no_remove)),
        deletes_left_(deletes_left) {}
  void Put(const std::string& name, ByteSpan data) override {
    if (Matches(no_put_, name)) throw Denied("PUT", name);
    ForwardingBackend::Put(name, data);
  }
  void Remove(const std::string& name) override {
    if (Matches(no_remove_, name) && deletes_left_-- <= 0) throw Denied("DELETE", name);
    ForwardingBackend::Remove(name);
  }
  int denied() const { return denied_; }  // requests refused so far

 private:
  static bool Matches(const std::vector<std::string>& prefixes, const std::string& name) {
    return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) { return name.rfind(p, 0) == 0; });
  }
  Error Denied(const char* method, const std::string& name) {
    ++denied_;
    return Error(ErrorCode::kPermission, std::string("test: ") + method + " " + name + ": HTTP 403 AccessDenied");
  }
  std::vector<std::string> no_put_, no_remove_;
  std::atomic<int> deletes_left_;
  std::atomic<int> denied_{0};
};

// Seconds since the Unix epoch of a UTC calendar time, via the C library's
// timegm (an oracle independent of bulwark's calendar code).
inline int64_t Utc(int year, int month, int day, int hour = 0, int minute = 0, int second = 0) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<int64_t>(timegm(&tm));
}

// A temporary directory, removed with everything in it at destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "bulwark-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace bulwark
