// WAL archiving end to end (issue 5 item 4): a real PostgreSQL 15 server
// whose archive_command is `bulwark ... wal-push` with a machine key file,
// `wal-fetch` of what it archived (bytes compared with pg_wal), PostgreSQL's
// exit-code contract (missing: 1 and silent; broken: > 125), prefetch into the
// spool, and wal-push killed with SIGKILL mid-upload (S3 behind the fault
// proxy, which holds the upload half-way) and retried.
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "fault_proxy.h"
#include "harness.h"
#include "pg_server.h"
#include "s3_server.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;

// A temp directory for what PostgreSQL's archive_command uses (repository,
// machine key file): it runs as the postgres user, so GiveToPostgres hands
// everything in it over. Removed at destruction.
// The file name of segment `segno` on timeline 1 (16 MiB segments).
std::string SegmentName(uint64_t segno) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08X%08X%08X", 1u, static_cast<unsigned>(segno / 256), static_cast<unsigned>(segno % 256));
  return buf;
}
uint64_t SegNo(const std::string& name) {
  return std::stoull(name.substr(8, 8), nullptr, 16) * 256 + std::stoull(name.substr(16, 8), nullptr, 16);
}

class WalPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = dir_.path() + "/repo";
    key_ = dir_.path() + "/machine.key";
    RunResult init = bulwark::testing::Run({BulwarkBin(), "--repo", repo_, "init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}, s_.Env());
    ASSERT_EQ(init.exit_code, 0) << init.err;
    RunResult add = bulwark::testing::Run({BulwarkBin(), "--repo", repo_, "--json", "key", "add", "--machine-key-file", key_}, s_.Env());
    ASSERT_EQ(add.exit_code, 0) << add.err;
    EXPECT_EQ(add.Json()["kind"], "machine");
    struct stat st {};
    ASSERT_EQ(stat(key_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_TRUE(dir_.GiveToPostgres());
  }

  // bulwark with the machine key file: no password in the environment.
  RunResult Bk(std::vector<std::string> args) const {
    args.insert(args.begin(), {BulwarkBin(), "--repo", repo_, "--key-file", key_});
    return bulwark::testing::Run(args, {"BULWARK_CACHE_DIR=" + s_.CacheDir()});
  }
  std::string ArchiveCommand() const {
    return BulwarkBin() + " --repo " + repo_ + " --key-file " + key_ + " wal-push --source main %p";
  }
  // A server archiving through wal-push, with a table t; null (and *why) if it cannot start.
  std::unique_ptr<PgServer> StartArchiving(std::string* why) const {
    PgServerOptions o;
    o.archive_command = ArchiveCommand();
    auto pg = PgServer::Start(why, o);
    if (pg) pg->Query("CREATE TABLE t (g int, h text)");
    return pg;
  }

  // A physical base backup of `pg` as source "main" (flags, no
  // configuration); its --json summary, a test failure unless it worked.
  nlohmann::json BaseBackup(const PgServer& pg) const {
    RunResult b = Bk({"--json", "backup", "--postgres", pg.conninfo(), "--pg-mode", "physical", "--source", "main"});
    EXPECT_EQ(b.exit_code, 0) << b.err;
    return b.JsonLine("summary");
  }

  // Writes WAL, switches segments and waits until PostgreSQL reports the
  // last one archived; returns the names of the segments switched away from.
  std::vector<std::string> ArchiveSegments(const PgServer& pg, int n) {
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) {
      pg.Query("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g");
      names.push_back(pg.Query("SELECT pg_walfile_name(pg_current_wal_lsn())"));
      pg.Query("SELECT pg_switch_wal()");
    }
    bool archived = WaitFor([&] { return pg.Query("SELECT last_archived_wal FROM pg_stat_archiver") >= names.back(); }, 120);
    EXPECT_TRUE(archived) << names.back() << " not archived within 120 s: "
                          << pg.Query("SELECT * FROM pg_stat_archiver") << "\nlog:\n" << pg.Log();
    return names;
  }

  Scratch s_;
  PgTempDir dir_;
  std::string repo_, key_;
};

TEST_F(WalPostgresTest, ArchiveCommandStoresSegmentsAndWalFetchReturnsTheSameBytes) {
  std::string why;
  auto pg = StartArchiving(&why);
  if (!pg) GTEST_SKIP() << why;
  std::vector<std::string> segs = ArchiveSegments(*pg, 3);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(pg->Query("SELECT failed_count FROM pg_stat_archiver"), "0") << pg->Log();
  for (const auto& seg : segs) EXPECT_TRUE(fs::exists(repo_ + "/wal/main/" + seg)) << seg;

  // wal-fetch of the first: the same bytes as in pg_wal; the next two are prefetched.
  fs::create_directories(s_.Path("restore/pg_wal"));
  std::string dest = s_.Path("restore/pg_wal/RECOVERYXLOG");
  RunResult f = Bk({"--json", "wal-fetch", "--source", "main", "--prefetch", "8", segs[0], dest});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_EQ(f.err, "");
  nlohmann::json sum = f.JsonLine("summary");
  EXPECT_EQ(sum["found"], true);
  EXPECT_GE(sum["prefetched"].get<int>(), 2) << f.out;
  std::string original = ReadFileOrDie(pg->data_dir() + "/pg_wal/" + segs[0]);
  EXPECT_EQ(original.size(), 16u << 20);
  EXPECT_TRUE(ReadFileOrDie(dest) == original) << "fetched bytes differ from pg_wal/" << segs[0];
  // The next one comes from the spool (a rename, no repository request).
  RunResult g = Bk({"--json", "wal-fetch", "--source", "main", segs[1], dest});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_EQ(g.JsonLine("summary")["from_spool"], true) << g.out;
  EXPECT_TRUE(g.JsonLine("storage_requests").is_null());
  EXPECT_TRUE(ReadFileOrDie(dest) == ReadFileOrDie(pg->data_dir() + "/pg_wal/" + segs[1]));

  // Missing files: exit 1 and nothing on stderr (PostgreSQL probes .history files as a matter of course).
  for (const std::string& missing : {SegmentName(SegNo(segs.back()) + 50), std::string("00000002.history")}) {
    RunResult m = Bk({"wal-fetch", "--source", "main", missing, dest});
    EXPECT_EQ(m.exit_code, 1) << missing << ": " << m.err;
    EXPECT_EQ(m.err, "") << missing;
    EXPECT_EQ(m.out, "") << missing;
    RunResult v = Bk({"-v", "wal-fetch", "--source", "main", missing, dest});
    EXPECT_EQ(v.exit_code, 1);
    EXPECT_NE(v.err.find("is not archived"), std::string::npos) << v.err;
  }
  // Anything else is fatal for recovery: exit > 125.
  RunResult bad_key = bulwark::testing::Run({BulwarkBin(), "--repo", repo_, "--key-file", s_.Path("nope.key"), "wal-fetch", "--source",
                           "main", segs[0], dest});
  EXPECT_EQ(bad_key.exit_code, 128) << bad_key.err;
  RunResult bad_repo = bulwark::testing::Run({BulwarkBin(), "--repo", s_.Path("no-repo"), "--key-file", key_, "wal-fetch", "--source",
                            "main", "00000002.history", dest});
  EXPECT_EQ(bad_repo.exit_code, 128) << bad_repo.err;
  EXPECT_NE(bad_repo.err.find("no repository"), std::string::npos) << bad_repo.err;
  RunResult usage = Bk({"wal-fetch", "--source", "main", "--no-such-flag", segs[0], dest});
  EXPECT_EQ(usage.exit_code, 128) << usage.err;
  RunResult bad_name = Bk({"wal-fetch", "--source", "main", "RECOVERYXLOG", dest});
  EXPECT_EQ(bad_name.exit_code, 128) << bad_name.err;

  // A .history file (as PostgreSQL archives one at promotion): round trip, then idempotent.
  std::string history = s_.Path("pg_wal/00000002.history");
  fs::create_directories(s_.Path("pg_wal"));
  WriteFile(history, "1\t0/170004F0\tbefore 2026-11-21 19:33:29.852203+00\n");
  RunResult hp = Bk({"--json", "wal-push", "--source", "main", history});
  ASSERT_EQ(hp.exit_code, 0) << hp.err;
  EXPECT_EQ(hp.JsonLine("summary")["already_archived"], false);
  RunResult hf = Bk({"wal-fetch", "--source", "main", "00000002.history", s_.Path("restore/pg_wal/RECOVERYHISTORY")});
  ASSERT_EQ(hf.exit_code, 0) << hf.err;
  EXPECT_EQ(ReadFileOrDie(s_.Path("restore/pg_wal/RECOVERYHISTORY")), ReadFileOrDie(history));
  RunResult again = Bk({"--json", "wal-push", "--source", "main", history});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.JsonLine("summary")["already_archived"], true);
  WriteFile(history, "1\t0/180004F0\tanother promotion\n");
  RunResult differs = Bk({"wal-push", "--source", "main", history});
  EXPECT_EQ(differs.exit_code, 1);
  EXPECT_NE(differs.err.find("different content"), std::string::npos) << differs.err;

  // pg_basebackup waits until its backup history file is archived: through wal-push too. Its
  // tar leaves out pg_wal's contents, so a spool inside pg_wal never gets into a base backup.
  RunResult spool_fetch =
      Bk({"wal-fetch", "--source", "main", "--prefetch", "2", segs[0], pg->data_dir() + "/pg_wal/RECOVERYXLOG"});
  ASSERT_EQ(spool_fetch.exit_code, 0) << spool_fetch.err;
  ASSERT_TRUE(fs::is_directory(pg->data_dir() + "/pg_wal/bulwark-spool"));
  RunResult bb = pg->Client("pg_basebackup", {"-D", "-", "-Ft", "-X", "none", "-c", "fast"});
  ASSERT_EQ(bb.exit_code, 0) << bb.err;
  WriteFile(s_.Path("base.tar"), bb.out);
  RunResult list = bulwark::testing::Run({"tar", "tf", s_.Path("base.tar")});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out.find("bulwark-spool"), std::string::npos);
  EXPECT_EQ(list.out.find("RECOVERYXLOG"), std::string::npos);
  bool backup_file = false;
  for (auto& e : fs::directory_iterator(repo_ + "/wal/main"))
    backup_file = backup_file || e.path().filename().string().ends_with(".backup");
  EXPECT_TRUE(backup_file) << "no .backup history file archived";
  fs::remove_all(pg->data_dir() + "/pg_wal/bulwark-spool");
  fs::remove(pg->data_dir() + "/pg_wal/RECOVERYXLOG");

  // check --read-data authenticates every WAL object.
  RunResult c = bulwark::testing::Run({BulwarkBin(), "--repo", repo_, "--json", "check", "--read-data"}, s_.Env());
  EXPECT_EQ(c.exit_code, 0) << c.err << c.out;
  nlohmann::json cs = c.JsonLine("summary");
  EXPECT_GE(cs["wal_objects"].get<int>(), 5) << c.out;
  EXPECT_EQ(cs["wal_read"], cs["wal_objects"]);
  EXPECT_EQ(pg->Query("SELECT failed_count FROM pg_stat_archiver"), "0") << pg->Log();
  EXPECT_EQ(pg->Log().find("archive command failed"), std::string::npos) << pg->Log();

  // key list shows the machine key; removing it revokes the file. (The server first: its
  // archiver would fail from then on.)
  ASSERT_TRUE(pg->Stop());
  RunResult kl = bulwark::testing::Run({BulwarkBin(), "--repo", repo_, "--json", "key", "list"}, s_.Env());
  ASSERT_EQ(kl.exit_code, 0) << kl.err;
  std::string machine_id;
  for (auto& k : kl.Json())
    if (k["kind"] == "machine") machine_id = k["id"];
  ASSERT_FALSE(machine_id.empty()) << kl.out;
  RunResult rm = bulwark::testing::Run({BulwarkBin(), "--repo", repo_, "key", "remove", machine_id}, s_.Env());
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  RunResult revoked = Bk({"wal-push", "--source", "main", history});
  EXPECT_EQ(revoked.exit_code, 12) << revoked.err;
  EXPECT_NE(revoked.err.find("key remove"), std::string::npos) << revoked.err;
}

// The machine key file on the command line: never overwritten; --key-file
// wins over BULWARK_KEY_FILE; no password needed with it; key passwd refuses
// a machine key session.
TEST(MachineKeyCli, KeyFileIsNeverOverwrittenAndTheFlagWins) {
  Scratch s;
  s.Init();
  std::string key = s.Path("machine.key");
  ASSERT_EQ(s.Bw({"key", "add", "--machine-key-file", key}).exit_code, 0);
  std::string first = ReadFileOrDie(key);
  RunResult again = s.Bw({"key", "add", "--machine-key-file", key});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("never overwritten"), std::string::npos) << again.err;
  EXPECT_EQ(ReadFileOrDie(key), first);
  RunResult list = s.Bw({"--json", "key", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.Json().size(), 2u) << list.out;  // the password and one machine key, not two

  // No password in the environment: the key file alone opens it (the flag over the variable).
  std::vector<std::string> env = {"BULWARK_CACHE_DIR=" + s.CacheDir(), "BULWARK_KEY_FILE=" + s.Path("nope")};
  RunResult flag = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "--key-file", key, "--json", "key", "list"}, env);
  ASSERT_EQ(flag.exit_code, 0) << flag.err;
  int current_machine = 0;
  for (auto& k : flag.Json()) current_machine += k["current"] == true && k["kind"] == "machine";
  EXPECT_EQ(current_machine, 1) << flag.out;
  RunResult bad_env = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "key", "list"}, env);
  EXPECT_NE(bad_env.exit_code, 0);
  EXPECT_NE(bad_env.err.find("machine key file"), std::string::npos) << bad_env.err;
  RunResult env_ok = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "key", "list"},
                                           {"BULWARK_CACHE_DIR=" + s.CacheDir(), "BULWARK_KEY_FILE=" + key});
  EXPECT_EQ(env_ok.exit_code, 0) << env_ok.err;
  EXPECT_NE(env_ok.out.find("machine"), std::string::npos) << env_ok.out;
  RunResult passwd = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "--key-file", key, "key", "passwd"}, env);
  EXPECT_EQ(passwd.exit_code, 2) << passwd.err;
  // A file that is not a machine key file (e.g. the password file by mistake).
  RunResult wrong = bulwark::testing::Run({BulwarkBin(), "--repo", s.repo(), "--key-file", s.Path("password"), "key", "list"}, env);
  EXPECT_EQ(wrong.exit_code, 2) << wrong.err;
  EXPECT_NE(wrong.err.find("not a machine key file"), std::string::npos) << wrong.err;
}

// The point of archiving: a base backup plus the archived WAL restore every
// committed transaction. PostgreSQL itself drives wal-fetch (restore_command)
// through a real archive recovery: segments come from the repository and
// from the spool (prefetch), missing files (the end of the archive, the next
// timeline's .history) exit 1 quietly, then it promotes; recovery_end_command
// removes the spool.
TEST_F(WalPostgresTest, ArchiveRecoveryThroughWalFetchRestoresEveryCommittedRow) {
  std::string why;
  auto origin = StartArchiving(&why);
  if (!origin) GTEST_SKIP() << why;
  origin->Query("INSERT INTO t SELECT g, 'before' FROM generate_series(1, 1000) g");
  RunResult bb = origin->Client("pg_basebackup", {"-D", "-", "-Ft", "-X", "none", "-c", "fast"});
  ASSERT_EQ(bb.exit_code, 0) << bb.err;
  WriteFile(s_.Path("base.tar"), bb.out);
  // After the base backup: rows in several segments, all archived.
  ArchiveSegments(*origin, 4);
  ASSERT_FALSE(HasFailure());
  const std::string rows = origin->Query("SELECT count(*) || ' ' || md5(string_agg(g || h, ',' ORDER BY g, h)) FROM t");
  ASSERT_TRUE(origin->Stop());

  PgServerOptions r;
  r.base_backup = s_.Path("base.tar");
  r.restore_command = BulwarkBin() + " -v --repo " + repo_ + " --key-file " + key_ + " wal-fetch --source main --prefetch 3 %f %p";
  r.recovery_end_command = "rm -rf pg_wal/bulwark-spool";
  auto restored = PgServer::Start(&why, r);
  ASSERT_TRUE(restored) << why;
  ASSERT_TRUE(WaitFor([&] { return restored->Query("SELECT pg_is_in_recovery()") == "f"; }, 120)) << restored->Log();
  EXPECT_EQ(restored->Query("SELECT count(*) || ' ' || md5(string_agg(g || h, ',' ORDER BY g, h)) FROM t"), rows);
  std::string log = restored->Log();
  EXPECT_NE(log.find("restored log file"), std::string::npos) << log;
  EXPECT_NE(log.find("from the spool"), std::string::npos) << "no segment was served from the prefetch spool:\n" << log;
  EXPECT_NE(log.find("00000002.history is not archived"), std::string::npos) << log;
  // (FATAL lines about connections while it starts are pg_isready's polls.)
  EXPECT_EQ(log.find("could not restore file"), std::string::npos) << log;
  EXPECT_EQ(log.find("wal-fetch"), std::string::npos) << "an error from wal-fetch:\n" << log;
  EXPECT_EQ(restored->Query("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), "00000002");  // promoted
  EXPECT_FALSE(fs::exists(restored->data_dir() + "/pg_wal/bulwark-spool")) << "recovery_end_command did not run";
}

// wal-push killed with SIGKILL in the middle of its upload: the S3 test server
// behind the fault proxy, which forwards half the PUT's body and then holds
// it, so the kill lands mid-upload every time (no timing). No partial object
// may be visible; the retry uploads it whole; the next retry finds it.
class WalPushKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    srv_ = S3Server::Start(&why);
    if (!srv_) GTEST_SKIP() << why;
    ASSERT_EQ(srv_->CreateBucket("wal").status, 200);
    proxy_ = FaultProxy::Start(srv_->endpoint(), &why);
    if (!proxy_) GTEST_SKIP() << why;
    env_ = S3Env(s_, *srv_);
    ASSERT_EQ(Bw(false, {"init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}).exit_code, 0);
    RunResult k = Bw(false, {"key", "add", "--machine-key-file", s_.Path("machine.key")});
    ASSERT_EQ(k.exit_code, 0) << k.err;
    // A 16 MiB segment that does not compress: the upload is big enough to be held half-way.
    fs::create_directories(s_.Path("pg_wal"));
    segment_ = s_.Path("pg_wal/000000010000000000000042");
    WriteFile(segment_, RandomBytes(16 << 20, 42));
  }

  std::vector<std::string> Argv(bool proxied, std::vector<std::string> args) const {
    std::string url = "s3://" + HostPort(proxied ? proxy_->endpoint() : srv_->endpoint()) + "/wal/repo";
    args.insert(args.begin(), {BulwarkBin(), "--repo", url});
    return args;
  }
  RunResult Bw(bool proxied, std::vector<std::string> args) const { return bulwark::testing::Run(Argv(proxied, std::move(args)), env_); }
  std::vector<std::string> Push() const {
    return {"--key-file", s_.Path("machine.key"), "--json", "wal-push", "--source", "main", segment_};
  }
  std::vector<std::string> ServerKeys(const std::string& prefix) const {
    S3Response r = srv_->Request("GET", "/wal?list-type=2&prefix=" + UriEncode(prefix));
    EXPECT_EQ(r.status, 200) << r.Describe();
    return r.Xml("Key");
  }

  // Starts a push through the proxy, waits until the proxy applied `fault`
  // to its PUT, kills it with SIGKILL and reaps it.
  void PushAndKillAt(const std::string& fault) {
    proxy_->SetSchedule(FaultSchedule().Methods({"PUT"}).PathRegex("/wal/").Sequence({fault}));
    int pid = StartBackground(Argv(true, Push()), env_);
    auto faulted = [&] {
      for (const auto& r : proxy_->Requests())
        if (r.fault == fault) return true;
      return false;
    };
    bool held = WaitFor(faulted, 120);
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(held) << "the proxy never held the upload (" << fault << "):\n" << proxy_->Log();
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wal-push was not killed mid-upload";
    proxy_->SetSchedule(FaultSchedule());
  }

  void ExpectArchivedEqualsFile() {
    std::string dest = s_.Path("out/RECOVERYXLOG");
    fs::create_directories(s_.Path("out"));
    RunResult f = Bw(false, {"--key-file", s_.Path("machine.key"), "wal-fetch", "--source", "main",
                             "000000010000000000000042", dest});
    ASSERT_EQ(f.exit_code, 0) << f.err;
    EXPECT_TRUE(ReadFileOrDie(dest) == ReadFileOrDie(segment_)) << "the archived segment differs from the file";
  }

  Scratch s_;
  std::unique_ptr<S3Server> srv_;
  std::unique_ptr<FaultProxy> proxy_;
  std::vector<std::string> env_;
  std::string segment_;
};

TEST_F(WalPushKillTest, KilledMidUploadLeavesNothingAndTheRetryArchivesIt) {
  PushAndKillAt("stall-request");
  if (HasFatalFailure()) return;
  EXPECT_TRUE(ServerKeys("repo/wal/").empty()) << "a partial WAL object is visible";

  // The retry (PostgreSQL's next attempt): not there, so uploaded whole. The
  // request budget of a push with a machine key: key slot, config, header, PUT.
  RunResult retry = Bw(true, Push());
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_EQ(retry.JsonLine("summary")["already_archived"], false);
  nlohmann::json req = retry.JsonLine("storage_requests");
  EXPECT_EQ(req["get"], 3) << req;
  EXPECT_EQ(req["put"], 1) << req;
  EXPECT_EQ(req["head"], 0) << req;
  EXPECT_EQ(req["list"], 0) << req;
  EXPECT_EQ(ServerKeys("repo/wal/"), std::vector<std::string>{"repo/wal/main/000000010000000000000042"});
  ExpectArchivedEqualsFile();

  // And again: already archived, no upload.
  RunResult second = Bw(true, Push());
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(second.JsonLine("summary")["already_archived"], true);
  EXPECT_EQ(second.JsonLine("storage_requests")["put"], 0);
}

TEST_F(WalPushKillTest, KilledAfterTheServerStoredItTheRetryFindsItArchived) {
  // The proxy forwards the whole PUT (the server stores the object) and holds
  // the answer: wal-push dies without knowing it succeeded.
  PushAndKillAt("stall");
  if (HasFatalFailure()) return;
  EXPECT_EQ(ServerKeys("repo/wal/"), std::vector<std::string>{"repo/wal/main/000000010000000000000042"});
  RunResult retry = Bw(true, Push());
  ASSERT_EQ(retry.exit_code, 0) << retry.err;
  EXPECT_EQ(retry.JsonLine("summary")["already_archived"], true);
  EXPECT_EQ(retry.JsonLine("storage_requests")["put"], 0);
  ExpectArchivedEqualsFile();
}


// pg info (base backups, WAL runs and gaps, PITR window), pg check (a forced
// switch arrives; a broken archive_command is reported), and WAL expiry when
// forget removes a base backup.
TEST_F(WalPostgresTest, InfoCheckAndExpiryAfterForget) {
  std::string why;
  auto pg = StartArchiving(&why);
  if (!pg) GTEST_SKIP() << why;
  ArchiveSegments(*pg, 2);
  nlohmann::json b1 = BaseBackup(*pg);
  ArchiveSegments(*pg, 2);
  nlohmann::json b2 = BaseBackup(*pg);
  std::vector<std::string> after = ArchiveSegments(*pg, 2);
  ASSERT_FALSE(HasFailure());

  RunResult info = Bk({"--json", "pg", "info", "--source", "main"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  nlohmann::json i = info.JsonLine("pg_info");
  ASSERT_EQ(i["base_backups"].size(), 2u) << info.out;
  EXPECT_EQ(i["base_backups"][0]["snapshot_id"], b1["snapshot_id"]);
  EXPECT_EQ(i["base_backups"][0]["wal_consistent"], true);
  EXPECT_EQ(i["base_backups"][1]["wal_consistent"], true);
  EXPECT_EQ(i["wal"]["gaps"], 0) << info.out;
  EXPECT_EQ(i["pitr"]["earliest"], b1["facts"]["postgres"]["stop_time"]);
  ASSERT_TRUE(i["pitr"]["latest"].is_string()) << info.out;
  EXPECT_GT(i["pitr"]["window_seconds"].get<double>(), 0.0);
  const std::string last_segment = i["wal"]["timelines"][0]["runs"][0]["last"];
  EXPECT_GE(last_segment, after.back());

  // pg check: the forced switch reaches the repository.
  RunResult check = Bk({"--json", "pg", "check", "--source", "main", "--conninfo", pg->conninfo()});
  ASSERT_EQ(check.exit_code, 0) << check.err;
  nlohmann::json c = check.JsonLine("pg_check");
  EXPECT_EQ(c["arrived"], true);
  EXPECT_TRUE(fs::exists(repo_ + "/wal/main/" + c["segment"].get<std::string>()));
  // Readable (superuser); the segment just archived may still be marked
  // .ready for a moment: PostgreSQL renames it after wal-push returns.
  EXPECT_GE(c["ready_files"].get<int>(), 0);
  EXPECT_LE(c["ready_files"].get<int>(), 1);

  // forget the first base backup: WAL before the second one's start expires.
  const std::string b2_start = b2["facts"]["postgres"]["start_wal_segment"];
  RunResult dry = Bk({"--json", "forget", "--dry-run", b1["snapshot_id"].get<std::string>()});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  nlohmann::json would = dry.JsonLine("wal_expired");
  ASSERT_TRUE(would.is_object()) << dry.out;
  EXPECT_EQ(would["dry_run"], true);
  ASSERT_FALSE(would["files"].empty());
  for (const auto& f : would["files"]) EXPECT_TRUE(fs::exists(repo_ + "/wal/main/" + f.get<std::string>())) << f;

  RunResult forget = Bk({"--json", "forget", b1["snapshot_id"].get<std::string>()});
  ASSERT_EQ(forget.exit_code, 0) << forget.err;
  nlohmann::json gone = forget.JsonLine("wal_expired");
  EXPECT_EQ(gone["files"], would["files"]);
  EXPECT_EQ(gone["kept_base_backups"], 1);
  for (const auto& f : gone["files"]) {
    EXPECT_LT(f.get<std::string>().substr(0, 24), b2_start) << f;
    EXPECT_FALSE(fs::exists(repo_ + "/wal/main/" + f.get<std::string>())) << f;
  }
  EXPECT_TRUE(fs::exists(repo_ + "/wal/main/" + b2_start)) << "the kept base backup's WAL was expired";
  i = Bk({"--json", "pg", "info", "--source", "main"}).JsonLine("pg_info");
  EXPECT_EQ(i["base_backups"].size(), 1u);
  EXPECT_EQ(i["base_backups"][0]["wal_consistent"], true);
  EXPECT_EQ(i["wal"]["timelines"][0]["runs"][0]["first"], b2_start);
  EXPECT_EQ(i["pitr"]["earliest"], b2["facts"]["postgres"]["stop_time"]);

  // A segment lost from the archive is a gap.
  fs::remove(repo_ + "/wal/main/" + after[0]);
  i = Bk({"--json", "pg", "info", "--source", "main"}).JsonLine("pg_info");
  EXPECT_EQ(i["wal"]["gaps"], 1) << i.dump();

  // A broken archive_command: the check fails, naming the segment.
  pg->Query("ALTER SYSTEM SET archive_command = 'false'");
  pg->Query("SELECT pg_reload_conf()");
  check = Bk({"--json", "pg", "check", "--source", "main", "--conninfo", pg->conninfo(), "--timeout", "3"});
  EXPECT_NE(check.exit_code, 0);
  EXPECT_EQ(check.JsonLine("pg_check")["arrived"], false) << check.out;
  EXPECT_GE(check.JsonLine("pg_check")["ready_files"].get<int>(), 1) << check.out;  // the switched segment waits
  EXPECT_NE(check.err.find("was not archived"), std::string::npos) << check.err;
}


// The whole chain as an operator runs it: WAL archived by wal-push, a base
// backup by bulwark, `pg restore --target-time` with its default
// restore_command (bulwark wal-fetch with the machine key file), the server
// started on it: it holds exactly the rows committed before the target.
TEST_F(WalPostgresTest, PitrThroughWalFetchWithTheDefaultRestoreCommand) {
  std::string why;
  auto pg = StartArchiving(&why);
  if (!pg) GTEST_SKIP() << why;
  pg->Query("CREATE TABLE ev(id serial PRIMARY KEY, ts timestamptz DEFAULT clock_timestamp(), phase text)");
  ASSERT_TRUE(BaseBackup(*pg).is_object());
  pg->Query("INSERT INTO ev(phase) VALUES ('A'); INSERT INTO ev(phase) VALUES ('A');");
  const std::string t = pg->Query(
      "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
  ASSERT_TRUE(WaitFor([&] { return pg->Query("SELECT clock_timestamp() > '" + t + "'::timestamptz") == "t"; }, 10));
  pg->Query("INSERT INTO ev(phase) VALUES ('B')");
  ArchiveSegments(*pg, 1);
  ASSERT_FALSE(HasFailure());

  PgTempDir restored;
  RunResult r = Bk({"--json", "pg", "restore", "--source", "main", "--target-dir", restored.data(),
                    "--target-time", t});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string rc = r.JsonLine("summary").dump();
  EXPECT_NE(rc.find("wal-fetch --source"), std::string::npos) << rc;
  EXPECT_NE(rc.find("--key-file"), std::string::npos) << rc;
  auto server = PgServer::StartExisting(restored.path(), &why);
  ASSERT_TRUE(server) << why;
  ASSERT_TRUE(WaitFor([&] { return server->Query("SELECT pg_is_in_recovery()") == "f"; }, 60)) << server->Log();
  EXPECT_EQ(server->Query("SELECT string_agg(phase, ',' ORDER BY id) FROM ev"), "A,A") << server->Log();
}


// copy of a physical base backup takes the source's WAL along: the off-site
// repository can recover to any point, and a second copy moves no WAL.
TEST_F(WalPostgresTest, CopyTakesTheWalOfBaseBackupsAlong) {
  std::string why;
  auto pg = StartArchiving(&why);
  if (!pg) GTEST_SKIP() << why;
  ArchiveSegments(*pg, 1);
  ASSERT_TRUE(BaseBackup(*pg).is_object());
  std::vector<std::string> segs = ArchiveSegments(*pg, 2);
  ASSERT_FALSE(HasFailure());

  const std::string dst = s_.Path("offsite");
  std::vector<std::string> env = s_.Env();
  env.push_back("BULWARK_FROM_PASSWORD_FILE=" + s_.Path("password"));
  ASSERT_EQ(bulwark::testing::Run({BulwarkBin(), "--repo", dst, "init", "--kdf-ops", "1", "--kdf-memory", "8MiB"}, env).exit_code, 0);
  RunResult c = bulwark::testing::Run({BulwarkBin(), "--repo", dst, "--json", "copy", "--from-repo", repo_}, env);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  nlohmann::json w = c.JsonLine("wal_copied");
  ASSERT_TRUE(w.is_object()) << c.out;
  size_t archived = 0;
  for (const auto& e : fs::directory_iterator(repo_ + "/wal/main")) archived += e.is_regular_file();
  EXPECT_EQ(w["files"].get<size_t>(), archived);
  EXPECT_GT(archived, 2u);
  // The copy decrypts under the destination's key and is the same file.
  std::string dest = s_.Path("fetched");
  RunResult f = bulwark::testing::Run({BulwarkBin(), "--repo", dst, "wal-fetch", "--source", "main", segs.back(), dest}, env);
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_TRUE(ReadFileOrDie(dest) == ReadFileOrDie(pg->data_dir() + "/pg_wal/" + segs.back()));
  RunResult info = bulwark::testing::Run({BulwarkBin(), "--repo", dst, "--json", "pg", "info", "--source", "main"}, env);
  EXPECT_EQ(info.JsonLine("pg_info")["base_backups"][0]["wal_consistent"], true) << info.out;
  // A second copy moves nothing.
  c = bulwark::testing::Run({BulwarkBin(), "--repo", dst, "--json", "copy", "--from-repo", repo_}, env);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(c.JsonLine("wal_copied")["files"], 0);
  EXPECT_EQ(c.JsonLine("wal_copied")["present"].get<size_t>(), archived);
}

}  // namespace
}  // namespace bulwark::testing
