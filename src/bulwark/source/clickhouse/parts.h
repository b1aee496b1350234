// mode parts of the ClickHouse source (backup.h): freezing MergeTree tables
// and storing their parts, with bulwark on the server's host.
//
// ALTER TABLE db.t FREEZE makes hard links of the table's active parts under
// <path>/shadow/N/<the table's data path relative to <path>>/, where N is the
// number the server keeps in shadow/increment.txt (one per FREEZE
// statement). ClickHouse 18.16 freezes a whole table at one instant; a
// server that does not know FREEZE without PARTITION (older ones) gets one
// FREEZE PARTITION ID per partition (each partition then at its own
// instant). Right after the statement, bulwark moves the table's frozen
// parts into its own staging directory, <path>/shadow/bulwark.<source>/,
// and removes shadow/N. The staging directory is removed when the backup
// ends, successfully or not.
//
// A backup killed on the way leaves the staging directory, and (between a
// FREEZE and the move) shadow/N: before each FREEZE bulwark writes
// shadow/bulwark.<source>.intent naming the table and the increment before
// the statement, so the next backup of the source (CleanShadow) removes
// exactly the shadow/N that FREEZE made (those after that increment holding
// nothing but that table) and the staging directory. Two backups of one
// source at once are refused (an flock on shadow/bulwark.<source>.lock).
//
// The hard links cost no space while the parts are active; a part merged
// away meanwhile keeps its disk space until the staging directory goes.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bulwark/ops/backup.h"
#include "bulwark/source/clickhouse/http.h"

namespace bulwark::source::clickhouse {

struct TableInfo;

// A table's frozen parts, staged.
struct FrozenTable {
  std::string key;                 // "db.t"
  std::string dir;                 // the staging directory of the table: one subdirectory per part
  std::vector<std::string> parts;  // part names, sorted
  int freezes = 0;                 // FREEZE statements run (1, or one per partition)
};

// What Store put into the snapshot.
struct PartsStored {
  uint64_t rows = 0;   // sum of the parts' count.txt
  uint64_t bytes = 0;  // sum of the parts' file sizes
  std::vector<std::string> parts;
  std::map<std::string, uint64_t> partition_rows;  // partition id -> rows
  uint64_t reused = 0;  // parts taken unchanged from the parent snapshot (not read)
};

// The server's <path> ("/var/lib/clickhouse/", with a trailing '/'):
// `configured` when set, else derived from system.databases' data_path of
// the `system` database ("<path>data/system/"). Throws kSourceFailed when
// the directory is not there or has no shadow/ parent (not this host).
std::string ServerDataPath(Client& client, const std::string& configured);

// Removes what an interrupted parts backup of `source` left under
// <data_path>shadow/ (see above). Returns the removed paths. Holds no lock:
// call with PartsBackup's lock held, or when no backup of the source runs.
std::vector<std::string> CleanShadow(const std::string& data_path, const std::string& source);

class PartsBackup {
 public:
  // Takes the source's lock, removes an interrupted backup's leftovers
  // (logged as a notice), creates the staging directory. `data_path`: the
  // configured data_path, or "" (ServerDataPath).
  PartsBackup(Client& client, const std::string& source, const std::string& data_path);
  // Removes the staging directory (a failed backup too) and releases the lock.
  ~PartsBackup();
  PartsBackup(const PartsBackup&) = delete;
  PartsBackup& operator=(const PartsBackup&) = delete;

  // Freezes `table` and moves its frozen parts into the staging directory.
  // Throws kSourceFailed (the statement, or a shadow directory that is not
  // as expected).
  FrozenTable Freeze(const TableInfo& table);
  // Stores a frozen table's parts at `path` of `tree`: a part whose name,
  // file names and sizes and checksums.txt equal the parent snapshot's part
  // at the same path is referenced (TreeBackup::AddUnchanged), others are
  // read (AddLocal). Then removes the table's staged parts.
  PartsStored Store(ops::TreeBackup& tree, const FrozenTable& frozen, const std::string& path);
  // Removes the staging directory now (the destructor would).
  void Finish();

  const std::string& data_path() const { return data_path_; }
  const std::vector<std::string>& cleaned() const { return cleaned_; }  // what the constructor removed

 private:
  Client& client_;
  std::string source_, data_path_, staging_, intent_;
  int lock_fd_ = -1;
  std::vector<std::string> cleaned_;
};

// The partition id of a part name ("202401_1_1_0" -> "202401", "all_2_5_1_7"
// -> "all"): the part before the first '_'.
std::string PartitionOfPart(const std::string& part);

}  // namespace bulwark::source::clickhouse
