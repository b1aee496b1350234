// WAL archive objects: one PostgreSQL WAL file (a segment, a `.partial`
// segment, a timeline `.history` file or a `.backup` history file) per object,
// stored at "wal/<source>/<file name>" (docs/FORMAT.md, "WAL objects").
//
// Unlike packs, index objects and snapshots, a WAL object is named by what it
// holds (PostgreSQL's file name), not by its hash: `wal-fetch` must find a
// segment by its name with one request. So the name is bound into the AEAD
// associated data of both units: an object copied or renamed to another name
// (or another source) fails authentication instead of being served as the
// wrong segment.
//
// Layout:
//   envelope (type 8)
//   header unit  AEAD(aad = envelope ‖ object name), plaintext 41 bytes:
//                u8 compression (0 none, 1 zstd) ‖ u64 raw size ‖ SHA-256[32] of the raw file
//   body unit    AEAD(aad = envelope ‖ sealed header unit ‖ object name):
//                the file, zstd-compressed or not
// The header has a fixed size (kWalPrefixSize bytes from the start), so the
// size and SHA-256 of an archived file can be read and authenticated with
// one small ranged read (wal-push's "already archived?" check) without
// fetching the body. The body's associated data contains the sealed header
// unit (with its random salt), so a body cannot be paired with another
// object's header.
//
// Thread-safety: all functions are pure; safe to call concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bulwark/base/bytes.h"
#include "bulwark/crypto/crypto.h"

namespace bulwark::repo {

// The kinds of files PostgreSQL's archive_command hands over.
enum class WalFileKind {
  kSegment,  // 000000010000000000000010 (timeline, log, segment: 3 x 8 upper-case hex digits)
  kPartial,  // 000000010000000000000010.partial (the last segment of an old timeline at promotion)
  kHistory,  // 00000002.history (timeline history)
  kBackup,   // 000000010000000000000010.00000028.backup (backup history file: start/stop LSN)
};

// A parsed WAL file name, exactly as PostgreSQL writes it (upper-case hex;
// see PostgreSQL's xlog_internal.h: IsXLogFileName, IsPartialXLogFileName,
// IsTLHistoryFileName, IsBackupHistoryFileName).
struct WalFileName {
  std::string name;
  WalFileKind kind = WalFileKind::kSegment;
  uint32_t timeline = 0;
  uint32_t log = 0;  // high 32 bits of the segment's position (segments, partial, backup)
  uint32_t seg = 0;  // segment number within `log`

  // Throws kInvalidArgument naming `name` unless it is one of the four forms.
  static WalFileName Parse(std::string_view name);
  static bool Valid(std::string_view name);
  // The next segment on the same timeline, for segments of `segment_size`
  // bytes (a power of two from 1 MiB to 1 GiB: PostgreSQL's
  // IsValidWalSegSize). Only for kSegment; throws kInvalidArgument otherwise.
  WalFileName NextSegment(uint64_t segment_size) const;
};

// True for a valid PostgreSQL WAL segment size (power of two, 1 MiB..1 GiB).
bool ValidWalSegmentSize(uint64_t size);

// Source names: 1..64 of [A-Za-z0-9._-], not starting with a dot (no ".",
// "..", or names a local repository would hide like its ".tmp-" files).
// Throws kInvalidArgument naming the source.
void ValidateWalSource(std::string_view source);
// "wal/<source>/<file name>"; validates both.
std::string WalObjectName(std::string_view source, std::string_view file_name);
// "wal/<source>/"
std::string WalPrefix(std::string_view source);

// The largest WAL file accepted (PostgreSQL's maximum segment size, 1 GiB).
constexpr uint64_t kMaxWalFileSize = 1ull << 30;
// Envelope + sealed header unit: the bytes to read to learn a WAL object's
// size and SHA-256 (OpenWalHeader).
constexpr size_t kWalHeaderPlainSize = 1 + 8 + 32;
constexpr size_t kWalPrefixSize = 8 + crypto::Aead::kOverhead + kWalHeaderPlainSize;

struct WalHeader {
  bool compressed = false;
  uint64_t size = 0;  // bytes of the archived file
  Id sha256;          // SHA-256 of the archived file
};

// A WAL file's body as stored: a zstd frame, or the file itself when
// compression does not save at least 1/32 (or level is 0).
struct WalBody {
  bool compressed = false;
  Bytes frame;  // the zstd frame when compressed
};
// Compresses `content` at `level` (1..19; 0 = never), in `workers` threads
// of libzstd's (0: in the calling thread; compress::Compress). Separate from
// SealWal so that a caller can compress while it hashes or waits for the
// network.
WalBody CompressWal(ByteSpan content, int level, int workers = 0);
// Seals `content` as the WAL object `object_name` ("wal/<source>/<file>"),
// with `body` = CompressWal(content, ...) and `sha256` = the content's
// SHA-256.
Bytes SealWal(const crypto::Aead& aead, std::string_view object_name, ByteSpan content, const Id& sha256,
              const WalBody& body);
// The same, compressing and hashing here.
Bytes SealWal(const crypto::Aead& aead, std::string_view object_name, ByteSpan content, int level);
// Authenticates the header of the WAL object `object_name` from its first
// kWalPrefixSize bytes (more may follow). Throws kCorrupt naming `what`.
WalHeader OpenWalHeader(const crypto::Aead& aead, std::string_view object_name, ByteSpan prefix,
                        std::string_view what);
// Authenticates and decodes a whole WAL object; verifies size and SHA-256 of
// the result. Throws kCorrupt naming `what`. Fills `header` when given.
Bytes OpenWal(const crypto::Aead& aead, std::string_view object_name, ByteSpan object, std::string_view what,
              WalHeader* header = nullptr);

}  // namespace bulwark::repo
