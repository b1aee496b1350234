// Fuzzes the decoders of physical PostgreSQL backups and point-in-time
// recovery (source/postgres/physical.h, pitr.h). The first byte chooses one:
//   0: ParseBackupLabel      -> parses or throws Error(kCorrupt)
//   1: ParseBackupManifest   -> parses (with a non-empty WAL-Ranges) or kCorrupt
//   2: ParseTargetTime       -> a time that formats and parses back to itself,
//                               or kInvalidArgument
//   3: ParseLsn              -> FormatLsn parses back to the same value
//   4: ParseRecoveryTarget + RecoverySettings + WithRecoverySettings (the
//      input split at NUL bytes into the flags and a postgresql.auto.conf):
//      kInvalidArgument or settings whose conf text quotes every value
// Any other exception, or an Error of another code, is a bug (trap).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/source/postgres/pitr.h"
#include "bulwark/source/postgres/physical.h"

namespace pg = bulwark::source::postgres;
using bulwark::Error;
using bulwark::ErrorCode;

static void Expect(bool ok) {
  if (!ok) __builtin_trap();
}

static void RecoveryTargets(std::string_view in) {
  std::vector<std::string> parts(7);
  size_t k = 0;
  for (char c : in) {
    if (c == '\0' && k + 1 < parts.size()) ++k;
    else parts[k] += c;
  }
  pg::TargetFlags f{parts[0], parts[1], parts[2], parts[3], parts[4]};
  pg::RecoveryOptions o;
  o.target = pg::ParseRecoveryTarget(f);
  o.restore_command = parts[5].empty() ? "cp /a/%f %p" : parts[5];
  auto settings = pg::RecoverySettings(o);
  Expect(settings.size() >= 3 && settings.front().first == "restore_command");
  std::string conf = pg::WithRecoverySettings(parts[6], settings, "fuzz");
  Expect(conf.size() >= parts[6].size());
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int which = data[0] % 5;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (which) {
      case 0: {
        pg::BackupLabel l = pg::ParseBackupLabel(in);
        Expect(l.start_timeline > 0 && l.start_wal_segment.size() == 24);
        break;
      }
      case 1: {
        pg::BackupManifest m = pg::ParseBackupManifest(in);
        Expect(!m.wal_ranges.empty() && m.Last().end >= m.Last().start);
        break;
      }
      case 2: {
        int64_t t = pg::ParseTargetTime(in);
        Expect(t % 1000 == 0 && pg::ParseTargetTime(pg::FormatTargetTime(t)) == t);
        break;
      }
      case 3: {
        if (auto lsn = pg::ParseLsn(in)) Expect(pg::ParseLsn(pg::FormatLsn(*lsn)) == lsn);
        break;
      }
      case 4:
        RecoveryTargets(in);
        break;
    }
  } catch (const Error& e) {
    ErrorCode want = which <= 1 ? ErrorCode::kCorrupt : ErrorCode::kInvalidArgument;
    Expect(e.code() == want);
  }
  return 0;
}
