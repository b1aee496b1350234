// Physical base backups and point-in-time recovery (issue 5 items 3 and 5)
// against a real PostgreSQL 15 (tests/e2e/pg_server.h): `bulwark backup
// --source` of a `mode: physical` source, `bulwark pg restore` to a time, an
// LSN, a restore point and along a second timeline, checked by starting the
// restored cluster and reading what it holds. WAL comes from the test
// server's plain archive (`cp ARCHIVE/%f %p`): bulwark's own wal-fetch is
// tested with it elsewhere.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <thread>

#include "harness.h"
#include "pg_server.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

// A bulwark.yaml for the scratch repository with a physical source `name`.
std::string WriteConfig(const Scratch& s, const std::string& conninfo, const std::string& file = "bulwark.yaml",
                        const std::string& extra = "") {
  return WriteFile(s.Path(file), s.ConfigPrelude() + "sources:\n  pg:\n    kind: postgres\n    mode: physical\n" +
                                     "    conninfo: \"" + conninfo + "\"\n" + extra);
}

// `bulwark backup --source pg --json`'s summary; a test failure unless it worked.
nlohmann::json BaseBackup(const Scratch& s, const std::string& config) {
  RunResult r = s.BwConfig(config, {"--json", "backup", "--source", "pg"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = r.JsonLine("summary");
  EXPECT_FALSE(j.is_null()) << r.out;
  return j;
}

// The current time on the server, RFC 3339 UTC (microseconds).
std::string ServerNow(const PgServer& pg) {
  return pg.Query("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
}

// Waits until the server's clock is past `t`: what commits from now on is after it.
void WaitPast(const PgServer& pg, const std::string& t) {
  ASSERT_TRUE(WaitFor([&] { return pg.Query("SELECT clock_timestamp() > '" + t + "'::timestamptz") == "t"; }, 10));
}

void Insert(const PgServer& pg, const std::string& phase, int n) {
  for (int i = 0; i < n; ++i) pg.Query("INSERT INTO ev(phase) VALUES ('" + phase + "')");
}

std::string Phases(const PgServer& pg) { return pg.Query("SELECT string_agg(phase, ',' ORDER BY id) FROM ev"); }

// Ends the current WAL segment and waits until the archiver has stored it.
void SwitchAndArchive(const PgServer& pg) {
  std::string seg = pg.Query("SELECT pg_walfile_name(pg_switch_wal())");
  ASSERT_TRUE(WaitFor(
      [&] { return pg.Query("SELECT coalesce(last_archived_wal, '') >= '" + seg + "' FROM pg_stat_archiver") == "t"; },
      30))
      << "segment " << seg << " not archived; log:\n"
      << pg.Log();
}

// `bulwark pg restore` into `target` with the test archive as restore_command;
// returns the JSON summary (a test failure unless it worked).
nlohmann::json PgRestore(const Scratch& s, const std::string& config, const PgServer& pg, const std::string& target,
                         std::vector<std::string> args) {
  std::vector<std::string> argv{
      "--json", "pg", "restore", "--target-dir", target, "--restore-command", "cp " + pg.archive_dir() + "/%f %p"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = s.BwConfig(config, argv);
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  return r.JsonLine("summary");
}

// Starts the restored cluster in `rd` and waits until it has promoted.
std::unique_ptr<PgServer> StartPromoted(const PgTempDir& rd) {
  std::string why;
  auto pg = PgServer::StartExisting(rd.path(), &why);
  if (!pg) return nullptr;
  bool promoted = WaitFor([&] { return pg->Psql("SELECT pg_is_in_recovery()").out == "f\n"; }, 60);
  EXPECT_TRUE(promoted) << "still in recovery; log:\n" << pg->Log();
  return promoted ? std::move(pg) : nullptr;
}

size_t SnapshotCount(const Scratch& s) { return Objects(s.repo() + "/snapshots").size(); }

TEST(PgPhysical, BaseBackupFactsRestoreVerifyAndDedup) {
  START_PG(pg, {.archive = true});
  ASSERT_TRUE(pg->CreateDatabase("app"));
  ASSERT_EQ(pg->PgbenchInit("app", 1).exit_code, 0);
  Scratch s;
  s.Init();
  std::string config = WriteConfig(s, pg->conninfo());

  nlohmann::json first = BaseBackup(s, config);
  ASSERT_FALSE(first.is_null());
  const nlohmann::json& f = first["facts"]["postgres"];
  EXPECT_EQ(f["mode"], "physical");
  EXPECT_EQ(f["method"], "files") << "the data directory is readable here: read in place";
  EXPECT_EQ(f["data_directory"], pg->Query("SHOW data_directory"));
  EXPECT_EQ(f["system_identifier"], pg->Query("SELECT system_identifier FROM pg_control_system()"));
  EXPECT_EQ(f["timeline"], 1);
  EXPECT_EQ(f["stop_timeline"], 1);
  EXPECT_EQ(f["backup_from"], "primary");
  EXPECT_EQ(f["server_version_num"], std::stoi(pg->Query("SHOW server_version_num")));
  EXPECT_EQ(f["server_version"], pg->Query("SHOW server_version"));
  std::string start_lsn = f["start_lsn"], stop_lsn = f["stop_lsn"];
  EXPECT_EQ(pg->Query("SELECT '" + stop_lsn + "'::pg_lsn > '" + start_lsn + "'::pg_lsn"), "t");
  EXPECT_EQ(f["start_wal_segment"], pg->Query("SELECT pg_walfile_name('" + start_lsn + "')"));
  EXPECT_LE(f["start_time"].get<std::string>(), f["stop_time"].get<std::string>());
  EXPECT_GT(f["manifest_files"].get<int>(), 900);
  // The server's own record of the backup (the history file it archives) has the same stop LSN.
  std::string history;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& e : fs::directory_iterator(pg->archive_dir()))
          if (e.path().filename().string().rfind(f["start_wal_segment"].get<std::string>() + ".", 0) == 0 &&
              e.path().extension() == ".backup")
            history = ReadFileOr(e.path().string(), "");
        return history.find("STOP WAL LOCATION") != std::string::npos;
      },
      10));
  EXPECT_NE(history.find("STOP WAL LOCATION: " + stop_lsn + " "), std::string::npos) << history;
  EXPECT_EQ(first["files_new"].get<int>(), f["manifest_files"].get<int>() + 1) << "every file plus backup_manifest";

  // A dry run writes nothing.
  PgTempDir rd;
  RunResult dry =
      s.BwConfig(config, {"pg", "restore", "--dry-run", "--target-dir", rd.data(), "--restore-command", "x"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("dry run: would restore base backup " + first["snapshot_id"].get<std::string>().substr(0, 8)),
            std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find("recovery_target_action = 'promote'"), std::string::npos) << dry.out;
  EXPECT_FALSE(fs::exists(rd.data()));

  // Restore into a new directory: the layout of a data directory, owned by postgres, mode 0700,
  // accepted by pg_verifybackup, set up for recovery.
  nlohmann::json r = PgRestore(s, config, *pg, rd.data(), {first["snapshot_id"], "--target", "immediate"});
  EXPECT_EQ(r["verified"], true);
  EXPECT_EQ(r["recovery_settings"]["recovery_target"], "immediate");
  EXPECT_EQ(r["recovery_settings"]["recovery_target_action"], "promote");
  EXPECT_EQ(r["recovery_settings"]["recovery_target_timeline"], "latest");
  struct stat st {
  }, orig{};
  ASSERT_EQ(::stat(rd.data().c_str(), &st), 0);
  ASSERT_EQ(::stat(pg->data_dir().c_str(), &orig), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, orig.st_uid) << "owned by the postgres user";
  for (const char* p :
       {"backup_label", "backup_manifest", "recovery.signal", "pg_wal/archive_status", "base", "global/pg_control"})
    EXPECT_TRUE(fs::exists(rd.data() + "/" + p)) << p;
  EXPECT_NE(ReadFileOr(rd.data() + "/postgresql.auto.conf", "").find("restore_command = 'cp " + pg->archive_dir()),
            std::string::npos);
  RunResult verify = bulwark::testing::Run({PgBin() + "/pg_verifybackup", "-n", rd.data()});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;

  // A second base backup after a small update stores a small fraction of the first, and reads
  // only the files that changed: most are taken from the first unread (same size, mtime, ctime,
  // inode).
  pg->Query("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= 100", "app");
  nlohmann::json second = BaseBackup(s, config);
  ASSERT_FALSE(second.is_null());
  uint64_t added1 = first["bytes_added"], added2 = second["bytes_added"];
  EXPECT_GT(added1, 15000000u);
  // Each changed region re-stores the chunks around it (FastCDC, average 1 MiB, up to 8 MiB):
  // the old row versions at the table's start, the new ones at its end, the index's first
  // leaves, the FSM/VM and pg_xact. Where the boundaries fall depends on the bytes (xids,
  // LSNs) of the run, and can exceed a fifth of a scale-1 first backup.
  EXPECT_LT(added2, added1 / 3) << "first " << added1 << ", second " << added2;
  uint64_t unmodified = second["files_unmodified"], changed = second["files_changed"];
  EXPECT_GT(unmodified, 5 * changed) << second.dump();
  EXPECT_GT(changed, 0u) << "pgbench_accounts and its index changed";

  // --delta refuses a directory a live server uses ...
  WriteFile(rd.data() + "/postmaster.pid", std::to_string(getppid()) + "\n" + rd.data() + "\n");
  RunResult busy = s.BwConfig(config, {"pg", "restore", second["snapshot_id"], "--target-dir", rd.data(), "--delta",
                                       "--restore-command", "cp " + pg->archive_dir() + "/%f %p"});
  EXPECT_NE(busy.exit_code, 0);
  EXPECT_NE(busy.err.find("is running"), std::string::npos) << busy.err;
  fs::remove(rd.data() + "/postmaster.pid");
  // ... and without --delta, any non-empty one.
  RunResult full =
      s.BwConfig(config, {"pg", "restore", second["snapshot_id"], "--target-dir", rd.data(), "--restore-command", "x"});
  EXPECT_NE(full.exit_code, 0);
  EXPECT_NE(full.err.find("not empty"), std::string::npos) << full.err;
  // A delta restore of the second backup over the first rewrites only what differs, removes what
  // is not in the backup, and gives a cluster that starts with the update.
  WriteFile(rd.data() + "/base/stray-file", "not in the backup");
  nlohmann::json d = PgRestore(s, config, *pg, rd.data(), {second["snapshot_id"], "--delta", "--target", "immediate"});
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["verified"], true);
  uint64_t unchanged = d["delta_files"]["unchanged"], written = d["delta_files"]["written"];
  EXPECT_GT(unchanged, 5 * written) << d.dump();
  EXPECT_GT(written, 0u);
  EXPECT_GE(d["delta_files"]["removed"].get<int>(), 2) << "stray-file and recovery.signal";
  EXPECT_FALSE(fs::exists(rd.data() + "/base/stray-file"));
  auto restored = StartPromoted(rd);
  ASSERT_TRUE(restored);
  EXPECT_EQ(restored->Query("SELECT sum(abalance) FROM pgbench_accounts", "app"), "100");
}

// A server that archives, with the table ev(id, ts, phase) whose rows tell
// which transactions a restored cluster holds; a repository and a
// configuration naming the server as source "pg".
class PgPhysicalPitr : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    pg_ = PgServer::Start(&why, {.archive = true});
    if (!pg_) GTEST_SKIP() << why;
    pg_->Query("CREATE TABLE ev(id serial, ts timestamptz DEFAULT clock_timestamp(), phase text)");
    s_.Init();
    config_ = WriteConfig(s_, pg_->conninfo());
  }

  std::unique_ptr<PgServer> pg_;
  Scratch s_;
  std::string config_;
};

TEST_F(PgPhysicalPitr, ToATimeHoldsExactlyTheTransactionsCommittedBefore) {
  PgServer& pg = *pg_;
  const Scratch& s = s_;
  const std::string& config = config_;
  ASSERT_FALSE(BaseBackup(s, config).is_null());
  Insert(pg, "A", 3);
  std::string t = ServerNow(pg);  // after A's commits
  WaitPast(pg, t);
  Insert(pg, "B", 3);  // committed after t
  SwitchAndArchive(pg);

  PgTempDir rd;
  nlohmann::json r = PgRestore(s, config, pg, rd.data(), {"--source", "pg", "--target-time", t});
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["recovery_settings"]["recovery_target_time"].get<std::string>().back(), '0') << "+00: UTC";
  auto restored = StartPromoted(rd);
  ASSERT_TRUE(restored);
  EXPECT_EQ(Phases(*restored), "A,A,A");
  EXPECT_NE(restored->Log().find("recovery stopping before commit of transaction"), std::string::npos)
      << restored->Log();
}

TEST_F(PgPhysicalPitr, ToAnLsnPausesAndToARestorePointPromotes) {
  PgServer& pg = *pg_;
  const Scratch& s = s_;
  const std::string& config = config_;
  nlohmann::json backup = BaseBackup(s, config);
  ASSERT_FALSE(backup.is_null());
  Insert(pg, "A", 2);
  std::string lsn = pg.Query("SELECT pg_current_wal_insert_lsn()");
  pg.Query("SELECT pg_create_restore_point('before-b')");
  Insert(pg, "B", 2);
  SwitchAndArchive(pg);

  {
    PgTempDir rd;
    nlohmann::json r = PgRestore(s, config, pg, rd.data(), {"--target-lsn", lsn, "--target-action", "pause"});
    ASSERT_FALSE(r.is_null());
    EXPECT_EQ(r["snapshot_id"], backup["snapshot_id"]) << "chosen: the one base backup that ends before the LSN";
    std::string why;
    auto restored = PgServer::StartExisting(rd.path(), &why);
    ASSERT_TRUE(restored) << why;
    ASSERT_TRUE(WaitFor([&] { return restored->Psql("SELECT pg_get_wal_replay_pause_state()").out == "paused\n"; }, 60))
        << restored->Log();
    EXPECT_EQ(restored->Query("SELECT pg_is_in_recovery()"), "t");
    EXPECT_EQ(Phases(*restored), "A,A");
  }
  {
    PgTempDir rd;
    ASSERT_FALSE(PgRestore(s, config, pg, rd.data(), {"--target-name", "before-b"}).is_null());
    auto restored = StartPromoted(rd);
    ASSERT_TRUE(restored);
    EXPECT_EQ(Phases(*restored), "A,A");
    EXPECT_NE(restored->Log().find("recovery stopping at restore point \"before-b\""), std::string::npos);
  }
  // An LSN before the base backup ended: no base backup can reach it.
  PgTempDir rd;
  RunResult early = s.BwConfig(
      config, {"pg", "restore", "--target-dir", rd.data(), "--target-lsn", "0/100", "--restore-command", "x"});
  EXPECT_NE(early.exit_code, 0);
  EXPECT_NE(early.err.find("can reach"), std::string::npos) << early.err;
  EXPECT_FALSE(fs::exists(rd.data()));
}

TEST_F(PgPhysicalPitr, AlongTimeline2AfterAPromotion) {
  PgServer& pg = *pg_;
  const Scratch& s = s_;
  const std::string& config = config_;
  nlohmann::json s1 = BaseBackup(s, config);
  ASSERT_FALSE(s1.is_null());
  Insert(pg, "A", 2);
  std::string t1 = ServerNow(pg);
  WaitPast(pg, t1);
  Insert(pg, "B", 2);
  SwitchAndArchive(pg);

  // Recovery to t1 promotes to timeline 2. The restored copy keeps the original's
  // archive_command, so its 00000002.history and timeline 2 segments reach the same archive.
  PgTempDir rd1;
  ASSERT_FALSE(PgRestore(s, config, pg, rd1.data(), {"--target-time", t1}).is_null());
  auto tl2 = StartPromoted(rd1);
  ASSERT_TRUE(tl2);
  EXPECT_EQ(tl2->Query("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), "00000002");
  EXPECT_EQ(Phases(*tl2), "A,A");
  Insert(*tl2, "C", 2);
  std::string t2 = ServerNow(*tl2);
  WaitPast(*tl2, t2);
  Insert(*tl2, "D", 2);
  SwitchAndArchive(*tl2);
  ASSERT_TRUE(fs::exists(pg.archive_dir() + "/00000002.history"));

  // A base backup of the promoted cluster (same source name): timeline 2, but it ends after t2.
  std::string config2 = WriteConfig(s, tl2->conninfo(), "bulwark-tl2.yaml");
  nlohmann::json s2 = BaseBackup(s, config2);
  ASSERT_FALSE(s2.is_null());
  EXPECT_EQ(s2["facts"]["postgres"]["timeline"], 2);

  // PITR to t2 along the latest timeline: from the timeline 1 base backup (the newest that ends
  // before t2), through the switch to timeline 2: A and C, not B nor D; a new timeline 3.
  PgTempDir rd2;
  nlohmann::json r = PgRestore(s, config, pg, rd2.data(), {"--source", "pg", "--target-time", t2});
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["snapshot_id"], s1["snapshot_id"]);
  auto tl3 = StartPromoted(rd2);
  ASSERT_TRUE(tl3);
  EXPECT_EQ(Phases(*tl3), "A,A,C,C");
  EXPECT_EQ(tl3->Query("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), "00000003");
}

TEST(PgPhysical, BaseBackupFromAStandby) {
  START_PG(primary, {.archive = true});
  primary->Query("CREATE TABLE ev(id serial, ts timestamptz DEFAULT clock_timestamp(), phase text)");
  Insert(*primary, "A", 2);
  // A streaming standby: pg_basebackup -R of the primary, started on its own port.
  PgTempDir sdir;
  RunResult clone = primary->Client("pg_basebackup", {"-D", sdir.data(), "-R", "-X", "stream", "-c", "fast"});
  ASSERT_EQ(clone.exit_code, 0) << clone.err;
  ASSERT_EQ(bulwark::testing::Run({"chown", "-R", "postgres:", sdir.data()}).exit_code, 0);
  std::string why;
  auto standby = PgServer::StartExisting(sdir.path(), &why);
  ASSERT_TRUE(standby) << why;
  EXPECT_EQ(standby->Query("SELECT pg_is_in_recovery()"), "t");
  Insert(*primary, "B", 1);
  ASSERT_TRUE(WaitFor([&] { return standby->Psql("SELECT count(*) FROM ev").out == "3\n"; }, 30));

  Scratch s;
  s.Init();
  std::string config = WriteConfig(s, standby->conninfo());
  nlohmann::json backup = BaseBackup(s, config);
  ASSERT_FALSE(backup.is_null());
  const nlohmann::json& f = backup["facts"]["postgres"];
  EXPECT_EQ(f["backup_from"], "standby");
  EXPECT_EQ(f["timeline"], 1);
  EXPECT_EQ(f["system_identifier"], primary->Query("SELECT system_identifier FROM pg_control_system()"));
  Insert(*primary, "C", 1);    // after the backup
  SwitchAndArchive(*primary);  // the primary archives the WAL the standby's backup needs

  PgTempDir rd;
  nlohmann::json r = PgRestore(s, config, *primary, rd.data(), {"--target", "immediate"});
  ASSERT_FALSE(r.is_null());
  EXPECT_EQ(r["verified"], true);
  auto restored = StartPromoted(rd);
  ASSERT_TRUE(restored);
  EXPECT_EQ(Phases(*restored), "A,A,B");
}

// The stream method (pg_basebackup's tar): what bulwark uses when the data
// directory cannot be read where it runs. The server's own manifest (CRC32C
// per file) is kept and verifies the restored directory; unlogged tables'
// data is left out by both methods, their init fork kept.
TEST(PgPhysical, StreamAndFilesMethodsRestoreTheSameCluster) {
  START_PG(pg, {.archive = true});
  pg->Query("CREATE TABLE kept(x int); INSERT INTO kept SELECT generate_series(1, 1000)");
  pg->Query("CREATE UNLOGGED TABLE scratch(x int); INSERT INTO scratch SELECT generate_series(1, 1000)");
  std::string scratch_file = pg->Query("SELECT pg_relation_filepath('scratch')");
  Scratch s;
  s.Init();
  for (const char* method : {"stream", "files"}) {
    SCOPED_TRACE(method);
    std::string config =
        WriteConfig(s, pg->conninfo(), std::string(method) + ".yaml", std::string("    method: ") + method + "\n");
    nlohmann::json b = BaseBackup(s, config);
    ASSERT_FALSE(b.is_null());
    EXPECT_EQ(b["facts"]["postgres"]["method"], method);
    PgTempDir rd;
    // Timeline 1: the first restored cluster promotes and archives 00000002.history into the
    // same archive, which the second must not follow.
    nlohmann::json r = PgRestore(s, config, *pg, rd.data(),
                                 {b["snapshot_id"], "--target", "immediate", "--target-timeline", "current"});
    ASSERT_FALSE(r.is_null());
    EXPECT_EQ(r["verified"], true);
    std::string manifest = ReadFileOr(rd.data() + "/backup_manifest", "");
    EXPECT_EQ(manifest.find("\"Checksum-Algorithm\": \"CRC32C\"") != std::string::npos,
              std::string(method) == "stream");
    EXPECT_FALSE(fs::exists(rd.data() + "/" + scratch_file)) << "an unlogged table's data";
    EXPECT_TRUE(fs::exists(rd.data() + "/" + scratch_file + "_init"));
    EXPECT_FALSE(fs::exists(rd.data() + "/postmaster.pid"));
    auto restored = StartPromoted(rd);
    ASSERT_TRUE(restored);
    EXPECT_EQ(restored->Query("SELECT count(*) FROM kept"), "1000");
    EXPECT_EQ(restored->Query("SELECT count(*) FROM scratch"), "0") << "unlogged: empty after recovery";
  }
}

TEST(PgPhysical, AFailedBaseBackupStoresNoSnapshot) {
  START_PG(pg, {.archive = true});
  Scratch s;
  s.Init();

  // No server there.
  std::string config = WriteConfig(s, "host=127.0.0.1 port=1 user=postgres dbname=postgres connect_timeout=5");
  RunResult r = s.BwConfig(config, {"backup", "--source", "pg"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;

  // pg_basebackup itself fails: a role without the REPLICATION attribute.
  pg->Query("CREATE ROLE plain LOGIN");
  config = WriteConfig(s, "host=127.0.0.1 port=" + std::to_string(pg->port()) + " user=plain dbname=postgres");
  r = s.BwConfig(config, {"backup", "--source", "pg"});
  EXPECT_NE(r.exit_code, 0);
  // (It cannot see the data directory, so the default method falls back to pg_basebackup.)
  EXPECT_NE(r.err.find("pg_basebackup exited with status 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("replication"), std::string::npos) << "its stderr: " << r.err;
  EXPECT_NE(r.err.find("no snapshot was stored"), std::string::npos) << r.err;
  // The files method, asked for, says why it cannot be used.
  config = WriteConfig(s, "host=127.0.0.1 port=" + std::to_string(pg->port()) + " user=plain dbname=postgres",
                       "bulwark.yaml", "    method: files\n");
  r = s.BwConfig(config, {"backup", "--source", "pg"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("method files: the server does not show its data_directory"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("pg_read_all_settings"), std::string::npos) << r.err;

  // A pg_basebackup whose tar breaks off (it died), or that fails after a whole tar.
  RunResult tar = pg->Client("pg_basebackup", {"-D", "-", "-Ft", "-X", "none", "-c", "fast"});
  ASSERT_EQ(tar.exit_code, 0) << tar.err;
  std::string fake = s.Path("fakebin");
  fs::create_directories(fake);
  WriteFile(s.Path("real.tar"), tar.out);
  const std::pair<std::string, std::string> cases[] = {
      {"head -c " + std::to_string(tar.out.size() / 2) + " " + s.Path("real.tar") + "; exit 0", "tar stream"},
      {"cat " + s.Path("real.tar") + "; echo 'pg_basebackup: error: boom' >&2; exit 3",
       "exited with status 3: pg_basebackup: error: boom"},
      {"head -c " + std::to_string(tar.out.size() / 2) + " " + s.Path("real.tar") + "; echo 'died' >&2; exit 1",
       "exited with status 1: died"},
      // A complete tar that lacks the manifest: cut off between members.
      {"mkdir -p " + s.Path("part") + " && tar -xf " + s.Path("real.tar") + " -C " + s.Path("part") +
           " backup_label PG_VERSION && tar -cf - -C " + s.Path("part") + " backup_label PG_VERSION",
       "does not end with backup_manifest"},
  };
  for (const auto& [script, message] : cases) {
    WriteFile(fake + "/pg_basebackup", "#!/bin/sh\n" + script + "\n");
    fs::permissions(fake + "/pg_basebackup", fs::perms::owner_all);
    config = WriteConfig(s, pg->conninfo(), "bulwark.yaml", "    method: stream\n    pg_bin_dir: " + fake + "\n");
    r = s.BwConfig(config, {"backup", "--source", "pg"});
    EXPECT_NE(r.exit_code, 0) << script;
    EXPECT_NE(r.err.find(message), std::string::npos) << script << ": " << r.err;
  }
  EXPECT_EQ(SnapshotCount(s), 0u);
}

}  // namespace
}  // namespace bulwark::testing
