// Backup: walks paths (or reads a stream), chunks, deduplicates and stores
// content, writes trees, then the snapshot (the commit point).
//
// Pipeline (ARCHITECTURE.md "Data flow of a backup"): one walker thread lists
// directories depth-first and queues file jobs (bounded queue: backpressure);
// N worker threads read, chunk (FastCDC), hash, compress, encrypt and pack;
// one uploader thread writes packs and index objects (BlobSaver); one
// finaliser encodes directories in post-order as their files complete.
// Memory: O(workers x max chunk size) + packs in flight + directory entries
// of directories still open.
//
// Incremental: a file whose size, mtime, ctime and inode equal its entry in the
// parent snapshot (and whose blobs are all indexed) is not read.
//
// Errors: an entry that vanishes or cannot be read is reported through
// `on_error`, skipped, and the snapshot is marked partial. Repository errors
// (full disk, damaged index) abort the backup and store no snapshot.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bulwark/base/civil_time.h"
#include "bulwark/chunk/fastcdc.h"
#include "bulwark/repo/repository.h"

namespace bulwark::ops {

struct BackupProgress {
  std::atomic<uint64_t> files{0}, dirs{0}, bytes{0}, bytes_added{0}, errors{0};
  std::atomic<uint64_t> total_files{0}, total_bytes{0};  // from the scanner; may lag
  std::atomic<bool> scan_done{false};
};

struct BackupOptions {
  std::vector<std::string> paths;     // absolute or relative; stored as absolute
  std::vector<std::string> excludes;  // glob patterns (fnmatch); see MatchesExclude
  bool one_file_system = false;
  std::vector<std::string> tags;
  std::string host;                // default: this host's name
  std::string source;              // configured source name, or ""
  std::optional<int64_t> time_ns;  // snapshot time override (UTC ns)
  // Expiry: the snapshot's expires_ns = time + ttl (calendar arithmetic in
  // UTC, CalendarDuration::AddTo). Unset or zero: no expiry.
  std::optional<CalendarDuration> ttl;
  std::optional<std::string> parent;     // snapshot spec; default: latest matching
  bool force = false;                    // ignore the parent: re-read every file
  std::optional<chunk::Params> chunker;  // default: the repository's
  std::optional<int> compression;        // default: the repository's
  int threads = 0;                       // 0 = hardware concurrency
  nlohmann::json facts = nlohmann::json::object();
  BackupProgress* progress = nullptr;
  std::function<void(const std::string& path, const std::string& message)> on_error;
  // Called after every pack and index object is durable, right before the
  // snapshot is written; may throw to abort without a snapshot (the CLI
  // checks that its repository lock is still held).
  std::function<void()> before_commit;
};

struct BackupResult {
  repo::Snapshot snapshot;
  std::vector<std::string> errors;  // "path: message"
};

BackupResult BackupPaths(repo::Repository& repo, const BackupOptions& options);

// Backing up one directory under a name of its own: the tree of `dir` is
// stored as the directory "/<root_name>" of the snapshot (snapshot paths
// {"/" + root_name}: the layout BackupTar gives), with the pipeline,
// incremental rule and errors of BackupPaths. Made for a PostgreSQL data
// directory read in place between pg_backup_start and pg_backup_stop
// (source/postgres/physical.h): the caller picks what is stored (`select`),
// learns what was stored (`on_file`), and adds the files that only exist
// once every other file was read (backup_label, backup_manifest: `finish`).
//
// Parent: options.parent, else (unless options.force) the newest snapshot
// of the same kind, host, source and paths.
enum class EntryAction {
  kInclude,   // store the entry (a directory: with its contents)
  kSkip,      // leave it out
  kEmptyDir,  // a directory: store it, without its contents
};
struct DirectoryHooks {
  // Called for every entry below `dir` not excluded by options.excludes, on
  // the walking thread: its path relative to `dir` ("base/5/16396"), whether
  // it is a directory (not following symlinks), and the sorted names of all
  // entries of its directory (to recognise files by their siblings). Unset:
  // every entry is included.
  std::function<EntryAction(const std::string& rel, bool is_dir, const std::vector<std::string>& siblings)> select;
  // Called once for every regular file stored (read, or taken unchanged from
  // the parent), from worker threads (must be thread-safe): its relative
  // path, its size in bytes as stored, and its mtime (ns since the Unix
  // epoch, UTC).
  std::function<void(const std::string& rel, uint64_t size, int64_t mtime_ns)> on_file;
  // Called once every file was read and stored, before the root directory is
  // written: may add facts, and small files to the root directory ("name" ->
  // content; mode 0600, the owner of `dir`, mtime = now; a file of the same
  // name is replaced). May throw to store no snapshot.
  std::function<void(nlohmann::json* facts, std::vector<std::pair<std::string, std::string>>* files)> finish;
  // An entry that vanishes between listing and reading is left out silently
  // (not an error, the snapshot is not partial): a database server drops
  // and truncates files while it runs, and recovery replays it.
  bool ignore_vanished = false;
};
BackupResult BackupDirectory(repo::Repository& repo, const std::string& dir, const std::string& root_name,
                             const std::string& kind, const BackupOptions& options, const DirectoryHooks& hooks);

// Backs up the bytes readable from `fd` until EOF as one file named
// `stream_name` (kind "stdin" or "command"). `finish` is called after EOF,
// before anything is committed; it may throw (e.g. kSourceFailed when the
// producing command failed) to abort without a snapshot.
BackupResult BackupStream(repo::Repository& repo, int fd, const std::string& stream_name, const std::string& kind,
                          const BackupOptions& options, const std::function<void(nlohmann::json* facts)>& finish);

// One file of a multi-stream backup: the standard output of `argv` (stderr
// captured for error messages; forwarded to the log as warnings when
// `forward_stderr`). argv is recorded in the snapshot's facts: it must not
// hold secrets.
struct CommandStream {
  std::string name;  // file name in the snapshot's root (no '/')
  std::vector<std::string> argv;
  bool forward_stderr = false;
};

// Runs each command in turn and backs up its output as one file of the
// snapshot's root (snapshot paths "/<name>"; facts["streams"] lists name,
// size, sha256 and command of each). `finish` runs after the last command,
// before anything is committed. A command that cannot start, exits non-zero
// or dies by a signal throws Error(kSourceFailed) "stream 'NAME': PROGRAM
// exited with status N: <its stderr tail>" and stores no snapshot.
BackupResult BackupCommands(repo::Repository& repo, const std::vector<CommandStream>& streams, const std::string& kind,
                            const BackupOptions& options, const std::function<void(nlohmann::json* facts)>& finish);

// Building a snapshot entry by entry, for sources whose data are not one
// directory on disk or one stream: a database's tables streamed from its
// server beside files gathered from its data directory (the ClickHouse
// source, source/clickhouse/backup.h). The caller adds files (from a
// reader, from memory, from the local file system) and entries of the parent
// snapshot it knows to be unchanged, at paths of its choosing, then commits.
//
// Paths are relative to the snapshot's root ("db/table/data.native"); every
// component must be repo::IsSafeName. Directories on the way are created
// implicitly (mode 0700, this process's owner, the snapshot's time) and may
// be given their own metadata with AddLocal. Adding a path twice replaces the
// earlier entry. The snapshot's paths are "/<first component>" of each entry.
//
// Pipeline: the calling thread reads and finds chunk boundaries (FastCDC);
// options.threads workers hash, compress, encrypt and pack (as BackupTar).
// Memory: the read window (max chunk + 1 MiB), the queued chunks (at most 4
// maximal chunks), the packs in flight, and the tree of entries (~200 bytes
// an entry plus 32 a chunk).
//
// Errors: what a reader throws propagates, and whatever was added is
// abandoned (unreferenced data; the next prune removes it): no snapshot is
// written before Commit. Repository errors as in BackupPaths.
// Not thread-safe: one thread adds and commits.
class TreeBackup {
 public:
  // `kind` is the snapshot's kind ("clickhouse"). Indexes orphan packs first
  // (Repository::IndexOrphanPacks), as every backup does.
  TreeBackup(repo::Repository& repo, const BackupOptions& options, const std::string& kind);
  ~TreeBackup();
  TreeBackup(const TreeBackup&) = delete;
  TreeBackup& operator=(const TreeBackup&) = delete;

  // The parent: options.parent, else (unless options.force) the newest
  // snapshot of the same kind, host and source, whatever its paths; null
  // when there is none.
  const repo::Snapshot* parent() const;
  // The node at `path` in the parent's tree (trees are loaded on the way and
  // cached); nullopt without a parent or such an entry.
  std::optional<repo::Node> ParentNode(const std::string& path);
  // A tree blob of the repository (a directory node's subtree), decoded.
  repo::Tree LoadTree(const Id& id);

  // Reads up to `n` bytes into `buf`; 0 at the end. May throw.
  using Reader = std::function<size_t(uint8_t* buf, size_t n)>;
  // A regular file at `path` (mode 0600, this process's owner, the
  // snapshot's time) holding what `read` returns until it returns 0. Returns
  // its size; sets *sha256_hex to its SHA-256 when given.
  uint64_t AddStream(const std::string& path, const Reader& read, std::string* sha256_hex = nullptr);
  // A regular file at `path` holding `content` (metadata as AddStream).
  void AddFile(const std::string& path, std::string_view content);
  // The regular file or directory `local` of the file system, with its
  // metadata (ReadNode: mode, owner, times, xattrs), at `path`; a directory
  // with everything below it (regular files, directories, symlinks; other
  // types are refused). Returns the bytes read. Throws naming `local`.
  uint64_t AddLocal(const std::string& path, const std::string& local);
  // Puts `node` (an entry of the parent snapshot, found by ParentNode) at
  // `path` as it is: its content or subtree is referenced, not read again.
  // False, adding nothing, when a blob it needs is not in the index (pruned,
  // damaged): the caller then adds the entry afresh.
  bool AddUnchanged(const std::string& path, const repo::Node& node);
  // The content ids `data` gets as a file added by AddStream or AddFile:
  // lets a caller recognise an unchanged file of the parent (a small one it
  // has read anyway) without storing anything.
  std::vector<Id> ContentIds(std::string_view data);

  // Writes the trees, flushes the packs and writes the snapshot (the commit
  // point) with `facts` (added to options.facts); options.before_commit runs
  // first. Call once, after every Add.
  BackupResult Commit(const nlohmann::json& facts);

  struct Impl;  // backup.cc

 private:
  std::unique_ptr<Impl> impl_;
};

// Runs `argv` with stdout to a pipe and backs up its output. A non-zero exit
// or death by signal throws Error(kSourceFailed) and stores no snapshot.
BackupResult BackupCommand(repo::Repository& repo, const std::vector<std::string>& argv, const std::string& stream_name,
                           const BackupOptions& options);

// Walks `options.paths` (lstat only, honouring excludes and one_file_system)
// adding to progress->total_files / total_bytes, then sets scan_done. Meant to
// run on its own thread beside a backup so progress can show an ETA; stops
// early when `*stop` becomes true. Unreadable entries are ignored.
void ScanTotals(const BackupOptions& options, BackupProgress* progress, const std::atomic<bool>* stop);

// Exclude rule: a pattern without '/' matches the entry's name anywhere; a
// pattern with '/' matches the absolute path (fnmatch, '*' does not cross '/').
bool MatchesExclude(const std::vector<std::string>& patterns, const std::string& path, std::string_view name);

// Backing up a tar archive (ops/backup.cc): the members of the ustar, pax or
// GNU tar stream readable from `fd` (as libarchive reads it, uncompressed;
// e.g. `pg_basebackup -D - -Ft`) become a tree, so that unchanged members
// deduplicate across backups like the files of a directory.
//
// Tree: the snapshot's root holds one directory `root_name` (snapshot paths
// {"/" + root_name}), and below it every member at its path: names are
// normalised ("./pg_wal/x/" and "pg_wal/x" are the same entry; a leading '/'
// is dropped), directories the archive implies but does not list are created
// (mode 0700, the owner and mtime of the first member: the same archive gives
// the same tree), a member listed twice keeps its last version. Metadata
// comes from the tar header: type (file, directory, symlink, hardlink, FIFO,
// device), permission bits, uid/gid and their names, mtime (seconds in
// ustar, nanoseconds in pax), size, link target, xattrs (pax SCHILY.xattr).
// Holes of sparse members are stored as zeros (the node is marked sparse).
// The root directory takes the metadata of a "." member when there is one,
// else those of an implied directory.
//
// Pipeline: this thread reads the archive and finds chunk boundaries
// (FastCDC); `options.threads` workers hash, compress, encrypt and pack the
// chunks (BlobSaver). Memory: the read window (max chunk + 1 MiB), chunks
// queued for the workers (at most 4 maximal chunks' worth) or being worked
// on (one a worker), up to 8 spare chunk buffers, the packs in flight, and
// the tree of entries (no content, ~200 bytes an entry plus 32 a chunk).
//
// Errors: an unreadable or malformed stream (truncated member, bad header,
// unsafe name such as "..") throws Error(kSourceFailed, "tar stream: ...")
// and stores no snapshot; so does `hooks.finish` throwing. Whether the
// archive is complete (libarchive accepts a stream that ends between members
// without the end-of-archive blocks) is for the caller to check, e.g. by a
// last member it expects (pg_basebackup's backup_manifest).
// Repository errors propagate as in BackupPaths. Summary: files_new counts
// file members, dirs directories, other_entries the rest.
struct TarHooks {
  // Members whose whole content the caller also wants in memory (small ones:
  // backup_label, a manifest); asked once per member with its normalised path.
  std::function<bool(const std::string& path)> want_content;
  // Receives each wanted member's content, right after the member was read.
  std::function<void(const std::string& path, std::string content)> on_content;
  // Called after the archive's end (the rest of `fd` is read to EOF first, so
  // a producer writing into a pipe has finished writing) and before anything
  // is committed; may add to the snapshot's facts, or throw to store no
  // snapshot (e.g. kSourceFailed when the producer failed).
  std::function<void(nlohmann::json* facts)> finish;
};

BackupResult BackupTar(repo::Repository& repo, int fd, const std::string& root_name, const std::string& kind,
                       const BackupOptions& options, const TarHooks& hooks);

// The path of a tar member as BackupTar stores it: "./" prefixes, a leading
// '/', empty and "." components and a trailing '/' removed ("./pg_wal/" ->
// "pg_wal", "./" -> ""). Throws Error(kSourceFailed) when a component is
// ".." or otherwise unsafe (repo::IsSafeName).
std::string NormalizeTarPath(std::string_view path);

}  // namespace bulwark::ops
