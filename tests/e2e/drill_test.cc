// Restore drills (issue 6, item 4) end to end: `bulwark drill SOURCE`
// restores, validates, times and records; `bulwark drills` lists the
// evidence. fs drills against the local repository; postgres drills against
// a real PostgreSQL 15 server (pg_server.h).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "harness.h"
#include "pg_server.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

// The check named `name` of a drill record (JSON), or null.
nlohmann::json CheckNamed(const nlohmann::json& record, const std::string& name) {
  if (!record.is_object()) return nullptr;
  for (const auto& c : record.value("checks", nlohmann::json::array()))
    if (c["name"] == name) return c;
  return nullptr;
}

// The record a `--json drill` run printed (its summary line); a test failure
// unless the run exited with `want_exit` and printed one.
nlohmann::json RecordOf(const RunResult& d, int want_exit) {
  EXPECT_EQ(d.exit_code, want_exit) << d.out << d.err;
  nlohmann::json rec = d.JsonLine("summary");
  EXPECT_TRUE(rec.is_object()) << d.out;
  return rec;
}

// `drills --json`: the stored records, oldest first.
nlohmann::json Drills(const Scratch& s, const std::string& cfg, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"--json", "drills"};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = s.BwConfig(cfg, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = r.Json();
  EXPECT_TRUE(j.is_array()) << r.out;
  return j;
}

size_t Entries(const std::string& dir) {
  size_t n = 0;
  for (auto it = fs::directory_iterator(dir); it != fs::directory_iterator(); ++it) ++n;
  return n;
}

class FsDrillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s_.Init();
    data_ = s_.Path("data");
    drills_ = s_.Path("drills");
    fs::create_directories(data_ + "/sub/deeper");
    ASSERT_EQ(mkdir(drills_.c_str(), 0700), 0);
    WriteFile(data_ + "/big.bin", RandomBytes(3 << 20, 7));
    WriteFile(data_ + "/sub/a.txt", "alpha\n");
    WriteFile(data_ + "/sub/deeper/empty", "");
    ASSERT_EQ(symlink("sub/a.txt", (data_ + "/link").c_str()), 0);
    ASSERT_EQ(link((data_ + "/sub/a.txt").c_str(), (data_ + "/hard.txt").c_str()), 0);
    ASSERT_EQ(chmod((data_ + "/sub/deeper").c_str(), 0500), 0);  // cleanup must cope with read-only dirs
  }
  void TearDown() override { chmod((data_ + "/sub/deeper").c_str(), 0700); }

  std::string Config(const std::string& drill) {
    return WriteFile(s_.Path("bulwark.yaml"),
                     s_.ConfigPrelude() + "sources:\n  docs:\n    kind: fs\n    paths: [" + data_ + "]\n" + drill);
  }

  Scratch s_;
  std::string data_, drills_;
};

TEST_F(FsDrillTest, PassesStoresAndListsTheEvidence) {
  const std::string cfg = Config("    drill:\n      rto: 1h\n      target: {dir: " + drills_ + "}\n");
  RunResult b = s_.BwConfig(cfg, {"--json", "backup", "--source", "docs"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string snap = b.JsonLine("summary")["snapshot_id"];

  // A dry run checks and plans, and stores nothing.
  RunResult dry = s_.BwConfig(cfg, {"drill", "docs", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("would restore snapshot " + snap.substr(0, 8)), std::string::npos) << dry.out;
  EXPECT_TRUE(Drills(s_, cfg).empty());
  EXPECT_EQ(Entries(drills_), 0u);

  nlohmann::json rec = RecordOf(s_.BwConfig(cfg, {"--json", "drill", "docs"}), 0);
  EXPECT_EQ(rec["passed"], true) << rec.dump(2);
  EXPECT_EQ(rec["snapshot"], snap);
  EXPECT_EQ(rec["source"], "docs");
  EXPECT_EQ(rec["target_kind"], "directory");
  EXPECT_EQ(rec["target"].get<std::string>().rfind(drills_ + "/bulwark-drill-", 0), 0u) << rec["target"];
  EXPECT_EQ(CheckNamed(rec, "files")["actual"], "4");  // big.bin, a.txt, hard.txt, empty
  EXPECT_EQ(CheckNamed(rec, "bytes")["actual"], std::to_string((3 << 20) + 12));
  EXPECT_EQ(CheckNamed(rec, "blob ids")["passed"], true);
  EXPECT_EQ(CheckNamed(rec, "restore errors")["actual"], "0");
  EXPECT_EQ(CheckNamed(rec, "rto")["expected"], "<= 3600 s");
  EXPECT_EQ(CheckNamed(rec, "rto")["passed"], true);
  const double total = rec["timings"]["total_seconds"];
  EXPECT_GT(total, 0);
  EXPECT_GE(total, rec["timings"]["restore_seconds"].get<double>());
  EXPECT_EQ(rec["rto_budget_seconds"], 3600);
  EXPECT_FALSE(rec["host"].get<std::string>().empty());
  // Cleaned up, and the record is an object of its own.
  EXPECT_EQ(Entries(drills_), 0u) << "the scratch directory was left behind";
  const std::string id = rec["id"];
  EXPECT_TRUE(fs::exists(s_.repo() + "/drills/" + id));

  nlohmann::json listed = Drills(s_, cfg, {"--source", "docs"});
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["id"], id);
  EXPECT_EQ(listed[0]["passed"], true);
  EXPECT_EQ(listed[0]["checks"], rec["checks"]);
  EXPECT_TRUE(Drills(s_, cfg, {"--source", "other"}).empty());
  RunResult text = s_.BwConfig(cfg, {"drills"});
  EXPECT_NE(text.out.find("PASSED  drill " + id.substr(0, 8)), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("ok    files: expected 4, got 4"), std::string::npos) << text.out;

  // --keep leaves the restored tree where the record says.
  nlohmann::json k = RecordOf(s_.BwConfig(cfg, {"--json", "drill", "docs", "--keep"}), 0);
  ASSERT_TRUE(k["target"].is_string());
  const std::string kept = k["target"];
  EXPECT_EQ(k["kept"], true);
  EXPECT_EQ(ReadFileOrDie(kept + data_ + "/sub/a.txt"), "alpha\n");
  fs::permissions(kept + data_ + "/sub/deeper", fs::perms::owner_all);  // restored with the snapshot path
  fs::remove_all(kept);

  // Forgetting the snapshot and pruning keeps the evidence.
  ASSERT_EQ(s_.BwConfig(cfg, {"forget", snap}).exit_code, 0);
  RunResult p = s_.BwConfig(cfg, {"prune"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  nlohmann::json after = Drills(s_, cfg);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0]["id"], id);
  // With the snapshot gone there is nothing to drill.
  RunResult none = s_.BwConfig(cfg, {"drill", "docs"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_EQ(Drills(s_, cfg).size(), 2u);
}

TEST_F(FsDrillTest, CorruptedPackFailsAndTheRecordSaysWhat) {
  const std::string cfg = Config("    drill:\n      target: {dir: " + drills_ + "}\n");
  ASSERT_EQ(s_.BwConfig(cfg, {"backup", "--source", "docs"}).exit_code, 0);
  const std::string pack = LargestObject(s_.repo() + "/data");
  ASSERT_FALSE(pack.empty());
  Corrupt(pack);  // the pack of big.bin's chunks

  RunResult d = s_.BwConfig(cfg, {"--json", "drill", "docs"});
  nlohmann::json rec = RecordOf(d, 5);
  EXPECT_EQ(rec["passed"], false);
  nlohmann::json restore = CheckNamed(rec, "restore errors");
  EXPECT_EQ(restore["passed"], false);
  EXPECT_NE(restore["actual"].get<std::string>().find("/big.bin: damaged data"), std::string::npos) << restore;
  nlohmann::json ids = CheckNamed(rec, "blob ids");
  EXPECT_EQ(ids["passed"], false);
  EXPECT_NE(ids["actual"].get<std::string>().find("/big.bin"), std::string::npos) << ids;
  EXPECT_EQ(CheckNamed(rec, "files")["passed"], false);  // 3 of 4 intact
  EXPECT_NE(d.err.find("drill of source 'docs' failed"), std::string::npos) << d.err;
  EXPECT_EQ(Entries(drills_), 0u) << "a failed drill must clean up too";

  nlohmann::json listed = Drills(s_, cfg);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["passed"], false);
  EXPECT_EQ(listed[0]["checks"], rec["checks"]);
}

TEST_F(FsDrillTest, UnsafeTargetsAreRefusedBeforeAnythingHappens) {
  // A scratch directory inside the backed-up paths would be backed up next time.
  std::string cfg = Config("    drill:\n      target: {dir: " + data_ + "/sub}\n");
  ASSERT_EQ(s_.BwConfig(cfg, {"backup", "--source", "docs"}).exit_code, 0);
  RunResult d = s_.BwConfig(cfg, {"drill", "docs"});
  EXPECT_EQ(d.exit_code, 2) << d.err;
  EXPECT_NE(d.err.find("is inside the source's path"), std::string::npos) << d.err;
  cfg = Config("    drill:\n      target: {dir: " + s_.Path("missing") + "}\n");
  d = s_.BwConfig(cfg, {"drill", "docs"});
  EXPECT_EQ(d.exit_code, 2) << d.err;
  EXPECT_NE(d.err.find("does not exist"), std::string::npos) << d.err;
  // A config error names file, line and column.
  cfg = Config("    drill:\n      rto: 0s\n");
  d = s_.BwConfig(cfg, {"drill", "docs"});
  EXPECT_EQ(d.exit_code, 2);
  EXPECT_NE(d.err.find("bulwark.yaml:12:12: 'rto' in drill of source 'docs' must be more than 0"), std::string::npos)
      << d.err;
  cfg = Config("");
  EXPECT_TRUE(Drills(s_, cfg).empty());
}

TEST(CommandDrill, StreamIsVerified) {
  Scratch s;
  s.Init();
  const std::string cfg =
      WriteFile(s.Path("bulwark.yaml"), s.ConfigPrelude() +
                                            "sources:\n  etcd:\n    kind: command\n    command: [sh, -c, "
                                            "\"printf hello; printf world\"]\n    drill: {rto: 10m}\n");
  ASSERT_EQ(s.BwConfig(cfg, {"backup", "--source", "etcd"}).exit_code, 0);
  nlohmann::json rec = RecordOf(s.BwConfig(cfg, {"--json", "drill", "etcd"}), 0);
  EXPECT_EQ(rec["passed"], true) << rec.dump(2);
  EXPECT_EQ(CheckNamed(rec, "files")["actual"], "1");
  EXPECT_EQ(CheckNamed(rec, "bytes")["actual"], "10");
}

// ---- PostgreSQL logical

class PgDrillTest : public ::testing::Test {
 protected:
  // Source `app` (database src) with a drill into the same server (allowed
  // explicitly) and `drill_extra` appended to the drill block.
  std::string Config(const PgServer& pg, const std::string& drill_extra, bool allow_same_server = true) {
    return WriteFile(s_.Path("bulwark.yaml"),
                     s_.ConfigPrelude() + "sources:\n  app:\n    kind: postgres\n    conninfo: \"" +
                         pg.conninfo("src") +
                         "\"\n    schema_version_query: SELECT max(version) FROM schema_migrations\n    drill:\n"
                         "      target: {conninfo: \"" +
                         pg.conninfo("postgres") + "\", allow_same_server: " + (allow_same_server ? "true" : "false") +
                         "}\n" + drill_extra);
  }
  std::string DrillDatabases(const PgServer& pg) {
    return pg.Query("SELECT count(*) FROM pg_database WHERE datname LIKE 'bulwark_drill_%'");
  }
  Scratch s_;
};

TEST_F(PgDrillTest, LogicalDrillPassesAndAWrongCheckFails) {
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("src"));
  ASSERT_EQ(pg->PgbenchInit("src", 1).exit_code, 0);
  pg->Query("CREATE TABLE schema_migrations(version int); INSERT INTO schema_migrations VALUES (7);", "src");
  s_.Init();
  std::string cfg = Config(*pg,
                           "      checks:\n        - {sql: \"SELECT count(*) FROM pgbench_accounts\", "
                           "expect: 100000}\n        - {sql: \"SELECT count(*) FROM pgbench_branches\", min: "
                           "1, max: 5}\n");
  ASSERT_EQ(s_.BwConfig(cfg, {"backup", "--source", "app"}).exit_code, 0);

  nlohmann::json rec = RecordOf(s_.BwConfig(cfg, {"--json", "drill", "app"}), 0);
  EXPECT_EQ(rec["passed"], true) << rec.dump(2);
  EXPECT_EQ(rec["target_kind"], "database");
  EXPECT_EQ(rec["target"].get<std::string>().rfind("bulwark_drill_", 0), 0u) << rec["target"];
  EXPECT_EQ(CheckNamed(rec, "rows public.pgbench_accounts")["actual"], "100000");
  EXPECT_EQ(CheckNamed(rec, "rows public.pgbench_accounts")["expected"], "100000");
  EXPECT_EQ(CheckNamed(rec, "rows public.schema_migrations")["passed"], true);
  EXPECT_EQ(CheckNamed(rec, "schema_version")["actual"], "7");
  EXPECT_EQ(CheckNamed(rec, "sql: SELECT count(*) FROM pgbench_accounts")["passed"], true);
  EXPECT_EQ(CheckNamed(rec, "sql: SELECT count(*) FROM pgbench_branches")["expected"], "1..5");
  EXPECT_EQ(DrillDatabases(*pg), "0") << "the drill's database was not dropped";

  // A check expecting more rows than exist: the drill fails, and says so.
  cfg = Config(*pg, "      checks:\n        - {sql: \"SELECT count(*) FROM pgbench_accounts\", expect: 100001}\n");
  rec = RecordOf(s_.BwConfig(cfg, {"--json", "drill", "app"}), 5);
  EXPECT_EQ(rec["passed"], false);
  nlohmann::json c = CheckNamed(rec, "sql: SELECT count(*) FROM pgbench_accounts");
  EXPECT_EQ(c["expected"], "100001");
  EXPECT_EQ(c["actual"], "100000");
  EXPECT_EQ(c["passed"], false);
  EXPECT_EQ(CheckNamed(rec, "rows public.pgbench_accounts")["passed"], true);
  EXPECT_EQ(DrillDatabases(*pg), "0");

  nlohmann::json listed = Drills(s_, cfg, {"--source", "app"});
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0]["passed"], true);
  EXPECT_EQ(listed[1]["passed"], false);
  EXPECT_EQ(listed[1]["id"], rec["id"]);

  // The source's own server is refused unless allowed; nothing is created.
  cfg = Config(*pg, "", /*allow_same_server=*/false);
  RunResult d = s_.BwConfig(cfg, {"drill", "app"});
  EXPECT_EQ(d.exit_code, 2) << d.err;
  EXPECT_NE(d.err.find("is the source's own server"), std::string::npos) << d.err;
  EXPECT_EQ(Drills(s_, cfg).size(), 2u);
  EXPECT_EQ(DrillDatabases(*pg), "0");
  // The source database itself was never touched.
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pgbench_accounts", "src"), "100000");
}

// A drill slower than its budget fails. Deterministic: a user check that
// takes 1.2 s on the server makes the drill take longer than `rto: 1s`
// whatever the machine's speed.
TEST_F(PgDrillTest, RtoBudgetExceededFails) {
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("src"));
  pg->Query("CREATE TABLE schema_migrations(version int); INSERT INTO schema_migrations VALUES (1);", "src");
  s_.Init();
  const std::string cfg = Config(*pg,
                                 "      rto: 1s\n      checks:\n        - {sql: \"SELECT count(*) FROM "
                                 "pg_sleep(1.2)\", expect: 1}\n");
  ASSERT_EQ(s_.BwConfig(cfg, {"backup", "--source", "app"}).exit_code, 0);
  nlohmann::json rec = RecordOf(s_.BwConfig(cfg, {"--json", "drill", "app"}), 5);
  EXPECT_EQ(rec["passed"], false);
  EXPECT_EQ(CheckNamed(rec, "sql: SELECT count(*) FROM pg_sleep(1.2)")["passed"], true);
  nlohmann::json rto = CheckNamed(rec, "rto");
  EXPECT_EQ(rto["passed"], false) << rec.dump(2);
  EXPECT_EQ(rto["expected"], "<= 1 s");
  EXPECT_GT(rec["timings"]["total_seconds"].get<double>(), 1.2);
  EXPECT_EQ(rec["rto_budget_seconds"], 1);
  EXPECT_EQ(DrillDatabases(*pg), "0");
  EXPECT_EQ(Drills(s_, cfg).size(), 1u);
}

// ---- PostgreSQL physical

// A base backup plus WAL archived by wal-push (machine key file), drilled:
// restored into a temporary data directory, started on a free port,
// recovered to the end of the archived WAL (the rows written after the base
// backup are there), checked, stopped and removed.
TEST(PgPhysicalDrill, RecoversToTheEndOfTheArchiveAndPasses) {
  Scratch s;
  PgTempDir dir;  // repository, key and configuration: the server's wal-fetch runs as postgres
  const std::string repo = dir.path() + "/repo", key = dir.path() + "/machine.key";
  ASSERT_EQ(
      bulwark::testing::Run({BulwarkBin(), "--repo", repo, "init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}, s.Env())
          .exit_code,
      0);
  ASSERT_EQ(
      bulwark::testing::Run({BulwarkBin(), "--repo", repo, "key", "add", "--machine-key-file", key}, s.Env()).exit_code,
      0);
  PgServerOptions o;
  o.archive_command = BulwarkBin() + " --repo " + repo + " --key-file " + key + " wal-push --source main %p";
  ASSERT_TRUE(dir.GiveToPostgres());
  START_PG(pg, o);
  const std::string cfg = WriteFile(dir.path() + "/bulwark.yaml",
                                    "version: 1\nrepositories:\n  main:\n    url: " + repo +
                                        "\nsources:\n  main:\n    kind: postgres\n    mode: "
                                        "physical\n    conninfo: \"" +
                                        pg->conninfo() +
                                        "\"\n    drill:\n      rto: 10m\n      target: {port: 0}\n"
                                        "      checks:\n        - {sql: \"SELECT count(*) FROM t\", expect: 3000}\n");
  ASSERT_TRUE(dir.GiveToPostgres());
  auto bw = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {BulwarkBin(), "--config", cfg, "--key-file", key});
    return bulwark::testing::Run(args, {"BULWARK_CACHE_DIR=" + s.CacheDir()});
  };
  pg->Query("CREATE TABLE t(g int); INSERT INTO t SELECT generate_series(1, 1000)");
  RunResult b = bw({"--json", "backup", "--source", "main"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  pg->Query("INSERT INTO t SELECT generate_series(1001, 3000)");  // only in the WAL after the base backup
  const std::string seg = pg->Query("SELECT pg_walfile_name(pg_switch_wal())");
  ASSERT_TRUE(WaitFor(
      [&] { return pg->Query("SELECT coalesce(last_archived_wal, '') >= '" + seg + "' FROM pg_stat_archiver") == "t"; },
      60))
      << pg->Log();

  nlohmann::json rec = RecordOf(bw({"--json", "drill", "main"}), 0);
  EXPECT_EQ(rec["passed"], true) << rec.dump(2);
  EXPECT_EQ(rec["target_kind"], "cluster");
  EXPECT_EQ(CheckNamed(rec, "pg_verifybackup")["passed"], true);
  EXPECT_EQ(CheckNamed(rec, "recovery")["passed"], true);
  EXPECT_EQ(CheckNamed(rec, "system_identifier")["actual"],
            pg->Query("SELECT system_identifier FROM pg_control_system()"));
  EXPECT_EQ(CheckNamed(rec, "sql: SELECT count(*) FROM t")["actual"], "3000");
  // Stopped and removed: the data directory is gone and its port is free again.
  const std::string target = rec["target"];  // "127.0.0.1:PORT /path/data"
  const std::string data = target.substr(target.find(' ') + 1);
  EXPECT_FALSE(fs::exists(fs::path(data).parent_path())) << data;
  const std::string port = target.substr(target.find(':') + 1, target.find(' ') - target.find(':') - 1);
  EXPECT_NE(bulwark::testing::Run({PgBin() + "/pg_isready", "-h", "127.0.0.1", "-p", port}).exit_code, 0)
      << "the drill's server still runs";
  RunResult listed = bw({"--json", "drills", "--source", "main"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  ASSERT_EQ(listed.Json().size(), 1u) << listed.out;
  EXPECT_EQ(listed.Json()[0]["id"], rec["id"]);
}

}  // namespace
}  // namespace bulwark::testing
