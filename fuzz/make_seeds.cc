// Writes the seed corpora in fuzz/corpus/<target>/ (2-4 valid inputs per
// target). Not built by CMake; run by hand after a format change:
//
//   cmake --build build-asan --target bulwark_core
//   g++ -std=c++20 -fsanitize=address,undefined -Isrc fuzz/make_seeds.cc \
//       build-asan/libbulwark_core.a -lcrypto -lsodium -lzstd -lfmt -o /tmp/make_seeds
//   /tmp/make_seeds fuzz/corpus
//
// Objects are sealed under the fixed fuzzing key used by the targets (bytes
// 0x00..0x3f); key files use the password "fuzz-password" and cheap Argon2id
// parameters. Output is not byte-for-byte reproducible (AEAD salts and key
// file timestamps are random), only equivalent.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_key.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/repo/audit.h"
#include "bulwark/repo/cache.h"
#include "bulwark/repo/drill_record.h"
#include "bulwark/repo/format.h"
#include "bulwark/repo/index.h"
#include "bulwark/repo/pack.h"
#include "bulwark/repo/repository.h"
#include "bulwark/repo/snapshot.h"
#include "bulwark/repo/tree.h"
#include "bulwark/repo/wal.h"

using namespace bulwark;
namespace fs = std::filesystem;

namespace {

using fuzz::Master;

fs::path g_root;

void Write(const std::string& target, const std::string& name, ByteSpan data) {
  fs::create_directories(g_root / target);
  std::ofstream f(g_root / target / name, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  std::printf("%s/%s: %zu bytes\n", target.c_str(), name.c_str(), data.size());
}

Bytes WithMode(uint8_t mode, ByteSpan b) {
  Bytes out{mode};
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

Bytes Str(std::string_view s) { return Bytes(s.begin(), s.end()); }

Id IdOf(std::string_view s) { return crypto::Sha256(AsBytes(s)); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_root = argv[1];
  const crypto::MasterKey master = Master();
  const crypto::Aead aead(master.enc);
  const crypto::KeyedHasher ids(master.id);

  // ---- packs
  {
    std::vector<Bytes> plain = {Str(std::string(300, 'a') + "compressible text compressible text"), Str("tiny"),
                                crypto::RandomBytes(100)};
    repo::PackBuilder builder(&aead);
    for (size_t i = 0; i < plain.size(); ++i) {
      repo::PackedBlob meta;
      meta.id = ids.Mac(plain[i]);
      meta.type = i == 1 ? repo::BlobType::kTree : repo::BlobType::kData;
      builder.Add(meta, repo::SealBlob(aead, plain[i], 3, &meta));
    }
    std::vector<repo::PackedBlob> blobs;
    Write("pack_fuzz", "three_blobs", WithMode(0, builder.Finish(&blobs)));
    Write("pack_fuzz", "empty_pack", WithMode(0, builder.Finish(&blobs)));
    // Mode 1: filler length 40 (u16 LE), then a header plaintext for one
    // 40-byte (sealed) data blob of 8 raw bytes.
    Bytes hdr{40, 0};
    Writer w(&hdr);
    w.Varint(1);
    w.U8(1);
    w.U8(0);
    w.Varint(40);
    w.Varint(8);
    w.Raw(IdOf("blob"));
    Write("pack_fuzz", "header_plaintext", WithMode(1, hdr));
  }

  // ---- index objects
  {
    repo::IndexFile f;
    for (int p = 0; p < 2; ++p) {
      repo::IndexFile::Pack pack;
      pack.id = IdOf("pack" + std::to_string(p));
      uint32_t off = 8;
      for (int i = 0; i < 3; ++i) {
        repo::PackedBlob b;
        b.id = IdOf("blob" + std::to_string(p * 10 + i));
        b.type = i == 2 ? repo::BlobType::kTree : repo::BlobType::kData;
        b.compressed = i == 0;
        b.offset = off;
        b.length = 100 + i;
        b.raw_length = 200 + i;
        off += b.length;
        pack.blobs.push_back(b);
      }
      f.packs.push_back(pack);
    }
    Write("index_fuzz", "two_packs", f.Encode());
    f.supersedes = {IdOf("old1"), IdOf("old2")};
    f.packs.resize(1);
    Write("index_fuzz", "supersedes", f.Encode());
    Write("index_fuzz", "empty", repo::IndexFile().Encode());
  }

  // ---- trees
  {
    repo::Tree t;
    repo::Node f;
    f.name = "file.txt";
    f.mode = 0644;
    f.uid = 1000;
    f.gid = 1000;
    f.user = "user";
    f.group = "group";
    f.mtime_ns = 1795255200123456789;
    f.atime_ns = -1;
    f.ctime_ns = 1795255200000000000;
    f.inode = 1234;
    f.device = 2049;
    f.nlink = 2;
    f.size = 12;
    f.content = {IdOf("c1"), IdOf("c2")};
    f.xattrs = {{"user.a", "b"}, {"user.bin", std::string("\0\xff", 2)}};
    f.sparse = true;
    t.nodes.push_back(f);
    repo::Node d;
    d.name = "dir";
    d.type = repo::NodeType::kDir;
    d.mode = 0755;
    d.subtree = IdOf("subtree");
    t.nodes.push_back(d);
    repo::Node l;
    l.name = "link\n\xff";
    l.type = repo::NodeType::kSymlink;
    l.link_target = "../target";
    t.nodes.push_back(l);
    repo::Node c;
    c.name = "null";
    c.type = repo::NodeType::kCharDev;
    c.rdev = 259;
    t.nodes.push_back(c);
    Write("tree_fuzz", "mixed", t.Encode());
    repo::Tree small;
    small.nodes.push_back(d);
    Write("tree_fuzz", "one_dir", small.Encode());
    Write("tree_fuzz", "empty", repo::Tree().Encode());
  }

  // ---- snapshots
  {
    repo::Snapshot s;
    s.time_ns = 1795255200123456789;
    s.host = "host";
    s.username = "root";
    s.source = "db";
    s.kind = "command";
    s.paths = {"/dump.sql"};
    s.tags = {"daily"};
    s.excludes = {"*.tmp"};
    s.parent = IdOf("parent");
    s.tree = IdOf("tree");
    s.summary.files_new = 1;
    s.summary.duration_seconds = 1.5;
    s.facts = {{"exit_code", 0}, {"stream", {{"size", 5}, {"sha256", IdOf("x").Hex()}}}};
    s.program_version = "0.1.0";
    Write("snapshot_fuzz", "full", s.Encode());
    repo::Snapshot m;
    m.host = "h";
    m.tree = IdOf("t");
    Write("snapshot_fuzz", "minimal", m.Encode());
    repo::Snapshot c = m;
    c.copied_from = repo::CopiedFrom{IdOf("origin repo"), IdOf("origin snapshot")};
    Write("snapshot_fuzz", "copied", c.Encode());
  }

  // ---- audit records (payloads, a sealed object, a name, text to redact)
  {
    repo::AuditRecord r;
    r.seq = 7;
    r.parents = {{5, IdOf("p5")}, {6, IdOf("p6")}};
    r.host = "host";
    r.username = "root";
    r.uid = 0;
    r.key = IdOf("key").Hex();
    r.command = "forget";
    r.args = {"forget", "--keep-last", "3", "--postgres", "host=db password=***"};
    r.result = "error";
    r.exit_code = 11;
    r.error_code = "locked";
    r.error = "the repository is locked";
    r.snapshots_added = {IdOf("a")};
    r.snapshots_removed = {IdOf("b")};
    r.start_ns = 1795255200123456789;
    r.duration_ns = 1500000000;
    r.program_version = "0.1.0";
    Write("audit_fuzz", "full", r.Encode());
    repo::AuditRecord m;
    m.seq = 1;
    m.host = "h";
    m.command = "init";
    Write("audit_fuzz", "minimal", m.Encode());
    Write("audit_fuzz", "sealed", repo::SealObject(crypto::Aead(Master().enc), repo::ObjectType::kAudit, r.Encode()));
    Write("audit_fuzz", "name", Str(repo::AuditRef{42, IdOf("x")}.Name()));
    Write("audit_fuzz", "redact", Str("postgresql://u:pw@h/db password='a b' PGPASSWORD=x"));
  }
  // ---- drill records
  {
    repo::DrillRecord d;
    d.time_ns = 1795255200123456789;
    d.host = "host";
    d.username = "root";
    d.source = "app";
    d.source_kind = "postgres";
    d.target_kind = "database";
    d.target = "bulwark_drill_0011223344556677 on 127.0.0.1:5432/postgres";
    d.snapshot = IdOf("snapshot");
    d.snapshot_time_ns = 1795255100000000000;
    d.checks = {{"rows public.t", "10", "10", true}, {"sql: SELECT count(*) FROM t", "11", "10", false}};
    d.restore_seconds = 1.5;
    d.validate_seconds = 0.25;
    d.total_seconds = 1.75;
    d.rto_budget_seconds = 900;
    d.error = "";
    d.program_version = "0.1.0";
    Write("drill_record_fuzz", "full", d.Encode());
    repo::DrillRecord m;
    m.source = "docs";
    m.snapshot = IdOf("s");
    m.passed = true;
    Write("drill_record_fuzz", "minimal", m.Encode());
  }

  // ---- local cache: verified packs
  {
    repo::VerifiedPacks v;
    v.repository = IdOf("repo");
    // Mode byte (see fuzz/verified_cache_fuzz.cc): 0 as is, 1 checksum fixed up.
    Write("verified_cache_fuzz", "empty", WithMode(0, v.Encode()));
    for (int i = 0; i < 3; ++i) v.packs[IdOf("pack" + std::to_string(i))] = 1795255200 + i * 86400;
    v.packs[IdOf("epoch")] = 0;
    Write("verified_cache_fuzz", "four_packs", WithMode(0, v.Encode()));
    Bytes unsummed = v.Encode();
    std::fill(unsummed.end() - 32, unsummed.end(), 0);
    Write("verified_cache_fuzz", "four_packs_fixup", WithMode(1, unsummed));
  }

  // ---- key files
  {
    crypto::KdfParams cheap{1, 64 << 10, {}};
    Write("key_fuzz", "fuzz_password", repo::EncodeKeyFile(master, "fuzz-password", cheap));
    Write("key_fuzz", "other_password", repo::EncodeKeyFile(master, "other", cheap));
    crypto::Key32 secret{};
    Write("key_fuzz", "machine_slot", repo::EncodeMachineKeySlot(master, secret));  // never opens with a password
  }

  // ---- config and lock objects
  {
    repo::RepoConfig cfg;
    cfg.id = IdOf("repo");
    cfg.chunker_seed = Bytes(32, 7);
    cfg.chunker = {512 << 10, 1 << 20, 8 << 20};
    cfg.compression = 3;
    cfg.created_ns = 1795255200000000000;
    Bytes json = cfg.Encode();
    Write("object_fuzz", "sealed_config", repo::SealObject(aead, repo::ObjectType::kConfig, json));
    Write("object_fuzz", "config_json", json);
    Bytes plain{0};
    Writer(&plain).Varint(json.size());
    plain.insert(plain.end(), json.begin(), json.end());
    Write("object_fuzz", "config_plaintext", plain);
    std::string lock = R"({"host":"h","username":"u","pid":1,"time":"2026-11-21T10:00:00.000000000Z",)"
                       R"("time_ns":1795255200000000000,"exclusive":false})";
    Write("object_fuzz", "sealed_lock", repo::SealObject(aead, repo::ObjectType::kLock, AsBytes(lock)));
  }

  // ---- WAL objects, WAL file names, machine keys (fuzz/wal_fuzz.cc: the first byte is the mode)
  {
    const std::string object = "wal/main/000000010000000000000010";
    Bytes segment(64 << 10, 0);
    for (size_t i = 0; i < segment.size(); i += 8192) segment[i] = static_cast<uint8_t>(i >> 13);
    Write("wal_fuzz", "segment", WithMode(0, repo::SealWal(aead, object, segment, 1)));
    Bytes history = Str("1\t0/170004F0\tbefore 2026-11-21 19:33:29.852203+00\n");
    Write("wal_fuzz", "history_stored", WithMode(0, repo::SealWal(aead, object, history, 0)));
    Bytes plain{0};
    Writer w(&plain);
    w.U64(history.size());
    w.Raw(crypto::Sha256(history));
    w.Raw(history);
    Write("wal_fuzz", "history_plaintext", WithMode(1, plain));
    for (const char* n : {"000000010000000000000010", "00000002.history", "000000010000000000000010.00000028.backup",
                          "000000010000000000000010.partial", "0000000100000000000000FF"})
      Write("wal_fuzz", std::string("name_") + n, WithMode(2, Str(n)));
    repo::MachineKey k;
    k.repository = IdOf("repo");
    k.slot = IdOf("slot");
    for (int i = 0; i < 32; ++i) k.secret[i] = static_cast<uint8_t>(0x40 + i);
    Write("wal_fuzz", "machine_key_file", WithMode(3, Str(k.Encode())));
    Write("wal_fuzz", "machine_key_slot", WithMode(4, repo::EncodeMachineKeySlot(master, k.secret)));
  }
  return 0;
}
