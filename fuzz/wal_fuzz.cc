// Fuzzes the WAL archive decoders (repo/wal.h) and the machine key decoders
// (repo::MachineKey::Decode, repo::OpenMachineKeySlot) under fixed keys. The
// first byte picks the mode; each must succeed or throw bulwark::Error:
//   0  a WAL object as stored: OpenWalHeader and OpenWal under the fixed
//      master key and the name "wal/main/000000010000000000000010";
//   1  a WAL object's header plaintext (41 bytes) followed by its body, both
//      sealed here under the fixed key, so the fuzzer reaches what comes after
//      authentication (compression flag, sizes, zstd, SHA-256 check);
//   2  a WAL file name: Valid and Parse agree, a parsed name prints back the
//      same, NextSegment of a segment is a segment of the same timeline;
//   3  a machine key file (JSON): Decode, and Encode of a decoded key decodes
//      to the same key;
//   4  a machine key slot (keys/<id>; envelope + JSON; unauthenticated, anyone
//      who can write the repository can plant one): OpenMachineKeySlot with
//      the fixed secret 0x40..0x5f, ReadKeyInfo, and OpenKeyFile (which must
//      not run Argon2id for machine slots).
// Seeds: fuzz/corpus/wal_fuzz (fuzz/make_seeds.cc).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "bulwark/base/error.h"
#include "bulwark/repo/format.h"
#include "bulwark/repo/repository.h"
#include "bulwark/repo/wal.h"
#include "fuzz_key.h"

using namespace bulwark;

namespace {

using fuzz::Master;
constexpr std::string_view kObject = "wal/main/000000010000000000000010";

crypto::Key32 Secret() {
  crypto::Key32 k;
  for (int i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(0x40 + i);
  return k;
}

void CheckName(std::string_view in) {
  bool valid = repo::WalFileName::Valid(in);
  repo::WalFileName w;
  try {
    w = repo::WalFileName::Parse(in);
  } catch (const Error&) {
    if (valid) abort();
    return;
  }
  if (!valid || w.name != in) abort();
  if (w.kind != repo::WalFileKind::kSegment) return;
  for (uint64_t size : {uint64_t(1) << 20, uint64_t(16) << 20, uint64_t(1) << 30}) {
    try {
      repo::WalFileName n = w.NextSegment(size);
      if (n.kind != repo::WalFileKind::kSegment || n.timeline != w.timeline || !(n.name.substr(8) > w.name.substr(8)))
        abort();
    } catch (const Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const crypto::Aead aead(Master().enc);
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  ByteSpan in(data + 1, size - 1);
  switch (mode % 5) {
    case 0:
      try {
        repo::OpenWalHeader(aead, kObject, in, "fuzz wal");
      } catch (const Error&) {
      }
      try {
        repo::WalHeader h;
        Bytes out = repo::OpenWal(aead, kObject, in, "fuzz wal", &h);
        if (out.size() != h.size || crypto::Sha256(out) != h.sha256) abort();
      } catch (const Error&) {
      }
      break;
    case 1: {
      if (in.size() < repo::kWalHeaderPlainSize) return 0;
      ByteSpan header = in.first(repo::kWalHeaderPlainSize);
      // The claimed raw size drives an allocation: stay well under the RSS limit.
      uint64_t raw = 0;
      for (int i = 7; i >= 0; --i) raw = raw << 8 | header[1 + i];
      if (raw > (64u << 20)) return 0;
      Bytes obj;
      repo::PutEnvelope(repo::ObjectType::kWal, &obj);
      Bytes aad(obj);
      aad.insert(aad.end(), kObject.begin(), kObject.end());
      aead.Seal(header, aad, &obj);
      Bytes body_aad(obj);
      body_aad.insert(body_aad.end(), kObject.begin(), kObject.end());
      aead.Seal(in.subspan(repo::kWalHeaderPlainSize), body_aad, &obj);
      try {
        repo::WalHeader h;
        Bytes out = repo::OpenWal(aead, kObject, obj, "fuzz wal", &h);
        if (out.size() != h.size || crypto::Sha256(out) != h.sha256) abort();
      } catch (const Error&) {
      }
      break;
    }
    case 2:
      CheckName(AsString(in));
      break;
    case 3:
      try {
        repo::MachineKey k = repo::MachineKey::Decode(AsString(in), "fuzz key file");
        repo::MachineKey d = repo::MachineKey::Decode(k.Encode(), "fuzz key file re-decode");
        if (d.repository != k.repository || d.slot != k.slot || d.secret != k.secret) abort();
      } catch (const Error&) {
      }
      break;
    case 4: {
      try {
        auto master = repo::OpenMachineKeySlot(in, Secret(), "fuzz key slot", nullptr);
        if (master && master->Serialize().size() != 64) abort();
      } catch (const Error&) {
      }
      try {
        repo::ReadKeyInfo(in, "fuzz key slot");
      } catch (const Error&) {
      }
      // A machine slot never reaches Argon2id (a password slot may: only cheap ones).
      try {
        repo::KeyInfo info = repo::ReadKeyInfo(in, "fuzz key slot");
        if (info.kind == repo::KeyKind::kMachine) {
          uint64_t before = crypto::DeriveKeyCount();
          if (repo::OpenKeyFile(in, "fuzz-password", "fuzz key slot", nullptr) || crypto::DeriveKeyCount() != before)
            abort();
        }
      } catch (const Error&) {
      }
      break;
    }
  }
  return 0;
}
