// Tests for WAL archiving (src/bulwark/repo/wal.h, src/bulwark/ops/wal.h) and
// machine keys (repo::MachineKey, Repository::OpenWithMachineKey) on the
// in-memory and local backends.
#include "bulwark/ops/wal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/ops/check.h"
#include "bulwark/ops/prune.h"
#include "bulwark/repo/lock.h"
#include "bulwark/repo/repository.h"
#include "bulwark/repo/wal.h"
#include "bulwark/storage/local.h"
#include "test_util.h"

namespace bulwark {
namespace {

namespace fs = std::filesystem;
using repo::WalFileKind;
using repo::WalFileName;

// Counts the requests that reach the store.
class CountingBackend : public storage::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  void Put(const std::string& name, ByteSpan data) override {
    ++puts;
    ForwardingBackend::Put(name, data);
  }
  Bytes Get(const std::string& name) override {
    ++gets;
    return ForwardingBackend::Get(name);
  }
  Bytes GetRange(const std::string& name, uint64_t offset, uint64_t length) override {
    ++gets;
    return ForwardingBackend::GetRange(name, offset, length);
  }
  std::optional<storage::ObjectInfo> Stat(const std::string& name) override {
    ++stats;
    return ForwardingBackend::Stat(name);
  }
  std::vector<storage::ObjectInfo> List(const std::string& prefix) override {
    ++lists;
    return ForwardingBackend::List(prefix);
  }
  std::atomic<int> puts{0}, gets{0}, stats{0}, lists{0};
};

void WriteFile(const std::string& path, ByteSpan data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

Bytes ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

// WAL-like content: compressible, distinct per seed.
Bytes Segment(size_t size, uint64_t seed) {
  Bytes b = RandomData(size, seed);
  for (size_t i = 0; i < b.size(); ++i)
    if (i % 64 >= 16) b[i] = 0;  // WAL pages are mostly zeros and repeated headers
  return b;
}

std::string What(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(WalFileName, AcceptsPostgresNames) {
  auto s = WalFileName::Parse("000000010000000A000000FE");
  EXPECT_EQ(s.kind, WalFileKind::kSegment);
  EXPECT_EQ(s.timeline, 1u);
  EXPECT_EQ(s.log, 0xAu);
  EXPECT_EQ(s.seg, 0xFEu);
  EXPECT_EQ(WalFileName::Parse("00000002.history").kind, WalFileKind::kHistory);
  EXPECT_EQ(WalFileName::Parse("00000002.history").timeline, 2u);
  EXPECT_EQ(WalFileName::Parse("000000010000000000000010.00000028.backup").kind, WalFileKind::kBackup);
  EXPECT_EQ(WalFileName::Parse("000000010000000000000010.partial").kind, WalFileKind::kPartial);
}

TEST(WalFileName, RejectsEverythingElseNamingIt) {
  for (std::string bad :
       {"", "00000001000000000000001", "0000000100000000000000100", "00000001000000000000001g", "000000010000000000000010 ",
        "00000001000000000000001a", "../000000010000000000000010", "000000010000000000000010/", "00000002.History",
        "0000002.history", "000000010000000000000010.partia", "000000010000000000000010.0000028.backup",
        "000000010000000000000010.00000028.backup.x", "RECOVERYXLOG", "archive_status", ".tmp-x",
        "000000010000000000000010.00000028.partial"}) {
    EXPECT_FALSE(WalFileName::Valid(bad)) << bad;
    EXPECT_EQ(CodeOf([&] { WalFileName::Parse(bad); }), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(What([] { WalFileName::Parse("pg_wal.tar"); }).find("'pg_wal.tar' is not a PostgreSQL WAL file name"),
            std::string::npos);
}

TEST(WalFileName, NextSegmentCrossesLogBoundaryBySegmentSize) {
  EXPECT_EQ(WalFileName::Parse("000000010000000000000010").NextSegment(16 << 20).name, "000000010000000000000011");
  EXPECT_EQ(WalFileName::Parse("0000000100000000000000FF").NextSegment(16 << 20).name, "000000010000000100000000");
  EXPECT_EQ(WalFileName::Parse("000000030000000000000003").NextSegment(1 << 30).name, "000000030000000100000000");
  EXPECT_EQ(WalFileName::Parse("000000010000000000000FFF").NextSegment(1 << 20).name, "000000010000000100000000");
  // A segment number that cannot exist for that size; the end of the address space; not a segment.
  EXPECT_EQ(CodeOf([] { WalFileName::Parse("000000010000000000000100").NextSegment(16 << 20); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([] { WalFileName::Parse("00000001FFFFFFFF000000FF").NextSegment(16 << 20); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([] { WalFileName::Parse("00000002.history").NextSegment(16 << 20); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([] { WalFileName::Parse("000000010000000000000010").NextSegment(3 << 20); }),
            ErrorCode::kInvalidArgument);
}

TEST(WalSource, Names) {
  for (std::string ok : std::vector<std::string>{"main", "db-1.prod_eu", std::string(64, 'a')})
    EXPECT_NO_THROW(repo::ValidateWalSource(ok));
  for (std::string bad : std::vector<std::string>{"", ".", "..", ".hidden", "a/b", "a b", "ü", std::string(65, 'a')})
    EXPECT_EQ(CodeOf([&] { repo::ValidateWalSource(bad); }), ErrorCode::kInvalidArgument) << bad;
  EXPECT_EQ(repo::WalObjectName("main", "00000002.history"), "wal/main/00000002.history");
}

class WalTest : public ::testing::Test {
 protected:
  WalTest() : store_(storage::NewMemoryBackend()) {
    repo::InitOptions o;
    o.kdf = crypto::KdfParams{1, 8 << 20, {}};
    repo::Repository::Init(*store_, "pw", o);
  }

  std::unique_ptr<repo::Repository> Open() {
    counting_ = std::make_shared<CountingBackend>(store_);
    return repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(counting_), "pw");
  }
  std::unique_ptr<repo::Repository> OpenWith(const repo::MachineKey& key) {
    counting_ = std::make_shared<CountingBackend>(store_);
    return repo::Repository::OpenWithMachineKey(std::make_unique<storage::ForwardingBackend>(counting_), key,
                                                 "test key file");
  }

  // Writes `data` as pg_wal/<name> in the temp dir; returns its path.
  std::string WalFile(const std::string& name, ByteSpan data) {
    fs::create_directories(tmp_.path() + "/pg_wal");
    std::string path = tmp_.path() + "/pg_wal/" + name;
    WriteFile(path, data);
    return path;
  }

  ops::WalPushResult Push(repo::Repository& r, const std::string& name, ByteSpan data, const std::string& source = "main") {
    return ops::WalPush(r, WalFile(name, data), {source, 1});
  }

  std::string Dest() const { return tmp_.path() + "/restore/pg_wal/RECOVERYXLOG"; }

  std::shared_ptr<storage::Backend> store_;
  std::shared_ptr<CountingBackend> counting_;
  TempDir tmp_;
};

TEST_F(WalTest, PushFetchRoundTripCompressesAndFetchesBytesEqual) {
  auto r = Open();
  Bytes seg = Segment(16 << 20, 1);
  auto p = Push(*r, "000000010000000000000010", seg);
  EXPECT_EQ(p.name, "000000010000000000000010");
  EXPECT_EQ(p.object, "wal/main/000000010000000000000010");
  EXPECT_EQ(p.bytes, seg.size());
  EXPECT_FALSE(p.already_archived);
  EXPECT_LT(p.stored_bytes, seg.size() / 2);  // compressed
  EXPECT_EQ(store_->Stat(p.object)->size, p.stored_bytes);

  fs::create_directories(tmp_.path() + "/restore/pg_wal");
  auto f = ops::WalFetch(*r, "000000010000000000000010", Dest(), {"main", 0});
  EXPECT_TRUE(f.found);
  EXPECT_FALSE(f.from_spool);
  EXPECT_EQ(f.bytes, seg.size());
  EXPECT_EQ(ReadFile(Dest()), seg);

  // Incompressible content is stored as is; a history file is tiny.
  Bytes noise = RandomData(1 << 20, 7);
  auto q = Push(*r, "000000010000000000000011", noise);
  EXPECT_LT(q.stored_bytes, noise.size() + 200);
  std::string hist = "1\t0/170004F0\tbefore 2026-11-21 19:33:29.852203+00\n";
  Push(*r, "00000002.history", AsBytes(hist));
  ASSERT_TRUE(ops::WalFetch(*r, "00000002.history", tmp_.path() + "/restore/pg_wal/RECOVERYHISTORY", {"main", 8}).found);
  EXPECT_EQ(ReadFile(tmp_.path() + "/restore/pg_wal/RECOVERYHISTORY"), Bytes(hist.begin(), hist.end()));
  ASSERT_TRUE(ops::WalFetch(*r, "000000010000000000000011", Dest(), {"main", 0}).found);
  EXPECT_EQ(ReadFile(Dest()), noise);
  // An empty file (PostgreSQL does not make them, but nothing breaks).
  Push(*r, "000000010000000000000012.00000028.backup", {});
  ASSERT_TRUE(ops::WalFetch(*r, "000000010000000000000012.00000028.backup", Dest(), {"main", 0}).found);
  EXPECT_TRUE(ReadFile(Dest()).empty());
}

TEST_F(WalTest, PushRelativePathResolvesAgainstWorkingDirectory) {
  auto r = Open();
  Bytes seg = Segment(1 << 20, 2);
  WalFile("000000010000000000000001", seg);
  std::string old = fs::current_path();
  fs::current_path(tmp_.path());
  ops::WalPushResult p;
  EXPECT_NO_THROW(p = ops::WalPush(*r, "pg_wal/000000010000000000000001", {"main", 1}));
  fs::current_path(old);
  EXPECT_EQ(p.object, "wal/main/000000010000000000000001");
}

TEST_F(WalTest, PushTwiceSameContentSucceedsWithoutSecondPut) {
  auto r = Open();
  Bytes seg = Segment(16 << 20, 3);
  Push(*r, "000000010000000000000010", seg);
  int puts = counting_->puts, gets = counting_->gets, lists = counting_->lists, stats = counting_->stats;
  auto again = Push(*r, "000000010000000000000010", seg);
  EXPECT_TRUE(again.already_archived);
  EXPECT_EQ(again.stored_bytes, 0u);
  EXPECT_EQ(counting_->puts, puts);          // no second PUT
  EXPECT_EQ(counting_->gets, gets + 1);      // one ranged read of the header
  EXPECT_EQ(counting_->lists, lists);
  EXPECT_EQ(counting_->stats, stats);
}

TEST_F(WalTest, PushDifferentContentIsRefusedAndOriginalUnchanged) {
  auto r = Open();
  Bytes seg = Segment(1 << 20, 4);
  auto p = Push(*r, "00000002.history", seg);
  Bytes stored = store_->Get(p.object);
  Bytes other = seg;
  other[100] ^= 1;
  std::string msg;
  try {
    Push(*r, "00000002.history", other);
    ADD_FAILURE() << "a different 00000002.history was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
    msg = e.what();
  }
  EXPECT_NE(msg.find("already archived with different content"), std::string::npos) << msg;
  EXPECT_EQ(store_->Get(p.object), stored);
  // A shorter file with the same prefix is different too.
  EXPECT_EQ(CodeOf([&] { Push(*r, "00000002.history", ByteSpan(seg).first(seg.size() - 1)); }), ErrorCode::kAlreadyExists);
  EXPECT_EQ(store_->Get(p.object), stored);
}

TEST_F(WalTest, PushRejectsBadNamesAndSources) {
  auto r = Open();
  Bytes seg = Segment(4096, 5);
  std::string msg = What([&] { Push(*r, "000000010000000000000010.tmp", seg); });
  EXPECT_NE(msg.find("'000000010000000000000010.tmp' is not a PostgreSQL WAL file name"), std::string::npos) << msg;
  EXPECT_EQ(CodeOf([&] { Push(*r, "000000010000000000000010", seg, "../x"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { ops::WalPush(*r, tmp_.path() + "/pg_wal/000000010000000000000099", {"main", 1}); }),
            ErrorCode::kNotFound);  // the file, not an object
  EXPECT_EQ(CodeOf([&] { ops::WalPush(*r, WalFile("000000010000000000000010", seg), {"main", 20}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(store_->List("wal/").empty());
}

TEST_F(WalTest, FetchMissingIsNotFoundAndWritesNothing) {
  auto r = Open();
  fs::create_directories(tmp_.path() + "/restore/pg_wal");
  auto f = ops::WalFetch(*r, "00000003.history", Dest(), {"main", 8});
  EXPECT_FALSE(f.found);
  EXPECT_FALSE(fs::exists(Dest()));
  Push(*r, "000000010000000000000010", Segment(1 << 20, 6));
  EXPECT_FALSE(ops::WalFetch(*r, "000000010000000000000011", Dest(), {"main", 8}).found);
  EXPECT_FALSE(ops::WalFetch(*r, "000000010000000000000010", Dest(), {"other", 8}).found);
  EXPECT_FALSE(fs::exists(Dest()));
  // A name that is not a WAL file name is not "missing": it is an error.
  EXPECT_EQ(CodeOf([&] { ops::WalFetch(*r, "RECOVERYXLOG", Dest(), {"main", 8}); }), ErrorCode::kInvalidArgument);
}

TEST_F(WalTest, TamperedObjectIsCorruptOnFetchAndPush) {
  auto r = Open();
  Bytes seg = Segment(1 << 20, 8);
  auto p = Push(*r, "000000010000000000000010", seg);
  fs::create_directories(tmp_.path() + "/restore/pg_wal");
  for (size_t pos : {size_t(2), size_t(30), repo::kWalPrefixSize + 40, size_t(p.stored_bytes - 1)}) {
    Bytes good = store_->Get(p.object);
    Bytes bad = good;
    bad[pos] ^= 0x01;
    store_->Put(p.object, bad);
    EXPECT_EQ(CodeOf([&] { ops::WalFetch(*r, "000000010000000000000010", Dest(), {"main", 0}); }), ErrorCode::kCorrupt)
        << pos;
    EXPECT_FALSE(fs::exists(Dest()));
    if (pos < repo::kWalPrefixSize) {  // a push reads only the header
      EXPECT_EQ(CodeOf([&] { Push(*r, "000000010000000000000010", seg); }), ErrorCode::kCorrupt) << pos;
    }
    EXPECT_EQ(store_->Get(p.object), bad);  // never overwritten
    store_->Put(p.object, good);
  }
  // Truncated.
  Bytes good = store_->Get(p.object);
  store_->Put(p.object, ByteSpan(good).first(good.size() / 2));
  EXPECT_EQ(CodeOf([&] { ops::WalFetch(*r, "000000010000000000000010", Dest(), {"main", 0}); }), ErrorCode::kCorrupt);
  store_->Put(p.object, ByteSpan(good).first(20));
  EXPECT_EQ(CodeOf([&] { Push(*r, "000000010000000000000010", seg); }), ErrorCode::kCorrupt);
}

TEST_F(WalTest, ObjectSwappedUnderAnotherNameIsDetected) {
  auto r = Open();
  Push(*r, "000000010000000000000010", Segment(1 << 20, 9));
  Push(*r, "000000010000000000000011", Segment(1 << 20, 10));
  fs::create_directories(tmp_.path() + "/restore/pg_wal");
  // Segment 10's object under 11's name, and under another source.
  store_->Put("wal/main/000000010000000000000011", store_->Get("wal/main/000000010000000000000010"));
  store_->Put("wal/other/000000010000000000000010", store_->Get("wal/main/000000010000000000000010"));
  EXPECT_EQ(CodeOf([&] { ops::WalFetch(*r, "000000010000000000000011", Dest(), {"main", 0}); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { ops::WalFetch(*r, "000000010000000000000010", Dest(), {"other", 0}); }), ErrorCode::kCorrupt);
  // Header of one, body of the other.
  Bytes a = store_->Get("wal/main/000000010000000000000010");
  Push(*r, "000000010000000000000012", Segment(1 << 20, 9));  // same content as 10, another object
  Bytes b = store_->Get("wal/main/000000010000000000000012");
  Bytes mixed(a.begin(), a.begin() + repo::kWalPrefixSize);
  mixed.insert(mixed.end(), b.begin() + repo::kWalPrefixSize, b.end());
  store_->Put("wal/main/000000010000000000000010", mixed);
  EXPECT_EQ(CodeOf([&] { ops::WalFetch(*r, "000000010000000000000010", Dest(), {"main", 0}); }), ErrorCode::kCorrupt);
  // An object sealed under another repository's key.
  auto other_store = storage::NewMemoryBackend();
  repo::InitOptions o;
  o.kdf = crypto::KdfParams{1, 8 << 20, {}};
  repo::Repository::Init(*other_store, "pw", o);
  auto other = repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(std::move(other_store)), "pw");
  Bytes seg = Segment(1 << 20, 11);
  ops::WalPush(*other, WalFile("000000010000000000000013", seg), {"main", 1});
  store_->Put("wal/main/000000010000000000000013", other->backend().Get("wal/main/000000010000000000000013"));
  EXPECT_EQ(CodeOf([&] { ops::WalFetch(*r, "000000010000000000000013", Dest(), {"main", 0}); }), ErrorCode::kCorrupt);
}

TEST_F(WalTest, MachineKeyOpensWithoutKdfAndTwoReads) {
  auto r = Open();
  repo::MachineKey key = r->AddMachineKey();
  EXPECT_EQ(key.repository, r->config().id);
  EXPECT_EQ(store_->Stat("keys/" + key.slot.Hex())->size, store_->Get("keys/" + key.slot.Hex()).size());

  uint64_t kdf_before = crypto::DeriveKeyCount();
  auto m = OpenWith(repo::MachineKey::Decode(key.Encode(), "file"));
  EXPECT_EQ(crypto::DeriveKeyCount(), kdf_before);  // no Argon2id
  EXPECT_EQ(counting_->gets.load(), 2);             // keys/<slot>, config
  EXPECT_EQ(counting_->lists.load(), 0);            // keys/ not listed
  EXPECT_EQ(counting_->stats.load(), 0);
  EXPECT_EQ(m->key_kind(), repo::KeyKind::kMachine);
  EXPECT_EQ(m->key_id(), key.slot);
  EXPECT_EQ(m->config().id, r->config().id);
  EXPECT_EQ(m->master_key().Serialize(), r->master_key().Serialize());

  // What one writes the other reads.
  Bytes seg = Segment(1 << 20, 12);
  ops::WalPush(*m, WalFile("000000010000000000000010", seg), {"main", 1});
  fs::create_directories(tmp_.path() + "/restore/pg_wal");
  ASSERT_TRUE(ops::WalFetch(*r, "000000010000000000000010", Dest(), {"main", 0}).found);
  EXPECT_EQ(ReadFile(Dest()), seg);

  // A password open runs Argon2id only for password slots: the machine slot is skipped quietly.
  kdf_before = crypto::DeriveKeyCount();
  auto again = Open();
  EXPECT_EQ(crypto::DeriveKeyCount(), kdf_before + 1);
  auto keys = again->ListKeys();
  ASSERT_EQ(keys.size(), 2u);
  int machine = 0;
  for (auto& k : keys) machine += k.kind == repo::KeyKind::kMachine;
  EXPECT_EQ(machine, 1);
  EXPECT_EQ(CodeOf([&] { repo::Repository::Open(std::make_unique<storage::ForwardingBackend>(store_), "wrong"); }),
            ErrorCode::kWrongPassword);
}

TEST_F(WalTest, MachineKeyFailsAfterRemoveKey) {
  auto r = Open();
  repo::MachineKey key = r->AddMachineKey();
  ASSERT_NO_THROW(OpenWith(key));
  r->RemoveKey(key.slot);
  std::string msg = What([&] { OpenWith(key); });
  EXPECT_EQ(CodeOf([&] { OpenWith(key); }), ErrorCode::kWrongPassword);
  EXPECT_NE(msg.find("key remove"), std::string::npos) << msg;
  // Its session cannot remove itself (as for passwords).
  repo::MachineKey k2 = r->AddMachineKey();
  auto m = OpenWith(k2);
  EXPECT_EQ(CodeOf([&] { m->RemoveKey(k2.slot); }), ErrorCode::kInvalidArgument);
}

TEST_F(WalTest, MachineKeyWithWrongRepositoryOrSecretIsAClearError) {
  auto r = Open();
  repo::MachineKey key = r->AddMachineKey();
  repo::MachineKey wrong_repo = key;
  wrong_repo.repository = crypto::RandomId();
  std::string msg = What([&] { OpenWith(wrong_repo); });
  EXPECT_EQ(CodeOf([&] { OpenWith(wrong_repo); }), ErrorCode::kInvalidArgument);
  EXPECT_NE(msg.find("test key file is for repository " + wrong_repo.repository.Short() + ", but memory: is repository " +
                     r->config().id.Short()),
            std::string::npos)
      << msg;
  repo::MachineKey wrong_secret = key;
  wrong_secret.secret[0] ^= 1;
  EXPECT_EQ(CodeOf([&] { OpenWith(wrong_secret); }), ErrorCode::kWrongPassword);
  // A password slot named as a machine key's slot.
  repo::MachineKey password_slot = key;
  password_slot.slot = r->ListKeys()[0].kind == repo::KeyKind::kPassword ? r->ListKeys()[0].id : r->ListKeys()[1].id;
  msg = What([&] { OpenWith(password_slot); });
  EXPECT_NE(msg.find("a password key slot"), std::string::npos) << msg;
  // Another repository's key (its slot does not exist here).
  repo::MachineKey foreign = key;
  foreign.slot = crypto::RandomId();
  msg = What([&] { OpenWith(foreign); });
  EXPECT_NE(msg.find("is not in memory:"), std::string::npos) << msg;
}

TEST(MachineKeyFile, EncodeDecodeAndMalformed) {
  repo::MachineKey k;
  k.repository = crypto::RandomId();
  k.slot = crypto::RandomId();
  k.secret = crypto::RandomId().b;
  std::string text = k.Encode();
  repo::MachineKey d = repo::MachineKey::Decode(text, "f");
  EXPECT_EQ(d.repository, k.repository);
  EXPECT_EQ(d.slot, k.slot);
  EXPECT_EQ(d.secret, k.secret);
  EXPECT_NE(text.find("\"kind\": \"bulwark-machine-key\""), std::string::npos) << text;
  for (std::string bad : {std::string(""), std::string("{}"), std::string("[1]"), std::string("pw\n"),
                          text.substr(0, text.size() / 2), std::string(R"({"kind":1})"),  // found by wal_fuzz
                          std::string(R"({"kind":"bulwark-machine-key","version":"1"})")}) {
    EXPECT_EQ(CodeOf([&] { repo::MachineKey::Decode(bad, "f"); }), ErrorCode::kInvalidArgument) << bad;
  }
  std::string short_secret = text;
  short_secret.replace(short_secret.find("\"secret\": \"") + 11, 2, "");
  EXPECT_EQ(CodeOf([&] { repo::MachineKey::Decode(short_secret, "f"); }), ErrorCode::kInvalidArgument);
  std::string v2 = text;
  v2.replace(v2.find("\"version\": 1"), 12, "\"version\": 2");
  EXPECT_EQ(CodeOf([&] { repo::MachineKey::Decode(v2, "f"); }), ErrorCode::kInvalidArgument);
}

TEST_F(WalTest, PrefetchFillsSpoolAndLaterCallsServeFromIt) {
  auto r = Open();
  std::vector<Bytes> segs;
  for (int i = 0; i < 6; ++i) segs.push_back(Segment(1 << 20, 100 + i));
  // 1 MiB segments: 4096 per log; start two before the boundary so the prefetch crosses it.
  std::vector<std::string> names = {"000000010000000000000FFE", "000000010000000000000FFF", "000000010000000100000000",
                                    "000000010000000100000001", "000000010000000100000002", "000000010000000100000003"};
  for (int i = 0; i < 6; ++i) Push(*r, names[i], segs[i]);
  fs::create_directories(tmp_.path() + "/restore/pg_wal");
  std::string spool = ops::WalSpoolDir(Dest());
  EXPECT_EQ(spool, tmp_.path() + "/restore/pg_wal/bulwark-spool");

  int gets = counting_->gets;
  auto f = ops::WalFetch(*r, names[0], Dest(), {"main", 3});
  EXPECT_TRUE(f.found);
  EXPECT_EQ(f.prefetched, 3);
  EXPECT_EQ(counting_->gets, gets + 4);
  EXPECT_EQ(ReadFile(Dest()), segs[0]);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(ReadFile(spool + "/" + names[i]), segs[i]) << names[i];
  EXPECT_FALSE(fs::exists(spool + "/" + names[4]));
  EXPECT_EQ((fs::status(spool).permissions() & fs::perms::all), fs::perms::owner_all);

  // Served from the spool without the repository; the file moves to DEST.
  auto s = ops::WalFetchFromSpool(r->config().id, "main", names[1], Dest());
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->from_spool);
  EXPECT_EQ(ReadFile(Dest()), segs[1]);
  EXPECT_FALSE(fs::exists(spool + "/" + names[1]));
  // Through WalFetch too, with no request; a later segment drops the earlier ones.
  gets = counting_->gets;
  auto t = ops::WalFetch(*r, names[3], Dest(), {"main", 8});
  EXPECT_TRUE(t.from_spool);
  EXPECT_EQ(counting_->gets, gets);
  EXPECT_EQ(ReadFile(Dest()), segs[3]);
  EXPECT_FALSE(fs::exists(spool + "/" + names[2]));  // before the requested position: removed
  // The end of the archive ends the prefetch quietly.
  auto u = ops::WalFetch(*r, names[4], Dest(), {"main", 8});
  EXPECT_EQ(u.prefetched, 1);
  EXPECT_TRUE(fs::exists(spool + "/" + names[5]));
  // Not for another repository or source: the spool is emptied instead.
  EXPECT_FALSE(ops::WalFetchFromSpool(crypto::RandomId(), "main", names[5], Dest()));
  EXPECT_FALSE(fs::exists(spool + "/" + names[5]));
  // History files are never prefetched or spooled.
  EXPECT_FALSE(ops::WalFetchFromSpool(r->config().id, "main", "00000002.history", Dest()));
}

TEST_F(WalTest, DefaultPrefetchIsOnForRemoteStorageAndOffForALocalRepository) {
  auto r = Open();  // memory: remote-like (capabilities().local is false)
  Push(*r, "000000010000000000000010", Segment(1 << 20, 300));
  Push(*r, "000000010000000000000011", Segment(1 << 20, 301));
  fs::create_directories(tmp_.path() + "/restore/pg_wal");
  EXPECT_EQ(ops::WalFetch(*r, "000000010000000000000010", Dest(), {"main"}).prefetched, 1);

  std::string dir = tmp_.path() + "/local-repo";
  repo::InitOptions o;
  o.kdf = crypto::KdfParams{1, 8 << 20, {}};
  repo::Repository::Init(*storage::NewLocalBackend(dir), "pw", o);
  auto local = repo::Repository::Open(storage::NewLocalBackend(dir), "pw");
  ops::WalPush(*local, WalFile("000000010000000000000020", Segment(1 << 20, 302)), {"main", 1});
  ops::WalPush(*local, WalFile("000000010000000000000021", Segment(1 << 20, 303)), {"main", 1});
  EXPECT_EQ(ops::WalFetch(*local, "000000010000000000000020", Dest(), {"main"}).prefetched, 0);
  EXPECT_EQ(ops::WalFetch(*local, "000000010000000000000020", Dest(), {"main", 8}).prefetched, 1);
}

TEST_F(WalTest, SpoolRemovesTempFilesOfKilledCallsAndOldTimelines) {
  auto r = Open();
  std::vector<std::string> names = {"000000010000000000000010", "000000010000000000000011", "000000020000000000000011",
                                    "000000020000000000000012"};
  for (size_t i = 0; i < names.size(); ++i) Push(*r, names[i], Segment(1 << 20, 200 + i));
  fs::create_directories(tmp_.path() + "/restore/pg_wal");
  ASSERT_EQ(ops::WalFetch(*r, names[0], Dest(), {"main", 8}).prefetched, 1);  // TL1 11; TL1 12 missing
  std::string spool = ops::WalSpoolDir(Dest());
  WriteFile(spool + "/.tmp-123-0", AsBytes("half a segment"));
  // PostgreSQL switches to timeline 2 at segment 11: TL1 11 stays until passed.
  auto f = ops::WalFetch(*r, names[2], Dest(), {"main", 8});
  EXPECT_FALSE(f.from_spool);
  EXPECT_EQ(f.prefetched, 1);
  EXPECT_FALSE(fs::exists(spool + "/.tmp-123-0"));
  EXPECT_TRUE(fs::exists(spool + "/" + names[1]));
  EXPECT_TRUE(ops::WalFetch(*r, names[3], Dest(), {"main", 8}).from_spool);
  EXPECT_FALSE(fs::exists(spool + "/" + names[1]));
}

TEST_F(WalTest, CheckVerifiesWalObjectsAndPruneKeepsThem) {
  auto r = Open();
  Push(*r, "000000010000000000000010", Segment(1 << 20, 13));
  Push(*r, "00000002.history", AsBytes("1\t0/170004F0\tno recovery target specified\n"));
  ops::CheckOptions co;
  auto c = ops::Check(*Open(), co);
  EXPECT_TRUE(c.ok()) << c.errors[0];
  EXPECT_TRUE(c.warnings.empty()) << c.warnings[0];
  EXPECT_EQ(c.wal_objects, 2u);
  co.read_data = true;
  c = ops::Check(*Open(), co);
  EXPECT_TRUE(c.ok()) << c.errors[0];
  EXPECT_EQ(c.wal_read, 2u);

  {
    auto p = Open();
    auto lock = repo::Lock::Acquire(p.get(), true);
    ops::PruneOptions po;
    po.storage_now_ns = lock->Touch();
    po.grace_ns = 0;
    ops::Prune(*p, po);
  }
  EXPECT_EQ(store_->List("wal/").size(), 2u);

  // Damage is found with --read-data; a stray name is a warning.
  Bytes obj = store_->Get("wal/main/000000010000000000000010");
  obj[obj.size() / 2] ^= 1;
  store_->Put("wal/main/000000010000000000000010", obj);
  store_->Put("wal/main/notes.txt", AsBytes("hello"));
  c = ops::Check(*Open(), co);
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_NE(c.errors[0].find("wal/main/000000010000000000000010"), std::string::npos) << c.errors[0];
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("wal/main/notes.txt"), std::string::npos);
}

}  // namespace
}  // namespace bulwark
