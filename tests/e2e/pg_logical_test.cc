// PostgreSQL logical backups (issue 5, item 2) against a real PostgreSQL 15
// server: `backup --source` of a `kind: postgres` source (pg_dump in an
// exported snapshot + pg_dumpall --globals-only) and `pg restore-dump`.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "harness.h"
#include "pg_server.h"

namespace bulwark::testing {
namespace {

// A configuration with one postgres source `app` on `conninfo`.
std::string Config(const Scratch& s, const std::string& conninfo, const std::string& extra = "") {
  return WriteFile(s.Path("bulwark.yaml"), s.ConfigPrelude() + "sources:\n  app:\n    kind: postgres\n" +
                                               "    conninfo: \"" + conninfo + "\"\n" + extra);
}

// A plain-format dump that is the same for equal databases (a fixed
// \restrict key: pg_dump 15.14+ writes a random one otherwise).
std::string PlainDump(const PgServer& pg, const std::string& db) {
  RunResult r = pg.Client("pg_dump", {"-Fp", "--restrict-key=bulwarktest", "-d", db});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

bool DatabaseExists(const PgServer& pg, const std::string& db) {
  return pg.Query("SELECT count(*) FROM pg_database WHERE datname = '" + db + "'") == "1";
}

class PgLogicalTest : public ::testing::Test {
 protected:
  Scratch s_;
};

TEST_F(PgLogicalTest, RoundTripWithPgbenchDataIsIdentical) {
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("src"));
  ASSERT_EQ(pg->PgbenchInit("src", 1).exit_code, 0);
  pg->Query("CREATE TABLE schema_migrations(version int); INSERT INTO schema_migrations VALUES (41), (42);", "src");
  pg->Query("CREATE ROLE app_reader LOGIN", "postgres");
  s_.Init();
  std::string cfg = Config(s_, pg->conninfo("src"), "    schema_version_query: SELECT max(version) FROM schema_migrations\n");

  RunResult b = s_.BwConfig(cfg, {"--json", "backup", "--source", "app"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  nlohmann::json sum = b.JsonLine("summary");
  ASSERT_TRUE(sum.is_object()) << b.out;
  const nlohmann::json& pf = sum["facts"]["postgres"];
  EXPECT_EQ(pf["mode"], "logical");
  EXPECT_EQ(pf["database"], "src");
  EXPECT_EQ(pf["schema_version"], "42");
  EXPECT_EQ(pf["server_version_num"].get<int>() / 10000, 15);
  EXPECT_EQ(pf["tables"]["public.pgbench_accounts"], 100000);
  EXPECT_EQ(pf["tables"]["public.pgbench_branches"], 1);
  EXPECT_EQ(pf["tables"]["public.schema_migrations"], 2);
  EXPECT_EQ(pf["system_identifier"].get<std::string>(),
            pg->Query("SELECT system_identifier FROM pg_control_system()"));
  EXPECT_EQ(pf["dump_file"], "src.dump");
  // Both streams are in the snapshot; the globals hold the role.
  RunResult ls = s_.BwConfig(cfg, {"ls", "latest"});
  EXPECT_EQ(ls.out, "/globals.sql\n/src.dump\n");
  RunResult globals = s_.BwConfig(cfg, {"dump", "latest", "/globals.sql"});
  EXPECT_NE(globals.out.find("CREATE ROLE app_reader"), std::string::npos) << globals.out;
  // The dump is custom format without compression (it deduplicates).
  RunResult dump = s_.BwConfig(cfg, {"dump", "latest", "/src.dump"});
  EXPECT_EQ(dump.out.substr(0, 5), "PGDMP");
  EXPECT_GT(dump.out.size(), 8u << 20);

  // Streaming restore into a new database.
  RunResult r = s_.BwConfig(cfg, {"--json", "pg", "restore-dump", "--dbname", "restored"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json rs = r.JsonLine("summary");
  EXPECT_EQ(rs["created"], true);
  EXPECT_EQ(rs["tables_verified"].size(), 5u);
  const std::string want = PlainDump(*pg, "src");
  ASSERT_GT(want.size(), 1000u);
  EXPECT_EQ(PlainDump(*pg, "restored"), want);
  // ANALYZE ran.
  EXPECT_EQ(pg->Query("SELECT count(*) > 0 FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL", "restored"), "t");

  // Parallel restore (pg_restore -j through a temporary file) is identical too.
  std::string tmp = s_.Path("tmp");
  ASSERT_EQ(mkdir(tmp.c_str(), 0700), 0);
  r = s_.BwConfig(cfg, {"pg", "restore-dump", "--dbname", "restored_j2", "-j", "2", "--temp-dir", tmp});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(PlainDump(*pg, "restored_j2"), want);
  EXPECT_TRUE(Objects(tmp).empty()) << "the temporary copy of the dump was left behind";

  // An existing database is refused without --clean, and left untouched.
  pg->Query("DELETE FROM pgbench_branches", "restored");
  r = s_.BwConfig(cfg, {"pg", "restore-dump", "--dbname", "restored"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("database 'restored' already exists"), std::string::npos) << r.err;
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pgbench_branches", "restored"), "0");
  // --dry-run changes nothing either.
  r = s_.BwConfig(cfg, {"pg", "restore-dump", "--dbname", "restored", "--clean", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pgbench_branches", "restored"), "0");
  // --clean replaces its objects.
  r = s_.BwConfig(cfg, {"pg", "restore-dump", "--dbname", "restored", "--clean"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(PlainDump(*pg, "restored"), want);
}

TEST_F(PgLogicalTest, RestoreSelectedTables) {
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("src"));
  ASSERT_EQ(pg->PgbenchInit("src", 1).exit_code, 0);
  s_.Init();
  std::string cfg = Config(s_, pg->conninfo("src"));
  ASSERT_EQ(s_.BwConfig(cfg, {"backup", "--source", "app"}).exit_code, 0);

  // The runbook: extract rows from a side copy of one table.
  RunResult r = s_.BwConfig(cfg, {"pg", "restore-dump", "--dbname", "side", "--table", "pgbench_tellers"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pgbench_tellers", "side"), "10");
  EXPECT_EQ(pg->Query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "side"), "1");
  EXPECT_EQ(pg->Query("SELECT sum(tbalance) FROM pgbench_tellers", "side"),
            pg->Query("SELECT sum(tbalance) FROM pgbench_tellers", "src"));

  // A table that is not in the backup: an error naming the tables, and no
  // database is created (pg_restore would silently restore nothing).
  r = s_.BwConfig(cfg, {"pg", "restore-dump", "--dbname", "side2", "--table", "pgbench_tellerz"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("table 'pgbench_tellerz' is not in snapshot"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("public.pgbench_tellers"), std::string::npos) << r.err;
  EXPECT_FALSE(DatabaseExists(*pg, "side2"));
}

TEST_F(PgLogicalTest, UnchangedDatabaseDeduplicates) {
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("src"));
  ASSERT_EQ(pg->PgbenchInit("src", 1).exit_code, 0);
  s_.Init();
  std::string cfg = Config(s_, pg->conninfo("src"), "    globals: false\n");
  RunResult first = s_.BwConfig(cfg, {"--json", "backup", "--source", "app"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  pg->Query("INSERT INTO pgbench_history(tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 5, now())", "src");
  RunResult second = s_.BwConfig(cfg, {"--json", "backup", "--source", "app"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  uint64_t processed = second.JsonLine("summary")["bytes_processed"];
  uint64_t added = second.JsonLine("summary")["bytes_added"];
  EXPECT_GT(processed, 8u << 20);
  // Only the header (creation time) and pgbench_history's data block, the
  // last one, change: their chunks (1 MiB on average, up to 8 MiB) are new,
  // not the whole ~10 MiB dump.
  EXPECT_LT(added, processed / 2) << "a one-row change re-stored most of the dump";
  EXPECT_EQ(second.JsonLine("summary")["facts"]["postgres"]["tables"]["public.pgbench_history"], 1);
  EXPECT_FALSE(second.JsonLine("summary")["facts"]["postgres"].contains("globals_file"));
}

// One-shot use without bulwark.yaml: --postgres CONNINFO (and --target).
TEST_F(PgLogicalTest, SourceFromFlags) {
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("src"));
  pg->Query("CREATE TABLE t(x int); INSERT INTO t SELECT generate_series(1, 1000);", "src");
  s_.Init();
  RunResult b = s_.Bw({"--json", "backup", "--postgres", pg->conninfo("src"), "--source", "adhoc"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.JsonLine("summary")["facts"]["postgres"]["tables"]["public.t"], 1000);
  RunResult r = s_.Bw({"pg", "restore-dump", "--source", "adhoc", "--dbname", "copy", "--target", pg->conninfo()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(pg->Query("SELECT sum(x) FROM t", "copy"), "500500");
  // A password on the command line is refused, and not echoed.
  r = s_.Bw({"backup", "--postgres", pg->conninfo("src") + " password=s3cr3t"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("contains a password"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("s3cr3t"), std::string::npos) << r.err;
}

// Rows committed after the facts were read but before pg_dump started are in
// neither: facts and dump share the exported snapshot.
TEST_F(PgLogicalTest, FactsAndDumpSeeTheSameSnapshot) {
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("src"));
  pg->Query("CREATE TABLE ev(id serial PRIMARY KEY, v text); INSERT INTO ev(v) VALUES ('a'), ('b');", "src");
  s_.Init();
  // A pg_dump that commits a row first, then runs the real pg_dump.
  std::string bin = s_.Path("bin");
  ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
  for (const char* p : {"pg_dumpall", "psql", "pg_restore"})
    ASSERT_EQ(symlink((PgBin() + "/" + p).c_str(), (bin + "/" + p).c_str()), 0);
  WriteFile(bin + "/pg_dump", "#!/bin/sh\n" + PgBin() + "/psql -X -q -h 127.0.0.1 -p " + std::to_string(pg->port()) +
                                  " -U postgres -d src -c \"INSERT INTO ev(v) VALUES ('late')\" >&2 || exit 9\nexec " +
                                  PgBin() + "/pg_dump \"$@\"\n");
  ASSERT_EQ(chmod((bin + "/pg_dump").c_str(), 0755), 0);
  std::string cfg = Config(s_, pg->conninfo("src"), "    pg_bin_dir: " + bin + "\n");
  RunResult b = s_.BwConfig(cfg, {"--json", "backup", "--source", "app"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.JsonLine("summary")["facts"]["postgres"]["tables"]["public.ev"], 2);
  EXPECT_EQ(pg->Query("SELECT count(*) FROM ev", "src"), "3");
  RunResult r = s_.BwConfig(cfg, {"pg", "restore-dump", "--dbname", "copy"});
  ASSERT_EQ(r.exit_code, 0) << r.err;  // the row counts were verified against the facts
  EXPECT_EQ(pg->Query("SELECT string_agg(v, ',' ORDER BY id) FROM ev", "copy"), "a,b");
}

TEST_F(PgLogicalTest, FailedDumpStoresNoSnapshot) {
  START_PG(pg);
  ASSERT_TRUE(pg->CreateDatabase("src"));
  s_.Init();
  // A pg_dump that writes part of a dump, complains and fails.
  std::string bin = s_.Path("bin");
  ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
  for (const char* p : {"pg_dumpall", "psql", "pg_restore"})
    ASSERT_EQ(symlink((PgBin() + "/" + p).c_str(), (bin + "/" + p).c_str()), 0);
  WriteFile(bin + "/pg_dump", "#!/bin/sh\nprintf 'PGDMP partial'\necho 'pg_dump: error: query failed: disk on fire' >&2\nexit 1\n");
  ASSERT_EQ(chmod((bin + "/pg_dump").c_str(), 0755), 0);
  std::string cfg = Config(s_, pg->conninfo("src"), "    pg_bin_dir: " + bin + "\n");
  RunResult r = s_.BwConfig(cfg, {"backup", "--source", "app"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("pg_dump exited with status 1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("disk on fire"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("source 'app'"), std::string::npos) << r.err;
  RunResult snaps = s_.BwConfig(cfg, {"--json", "snapshots"});
  ASSERT_EQ(snaps.exit_code, 0) << snaps.err;
  EXPECT_EQ(snaps.Json().size(), 0u) << snaps.out;
  // The repository is intact: check passes.
  EXPECT_EQ(s_.BwConfig(cfg, {"check"}).exit_code, 0);

  // An unreachable server: the error names where, and still no snapshot.
  std::string bad = Config(s_, "host=127.0.0.1 port=1 user=postgres dbname=src connect_timeout=5");
  r = s_.BwConfig(bad, {"backup", "--source", "app"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("cannot connect to PostgreSQL at 127.0.0.1:1 database src"), std::string::npos) << r.err;
  EXPECT_EQ(s_.BwConfig(cfg, {"--json", "snapshots"}).Json().size(), 0u);
}

}  // namespace
}  // namespace bulwark::testing
