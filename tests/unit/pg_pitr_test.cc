// Tests for the PostgreSQL physical backup decoders (source/postgres/physical.h)
// and point-in-time recovery's validation, settings and base backup choice
// (source/postgres/pitr.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bulwark/base/error.h"
#include "bulwark/crypto/crypto.h"
#include "bulwark/repo/snapshot.h"
#include "bulwark/source/postgres/physical.h"
#include "bulwark/source/postgres/pitr.h"
#include "test_util.h"

namespace bulwark::source::postgres {
namespace {

using K = RecoveryTarget::Kind;

TEST(PgLsn, ParsesAndFormats) {
  EXPECT_EQ(ParseLsn("0/17000438"), std::optional<Lsn>(0x17000438));
  EXPECT_EQ(ParseLsn("16/b374d848"), std::optional<Lsn>((Lsn{0x16} << 32) | 0xB374D848));
  EXPECT_EQ(ParseLsn("FFFFFFFF/FFFFFFFF"), std::optional<Lsn>(~Lsn{0}));
  for (const char* bad : {"", "0", "/1", "1/", "0x1/2", "1/2/3", "123456789/0", "g/0", " 0/1", "0/1 "})
    EXPECT_FALSE(ParseLsn(bad).has_value()) << bad;
  EXPECT_EQ(FormatLsn(0x17000438), "0/17000438");
  EXPECT_EQ(FormatLsn((Lsn{0x16} << 32) | 0xB374D848), "16/B374D848");
}

TEST(PgBackupLabel, ParsesPostgres15Label) {
  BackupLabel l = ParseBackupLabel(
      "START WAL LOCATION: 0/10000028 (file 000000010000000000000010)\n"
      "CHECKPOINT LOCATION: 0/10000060\n"
      "BACKUP METHOD: streamed\n"
      "BACKUP FROM: primary\n"
      "START TIME: 2026-11-21 19:32:36 UTC\n"
      "LABEL: bulwark db 2026-11-21T19:32:36Z\n"
      "START TIMELINE: 1\n");
  EXPECT_EQ(l.start_lsn, 0x10000028u);
  EXPECT_EQ(l.start_wal_segment, "000000010000000000000010");
  EXPECT_EQ(l.checkpoint_lsn, 0x10000060u);
  EXPECT_EQ(l.method, "streamed");
  EXPECT_EQ(l.backup_from, "primary");
  EXPECT_EQ(l.start_time, "2026-11-21 19:32:36 UTC");
  EXPECT_EQ(l.label, "bulwark db 2026-11-21T19:32:36Z");
  EXPECT_EQ(l.start_timeline, 1u);
}

TEST(PgBackupLabel, RefusesIncompleteOrMalformedLabels) {
  const std::string start = "START WAL LOCATION: 0/10000028 (file 000000010000000000000010)\n";
  const std::string cp = "CHECKPOINT LOCATION: 0/10000060\n";
  const std::string tl = "START TIMELINE: 2\n";
  EXPECT_EQ(ParseBackupLabel(start + cp + tl).start_timeline, 2u);
  for (const std::string& bad :
       {cp + tl, start + tl, start + cp, "START WAL LOCATION: 0/10000028\n" + cp + tl,
        "START WAL LOCATION: 0/1000002Z (file 000000010000000000000010)\n" + cp + tl,
        "START WAL LOCATION: 0/10000028 (file 0000000100000000000000)\n" + cp + tl, start + cp + "START TIMELINE: 0\n",
        start + cp + "START TIMELINE: x\n", start + "CHECKPOINT LOCATION: nope\n" + tl, std::string("")})
    EXPECT_EQ(CodeOf([&] { ParseBackupLabel(bad); }), ErrorCode::kCorrupt) << bad;
}

// A manifest as PostgreSQL writes it, with a correct Manifest-Checksum.
std::string Manifest(const std::string& ranges, const std::string& extra = "") {
  std::string body =
      "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"
      "\"Files\": [\n"
      "{ \"Path\": \"backup_label\", \"Size\": 225, \"Last-Modified\": \"2026-11-21 21:03:50 GMT\", "
      "\"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"536f950b\" },\n"
      "{ \"Path\": \"global/pg_control\", \"Size\": 8192, \"Last-Modified\": \"2026-11-21 21:03:50 GMT\", "
      "\"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"43872087\" }\n"
      "],\n" +
      extra + "\"WAL-Ranges\": [\n" + ranges + "\n],\n";
  return body + "\"Manifest-Checksum\": \"" + crypto::Sha256(AsBytes(body)).Hex() + "\"}\n";
}

TEST(PgBackupManifest, ParsesAndVerifiesTheChecksum) {
  BackupManifest m =
      ParseBackupManifest(Manifest("{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }"));
  EXPECT_EQ(m.version, 1);
  EXPECT_EQ(m.files, 2u);
  EXPECT_EQ(m.bytes, 8192u + 225u);
  ASSERT_EQ(m.wal_ranges.size(), 1u);
  EXPECT_EQ(m.Last().timeline, 1u);
  EXPECT_EQ(m.Last().start, 0x2000028u);
  EXPECT_EQ(m.Last().end, 0x2000100u);
  EXPECT_EQ(m.checksum.size(), 64u);
  EXPECT_FALSE(m.system_identifier.has_value());
}

TEST(PgBackupManifest, AStandbyBackupAcrossATimelineSwitchEndsOnTheLaterRange) {
  BackupManifest m =
      ParseBackupManifest(Manifest("{ \"Timeline\": 3, \"Start-LSN\": \"0/5000000\", \"End-LSN\": \"0/5000200\" },\n"
                                   "{ \"Timeline\": 2, \"Start-LSN\": \"0/4000028\", \"End-LSN\": \"0/5000000\" }"));
  EXPECT_EQ(m.wal_ranges.size(), 2u);
  EXPECT_EQ(m.Last().timeline, 3u);
  EXPECT_EQ(m.Last().end, 0x5000200u);
}

TEST(PgBackupManifest, RefusesDamage) {
  std::string good = Manifest("{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }");
  std::string flipped = good;
  flipped[good.find("8192")] = '9';  // content changed, checksum not
  std::string truncated = good.substr(0, good.size() / 2);
  for (const std::string& bad :
       {flipped, truncated, std::string("{}\n{}\n"), std::string("x"),
        Manifest("{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\" }"),
        Manifest("{ \"Timeline\": 0, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }"),
        Manifest("{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"zz\" }"),
        Manifest("{ \"Timeline\": 1, \"Start-LSN\": \"0/3000000\", \"End-LSN\": \"0/2000000\" }"), Manifest("1")})
    EXPECT_EQ(CodeOf([&] { ParseBackupManifest(bad); }), ErrorCode::kCorrupt) << bad.substr(0, 200);
  std::string v3 = good;
  v3.replace(v3.find("Version\": 1"), 11, "Version\": 3");
  EXPECT_EQ(CodeOf([&] { ParseBackupManifest(v3); }), ErrorCode::kCorrupt);
}

TEST(PgBackupManifest, WrittenByBulwarkReadsBackWithItsChecksum) {
  std::vector<ManifestFile> files{{"PG_VERSION", 3, 1763771556000000000},
                                  {"base/5/16396", 1073741824, 1763771557999999999},
                                  {std::string("odd\xff\n", 5), 1, 0}};
  std::string m = WriteBackupManifest(files, {{1, 0x14000028, 0x14000100}});
  BackupManifest parsed = ParseBackupManifest(m);
  EXPECT_EQ(parsed.version, 1);
  EXPECT_EQ(parsed.files, 3u);
  EXPECT_EQ(parsed.bytes, 1073741828u);
  ASSERT_EQ(parsed.wal_ranges.size(), 1u);
  EXPECT_EQ(parsed.Last().timeline, 1u);
  EXPECT_EQ(parsed.Last().start, 0x14000028u);
  EXPECT_EQ(parsed.Last().end, 0x14000100u);
  // PostgreSQL's layout: one file per line, times to the second in GMT, a
  // name that is not printable ASCII hex-encoded.
  EXPECT_NE(m.find("\n{ \"Path\": \"PG_VERSION\", \"Size\": 3, \"Last-Modified\": \"2025-11-22 00:32:36 GMT\" },\n"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("\"Last-Modified\": \"2025-11-22 00:32:37 GMT\""), std::string::npos) << "rounded down";
  EXPECT_NE(m.find("{ \"Encoded-Path\": \"6f6464ff0a\""), std::string::npos) << m;
  EXPECT_NE(
      m.find(
          "\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/14000028\", \"End-LSN\": \"0/14000100\" }\n],\n"),
      std::string::npos)
      << m;
  // Any change breaks the checksum.
  std::string damaged = m;
  damaged[m.find("1073741824")] = '2';
  EXPECT_THROW(ParseBackupManifest(damaged), Error);
}

TEST(PgDataDirectory, LeavesOutWhatPgBasebackupLeavesOut) {
  using ops::EntryAction;
  auto sel = [](const std::string& rel, bool dir = false, std::vector<std::string> siblings = {}) {
    std::sort(siblings.begin(), siblings.end());
    return SelectDataDirectoryEntry(rel, dir, siblings);
  };
  EXPECT_EQ(sel("base", true), EntryAction::kInclude);
  EXPECT_EQ(sel("base/5/16396"), EntryAction::kInclude);
  EXPECT_EQ(sel("global/pg_control"), EntryAction::kInclude);
  EXPECT_EQ(sel("postgresql.conf"), EntryAction::kInclude);
  EXPECT_EQ(sel("pg_wal", true), EntryAction::kInclude);
  EXPECT_EQ(sel("pg_wal/archive_status", true), EntryAction::kEmptyDir);
  EXPECT_EQ(sel("pg_wal/000000010000000000000003"), EntryAction::kSkip);
  EXPECT_EQ(sel("pg_wal/00000002.history"), EntryAction::kSkip);
  for (const char* d :
       {"pg_stat_tmp", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_subtrans"})
    EXPECT_EQ(sel(d, true), EntryAction::kEmptyDir) << d;
  EXPECT_EQ(sel("pg_xact", true), EntryAction::kInclude);
  EXPECT_EQ(sel("pg_stat", true), EntryAction::kInclude) << "permanent statistics are kept";
  for (const char* f : {"postmaster.pid", "postmaster.opts", "backup_label", "tablespace_map", "backup_manifest",
                        "postgresql.auto.conf.tmp", "current_logfiles.tmp", "global/pg_internal.init",
                        "base/5/pg_internal.init.12345", "base/pgsql_tmp/pgsql_tmp123.0"})
    EXPECT_EQ(sel(f), EntryAction::kSkip) << f;
  EXPECT_EQ(sel("base/pgsql_tmp", true), EntryAction::kSkip);
  // Temporary relations.
  EXPECT_EQ(sel("base/5/t3_16400"), EntryAction::kSkip);
  EXPECT_EQ(sel("base/5/t3_16400_fsm"), EntryAction::kSkip);
  EXPECT_EQ(sel("base/5/t3_16400.1"), EntryAction::kSkip);
  EXPECT_EQ(sel("base/5/t3x_16400"), EntryAction::kInclude) << "not a temporary relation's name";
  // An unlogged relation: only its init fork.
  std::vector<std::string> dir{"16500", "16500.1", "16500_fsm", "16500_vm", "16500_init", "16501", "16501_fsm"};
  EXPECT_EQ(sel("base/5/16500", false, dir), EntryAction::kSkip);
  EXPECT_EQ(sel("base/5/16500.1", false, dir), EntryAction::kSkip);
  EXPECT_EQ(sel("base/5/16500_fsm", false, dir), EntryAction::kSkip);
  EXPECT_EQ(sel("base/5/16500_vm", false, dir), EntryAction::kSkip);
  EXPECT_EQ(sel("base/5/16500_init", false, dir), EntryAction::kInclude);
  EXPECT_EQ(sel("base/5/16501", false, dir), EntryAction::kInclude);
  EXPECT_EQ(sel("base/5/16501_fsm", false, dir), EntryAction::kInclude);
  EXPECT_EQ(sel("global/16500", false, dir), EntryAction::kInclude) << "only in database directories";
}

TEST(PgTargetTime, AcceptsRfc3339AndPostgresFormatsWithAZone) {
  const int64_t t = ParseTargetTime("2026-11-21T19:33:28.735917Z");
  EXPECT_EQ(t % 1000, 0);
  EXPECT_EQ(FormatTargetTime(t), "2026-11-21 19:33:28.735917+00");
  for (const char* same :
       {"2026-11-21 19:33:28.735917+00", "2026-11-21 19:33:28.735917 UTC", "2026-11-21t19:33:28.735917z",
        "2026-11-21T20:33:28.735917+01:00", "2026-11-21T20:33:28.735917+0100", "2026-11-21 17:33:28.735917-02",
        "2026-11-21 19:33:28.735917 +00:00", "2026-11-21 19:33:28.735917 GMT"})
    EXPECT_EQ(ParseTargetTime(same), t) << same;
  EXPECT_EQ(FormatTargetTime(ParseTargetTime("2026-11-21T19:33:28Z")), "2026-11-21 19:33:28+00");
  EXPECT_EQ(FormatTargetTime(ParseTargetTime("2026-11-21T19:33:28.5Z")), "2026-11-21 19:33:28.500000+00");
  EXPECT_EQ(FormatTargetTime(ParseTargetTime("2024-02-29T00:00:00Z")), "2024-02-29 00:00:00+00");
  EXPECT_EQ(ParseTargetTime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseTargetTime("1969-12-31T23:59:59.5Z"), -500000000);
  EXPECT_EQ(FormatTargetTime(-500000000), "1969-12-31 23:59:59.500000+00");
}

TEST(PgTargetTime, RefusesAmbiguousOrMalformedTimes) {
  for (const char* bad :
       {"2026-11-21 19:33:28", "2026-11-21T19:33:28", "2026-11-21", "2026-11-21T19:33Z", "2026-11-21T19:33:28.1234567Z",
        "2026-11-21T19:33:28.Z", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-31T00:00:00Z",
        "2026-11-21T24:00:00Z", "2026-11-21T19:60:00Z", "2026-11-21T19:33:28 CET", "2026-11-21T19:33:28+1",
        "2026-11-21T19:33:28+01:0", "2026-11-21T19:33:28+16:00", "26-11-21T19:33:28Z", "2026-11-21T19:33:28Zjunk",
        "yesterday", ""})
    EXPECT_EQ(CodeOf([&] { ParseTargetTime(bad); }), ErrorCode::kInvalidArgument) << bad;
}

TEST(PgRecoveryTarget, AtMostOneTargetEachValidated) {
  EXPECT_EQ(ParseRecoveryTarget({}).kind, K::kNone);
  RecoveryTarget lsn = ParseRecoveryTarget({.lsn = "0/17000438"});
  EXPECT_EQ(lsn.kind, K::kLsn);
  EXPECT_EQ(lsn.value, "0/17000438");
  EXPECT_EQ(ParseRecoveryTarget({.lsn = "a/bc"}).value, "A/BC");
  RecoveryTarget xid = ParseRecoveryTarget({.xid = "00878"});
  EXPECT_EQ(xid.kind, K::kXid);
  EXPECT_EQ(xid.value, "878");
  EXPECT_EQ(ParseRecoveryTarget({.name = "before-migration"}).value, "before-migration");
  EXPECT_EQ(ParseRecoveryTarget({.target = "immediate"}).kind, K::kImmediate);
  RecoveryTarget time = ParseRecoveryTarget({.time = "2026-11-21T19:33:28Z"});
  EXPECT_EQ(time.kind, K::kTime);
  EXPECT_EQ(time.value, "2026-11-21 19:33:28+00");
  for (const TargetFlags& bad :
       {TargetFlags{.time = "2026-11-21T19:33:28Z", .lsn = "0/1"}, TargetFlags{.xid = "1", .name = "x"},
        TargetFlags{.name = "x", .target = "immediate"}, TargetFlags{.lsn = "0/1/2"}, TargetFlags{.xid = "-1"},
        TargetFlags{.xid = "0"}, TargetFlags{.xid = "12a"}, TargetFlags{.xid = "99999999999999999999"},
        TargetFlags{.name = std::string(64, 'n')}, TargetFlags{.target = "latest"},
        TargetFlags{.time = "2026-11-21 19:33:28"}})
    EXPECT_EQ(CodeOf([&] { ParseRecoveryTarget(bad); }), ErrorCode::kInvalidArgument);
}

RecoveryOptions Options(RecoveryTarget t = {}) {
  RecoveryOptions o;
  o.target = std::move(t);
  o.restore_command = "cp /archive/%f %p";
  return o;
}

TEST(PgRecoveryOptions, ValidatesActionTimelineAndInclusive) {
  RecoveryOptions o = Options(ParseRecoveryTarget({.time = "2026-11-21T19:33:28Z"}));
  EXPECT_NO_THROW(ValidateRecoveryOptions(o));
  for (const char* action : {"promote", "pause", "shutdown"}) {
    o.action = action;
    EXPECT_NO_THROW(ValidateRecoveryOptions(o)) << action;
  }
  o.action = "resume";
  EXPECT_EQ(CodeOf([&] { ValidateRecoveryOptions(o); }), ErrorCode::kInvalidArgument);
  o.action = "promote";
  for (const char* tl : {"latest", "current", "1", "4294967295"}) {
    o.timeline = tl;
    EXPECT_NO_THROW(ValidateRecoveryOptions(o)) << tl;
  }
  for (const char* tl : {"0", "-1", "4294967296", "two", ""}) {
    o.timeline = tl;
    EXPECT_EQ(CodeOf([&] { ValidateRecoveryOptions(o); }), ErrorCode::kInvalidArgument) << tl;
  }
  o.timeline = "latest";
  o.inclusive = false;
  EXPECT_NO_THROW(ValidateRecoveryOptions(o));
  RecoveryOptions named = Options(ParseRecoveryTarget({.name = "rp1"}));
  named.inclusive = false;
  EXPECT_EQ(CodeOf([&] { ValidateRecoveryOptions(named); }), ErrorCode::kInvalidArgument);
  RecoveryOptions no_command = Options();
  no_command.restore_command.clear();
  EXPECT_EQ(CodeOf([&] { ValidateRecoveryOptions(no_command); }), ErrorCode::kInvalidArgument);
}

TEST(PgRecoverySettings, WritesEveryChoiceExplicitly) {
  using Settings = std::vector<std::pair<std::string, std::string>>;
  RecoveryOptions o = Options(ParseRecoveryTarget({.lsn = "0/17000438"}));
  o.action = "pause";
  o.inclusive = false;
  EXPECT_EQ(RecoverySettings(o), (Settings{{"restore_command", "cp /archive/%f %p"},
                                           {"recovery_target_lsn", "0/17000438"},
                                           {"recovery_target_inclusive", "off"},
                                           {"recovery_target_timeline", "latest"},
                                           {"recovery_target_action", "pause"}}));
  EXPECT_EQ(RecoverySettings(Options()), (Settings{{"restore_command", "cp /archive/%f %p"},
                                                   {"recovery_target_timeline", "latest"},
                                                   {"recovery_target_action", "promote"}}));
  EXPECT_EQ(RecoverySettings(Options(ParseRecoveryTarget({.target = "immediate"})))[1],
            (std::pair<std::string, std::string>{"recovery_target", "immediate"}));
  EXPECT_EQ(RecoverySettings(Options(ParseRecoveryTarget({.name = "rp1"})))[1].first, "recovery_target_name");
  EXPECT_EQ(RecoverySettings(Options(ParseRecoveryTarget({.xid = "878"})))[1].first, "recovery_target_xid");
  EXPECT_EQ(RecoverySettings(Options(ParseRecoveryTarget({.time = "2026-11-21T19:33:28Z"})))[1],
            (std::pair<std::string, std::string>{"recovery_target_time", "2026-11-21 19:33:28+00"}));
}

TEST(PgRecoverySettings, QuotesAndReplacesEarlierSettings) {
  EXPECT_EQ(QuoteConfValue("it's a \\ test"), "'it''s a \\\\ test'");
  std::string conf =
      "# Do not edit this file manually!\n"
      "# It will be overwritten by the ALTER SYSTEM command.\n"
      "work_mem = '64MB'\n"
      "restore_command = 'old'\n"
      "  Recovery_Target_Name='x'\n"
      "recovery_target_xid = '5'\n"
      "# recovery_target_time = 'commented'\n";
  std::string out = WithRecoverySettings(conf, {{"restore_command", "cp '/a b/%f' %p"}, {"recovery_target_lsn", "0/1"}},
                                         "written by a test");
  EXPECT_EQ(out,
            "# Do not edit this file manually!\n"
            "# It will be overwritten by the ALTER SYSTEM command.\n"
            "work_mem = '64MB'\n"
            "# [bulwark: replaced] restore_command = 'old'\n"
            "# [bulwark: replaced]   Recovery_Target_Name='x'\n"
            "# [bulwark: replaced] recovery_target_xid = '5'\n"
            "# recovery_target_time = 'commented'\n"
            "# written by a test\n"
            "restore_command = 'cp ''/a b/%f'' %p'\n"
            "recovery_target_lsn = '0/1'\n");
  EXPECT_EQ(WithRecoverySettings("", {{"restore_command", "x"}}, "h"), "# h\nrestore_command = 'x'\n");
}

TEST(PgRestoreCommand, WalFetchWithQuotedArguments) {
  EXPECT_EQ(ShellQuote("a b'c"), "'a b'\\''c'");
  EXPECT_EQ(ShellQuote("/usr/bin/bulwark"), "/usr/bin/bulwark");
  EXPECT_EQ(ShellQuote("s3://host:9000/bucket/pre_fix"), "s3://host:9000/bucket/pre_fix");
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ShellQuote("$HOME"), "'$HOME'");
  EXPECT_EQ(ShellQuote("a;b"), "'a;b'");
  WalFetchCommand c{"/usr/bin/bulwark", "/srv/backup repo", "/etc/bulwark.yaml", "/etc/bulwark/key", "/pw", "main"};
  EXPECT_EQ(WalFetchRestoreCommand(c),
            "/usr/bin/bulwark --repo '/srv/backup repo' --config /etc/bulwark.yaml --key-file /etc/bulwark/key "
            "wal-fetch --source main %f %p");
  c.key_file.clear();
  c.config_path.clear();
  EXPECT_EQ(WalFetchRestoreCommand(c),
            "/usr/bin/bulwark --repo '/srv/backup repo' --password-file /pw wal-fetch --source main %f %p");
}

repo::Snapshot Physical(const std::string& source, int64_t time_s, const std::string& stop_time,
                        const std::string& stop_lsn, int timeline = 1) {
  repo::Snapshot s;
  s.kind = "postgres";
  s.source = source;
  s.time_ns = time_s * 1000000000;
  s.id = crypto::Sha256(AsBytes(source + std::to_string(time_s)));
  s.facts["postgres"] = {
      {"mode", "physical"}, {"stop_time", stop_time}, {"stop_lsn", stop_lsn}, {"timeline", timeline}};
  return s;
}

TEST(PgChooseBaseBackup, NewestThatEndsBeforeTheTarget) {
  repo::Snapshot logical = Physical("db", 500, "2026-11-21T12:00:00Z", "9/0");
  logical.facts["postgres"]["mode"] = "logical";
  std::vector<repo::Snapshot> snaps{
      Physical("db", 100, "2026-11-21T10:00:05Z", "0/3000100"),
      Physical("db", 300, "2026-11-21T11:00:05Z", "0/9000100", 2),  // newest before 11:00:05
      Physical("db", 200, "2026-11-21T10:30:05Z", "0/5000100"),
      Physical("other", 400, "2026-11-21T11:30:00Z", "0/A000100"),
      logical,
  };
  std::string why;
  auto pick = [&](RecoveryOptions o, const std::string& source = "db") {
    why.clear();
    auto i = ChooseBaseBackup(snaps, source, o, &why);
    return i ? static_cast<int>(*i) : -1;
  };
  EXPECT_EQ(pick(Options(ParseRecoveryTarget({.time = "2026-11-21T11:00:05Z"}))), 1) << "stop time equal to the target";
  EXPECT_EQ(pick(Options(ParseRecoveryTarget({.time = "2026-11-21T11:00:04.999999Z"}))), 2);
  EXPECT_EQ(pick(Options(ParseRecoveryTarget({.time = "2026-11-21T10:00:05Z"}))), 0);
  EXPECT_EQ(pick(Options(ParseRecoveryTarget({.time = "2026-11-21T10:00:04Z"}))), -1);
  EXPECT_NE(why.find("2026-11-21T10:00:05Z"), std::string::npos) << why;
  EXPECT_EQ(pick(Options(ParseRecoveryTarget({.lsn = "0/5000100"}))), 2);
  EXPECT_EQ(pick(Options(ParseRecoveryTarget({.lsn = "0/50000FF"}))), 0);
  EXPECT_EQ(pick(Options(ParseRecoveryTarget({.lsn = "0/10"}))), -1);
  EXPECT_EQ(pick(Options()), 1) << "no target: the newest";
  EXPECT_EQ(pick(Options(ParseRecoveryTarget({.name = "rp"}))), 1);
  RecoveryOptions tl1 = Options();
  tl1.timeline = "1";
  EXPECT_EQ(pick(tl1), 2) << "a base backup on timeline 2 cannot recover along timeline 1";
  EXPECT_EQ(pick(Options(), "other"), 3);
  EXPECT_EQ(pick(Options(), "nope"), -1);
  EXPECT_NE(why.find("no physical base backup of source 'nope'"), std::string::npos) << why;
  EXPECT_EQ(pick(Options(), ""), -1) << "two sources, none named";
  EXPECT_NE(why.find("db, other"), std::string::npos) << why;
  snaps.erase(snaps.begin() + 3);
  EXPECT_EQ(pick(Options(), ""), 1) << "one source: no need to name it";
  EXPECT_TRUE(IsPhysicalSnapshot(snaps[0]));
  EXPECT_FALSE(IsPhysicalSnapshot(logical));
}

}  // namespace
}  // namespace bulwark::source::postgres
