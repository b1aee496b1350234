// The repository's object envelope (docs/FORMAT.md, "Envelope").
//
// Every object starts with an 8-byte header:
//   "BWRK" | type (1 byte, ObjectType) | format version (1 byte) | 2 zero bytes
// Key files follow it with plaintext JSON (they must be readable before the
// master key is known). All other objects follow it with one or more AEAD
// units (crypto::Aead) whose associated data includes this header, so an
// object cannot be passed off as another type or version.
#pragma once

#include <cstdint>
#include <string>

#include "bulwark/base/bytes.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::repo {

constexpr uint8_t kFormatVersion = 1;
constexpr size_t kEnvelopeSize = 8;

enum class ObjectType : uint8_t {
  kConfig = 1,
  kKey = 2,
  kPack = 3,
  kIndex = 4,
  kSnapshot = 5,
  kLock = 6,
  kMarks = 7,  // prune's packs marked for deletion ("marked/<sha256>")
  kWal = 8,    // one archived PostgreSQL WAL file ("wal/<source>/<file name>"; repo/wal.h)
  kAudit = 9,  // one audit record ("audit/<seq>-<sha256>"; repo/audit.h)
  kDrill = 10,  // a restore drill's evidence ("drills/<sha256>"; repo/drill_record.h)
};

std::string_view ObjectTypeName(ObjectType t);

// Appends the 8-byte envelope header to `out`.
void PutEnvelope(ObjectType type, Bytes* out);
// Checks magic, type and version; throws kCorrupt / kUnsupported naming `what`.
void CheckEnvelope(ByteSpan data, ObjectType type, std::string_view what);

// Encodes a small object (config, index, snapshot, lock): envelope, then one
// AEAD unit over: compression (1 byte: 0 none, 1 zstd) | varint raw length |
// payload. AAD = the envelope header.
Bytes SealObject(const crypto::Aead& aead, ObjectType type, ByteSpan payload);
// Inverse of SealObject; throws kCorrupt (naming `what`) on any damage.
Bytes OpenObject(const crypto::Aead& aead, ObjectType type, ByteSpan data, std::string_view what);

}  // namespace bulwark::repo
