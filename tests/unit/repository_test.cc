// Tests for src/bulwark/repo/repository.h, blob_saver.h and lock.h on the
// in-memory backend: init/open/keys, blob storage and dedup through
// BlobSaver, damage detection, snapshots and locks.
#include "bulwark/repo/repository.h"

#include <gtest/gtest.h>

#include "test_util.h"

#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bulwark/base/error.h"
#include "bulwark/base/sys.h"
#include "bulwark/repo/blob_saver.h"
#include "bulwark/repo/lock.h"
#include "bulwark/storage/backend.h"

namespace bulwark::repo {
namespace {


crypto::KdfParams FastKdf() { return crypto::KdfParams{1, 8 << 20, {}}; }

InitOptions FastInit() {
  InitOptions o;
  o.kdf = FastKdf();
  return o;
}

Bytes Text(size_t n, int seed) {
  std::string s;
  while (s.size() < n) s += "line " + std::to_string(seed) + " " + std::to_string(s.size()) + "\n";
  s.resize(n);
  return Bytes(s.begin(), s.end());
}

void FlipByte(storage::Backend& b, const std::string& name, size_t pos) {
  Bytes data = b.Get(name);
  ASSERT_LT(pos, data.size());
  data[pos] ^= 0x20;
  b.Put(name, data);
}

class RepositoryTest : public ::testing::Test {
 protected:
  RepositoryTest() : store_(storage::NewMemoryBackend()) {}

  // Several Repository objects (each owns its backend) share one store.
  std::unique_ptr<storage::Backend> Handle() { return std::make_unique<storage::ForwardingBackend>(store_); }
  void Init(std::string_view password = "pw", InitOptions o = FastInit()) {
    Repository::Init(*store_, password, std::move(o));
  }
  std::unique_ptr<Repository> Open(std::string_view password = "pw") { return Repository::Open(Handle(), password); }

  // A repository on a handle that refuses writes and deletes under these
  // prefixes as S3 refuses what a key may not do (RestrictedBackend, kept in
  // restricted_).
  std::unique_ptr<Repository> OpenRestricted(std::vector<std::string> no_put, std::vector<std::string> no_remove) {
    restricted_ = std::make_shared<RestrictedBackend>(store_, std::move(no_put), std::move(no_remove));
    return Repository::Open(std::make_unique<storage::ForwardingBackend>(restricted_), "pw");
  }

  // Writes lock `id` as a process on `host` whose pid does not exist would.
  void PutLockOfGoneProcess(const Repository& repo, const std::string& host, const Id& id = crypto::RandomId()) {
    nlohmann::json j = {{"host", host},        {"username", "x"},    {"pid", 2147483000}, {"time", FormatTime(NowNs())},
                        {"time_ns", NowNs()}, {"exclusive", true}};
    std::string s = j.dump();
    store_->Put("locks/" + id.Hex(), SealObject(repo.aead(), ObjectType::kLock, AsBytes(s)));
  }

  std::vector<std::string> Names(const std::string& prefix) {
    std::vector<std::string> out;
    for (const auto& o : store_->List(prefix)) out.push_back(o.name);
    return out;
  }

  std::shared_ptr<storage::Backend> store_;
  std::shared_ptr<RestrictedBackend> restricted_;  // the last OpenRestricted handle
};

// ---------------------------------------------------------------- init/open

TEST_F(RepositoryTest, InitCreatesConfigAndOneKey) {
  InitOptions o = FastInit();
  o.chunker = {64 << 10, 256 << 10, 1 << 20};
  o.compression = 7;
  Init("pw", o);
  EXPECT_TRUE(store_->Stat("config").has_value());
  ASSERT_EQ(Names("keys/").size(), 1u);
  auto repo = Open("pw");
  EXPECT_EQ(repo->config().chunker.min_size, 64u << 10);
  EXPECT_EQ(repo->config().chunker.avg_size, 256u << 10);
  EXPECT_EQ(repo->config().chunker.max_size, 1u << 20);
  EXPECT_EQ(repo->config().compression, 7);
  EXPECT_EQ(repo->config().chunker_seed.size(), 32u);
  EXPECT_FALSE(repo->config().id.IsZero());
  EXPECT_GT(repo->config().created_ns, 0);
  EXPECT_EQ("keys/" + repo->key_id().Hex(), Names("keys/")[0]);
  // The config is sealed: its plaintext is not visible in the object.
  Bytes raw = store_->Get("config");
  EXPECT_EQ(AsString(raw).find("chunker"), std::string::npos);
  EXPECT_EQ(AsString(raw).substr(0, 4), "BWRK");
}

TEST_F(RepositoryTest, InitRefusesExistingRepositoryAndBadOptions) {
  Init();
  EXPECT_EQ(CodeOf([&] { Init(); }), ErrorCode::kAlreadyExists);
  auto other = storage::NewMemoryBackend();
  InitOptions bad = FastInit();
  bad.compression = 20;
  EXPECT_EQ(CodeOf([&] { Repository::Init(*other, "pw", bad); }), ErrorCode::kInvalidArgument);
  bad = FastInit();
  bad.chunker = {100, 1000, 5000};  // avg not a power of two
  EXPECT_EQ(CodeOf([&] { Repository::Init(*other, "pw", bad); }), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(other->Stat("config").has_value());
}

TEST_F(RepositoryTest, InitCanShareChunkerParamsAndIdKeyButNeverTheEncryptionKey) {
  Init("a");
  auto a = Open("a");
  auto other = storage::NewMemoryBackend();
  InitOptions o = FastInit();
  o.chunker = {64 << 10, 128 << 10, 256 << 10};  // overridden by copy_chunker_from
  o.copy_chunker_from = a->config();
  o.id_key = a->master_key().id;
  Repository::Init(*other, "b", o);
  auto b = Repository::Open(std::make_unique<storage::ForwardingBackend>(std::shared_ptr<storage::Backend>(std::move(other))), "b");
  EXPECT_EQ(b->config().chunker_seed, a->config().chunker_seed);
  EXPECT_EQ(b->config().chunker.avg_size, a->config().chunker.avg_size);
  EXPECT_NE(b->config().id, a->config().id);
  EXPECT_EQ(b->master_key().id, a->master_key().id);
  EXPECT_NE(b->master_key().enc, a->master_key().enc);
  Bytes data = Text(1000, 3);
  EXPECT_EQ(b->ids().Mac(data), a->ids().Mac(data)) << "blob ids agree";
  // Without the options, both are fresh.
  auto third = storage::NewMemoryBackend();
  Repository::Init(*third, "c", FastInit());
  auto c = Repository::Open(std::make_unique<storage::ForwardingBackend>(std::shared_ptr<storage::Backend>(std::move(third))), "c");
  EXPECT_NE(c->ids().Mac(data), a->ids().Mac(data));
  EXPECT_NE(c->config().chunker_seed, a->config().chunker_seed);
}

TEST_F(RepositoryTest, OpenWithWrongPasswordOrNoRepository) {
  EXPECT_EQ(CodeOf([&] { Open("pw"); }), ErrorCode::kNoRepository);
  Init("right");
  EXPECT_EQ(CodeOf([&] { Open("wrong"); }), ErrorCode::kWrongPassword);
  EXPECT_EQ(CodeOf([&] { Open(""); }), ErrorCode::kWrongPassword);
  EXPECT_EQ(CodeOf([&] { Open("right "); }), ErrorCode::kWrongPassword);
  EXPECT_NO_THROW(Open("right"));
}

TEST_F(RepositoryTest, CorruptedConfigIsCorrupt) {
  Init();
  Bytes good = store_->Get("config");
  for (size_t pos : {size_t(0), size_t(4), size_t(12), good.size() / 2, good.size() - 1}) {
    store_->Put("config", good);
    FlipByte(*store_, "config", pos);
    EXPECT_EQ(CodeOf([&] { Open(); }), ErrorCode::kCorrupt) << pos;
  }
  store_->Put("config", ByteSpan(good).first(good.size() - 1));
  EXPECT_EQ(CodeOf([&] { Open(); }), ErrorCode::kCorrupt);
  store_->Put("config", good);
  EXPECT_NO_THROW(Open());
}

TEST_F(RepositoryTest, ConfigDecodeValidates) {
  Init();
  auto repo = Open();
  RepoConfig c = repo->config();
  RepoConfig back = RepoConfig::Decode(c.Encode(), "config");
  EXPECT_EQ(back.id, c.id);
  EXPECT_EQ(back.chunker_seed, c.chunker_seed);
  EXPECT_EQ(back.compression, c.compression);
  EXPECT_EQ(back.created_ns, c.created_ns);

  auto with = [&](auto mutate) {
    nlohmann::json j = nlohmann::json::parse(AsString(c.Encode()));
    mutate(j);
    std::string s = j.dump();
    return CodeOf([&] { RepoConfig::Decode(AsBytes(s), "config"); });
  };
  EXPECT_EQ(with([](auto& j) { j["version"] = 2; }), ErrorCode::kUnsupported);
  EXPECT_EQ(with([](auto& j) { j["chunker"]["seed"] = "00"; }), ErrorCode::kCorrupt);
  EXPECT_EQ(with([](auto& j) { j["chunker"]["avg"] = 1000; }), ErrorCode::kCorrupt);
  EXPECT_EQ(with([](auto& j) { j["compression"] = 23; }), ErrorCode::kCorrupt);
  EXPECT_EQ(with([](auto& j) { j["id"] = "x"; }), ErrorCode::kCorrupt);
  EXPECT_EQ(with([](auto& j) { j.erase("chunker"); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([] { RepoConfig::Decode(AsBytes("nope"), "config"); }), ErrorCode::kCorrupt);
}

// ---------------------------------------------------------------- keys

TEST_F(RepositoryTest, AddKeyListKeysRemoveKey) {
  Init("first");
  auto repo = Open("first");
  Id second = repo->AddKey("second", FastKdf());
  EXPECT_NE(second, repo->key_id());

  auto other = Open("second");
  EXPECT_EQ(other->key_id(), second);
  EXPECT_EQ(other->master_key().enc, repo->master_key().enc);  // same repository key
  EXPECT_EQ(other->master_key().id, repo->master_key().id);
  EXPECT_EQ(other->config().id, repo->config().id);

  std::vector<KeyInfo> keys = repo->ListKeys();
  ASSERT_EQ(keys.size(), 2u);
  int current = 0;
  for (const auto& k : keys) {
    current += k.current;
    EXPECT_EQ(k.current, k.id == repo->key_id());
    EXPECT_EQ(k.kdf.ops, 1u);
    EXPECT_EQ(k.kdf.mem, 8u << 20);
    EXPECT_EQ(k.kdf.salt.size(), 16u);
    EXPECT_GT(k.created_ns, 0);
  }
  EXPECT_EQ(current, 1);

  // The key in use cannot be removed; an unknown one is not found.
  EXPECT_EQ(CodeOf([&] { repo->RemoveKey(repo->key_id()); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { repo->RemoveKey(crypto::RandomId()); }), ErrorCode::kNotFound);
  EXPECT_EQ(Names("keys/").size(), 2u);

  // Removing the other key locks its password out.
  repo->RemoveKey(second);
  EXPECT_EQ(Names("keys/").size(), 1u);
  EXPECT_EQ(CodeOf([&] { Open("second"); }), ErrorCode::kWrongPassword);
  EXPECT_NO_THROW(Open("first"));
}

TEST_F(RepositoryTest, DamagedKeyFilesAreSkippedOrReported) {
  Init("first");
  Id second = Open("first")->AddKey("second", FastKdf());
  std::string second_name = Repository::ObjectName(ObjectType::kKey, second);
  // Damage the second key file's JSON: the first still opens, the second password no longer does.
  Bytes k = store_->Get(second_name);
  k[kEnvelopeSize] = '[';
  store_->Put(second_name, k);
  EXPECT_NO_THROW(Open("first"));
  EXPECT_EQ(CodeOf([&] { Open("second"); }), ErrorCode::kWrongPassword);
  // Every key damaged: corrupt, not "wrong password".
  for (const auto& name : Names("keys/")) {
    Bytes d = store_->Get(name);
    d[0] = 'X';
    store_->Put(name, d);
  }
  EXPECT_EQ(CodeOf([&] { Open("first"); }), ErrorCode::kCorrupt);
}

TEST(RepositoryKeyFile, EncodeOpen) {
  crypto::MasterKey master = crypto::MasterKey::Generate();
  Bytes kf = EncodeKeyFile(master, "pass", FastKdf());
  KeyInfo info;
  auto opened = OpenKeyFile(kf, "pass", "keys/x", &info);
  ASSERT_TRUE(opened.has_value());
  EXPECT_EQ(opened->enc, master.enc);
  EXPECT_EQ(opened->id, master.id);
  EXPECT_EQ(info.kdf.ops, 1u);
  EXPECT_FALSE(OpenKeyFile(kf, "other", "keys/x", nullptr).has_value());
  // The master key is not in the file in the clear.
  EXPECT_EQ(AsString(kf).find(ToHex(master.enc)), std::string::npos);
  EXPECT_EQ(AsString(kf).find(ToHex(master.Serialize())), std::string::npos);

  auto json_of = [&](auto mutate) {
    nlohmann::json j = nlohmann::json::parse(AsString(ByteSpan(kf).subspan(kEnvelopeSize)));
    mutate(j);
    Bytes out(kf.begin(), kf.begin() + kEnvelopeSize);
    std::string s = j.dump();
    out.insert(out.end(), s.begin(), s.end());
    return out;
  };
  auto code = [&](const Bytes& b) { return CodeOf([&] { OpenKeyFile(b, "pass", "keys/x", nullptr); }); };
  EXPECT_EQ(code(json_of([](auto& j) { j["kdf"] = "scrypt"; })), ErrorCode::kUnsupported);
  EXPECT_EQ(code(json_of([](auto& j) { j["salt"] = "abc"; })), ErrorCode::kCorrupt);
  EXPECT_EQ(code(json_of([](auto& j) { j["salt"] = "0011"; })), ErrorCode::kCorrupt);
  EXPECT_EQ(code(json_of([](auto& j) { j["ops"] = 0; })), ErrorCode::kCorrupt);
  EXPECT_EQ(code(json_of([](auto& j) { j["ops"] = "1"; })), ErrorCode::kCorrupt);
  EXPECT_EQ(code(json_of([](auto& j) { j.erase("master_key"); })), ErrorCode::kCorrupt);
  Bytes not_json(kf.begin(), kf.begin() + kEnvelopeSize);
  not_json.push_back('x');
  EXPECT_EQ(code(not_json), ErrorCode::kCorrupt);
  // A tampered sealed master key reads as "this password does not open it".
  Bytes tampered = json_of([](auto& j) {
    std::string mk = j["master_key"];
    mk[40] = mk[40] == '0' ? '1' : '0';
    j["master_key"] = mk;
  });
  EXPECT_FALSE(OpenKeyFile(tampered, "pass", "keys/x", nullptr).has_value());
}

// ---------------------------------------------------------------- blobs

TEST_F(RepositoryTest, BlobSaverDedupFlushAndReload) {
  Init();
  std::vector<Bytes> blobs;
  std::vector<Id> ids;
  {
    auto repo = Open();
    repo->LoadIndex();
    BlobSaver saver(repo.get(), 3);
    for (int i = 0; i < 20; ++i) {
      blobs.push_back(Text(1000 + i * 3000, i));
      ids.push_back(repo->ids().Mac(blobs.back()));
      EXPECT_TRUE(saver.Save(BlobType::kData, blobs.back(), ids.back()));
    }
    // Saving the same blob again (pending in an open pack) stores nothing new.
    EXPECT_FALSE(saver.Save(BlobType::kData, blobs[0], ids[0]));
    EXPECT_FALSE(saver.Save(BlobType::kData, blobs[19], ids[19]));
    Tree t;
    Node n;
    n.name = "file";
    n.content = {ids[0], ids[1]};
    t.nodes.push_back(n);
    Id tree_id = saver.SaveTree(t);
    ids.push_back(tree_id);
    EXPECT_EQ(tree_id, repo->ids().Mac(t.Encode()));
    EXPECT_TRUE(Names("data/").empty());  // nothing is uploaded before a pack fills or Flush
    saver.Flush();
    EXPECT_EQ(saver.stats().blobs_added, 21u);
    EXPECT_EQ(saver.stats().packs_written, 2u);  // data and tree blobs go to separate packs
    EXPECT_EQ(saver.stats().index_objects_written, 1u);
    EXPECT_EQ(Names("data/").size(), 2u);
    EXPECT_EQ(Names("index/").size(), 1u);
    // After Flush, the index knows the blobs: still no duplicates.
    EXPECT_FALSE(saver.Save(BlobType::kData, blobs[3], ids[3]));
    saver.Flush();
    EXPECT_EQ(Names("data/").size(), 2u);
    EXPECT_EQ(saver.stats().blobs_added, 21u);
    // Pack names are the SHA-256 of their content, under data/<2 hex>/.
    for (const auto& name : Names("data/")) {
      std::string hex = name.substr(name.rfind('/') + 1);
      EXPECT_EQ(name, "data/" + hex.substr(0, 2) + "/" + hex);
      EXPECT_EQ(crypto::Sha256(store_->Get(name)).Hex(), hex);
    }
  }
  // A fresh session sees everything through the index.
  auto repo = Open();
  repo->LoadIndex();
  EXPECT_EQ(repo->index_ids().size(), 1u);
  EXPECT_EQ(repo->index().blob_count(), 21u);
  for (size_t i = 0; i < blobs.size(); ++i) EXPECT_EQ(repo->LoadBlob(ids[i]), blobs[i]) << i;
  Tree t = repo->LoadTree(ids.back());
  ASSERT_EQ(t.nodes.size(), 1u);
  EXPECT_EQ(t.nodes[0].content, (std::vector<Id>{ids[0], ids[1]}));
  EXPECT_EQ(CodeOf([&] { repo->LoadBlob(crypto::RandomId()); }), ErrorCode::kNotFound);
  // A tree blob is not a data blob and vice versa.
  EXPECT_EQ(repo->index().Find(ids.back())->blob.type, BlobType::kTree);
  EXPECT_EQ(CodeOf([&] { repo->LoadTree(ids[0]); }), ErrorCode::kCorrupt);

  // A second saver in the new session deduplicates against the loaded index.
  BlobSaver saver(repo.get(), 3);
  EXPECT_FALSE(saver.Save(BlobType::kData, blobs[5], ids[5]));
  saver.Flush();
  EXPECT_EQ(Names("data/").size(), 2u);
}

TEST_F(RepositoryTest, ConcurrentSavesStoreEachBlobOnce) {
  Init();
  auto repo = Open();
  std::vector<Bytes> blobs;
  for (int i = 0; i < 40; ++i) blobs.push_back(Text(2000 + i, i));
  {
    BlobSaver saver(repo.get(), 1);
    std::atomic<int> added{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&] {
        for (const auto& b : blobs) added += saver.Save(BlobType::kData, b, repo->ids().Mac(b));
      });
    for (auto& t : ts) t.join();
    saver.Flush();
    EXPECT_EQ(added.load(), 40);
    EXPECT_EQ(saver.stats().blobs_added, 40u);
  }
  auto fresh = Open();
  fresh->LoadIndex();
  EXPECT_EQ(fresh->index().blob_count(), 40u);
  for (const auto& b : blobs) EXPECT_EQ(fresh->LoadBlob(fresh->ids().Mac(b)), b);
}

TEST_F(RepositoryTest, LargeVolumeSpillsIntoSeveralPacks) {
  Init();
  auto repo = Open();
  std::vector<Id> ids;
  size_t total = 0;
  {
    BlobSaver saver(repo.get(), 0);
    // Incompressible 1 MiB blobs until more than two packs' worth.
    while (total < 2 * BlobSaver::kPackTargetSize + (1 << 20)) {
      Bytes b = crypto::RandomBytes(1 << 20);
      ids.push_back(repo->ids().Mac(b));
      ASSERT_TRUE(saver.Save(BlobType::kData, b, ids.back()));
      total += b.size();
    }
    saver.Flush();
    EXPECT_GE(saver.stats().packs_written, 3u);
    EXPECT_GE(saver.stats().bytes_stored, total);
  }
  EXPECT_GE(Names("data/").size(), 3u);
  auto fresh = Open();
  fresh->LoadIndex();
  EXPECT_EQ(fresh->index().blob_count(), ids.size());
  std::set<Id> packs;
  for (const Id& id : ids) packs.insert(fresh->index().Find(id)->pack);
  EXPECT_GE(packs.size(), 3u);
  EXPECT_EQ(fresh->LoadBlob(ids.back()).size(), 1u << 20);
}

TEST_F(RepositoryTest, DamagedPackByteMakesLoadBlobCorrupt) {
  Init();
  Bytes a = Text(10000, 1), b = Text(20000, 2);
  Id ida, idb;
  {
    auto repo = Open();
    BlobSaver saver(repo.get(), 3);
    ida = repo->ids().Mac(a);
    idb = repo->ids().Mac(b);
    saver.Save(BlobType::kData, a, ida);
    saver.Save(BlobType::kData, b, idb);
    saver.Flush();
  }
  auto repo = Open();
  repo->LoadIndex();
  auto loc = repo->index().Find(idb);
  ASSERT_TRUE(loc.has_value());
  std::string pack = Repository::ObjectName(ObjectType::kPack, loc->pack);
  FlipByte(*store_, pack, loc->blob.offset + loc->blob.length / 2);
  try {
    repo->LoadBlob(idb);
    FAIL() << "damaged blob loaded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find(loc->pack.Short()), std::string::npos) << e.what();
  }
  EXPECT_EQ(repo->LoadBlob(ida), a);  // the other blob in the pack is intact

  // A truncated pack: the range read fails as corrupt.
  Bytes whole = store_->Get(pack);
  store_->Put(pack, ByteSpan(whole).first(loc->blob.offset + 10));
  EXPECT_EQ(CodeOf([&] { repo->LoadBlob(idb); }), ErrorCode::kCorrupt);
  // A missing pack.
  store_->Remove(pack);
  EXPECT_EQ(CodeOf([&] { repo->LoadBlob(ida); }), ErrorCode::kNotFound);
}

TEST_F(RepositoryTest, DamagedIndexObjectFailsLoadIndex) {
  Init();
  {
    auto repo = Open();
    BlobSaver saver(repo.get(), 3);
    Bytes a = Text(100, 1);
    saver.Save(BlobType::kData, a, repo->ids().Mac(a));
    saver.Flush();
  }
  std::string name = Names("index/").at(0);
  FlipByte(*store_, name, 20);
  auto repo = Open();
  try {
    repo->LoadIndex();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
  }
}

TEST_F(RepositoryTest, UnpackedObjectsAreContentAddressed) {
  Init();
  auto repo = Open();
  Bytes payload = Text(5000, 3);
  Id id = repo->SaveUnpacked(ObjectType::kIndex, payload);
  EXPECT_TRUE(store_->Stat("index/" + id.Hex()).has_value());
  EXPECT_EQ(repo->LoadUnpacked(ObjectType::kIndex, id), payload);
  // Read as another type: the envelope type is checked.
  store_->Put("snapshots/" + id.Hex(), store_->Get("index/" + id.Hex()));
  EXPECT_EQ(CodeOf([&] { repo->LoadUnpacked(ObjectType::kSnapshot, id); }), ErrorCode::kCorrupt);
  // Any change to the object no longer matches its name.
  FlipByte(*store_, "index/" + id.Hex(), 30);
  EXPECT_EQ(CodeOf([&] { repo->LoadUnpacked(ObjectType::kIndex, id); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { repo->LoadUnpacked(ObjectType::kIndex, crypto::RandomId()); }), ErrorCode::kNotFound);
}

// ---------------------------------------------------------------- snapshots

Snapshot Snap(int64_t time_ns, std::string host, std::vector<std::string> tags = {}) {
  Snapshot s;
  s.time_ns = time_ns;
  s.host = std::move(host);
  s.tags = std::move(tags);
  s.paths = {"/data"};
  s.tree = crypto::Sha256(AsBytes("tree" + std::to_string(time_ns)));
  return s;
}

TEST_F(RepositoryTest, SnapshotsSaveLoadResolve) {
  Init();
  auto repo = Open();
  Snapshot s1 = Snap(1000, "alpha", {"daily"}), s2 = Snap(3000, "beta"), s3 = Snap(2000, "alpha", {"weekly"});
  Id id1 = repo->SaveSnapshot(s1), id2 = repo->SaveSnapshot(s2), id3 = repo->SaveSnapshot(s3);
  EXPECT_EQ(s1.id, id1);
  EXPECT_TRUE(store_->Stat("snapshots/" + id1.Hex()).has_value());

  Snapshot l = repo->LoadSnapshot(id3);
  EXPECT_EQ(l.id, id3);
  EXPECT_EQ(l.time_ns, 2000);
  EXPECT_EQ(l.host, "alpha");
  EXPECT_EQ(l.tree, s3.tree);

  std::vector<Snapshot> all = repo->LoadSnapshots();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, id1);  // sorted by time
  EXPECT_EQ(all[1].id, id3);
  EXPECT_EQ(all[2].id, id2);

  EXPECT_EQ(repo->ResolveSnapshot("latest", {}).id, id2);
  SnapshotFilter alpha;
  alpha.host = "alpha";
  EXPECT_EQ(repo->ResolveSnapshot("latest", alpha).id, id3);
  SnapshotFilter daily;
  daily.tags = {"daily"};
  EXPECT_EQ(repo->ResolveSnapshot("latest", daily).id, id1);
  SnapshotFilter none;
  none.host = "gamma";
  EXPECT_EQ(CodeOf([&] { repo->ResolveSnapshot("latest", none); }), ErrorCode::kNotFound);
  SnapshotFilter path_filter;
  path_filter.paths = {"/other"};
  EXPECT_EQ(CodeOf([&] { repo->ResolveSnapshot("latest", path_filter); }), ErrorCode::kNotFound);

  // Full ids, unique prefixes (any case); the filter does not apply to ids.
  EXPECT_EQ(repo->ResolveSnapshot(id1.Hex(), none).id, id1);
  EXPECT_EQ(repo->ResolveSnapshot(id2.Hex().substr(0, 12), {}).id, id2);
  std::string upper = id3.Hex().substr(0, 12);
  for (auto& c : upper) c = static_cast<char>(toupper(c));
  EXPECT_EQ(repo->ResolveSnapshot(upper, {}).id, id3);
  EXPECT_EQ(CodeOf([&] { repo->ResolveSnapshot("", {}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { repo->ResolveSnapshot("xyz", {}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { repo->ResolveSnapshot(id1.Hex() + "0", {}); }), ErrorCode::kInvalidArgument);
  Id absent = crypto::RandomId();
  EXPECT_EQ(CodeOf([&] { repo->ResolveSnapshot(absent.Hex(), {}); }), ErrorCode::kNotFound);
}

TEST_F(RepositoryTest, AmbiguousSnapshotPrefix) {
  Init();
  auto repo = Open();
  // 17 snapshots: two of them must share their first hex digit.
  std::map<char, std::vector<Id>> by_first;
  for (int i = 0; i < 17; ++i) {
    Snapshot s = Snap(i, "h");
    Id id = repo->SaveSnapshot(s);
    by_first[id.Hex()[0]].push_back(id);
  }
  for (const auto& [c, ids] : by_first) {
    if (ids.size() > 1) {
      EXPECT_EQ(CodeOf([&] { repo->ResolveSnapshot(std::string(1, c), {}); }), ErrorCode::kInvalidArgument) << c;
      // The full id still resolves.
      EXPECT_EQ(repo->ResolveSnapshot(ids[1].Hex(), {}).id, ids[1]);
    } else {
      EXPECT_EQ(repo->ResolveSnapshot(std::string(1, c), {}).id, ids[0]);
    }
  }
  EXPECT_LT(by_first.size(), 17u);
}

TEST_F(RepositoryTest, DamagedSnapshotIsReported) {
  Init();
  auto repo = Open();
  Snapshot good = Snap(1, "h"), bad = Snap(2, "h");
  repo->SaveSnapshot(good);
  Id bad_id = repo->SaveSnapshot(bad);
  FlipByte(*store_, "snapshots/" + bad_id.Hex(), 40);
  EXPECT_EQ(CodeOf([&] { repo->LoadSnapshot(bad_id); }), ErrorCode::kCorrupt);
  EXPECT_EQ(CodeOf([&] { repo->LoadSnapshots(); }), ErrorCode::kCorrupt);
  std::vector<std::string> errors;
  auto snaps = repo->LoadSnapshots([&](const Error& e) { errors.push_back(e.what()); });
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].id, good.id);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(bad_id.Hex()), std::string::npos) << errors[0];
  // "latest" skips the damaged one.
  EXPECT_EQ(repo->ResolveSnapshot("latest", {}).id, good.id);
}

// ---------------------------------------------------------------- locks

TEST_F(RepositoryTest, SharedAndExclusiveLocks) {
  Init();
  auto repo = Open();
  {
    auto s1 = Lock::Acquire(repo.get(), false);
    auto s2 = Lock::Acquire(repo.get(), false);  // shared locks coexist
    EXPECT_EQ(Names("locks/").size(), 2u);
    EXPECT_EQ(CodeOf([&] { Lock::Acquire(repo.get(), true); }), ErrorCode::kLocked);
    auto list = Lock::List(repo.get(), false);
    ASSERT_EQ(list.size(), 2u);
    for (const auto& l : list) {
      EXPECT_FALSE(l.exclusive);
      EXPECT_EQ(l.pid, static_cast<int64_t>(getpid()));
      EXPECT_EQ(l.host, sys::Hostname());
    }
  }
  EXPECT_TRUE(Names("locks/").empty());  // released
  {
    auto x = Lock::Acquire(repo.get(), true);
    EXPECT_EQ(CodeOf([&] { Lock::Acquire(repo.get(), false); }), ErrorCode::kLocked);
    EXPECT_EQ(CodeOf([&] { Lock::Acquire(repo.get(), true); }), ErrorCode::kLocked);
    EXPECT_EQ(Names("locks/").size(), 1u);  // failed attempts leave nothing behind
  }
  EXPECT_NO_THROW(Lock::Acquire(repo.get(), true));
  EXPECT_TRUE(Names("locks/").empty());
}

TEST_F(RepositoryTest, StaleLockOfDeadProcessIsRemoved) {
  Init();
  auto repo = Open();
  // A lock left by a process on this host that no longer exists.
  Id stale = crypto::RandomId();
  PutLockOfGoneProcess(*repo, sys::Hostname(), stale);
  ASSERT_EQ(Lock::List(repo.get(), false).size(), 1u);
  auto lock = Lock::Acquire(repo.get(), true);
  EXPECT_FALSE(store_->Stat("locks/" + stale.Hex()).has_value());
  EXPECT_EQ(Names("locks/").size(), 1u);
  // A live holder on another host is not removed.
  lock.reset();
  PutLockOfGoneProcess(*repo, "some-other-host.invalid", stale);
  EXPECT_EQ(CodeOf([&] { Lock::Acquire(repo.get(), false); }), ErrorCode::kLocked);
  EXPECT_TRUE(store_->Stat("locks/" + stale.Hex()).has_value());
}

// Append-only credentials (S3: PutObject, no DeleteObject): a lock is taken,
// refreshed in place and, at release, overwritten with a released marker that
// other lockers ignore; a locker with delete permission removes it.
TEST_F(RepositoryTest, LockWithoutDeletePermissionIsMarkedReleased) {
  Init();
  auto repo = OpenRestricted({}, {""});
  {
    auto lock = Lock::Acquire(repo.get(), false);
    EXPECT_EQ(Names("locks/").size(), 1u);
    lock->Touch();  // the old object cannot be deleted: marked released, and from now on...
    lock->Touch();  // ...refreshed in place
    EXPECT_EQ(Names("locks/").size(), 2u);
    lock->CheckHeld();
    auto held = Lock::List(repo.get(), true);
    ASSERT_EQ(held.size(), 1u) << "the released one is not a lock";
    EXPECT_FALSE(held[0].released);
  }
  EXPECT_GT(restricted_->denied(), 0);
  auto all = Lock::List(repo.get(), false);
  ASSERT_EQ(all.size(), 2u) << "both objects stay";
  for (const auto& l : all) EXPECT_TRUE(l.released);
  // They lock nothing, even for an exclusive locker without delete permission...
  EXPECT_TRUE(Lock::List(repo.get(), true).empty());
  // ...and one with it removes them.
  auto full = Open();
  EXPECT_NO_THROW(Lock::Acquire(full.get(), true));
  EXPECT_TRUE(Names("locks/").empty());
}

// A stale lock that these credentials may not remove is ignored, not an error.
TEST_F(RepositoryTest, StaleLockWithoutDeletePermissionIsIgnored) {
  Init();
  auto full = Open();
  PutLockOfGoneProcess(*full, sys::Hostname());
  store_->Put("locks/" + crypto::RandomId().Hex(), AsBytes(std::string("not a lock")));
  auto repo = OpenRestricted({}, {"locks/"});
  EXPECT_TRUE(Lock::List(repo.get(), true).empty());
  { auto lock = Lock::Acquire(repo.get(), false); }
  EXPECT_EQ(Names("locks/").size(), 3u) << "the stale, the unreadable and our released lock";
  EXPECT_NO_THROW(Lock::Acquire(full.get(), true));
  EXPECT_TRUE(Names("locks/").empty());
}

// Read-only credentials: Acquire fails with kPermission and leaves nothing
// (the CLI's read commands then go on without a lock).
TEST_F(RepositoryTest, LockWithoutWritePermissionFailsCleanly) {
  Init();
  auto repo = OpenRestricted({""}, {""});
  EXPECT_EQ(CodeOf([&] { Lock::Acquire(repo.get(), false); }), ErrorCode::kPermission);
  EXPECT_EQ(restricted_->denied(), 1) << "one PUT refused; no DELETE attempted afterwards";
  EXPECT_TRUE(Names("locks/").empty());
}

TEST_F(RepositoryTest, ProbeDeleteNeedsDeletePermissionAndRemovesNothing) {
  Init();
  auto repo = OpenRestricted({}, {"data/"});
  size_t objects = store_->List("").size();
  EXPECT_NO_THROW(repo->ProbeDelete({ObjectType::kSnapshot, ObjectType::kIndex, ObjectType::kLock}));
  EXPECT_EQ(CodeOf([&] { repo->ProbeDelete({ObjectType::kIndex, ObjectType::kPack}); }), ErrorCode::kPermission);
  EXPECT_EQ(store_->List("").size(), objects);
}

}  // namespace
}  // namespace bulwark::repo
