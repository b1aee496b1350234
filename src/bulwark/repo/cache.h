// The local cache: what bulwark remembers about a repository between runs on
// this machine, outside the repository. Losing it costs time, never data.
// Today it holds one file: which packs `check --read-data` verified, and
// when (so `check --read-data --max-age 7d` spreads the reading over a week).
//
// Location: CacheBaseDir() (BULWARK_CACHE_DIR, else $XDG_CACHE_HOME/bulwark,
// else $HOME/.cache/bulwark), then one subdirectory per repository, named by
// the repository id in hex. Nothing in it is secret: pack ids are the
// repository's public object names.
//
// File `verified-packs` (little-endian, varint = LEB128 as in docs/FORMAT.md):
//   "BWVP" | u8 version (1) | repository id[32] | varint n |
//   n x (pack id[32] | varint seconds) | SHA-256 of all preceding bytes[32]
// Pack ids strictly ascending; seconds = the last successful verification,
// UTC seconds since the Unix epoch (at most INT64_MAX). The checksum makes a
// torn or damaged file detectable; the repository id makes a file copied
// from another repository's directory detectable. Written atomically (temp
// file, fsync, rename, fsync of the directory: storage/local.h).
//
// Thread-safety: values are plain data; the functions hold no state. Two
// processes saving the same repository's file concurrently: the last rename
// wins and the other's records are lost (their packs are re-verified).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "bulwark/base/bytes.h"

namespace bulwark::repo {

// The cache base directory from the values of the environment variables
// BULWARK_CACHE_DIR, XDG_CACHE_HOME and HOME (nullptr or "" = unset):
// "$BULWARK_CACHE_DIR", else "$XDG_CACHE_HOME/bulwark", else
// "$HOME/.cache/bulwark"; "" when all three are unset.
std::string CacheBaseDir(const char* bulwark_cache_dir, const char* xdg_cache_home, const char* home);

struct VerifiedPacks {
  Id repository;                   // the repository these records belong to
  std::map<Id, int64_t> packs;     // pack id -> last verification, UTC seconds

  Bytes Encode() const;
  // Throws Error(kCorrupt, "<what>: ...") on anything but a well-formed file.
  static VerifiedPacks Decode(ByteSpan data, std::string_view what);
};

constexpr std::string_view kVerifiedPacksFile = "verified-packs";

// Reads `<dir>/verified-packs`. A missing file gives an empty record. A file
// that is damaged, unreadable, of another format version or of another
// repository is ignored: an empty record, and `*warning` says why (the file
// named). Never throws for the file's content or for I/O errors.
VerifiedPacks LoadVerifiedPacks(const std::string& dir, const Id& repository, std::string* warning);
// Replaces `<dir>/verified-packs` atomically, creating `dir` (mode 0700) if
// needed. Throws Error (kNoSpace, kPermission, kIo) naming the path.
void SaveVerifiedPacks(const std::string& dir, const VerifiedPacks& v);

// The spread factor u in [0, 1) of `pack` after a verification at
// `verified_at` (UTC seconds): the first 8 bytes of
// SHA-256(pack id || u64 LE verified_at), read as a little-endian u64, keeping
// the top 53 bits, divided by 2^53. Drawn afresh at every verification: with
// one fixed u per pack, a daily job would sort packs into a few whole-day
// periods (4, 5, 6, 7 days for 7d) that fall due together again on their
// common multiples; a new u each time keeps them drifting apart.
double SpreadOf(const Id& pack, int64_t verified_at);
// How long after a verification at `verified_at` the pack is due again, for a
// maximum age of `max_age_seconds`: floor(max_age/2) + floor(ceil(max_age/2) *
// u) seconds, i.e. about max_age * (0.5 + 0.5 u), in [max_age/2, max_age).
// Packs verified together fall due on different days (the daily load evens
// out) while none waits longer than max_age.
int64_t ReverifyAfter(const Id& pack, int64_t verified_at, int64_t max_age_seconds);
// True when `pack` must be read now: never verified (`last` empty), verified
// at least ReverifyAfter(pack, max_age) seconds before `now` (UTC seconds),
// or recorded in the future (a clock that went back is not trusted).
bool IsDue(const Id& pack, std::optional<int64_t> last, int64_t now, int64_t max_age_seconds);

}  // namespace bulwark::repo
