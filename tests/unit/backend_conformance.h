// The storage backend conformance suite (src/bulwark/storage/backend.h):
// every backend runs the same typed tests. Instantiate it with a factory:
//
//   struct MyFactory {
//     std::string why;                          // why Make() returned null
//     std::unique_ptr<Backend> Make();          // a fresh, empty backend
//   };
//   // in namespace bulwark::storage:
//   INSTANTIATE_TYPED_TEST_SUITE_P(my, BackendConformance, ::testing::Types<MyFactory>);
//
// Instantiated for the in-memory and local backends in tests/unit/backend_test.cc
// and for S3 (a real S3-compatible server) in tests/e2e/s3_backend_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/storage/backend.h"
#include "test_util.h"

namespace bulwark::storage {

inline Bytes ConformanceBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

template <typename Factory>
class BackendConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = factory_.Make();
    if (!backend_) GTEST_SKIP() << factory_.why;  // a server that could not start (a failure in CI)
    backend_->Create();
  }
  std::vector<std::string> Names(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& o : backend_->List(prefix)) out.push_back(o.name);
    std::sort(out.begin(), out.end());
    return out;
  }
  Factory factory_;
  std::unique_ptr<Backend> backend_;
};

TYPED_TEST_SUITE_P(BackendConformance);

TYPED_TEST_P(BackendConformance, PutGetStat) {
  Backend& b = *this->backend_;
  EXPECT_FALSE(b.Location().empty());
  b.Put("keys/k1", ConformanceBytes("hello"));
  EXPECT_EQ(b.Get("keys/k1"), ConformanceBytes("hello"));
  auto st = b.Stat("keys/k1");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->name, "keys/k1");
  EXPECT_EQ(st->size, 5u);
  // mtime is ns since the epoch: within a day of now.
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LT(std::llabs(st->mtime_ns - now), int64_t(86400) * 1000000000);

  // Empty and binary objects.
  b.Put("snapshots/empty", {});
  EXPECT_TRUE(b.Get("snapshots/empty").empty());
  EXPECT_EQ(b.Stat("snapshots/empty")->size, 0u);
  Bytes bin(256);
  for (int i = 0; i < 256; ++i) bin[i] = static_cast<uint8_t>(i);
  b.Put("index/bin", bin);
  EXPECT_EQ(b.Get("index/bin"), bin);
}

TYPED_TEST_P(BackendConformance, MissingObjects) {
  Backend& b = *this->backend_;
  EXPECT_FALSE(b.Stat("keys/none").has_value());
  EXPECT_FALSE(b.Stat("data/00/none").has_value());
  EXPECT_EQ(CodeOf([&] { b.Get("keys/none"); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { b.Get("nodir/none"); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { b.GetRange("keys/none", 0, 1); }), ErrorCode::kNotFound);
  EXPECT_NO_THROW(b.Remove("keys/none"));  // not an error
  EXPECT_TRUE(b.List("nothing/").empty());
  try {
    b.Get("keys/named-in-message");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("keys/named-in-message"), std::string::npos) << e.what();
  }
}

TYPED_TEST_P(BackendConformance, GetRange) {
  Backend& b = *this->backend_;
  Bytes data = crypto::RandomBytes(3 << 20);
  b.Put("data/ab/big", data);
  EXPECT_EQ(b.Get("data/ab/big"), data);
  EXPECT_EQ(b.GetRange("data/ab/big", 0, 10), Bytes(data.begin(), data.begin() + 10));
  EXPECT_EQ(b.GetRange("data/ab/big", 1234567, 1 << 20), Bytes(data.begin() + 1234567, data.begin() + 1234567 + (1 << 20)));
  EXPECT_EQ(b.GetRange("data/ab/big", data.size() - 7, 7), Bytes(data.end() - 7, data.end()));
  EXPECT_TRUE(b.GetRange("data/ab/big", data.size(), 0).empty());
  EXPECT_TRUE(b.GetRange("data/ab/big", 5, 0).empty());
  // Past the end: the object is shorter than the caller expects.
  EXPECT_EQ(CodeOf([&] { b.GetRange("data/ab/big", data.size() - 7, 8); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { b.GetRange("data/ab/big", data.size(), 1); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { b.GetRange("data/ab/big", data.size() + 100, 1); }), ErrorCode::kCorrupt);
  b.Put("keys/small", ConformanceBytes("abc"));
  EXPECT_EQ(CodeOf([&] { b.GetRange("keys/small", 1, 1 << 20); }), ErrorCode::kCorrupt);
}

TYPED_TEST_P(BackendConformance, OverwriteAndRemove) {
  Backend& b = *this->backend_;
  b.Put("locks/l", ConformanceBytes("first version, longer"));
  b.Put("locks/l", ConformanceBytes("second"));
  EXPECT_EQ(b.Get("locks/l"), ConformanceBytes("second"));
  EXPECT_EQ(b.Stat("locks/l")->size, 6u);
  EXPECT_EQ(this->Names("locks/"), std::vector<std::string>{"locks/l"});
  b.Remove("locks/l");
  EXPECT_FALSE(b.Stat("locks/l").has_value());
  EXPECT_EQ(CodeOf([&] { b.Get("locks/l"); }), ErrorCode::kNotFound);
  EXPECT_TRUE(this->Names("locks/").empty());
  b.Put("locks/l", ConformanceBytes("again"));
  EXPECT_EQ(b.Get("locks/l"), ConformanceBytes("again"));
}

TYPED_TEST_P(BackendConformance, ListPrefixesAndNesting) {
  Backend& b = *this->backend_;
  const std::vector<std::string> all = {"config",          "data/00/0011", "data/00/00ff", "data/ff/ff00",
                                        "index/aaaa",      "index/abcd",   "keys/k",       "locks/x",
                                        "snapshots/s0001"};
  for (const auto& n : all) b.Put(n, ConformanceBytes(n));
  EXPECT_EQ(this->Names("data/"), (std::vector<std::string>{"data/00/0011", "data/00/00ff", "data/ff/ff00"}));
  EXPECT_EQ(this->Names("data/00/"), (std::vector<std::string>{"data/00/0011", "data/00/00ff"}));
  EXPECT_EQ(this->Names("data/0"), (std::vector<std::string>{"data/00/0011", "data/00/00ff"}));
  EXPECT_EQ(this->Names("data/00/00f"), (std::vector<std::string>{"data/00/00ff"}));
  EXPECT_EQ(this->Names("index/"), (std::vector<std::string>{"index/aaaa", "index/abcd"}));
  EXPECT_EQ(this->Names("index/ab"), (std::vector<std::string>{"index/abcd"}));
  EXPECT_EQ(this->Names("keys/"), (std::vector<std::string>{"keys/k"}));
  EXPECT_EQ(this->Names("snap"), (std::vector<std::string>{"snapshots/s0001"}));
  EXPECT_EQ(this->Names(""), all);
  EXPECT_TRUE(this->Names("data/11/").empty());
  EXPECT_TRUE(this->Names("index/b").empty());
  for (const auto& o : b.List("data/")) EXPECT_EQ(o.size, o.name.size()) << o.name;
}

TYPED_TEST_P(BackendConformance, CreateRefusesExistingRepository) {
  Backend& b = *this->backend_;
  EXPECT_NO_THROW(b.Create());  // no config yet: creating again is harmless
  b.Put("config", ConformanceBytes("cfg"));
  EXPECT_EQ(CodeOf([&] { b.Create(); }), ErrorCode::kAlreadyExists);
  EXPECT_EQ(b.Get("config"), ConformanceBytes("cfg"));  // untouched
}

TYPED_TEST_P(BackendConformance, ConcurrentPuts) {
  Backend& b = *this->backend_;
  const int kThreads = 8, kPer = 25;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) {
        std::string name = "data/" + std::string(1, "0123456789abcdef"[t]) + "0/obj-" + std::to_string(t) + "-" +
                           std::to_string(i);
        b.Put(name, ConformanceBytes(name));
        // Everyone also overwrites one shared object with a full, distinct value.
        b.Put("index/hot", Bytes(1000 + t, static_cast<uint8_t>('a' + t)));
      }
    });
  for (auto& t : ts) t.join();
  std::vector<std::string> names = this->Names("data/");
  ASSERT_EQ(names.size(), size_t(kThreads * kPer));
  for (const auto& n : names) EXPECT_EQ(b.Get(n), ConformanceBytes(n));
  Bytes hot = b.Get("index/hot");
  ASSERT_GE(hot.size(), 1000u);
  ASSERT_LT(hot.size(), 1000u + kThreads);
  EXPECT_EQ(hot, Bytes(hot.size(), static_cast<uint8_t>('a' + (hot.size() - 1000))));  // one writer's, whole
  EXPECT_EQ(this->Names("index/"), std::vector<std::string>{"index/hot"});
}

REGISTER_TYPED_TEST_SUITE_P(BackendConformance, PutGetStat, MissingObjects, GetRange, OverwriteAndRemove,
                            ListPrefixesAndNesting, CreateRefusesExistingRepository, ConcurrentPuts);

}  // namespace bulwark::storage
