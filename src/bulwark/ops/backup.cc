#include "bulwark/ops/backup.h"

#include <archive.h>  // libarchive (Debian's libarchive-dev): reads the tar format (BackupTar)
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "bulwark/base/error.h"
#include "bulwark/base/log.h"
#include "bulwark/base/subprocess.h"
#include "bulwark/base/sys.h"
#include "bulwark/ops/fsmeta.h"
#include "bulwark/repo/blob_saver.h"

namespace bulwark::ops {

using repo::BlobType;
using repo::Node;
using repo::NodeType;
using repo::Tree;

bool MatchesExclude(const std::vector<std::string>& patterns, const std::string& path, std::string_view name) {
  std::string n(name);
  for (const auto& p : patterns) {
    if (p.find('/') != std::string::npos) {
      if (fnmatch(p.c_str(), path.c_str(), FNM_PATHNAME) == 0) return true;
    } else if (fnmatch(p.c_str(), n.c_str(), 0) == 0) {
      return true;
    }
  }
  return false;
}

namespace {

std::string AbsolutePath(const std::string& p) {
  std::string abs = p;
  if (abs.empty() || abs[0] != '/') {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) throw ErrnoError("getcwd", "");
    abs = std::string(cwd) + "/" + p;
  }
  // Normalise "//", "/./", trailing "/", and "..".
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < abs.size()) {
    size_t j = abs.find('/', i);
    if (j == std::string::npos) j = abs.size();
    std::string c = abs.substr(i, j - i);
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!c.empty() && c != ".") {
      parts.push_back(c);
    }
    i = j + 1;
  }
  std::string out;
  for (auto& c : parts) out += "/" + c;
  return out.empty() ? "/" : out;
}

// One directory being assembled. Owned by the walker until queued for the
// finaliser, which deletes it after writing its tree.
struct DirState {
  std::string path;
  std::vector<Node> nodes;   // fixed size once listed
  std::vector<char> failed;  // 1: drop the node (vanished/unreadable)
  std::atomic<int> pending{0};
  DirState* parent = nullptr;
  size_t index_in_parent = 0;
};

// A repository-side failure (full disk, upload error) inside file processing:
// aborts the whole backup instead of skipping the file.
struct RepositoryFailure {
  bulwark::Error error;
};

// An entry that is in no file system (a file of the caller's, a directory a
// tar implies): `mode`, the owner of `owner`, mtime and ctime `time_ns`.
Node SyntheticNode(NodeType type, uint32_t mode, const Node& owner, int64_t time_ns) {
  Node n;
  n.type = type;
  n.mode = mode;
  n.uid = owner.uid;
  n.gid = owner.gid;
  n.user = owner.user;
  n.group = owner.group;
  n.mtime_ns = n.ctime_ns = time_ns;
  n.nlink = 1;
  return n;
}

constexpr size_t kMaxJobs = 4096;  // queued file jobs: bounds the walker's lead

struct FileJob {
  DirState* dir;
  size_t index;
  std::string path;
};

class Backup {
  friend class TarBackup;  // BackupTar (end of file) reuses the chunker, saver and Commit
  friend class ChunkWorkers;
  friend class bulwark::ops::TreeBackup;  // TreeBackup too
  friend struct bulwark::ops::TreeBackup::Impl;

 public:
  Backup(repo::Repository& repo, const BackupOptions& opts)
      : repo_(repo),
        opts_(opts),
        chunker_(opts.chunker.value_or(repo.config().chunker), repo.gear()),
        saver_(&repo, opts.compression.value_or(repo.config().compression)),
        progress_(opts.progress ? opts.progress : &own_progress_) {}

  BackupResult RunPaths();
  BackupResult RunStream(int fd, const std::string& name, const std::string& kind,
                         const std::function<void(nlohmann::json*)>& finish);
  BackupResult RunCommands(const std::vector<CommandStream>& streams, const std::string& kind,
                           const std::function<void(nlohmann::json*)>& finish);
  BackupResult RunDirectory(const std::string& dir, const std::string& root_name, const std::string& kind,
                            const DirectoryHooks& hooks);

 private:
  struct PathTrie {
    std::map<std::string, PathTrie> children;
    bool target = false;
  };

  void Error(const std::string& path, const std::string& msg) {
    progress_->errors++;
    std::lock_guard<std::mutex> lock(err_mu_);
    errors_.push_back(path + ": " + msg);
    if (opts_.on_error) opts_.on_error(path, msg);
  }

  // Content of a file (or stream) through the chunker into the saver.
  // Returns bytes read.
  // Regular files pass their size from fstat (`file_size`, read up to
  // there: no extra read() to see EOF) and whether they are sparse (holes
  // are not read, SEEK_DATA, but filled with zeros). Streams pass 0/false.
  uint64_t StoreContent(int fd, std::vector<Id>* content, Bytes* buf, crypto::Sha256Stream* sha, uint64_t file_size = 0,
                        bool sparse = false);
  // Sets parent_ (unless options.force): options.parent, else the newest
  // snapshot of `kind` with the same source, host and paths.
  void FindParent(const std::string& kind, const std::vector<std::string>& paths);
  // The cut and id of a maximal all-zero chunk (computed once).
  void ZeroChunk(size_t* cut, Id* id);
  void FileWorker();
  void Finaliser();
  void WalkDir(const std::string& path, DirState* parent, size_t index, const Node* parent_node, dev_t root_dev);
  // WalkDir, returning the directory instead of queueing it for the finaliser.
  std::unique_ptr<DirState> ListDir(const std::string& path, DirState* parent, size_t index, const Node* parent_node,
                                    dev_t root_dev);
  // A file node (mode 0600, owner of `owner`) holding `content`, stored.
  Node MemoryFile(const std::string& name, std::string_view content, const Node& owner);
  // `path` relative to the directory of RunDirectory.
  std::string Relative(const std::string& path) const { return path.substr(hook_root_.size() + 1); }
  // One file job done (or dropped): wakes RunDirectory waiting for all reads.
  void FileDone(DirState* d);
  // A file that vanished (kNotFound) while hooks_->ignore_vanished: dropped
  // without an error.
  bool Vanished(const bulwark::Error& e) const {
    return hooks_ && hooks_->ignore_vanished && e.code() == ErrorCode::kNotFound;
  }
  void WalkTrie(const PathTrie& trie, const std::string& path, DirState* parent, size_t index, const Node* parent_node);
  void Submit(FileJob job);
  bool Failing() {
    std::lock_guard<std::mutex> lock(q_mu_);
    return fatal_.has_value();
  }
  void Fail(const bulwark::Error& e) {
    std::lock_guard<std::mutex> lock(q_mu_);
    if (!fatal_) fatal_ = e;
    space_cv_.notify_all();
  }
  // lstat + metadata of `child` appended to `d` (false, reported, if unreadable).
  bool AddEntry(DirState* d, const std::string& child, const std::string& name, std::vector<struct stat>* stats);
  // A regular file: reuse the parent's content or queue it for reading.
  void HandleFile(DirState* d, size_t i, const std::string& child, const Node* parent_node);
  void QueueDir(std::unique_ptr<DirState> d);
  std::optional<Tree> ParentSubtree(const Node* parent_node);
  bool ReuseFromParent(const Node& parent, Node* node);
  void StartThreads();
  void StopThreads();
  // Flushes the saver, then writes the snapshot (the commit point) of tree
  // `root` with `facts` and the summary, timed from `t0`, after
  // options.before_commit; partial when any entry failed.
  BackupResult Commit(const Id& root, const std::vector<std::string>& paths, const std::string& kind,
                      nlohmann::json facts, std::chrono::steady_clock::time_point t0);
  // One stream read to EOF as a file node of the root; fills name, size and
  // sha256 into *stream_facts.
  repo::Node StreamNode(int fd, const std::string& name, nlohmann::json* stream_facts);
  // Saves `tree` as the root, then the snapshot (paths: "/<name>" each).
  BackupResult CommitStreams(Tree tree, const std::string& kind, nlohmann::json facts,
                             std::chrono::steady_clock::time_point t0);

  repo::Repository& repo_;
  const BackupOptions& opts_;
  chunk::Chunker chunker_;
  repo::BlobSaver saver_;
  BackupProgress own_progress_;
  BackupProgress* progress_;
  std::optional<repo::Snapshot> parent_;
  const DirectoryHooks* hooks_ = nullptr;  // RunDirectory's
  std::string hook_root_;                  // RunDirectory's directory
  uint64_t inflight_ = 0;                  // file jobs queued or being read (under q_mu_)

  std::mutex err_mu_;
  std::vector<std::string> errors_;

  std::mutex q_mu_;
  std::condition_variable job_cv_;    // a job was queued (or the queue closed)
  std::condition_variable space_cv_;  // the job queue has room again
  std::deque<FileJob> jobs_;
  bool jobs_closed_ = false;
  std::deque<std::unique_ptr<DirState>> dir_queue_;
  bool dirs_closed_ = false;
  std::condition_variable done_cv_;  // a directory's pending count reached 0
  std::optional<bulwark::Error> fatal_;
  Id root_id_;
  std::vector<std::thread> workers_;
  std::thread finaliser_;
  std::atomic<uint64_t> files_new_{0}, files_changed_{0}, files_unmodified_{0}, dirs_{0}, others_{0};
  std::once_flag zero_once_;
  size_t zero_cut_ = 0;
  Id zero_id_;
};

void Backup::FindParent(const std::string& kind, const std::vector<std::string>& paths) {
  if (opts_.force) return;
  if (opts_.parent) {
    parent_ = repo_.ResolveSnapshot(*opts_.parent, {});
    return;
  }
  std::string host = opts_.host.empty() ? sys::Hostname() : opts_.host;
  for (auto& s : repo_.LoadSnapshots([](const bulwark::Error& e) { log::Warn(e.what()); }))
    if (s.kind == kind && s.host == host && s.source == opts_.source && s.paths == paths) parent_ = s;
}

void Backup::ZeroChunk(size_t* cut, Id* id) {
  std::call_once(zero_once_, [&] {
    Bytes zeros(chunker_.params().max_size, 0);
    zero_cut_ = chunker_.FindCut(zeros, false);
    zero_id_ = repo_.ids().Mac(ByteSpan(zeros.data(), zero_cut_));
  });
  *cut = zero_cut_;
  *id = zero_id_;
}

static bool AllZero(const uint8_t* p, size_t n) {
  static const uint8_t zeros[4096] = {};
  for (size_t i = 0; i < n; i += sizeof zeros)
    if (std::memcmp(p + i, zeros, std::min(sizeof zeros, n - i)) != 0) return false;
  return true;
}

uint64_t Backup::StoreContent(int fd, std::vector<Id>* content, Bytes* buf, crypto::Sha256Stream* sha,
                              uint64_t file_size, bool sparse) {
  const uint64_t sparse_size = sparse ? file_size : 0;
  const size_t max = chunker_.params().max_size;
  // One maximal chunk plus a read-ahead window: enough to always find a cut.
  const size_t want = max + (1u << 20);
  if (buf->size() != want) buf->resize(want);
  size_t start = 0, end = 0;
  bool eof = false;
  uint64_t total = 0;
  uint64_t file_pos = 0;  // next byte of the file to fill into buf
  for (;;) {
    ByteSpan avail(buf->data() + start, end - start);
    size_t cut = 0;
    Id id;
    bool zero_run = false;
    if (avail.size() >= max && avail[0] == 0 && avail[max - 1] == 0 && AllZero(avail.data(), max)) {
      ZeroChunk(&cut, &id);  // boundaries inside a zero run depend only on the zeros
      zero_run = true;
    } else if (!avail.empty()) {
      cut = chunker_.FindCut(avail, eof);
    }
    if (cut == 0) {
      // No cut in what is buffered (less than a maximal chunk, not at EOF):
      // read more. Only the unconsumed tail moves to the front, once per
      // refill, not the whole window at every chunk.
      if (eof) break;
      if (start > 0) {
        std::memmove(buf->data(), buf->data() + start, end - start);
        end -= start;
        start = 0;
      }
      while (end < buf->size()) {
        size_t room = buf->size() - end;
        if (file_size > 0 && file_pos >= file_size) {
          eof = true;  // the size fstat saw; a file growing meanwhile is cut there
          break;
        }
        if (sparse_size > 0) {
          if (file_pos >= sparse_size) {
            eof = true;
            break;
          }
          off_t data = ::lseek(fd, static_cast<off_t>(file_pos), SEEK_DATA);
          uint64_t hole_end = data < 0 ? sparse_size : static_cast<uint64_t>(data);  // ENXIO: hole to EOF
          if (hole_end > file_pos) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(room, hole_end - file_pos));
            std::memset(buf->data() + end, 0, n);
            end += n;
            file_pos += n;
            continue;
          }
          if (::lseek(fd, static_cast<off_t>(file_pos), SEEK_SET) < 0) throw ErrnoError("seeking", "");
        }
        ssize_t n = ::read(fd, buf->data() + end, room);
        if (n < 0) {
          if (errno == EINTR) continue;
          throw ErrnoError("reading", "");
        }
        if (n == 0) {
          eof = true;
          break;
        }
        end += static_cast<size_t>(n);
        file_pos += static_cast<uint64_t>(n);
        if (sha) break;  // streams (pipes): process what arrived
        if (sparse_size > 0) {
          // Read only up to the next hole, so holes are never read.
          off_t hole = ::lseek(fd, static_cast<off_t>(file_pos), SEEK_HOLE);
          if (hole >= 0 && static_cast<uint64_t>(hole) == file_pos) continue;
        }
      }
      continue;
    }
    ByteSpan chunk = avail.subspan(0, cut);
    if (!zero_run) id = repo_.ids().Mac(chunk);
    if (sha) sha->Update(chunk);
    bool added;
    try {
      added = saver_.Save(BlobType::kData, chunk, id);
    } catch (const bulwark::Error& e) {
      throw RepositoryFailure{e};
    }
    if (added) progress_->bytes_added += cut;
    content->push_back(id);
    progress_->bytes += cut;
    total += cut;
    start += cut;
  }
  return total;
}

bool Backup::ReuseFromParent(const Node& p, Node* node) {
  if (opts_.force || p.type != NodeType::kFile || p.size != node->size || p.mtime_ns != node->mtime_ns ||
      p.ctime_ns != node->ctime_ns || p.inode != node->inode)
    return false;
  for (const auto& id : p.content)
    if (!repo_.index().Has(id)) return false;  // pruned or damaged: read again
  node->content = p.content;
  return true;
}

void Backup::FileWorker() {
  Bytes buf;
  for (;;) {
    FileJob job;
    {
      std::unique_lock<std::mutex> lock(q_mu_);
      job_cv_.wait(lock, [&] { return !jobs_.empty() || jobs_closed_; });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      if (jobs_.size() == kMaxJobs - 1) space_cv_.notify_one();  // the walker may be waiting for room
    }
    Node& node = job.dir->nodes[job.index];
    bool ok = true;
    try {
      // O_NOATIME: reading must not dirty every inode (journal writes under
      // relatime); only the owner or root may ask for it, so retry without.
      const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
      int fd = ::open(job.path.c_str(), flags | O_NOATIME);
      if (fd < 0 && errno == EPERM) fd = ::open(job.path.c_str(), flags);
      if (fd < 0) throw ErrnoError("open", job.path);
      struct FdGuard {
        int fd;
        ~FdGuard() { ::close(fd); }
      } guard{fd};
      struct stat st;
      if (::fstat(fd, &st) != 0) throw ErrnoError("fstat", job.path);
      if (!S_ISREG(st.st_mode) || st.st_ino != node.inode)
        throw bulwark::Error(ErrorCode::kNotFound, "replaced by another entry during the backup");
      // O_NONBLOCK has no effect on regular files: no need to clear it.
      if (st.st_size > (1 << 20)) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
      node.content.clear();
      uint64_t size = static_cast<uint64_t>(st.st_size);
      uint64_t n =
          WithContext(job.path, [&] { return StoreContent(fd, &node.content, &buf, nullptr, size, node.sparse); });
      node.size = n;
      progress_->files++;
      if (hooks_ && hooks_->on_file) hooks_->on_file(Relative(job.path), node.size, node.mtime_ns);
    } catch (const RepositoryFailure& f) {
      std::lock_guard<std::mutex> lock(q_mu_);
      if (!fatal_) fatal_ = f.error;
      space_cv_.notify_all();
      ok = false;
    } catch (const bulwark::Error& e) {
      if (Vanished(e)) {
        ok = false;
      } else if (e.code() == ErrorCode::kNotFound || e.code() == ErrorCode::kPermission || e.code() == ErrorCode::kIo) {
        Error(job.path, e.what());
        ok = false;
      } else {
        std::lock_guard<std::mutex> lock(q_mu_);
        if (!fatal_) fatal_ = e;
        ok = false;
      }
    }
    if (!ok) job.dir->failed[job.index] = 1;
    FileDone(job.dir);
  }
}

void Backup::FileDone(DirState* d) {
  std::lock_guard<std::mutex> lock(q_mu_);
  --inflight_;
  if (--d->pending == 0 || inflight_ == 0) done_cv_.notify_all();
}

void Backup::Finaliser() {
  for (;;) {
    std::unique_ptr<DirState> d;
    {
      std::unique_lock<std::mutex> lock(q_mu_);
      done_cv_.wait(lock, [&] { return !dir_queue_.empty() || dirs_closed_; });
      if (dir_queue_.empty()) return;
      d = std::move(dir_queue_.front());
      dir_queue_.pop_front();
      done_cv_.wait(lock, [&] { return d->pending.load() == 0; });
      if (fatal_) continue;
    }
    try {
      Tree t;
      t.nodes.reserve(d->nodes.size());
      for (size_t i = 0; i < d->nodes.size(); ++i)
        if (!d->failed[i]) t.nodes.push_back(std::move(d->nodes[i]));
      Id id = saver_.SaveTree(t);
      if (d->parent)
        d->parent->nodes[d->index_in_parent].subtree = id;
      else
        root_id_ = id;
      progress_->dirs++;
    } catch (const bulwark::Error& e) {
      std::lock_guard<std::mutex> lock(q_mu_);
      if (!fatal_) fatal_ = e;
    }
  }
}

void Backup::Submit(FileJob job) {
  std::unique_lock<std::mutex> lock(q_mu_);
  space_cv_.wait(lock, [&] { return jobs_.size() < kMaxJobs || fatal_; });
  if (fatal_) {
    // The backup is failing: do not queue more work. The job's directory is
    // still owned by the walker and queued for the finaliser, which skips it;
    // nothing may be freed while workers can still reach it, so this must not
    // throw (RunPaths rethrows fatal_ after all threads stopped).
    job.dir->failed[job.index] = 1;
    --job.dir->pending;
    done_cv_.notify_all();
    return;
  }
  ++inflight_;
  jobs_.push_back(std::move(job));
  job_cv_.notify_one();
}

void Backup::QueueDir(std::unique_ptr<DirState> d) {
  std::lock_guard<std::mutex> lock(q_mu_);
  dir_queue_.push_back(std::move(d));
  done_cv_.notify_all();
}

std::optional<Tree> Backup::ParentSubtree(const Node* parent_node) {
  if (!parent_node || parent_node->type != NodeType::kDir || parent_node->subtree.IsZero()) return std::nullopt;
  try {
    return repo_.LoadTree(parent_node->subtree);
  } catch (const bulwark::Error& e) {
    log::Warn(std::string("parent snapshot: ") + e.what() + " (reading those files again)");
    return std::nullopt;
  }
}

bool Backup::AddEntry(DirState* d, const std::string& child, const std::string& name, std::vector<struct stat>* stats) {
  Node n;
  struct stat st;
  try {
    ReadNode(child, name, &n, &st);
  } catch (const bulwark::Error& e) {
    if (!Vanished(e)) Error(child, e.what());
    return false;
  }
  d->nodes.push_back(std::move(n));
  stats->push_back(st);
  return true;
}

void Backup::HandleFile(DirState* d, size_t i, const std::string& child, const Node* pn) {
  Node& n = d->nodes[i];
  if (pn && ReuseFromParent(*pn, &n)) {
    files_unmodified_++;
    progress_->files++;
    progress_->bytes += n.size;
    if (hooks_ && hooks_->on_file) hooks_->on_file(Relative(child), n.size, n.mtime_ns);
    return;
  }
  (pn ? files_changed_ : files_new_)++;
  d->pending++;
  Submit({d, i, child});
}

void Backup::WalkDir(const std::string& path, DirState* parent, size_t index, const Node* parent_node, dev_t root_dev) {
  QueueDir(ListDir(path, parent, index, parent_node, root_dev));
}

std::unique_ptr<DirState> Backup::ListDir(const std::string& path, DirState* parent, size_t index,
                                          const Node* parent_node, dev_t root_dev) {
  auto d = std::make_unique<DirState>();
  d->path = path;
  d->parent = parent;
  d->index_in_parent = index;
  std::vector<std::string> names;
  if (DIR* dir = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(dir)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    ::closedir(dir);
  } else {
    Error(path, std::string("cannot list directory: ") + std::strerror(errno));
  }
  std::sort(names.begin(), names.end());
  std::optional<Tree> ptree = ParentSubtree(parent_node);
  std::string prefix = path == "/" ? "/" : path + "/";
  d->nodes.reserve(names.size());
  std::vector<struct stat> stats;
  stats.reserve(names.size());
  std::vector<char> empty_dir;  // per node: EntryAction::kEmptyDir
  for (const auto& name : names) {
    std::string child = prefix + name;
    if (MatchesExclude(opts_.excludes, child, name)) continue;
    if (!AddEntry(d.get(), child, name, &stats)) continue;
    EntryAction action = EntryAction::kInclude;
    if (hooks_ && hooks_->select)
      action = hooks_->select(Relative(child), d->nodes.back().type == NodeType::kDir, names);
    if (action == EntryAction::kSkip) {
      d->nodes.pop_back();
      stats.pop_back();
      continue;
    }
    empty_dir.push_back(action == EntryAction::kEmptyDir && d->nodes.back().type == NodeType::kDir);
  }
  d->failed.assign(d->nodes.size(), 0);
  // Parent lookup by name (both sorted).
  auto find_parent = [&](const std::string& name) -> const Node* {
    if (!ptree) return nullptr;
    auto it = std::lower_bound(ptree->nodes.begin(), ptree->nodes.end(), name,
                               [](const Node& a, const std::string& b) { return a.name < b; });
    return it != ptree->nodes.end() && it->name == name ? &*it : nullptr;
  };
  DirState* self = d.get();
  for (size_t i = 0; i < d->nodes.size(); ++i) {
    Node& n = d->nodes[i];
    std::string child = prefix + n.name;
    const Node* pn = find_parent(n.name);
    if (n.type == NodeType::kFile) {
      HandleFile(self, i, child, pn);
    } else if (n.type == NodeType::kDir) {
      dirs_++;
      if (empty_dir[i] || (opts_.one_file_system && stats[i].st_dev != root_dev)) {
        Tree empty;
        try {
          n.subtree = saver_.SaveTree(empty);  // without its contents (a mount point, or selected so)
        } catch (const bulwark::Error& e) {
          Fail(e);
        }
        continue;
      }
      if (Failing()) continue;
      WalkDir(child, self, i, pn, root_dev);
    } else {
      others_++;
    }
  }
  return d;
}

void Backup::WalkTrie(const PathTrie& trie, const std::string& path, DirState* parent, size_t index,
                      const Node* parent_node) {
  // A synthetic directory holding only the backed-up paths below it.
  auto d = std::make_unique<DirState>();
  d->path = path;
  d->parent = parent;
  d->index_in_parent = index;
  std::optional<Tree> ptree = ParentSubtree(parent_node);
  std::vector<const PathTrie*> subs;
  std::vector<struct stat> stats;
  for (const auto& [name, sub] : trie.children) {
    std::string child = (path == "/" ? "/" : path + "/") + name;
    if (AddEntry(d.get(), child, name, &stats)) subs.push_back(&sub);
  }
  d->failed.assign(d->nodes.size(), 0);
  DirState* self = d.get();
  for (size_t i = 0; i < d->nodes.size(); ++i) {
    Node& n = d->nodes[i];
    std::string child = (path == "/" ? "/" : path + "/") + n.name;
    const Node* pn = nullptr;
    if (ptree)
      for (const auto& pnode : ptree->nodes)
        if (pnode.name == n.name) pn = &pnode;
    if (subs[i]->target) {
      if (n.type == NodeType::kDir) {
        dirs_++;
        WalkDir(child, self, i, pn, stats[i].st_dev);
      } else if (n.type == NodeType::kFile) {
        HandleFile(self, i, child, pn);
      } else {
        others_++;
      }
    } else if (n.type == NodeType::kDir) {
      WalkTrie(*subs[i], child, self, i, pn);
    } else {
      self->failed[i] = 1;
      Error(child, "is not a directory");
    }
  }
  QueueDir(std::move(d));
}

void Backup::StartThreads() {
  int n = opts_.threads > 0 ? opts_.threads : static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) workers_.emplace_back([this] { FileWorker(); });
  finaliser_ = std::thread([this] { Finaliser(); });
}

void Backup::StopThreads() {
  {
    std::lock_guard<std::mutex> lock(q_mu_);
    jobs_closed_ = true;
  }
  job_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  {
    std::lock_guard<std::mutex> lock(q_mu_);
    dirs_closed_ = true;
  }
  done_cv_.notify_all();
  if (finaliser_.joinable()) finaliser_.join();
}

BackupResult Backup::Commit(const Id& root, const std::vector<std::string>& paths, const std::string& kind,
                            nlohmann::json facts, std::chrono::steady_clock::time_point t0) {
  saver_.Flush();  // packs and index objects are durable before the snapshot
  BackupResult r;
  repo::Snapshot& s = r.snapshot;
  s.time_ns = opts_.time_ns.value_or(repo::NowNs());
  if (opts_.ttl && !opts_.ttl->zero()) s.expires_ns = opts_.ttl->AddTo(s.time_ns, TimeZone());
  s.host = opts_.host.empty() ? sys::Hostname() : opts_.host;
  s.username = sys::Username();
  s.uid = geteuid();
  s.gid = getegid();
  s.source = opts_.source;
  s.kind = kind;
  s.paths = paths;
  s.tags = opts_.tags;
  s.excludes = opts_.excludes;
  if (parent_) s.parent = parent_->id;
  s.tree = root;
  s.partial = !errors_.empty();
  s.facts = std::move(facts);
  s.program_version = BULWARK_VERSION;
  s.summary.files_new = files_new_;
  s.summary.files_changed = files_changed_;
  s.summary.files_unmodified = files_unmodified_;
  s.summary.dirs = dirs_;
  s.summary.other_entries = others_;
  s.summary.bytes_processed = progress_->bytes;
  s.summary.bytes_added = saver_.stats().bytes_added;
  s.summary.bytes_stored = saver_.stats().bytes_stored;
  s.summary.blobs_added = saver_.stats().blobs_added;
  s.summary.errors = errors_.size();
  s.summary.duration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (opts_.before_commit) opts_.before_commit();
  repo_.SaveSnapshot(s);
  r.errors = errors_;
  return r;
}

BackupResult Backup::RunPaths() {
  auto t0 = std::chrono::steady_clock::now();
  if (opts_.paths.empty()) throw bulwark::Error(ErrorCode::kInvalidArgument, "nothing to back up: no paths given");
  PathTrie trie;
  std::vector<std::string> abs_paths;
  for (const auto& p : opts_.paths) {
    std::string abs = AbsolutePath(p);
    struct stat st;
    if (::lstat(abs.c_str(), &st) != 0) throw ErrnoError("backup path", abs);
    abs_paths.push_back(abs);
    PathTrie* t = &trie;
    if (abs == "/") {
      t->target = true;
      continue;
    }
    size_t i = 1;
    while (i <= abs.size()) {
      size_t j = abs.find('/', i);
      if (j == std::string::npos) j = abs.size();
      t = &t->children[abs.substr(i, j - i)];
      i = j + 1;
    }
    t->target = true;
  }
  std::sort(abs_paths.begin(), abs_paths.end());
  abs_paths.erase(std::unique(abs_paths.begin(), abs_paths.end()), abs_paths.end());

  FindParent("fs", abs_paths);
  std::optional<Node> parent_root;
  if (parent_) {
    parent_root.emplace();
    parent_root->type = NodeType::kDir;
    parent_root->subtree = parent_->tree;
  }

  StartThreads();
  // The walk does not throw past a DirState that workers may still reach:
  // failures are recorded in fatal_ and rethrown once every thread stopped.
  try {
    if (trie.target) {
      struct stat st;
      if (::lstat("/", &st) != 0) throw ErrnoError("stat", "/");
      WalkDir("/", nullptr, 0, parent_root ? &*parent_root : nullptr, st.st_dev);
    } else {
      WalkTrie(trie, "/", nullptr, 0, parent_root ? &*parent_root : nullptr);
    }
  } catch (const bulwark::Error& e) {
    Fail(e);
  }
  StopThreads();
  if (fatal_) throw *fatal_;
  return Commit(root_id_, abs_paths, "fs", opts_.facts, t0);
}

Node Backup::MemoryFile(const std::string& name, std::string_view content, const Node& owner) {
  Node n = SyntheticNode(NodeType::kFile, 0600, owner, repo::NowNs());
  n.name = name;
  ByteSpan rest = AsBytes(content);
  while (!rest.empty()) {
    size_t cut = chunker_.FindCut(rest, true);
    ByteSpan chunk = rest.subspan(0, cut);
    Id id = repo_.ids().Mac(chunk);
    if (saver_.Save(BlobType::kData, chunk, id)) progress_->bytes_added += cut;
    n.content.push_back(id);
    rest = rest.subspan(cut);
  }
  n.size = content.size();
  progress_->bytes += n.size;
  progress_->files++;
  files_new_++;
  return n;
}

BackupResult Backup::RunDirectory(const std::string& dir_arg, const std::string& root_name, const std::string& kind,
                                  const DirectoryHooks& hooks) {
  auto t0 = std::chrono::steady_clock::now();
  if (!repo::IsSafeName(root_name))
    throw bulwark::Error(ErrorCode::kInvalidArgument, "'" + root_name + "' is not a valid name for a snapshot's root");
  const std::string dir = AbsolutePath(dir_arg);
  hooks_ = &hooks;
  hook_root_ = dir == "/" ? "" : dir;
  const std::vector<std::string> paths{"/" + root_name};

  // The root: one directory, root_name, with the metadata of `dir`.
  auto root = std::make_unique<DirState>();
  root->path = "/";
  Node top_node;
  struct stat st;
  ReadNode(dir, root_name, &top_node, &st);  // throws naming `dir`
  if (top_node.type != NodeType::kDir) throw bulwark::Error(ErrorCode::kInvalidArgument, dir + ": not a directory");
  root->nodes.push_back(top_node);
  root->failed.assign(1, 0);
  dirs_++;

  FindParent(kind, paths);
  std::optional<Tree> parent_root;
  const Node* parent_top = nullptr;
  if (parent_) {
    Node pr;
    pr.type = NodeType::kDir;
    pr.subtree = parent_->tree;
    parent_root = ParentSubtree(&pr);
    if (parent_root)
      for (const Node& n : parent_root->nodes)
        if (n.name == root_name) parent_top = &n;
  }

  StartThreads();
  // As in RunPaths: failures are recorded in fatal_, rethrown once every
  // thread stopped.
  std::unique_ptr<DirState> top;
  try {
    top = ListDir(dir, root.get(), 0, parent_top, st.st_dev);
  } catch (const bulwark::Error& e) {
    Fail(e);
  }
  {
    // Every file read (or failed): the caller may now end what kept the
    // files consistent enough to read (pg_backup_stop).
    std::unique_lock<std::mutex> lock(q_mu_);
    done_cv_.wait(lock, [&] { return inflight_ == 0 || fatal_; });
  }
  nlohmann::json facts = opts_.facts;
  std::exception_ptr finish_failure;
  if (top && !Failing()) {
    try {
      std::vector<std::pair<std::string, std::string>> files;
      if (hooks.finish) hooks.finish(&facts, &files);
      for (const auto& file : files) {
        const std::string& name = file.first;  // clang 14 cannot capture a structured binding
        const std::string& content = file.second;
        if (!repo::IsSafeName(name))
          throw bulwark::Error(ErrorCode::kInternal, "'" + name + "' is not a valid file name");
        Node n = MemoryFile(name, content, top_node);
        auto it = std::find_if(top->nodes.begin(), top->nodes.end(), [&](const Node& x) { return x.name == name; });
        if (it != top->nodes.end()) {
          top->failed[static_cast<size_t>(it - top->nodes.begin())] = 0;
          *it = std::move(n);
        } else {
          top->nodes.push_back(std::move(n));
          top->failed.push_back(0);
        }
      }
    } catch (...) {
      finish_failure = std::current_exception();
      std::lock_guard<std::mutex> lock(q_mu_);
      if (!fatal_) fatal_ = bulwark::Error(ErrorCode::kInternal, "aborted");  // stops the finaliser's writes
    }
  }
  if (top) QueueDir(std::move(top));
  QueueDir(std::move(root));
  StopThreads();
  if (finish_failure) std::rethrow_exception(finish_failure);
  if (fatal_) throw *fatal_;
  return Commit(root_id_, paths, kind, std::move(facts), t0);
}

repo::Node Backup::StreamNode(int fd, const std::string& name, nlohmann::json* stream_facts) {
  if (!repo::IsSafeName(name))
    throw bulwark::Error(ErrorCode::kInvalidArgument, "stream name '" + name + "' is not a valid file name");
  Node n;
  n.name = name;
  n.type = NodeType::kFile;
  n.mode = 0600;
  n.uid = geteuid();
  n.gid = getegid();
  n.user = sys::UserName(n.uid);
  n.group = sys::GroupName(n.gid);
  n.mtime_ns = n.atime_ns = n.ctime_ns = opts_.time_ns.value_or(repo::NowNs());
  Bytes buf;
  crypto::Sha256Stream sha;
  try {
    n.size = StoreContent(fd, &n.content, &buf, &sha);
  } catch (const RepositoryFailure& f) {
    throw f.error;
  }
  progress_->files++;
  files_new_++;
  *stream_facts = {{"name", name}, {"size", n.size}, {"sha256", sha.Final().Hex()}};
  return n;
}

BackupResult Backup::CommitStreams(Tree tree, const std::string& kind, nlohmann::json facts,
                                   std::chrono::steady_clock::time_point t0) {
  std::sort(tree.nodes.begin(), tree.nodes.end(), [](const Node& a, const Node& b) { return a.name < b.name; });
  std::vector<std::string> paths;
  for (const auto& n : tree.nodes) paths.push_back("/" + n.name);
  Id root = saver_.SaveTree(tree);
  return Commit(root, paths, kind, std::move(facts), t0);
}

BackupResult Backup::RunStream(int fd, const std::string& name, const std::string& kind,
                               const std::function<void(nlohmann::json*)>& finish) {
  auto t0 = std::chrono::steady_clock::now();
  nlohmann::json facts = opts_.facts;
  Tree t;
  t.nodes.push_back(StreamNode(fd, name, &facts["stream"]));
  if (finish) finish(&facts);
  return CommitStreams(std::move(t), kind, std::move(facts), t0);
}

BackupResult Backup::RunCommands(const std::vector<CommandStream>& streams, const std::string& kind,
                                 const std::function<void(nlohmann::json*)>& finish) {
  auto t0 = std::chrono::steady_clock::now();
  if (streams.empty()) throw bulwark::Error(ErrorCode::kInvalidArgument, "no command given");
  nlohmann::json facts = opts_.facts;
  facts["streams"] = nlohmann::json::array();
  Tree t;
  std::set<std::string> names;
  for (const auto& cs : streams) {
    if (!names.insert(cs.name).second)
      throw bulwark::Error(ErrorCode::kInvalidArgument, "two streams named '" + cs.name + "'");
    SpawnOptions so;
    so.pipe_stdout = true;
    so.forward_stderr = cs.forward_stderr;
    Subprocess child(cs.argv, so);
    nlohmann::json f;
    // A repository error here leaves the child to the Subprocess destructor
    // (SIGTERM); the error is the repository's, not the child's.
    t.nodes.push_back(StreamNode(child.stdout_fd(), cs.name, &f));
    WithContext("stream '" + cs.name + "'", [&] { child.WaitOrThrow(); });
    f["command"] = cs.argv;  // no secrets by contract (CommandStream)
    facts["streams"].push_back(std::move(f));
  }
  if (finish) finish(&facts);
  return CommitStreams(std::move(t), kind, std::move(facts), t0);
}

}  // namespace

static void ScanDir(const std::string& path, const BackupOptions& o, dev_t dev, BackupProgress* p,
                    const std::atomic<bool>* stop) {
  DIR* d = ::opendir(path.c_str());
  if (!d) return;
  std::vector<std::string> subdirs;
  std::string prefix = path == "/" ? "/" : path + "/";
  while (dirent* e = ::readdir(d)) {
    if (*stop) break;
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    std::string child = prefix + e->d_name;
    if (MatchesExclude(o.excludes, child, e->d_name)) continue;
    struct stat st;
    if (::lstat(child.c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode)) {
      p->total_files++;
      p->total_bytes += static_cast<uint64_t>(st.st_size);
    } else if (S_ISDIR(st.st_mode) && !(o.one_file_system && st.st_dev != dev)) {
      subdirs.push_back(std::move(child));
    }
  }
  ::closedir(d);
  for (const auto& sd : subdirs)
    if (!*stop) ScanDir(sd, o, dev, p, stop);
}

void ScanTotals(const BackupOptions& options, BackupProgress* progress, const std::atomic<bool>* stop) {
  for (const auto& path : options.paths) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode)) {
      progress->total_files++;
      progress->total_bytes += static_cast<uint64_t>(st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
      ScanDir(AbsolutePath(path), options, st.st_dev, progress, stop);
    }
  }
  progress->scan_done = true;
}

BackupResult BackupPaths(repo::Repository& repo, const BackupOptions& options) {
  repo.IndexOrphanPacks();
  Backup b(repo, options);
  return b.RunPaths();
}

BackupResult BackupDirectory(repo::Repository& repo, const std::string& dir, const std::string& root_name,
                             const std::string& kind, const BackupOptions& options, const DirectoryHooks& hooks) {
  repo.IndexOrphanPacks();
  Backup b(repo, options);
  return b.RunDirectory(dir, root_name, kind, hooks);
}

BackupResult BackupStream(repo::Repository& repo, int fd, const std::string& stream_name, const std::string& kind,
                          const BackupOptions& options, const std::function<void(nlohmann::json*)>& finish) {
  repo.IndexOrphanPacks();
  Backup b(repo, options);
  return b.RunStream(fd, stream_name, kind, finish);
}

BackupResult BackupCommands(repo::Repository& repo, const std::vector<CommandStream>& streams, const std::string& kind,
                            const BackupOptions& options, const std::function<void(nlohmann::json* facts)>& finish) {
  repo.IndexOrphanPacks();
  Backup b(repo, options);
  return b.RunCommands(streams, kind, finish);
}

BackupResult BackupCommand(repo::Repository& repo, const std::vector<std::string>& argv, const std::string& stream_name,
                           const BackupOptions& options) {
  if (argv.empty()) throw Error(ErrorCode::kInvalidArgument, "no command given");
  SpawnOptions so;
  so.pipe_stdout = true;
  so.capture_stderr = false;  // the command talks to the operator directly
  Subprocess child = WithContext("command", [&] { return Subprocess(argv, so); });
  BackupOptions opts = options;
  opts.facts["command"] = argv;  // argv of the producer, not ours: no secrets by contract
  return BackupStream(repo, child.stdout_fd(), stream_name, "command", opts, [&](nlohmann::json* facts) {
    int status = child.Wait();
    if (!Subprocess::Succeeded(status))
      throw Error(ErrorCode::kSourceFailed,
                  "command '" + argv[0] + "' " + Subprocess::Describe(status) + "; no snapshot was stored");
    (*facts)["exit_code"] = 0;
  });
}

// ---------------------------------------------------------------------------
// BackupTar: a tar stream stored as a tree (backup.h).

std::string NormalizeTarPath(std::string_view path) {
  std::string out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view component = path.substr(i, j - i);
    i = j + 1;
    if (component.empty() || component == ".") continue;
    if (!repo::IsSafeName(component))
      throw Error(ErrorCode::kSourceFailed, "tar stream: unsafe member name '" + std::string(path) + "'");
    if (!out.empty()) out += '/';
    out += component;
  }
  return out;
}

namespace {

Error TarError(archive* a, const std::string& what) {
  const char* m = archive_error_string(a);
  return Error(ErrorCode::kSourceFailed, "tar stream: " + what + ": " + (m ? m : "unknown error"));
}

// Chunks found on one reading thread, handed to worker threads that hash,
// deduplicate, compress, encrypt and pack them (BlobSaver). Each chunk's id
// is written to the slot given with it (stable addresses, e.g. a deque's
// elements). Memory: the queued chunks (at most `max_queued_bytes`, or one
// chunk), one per worker being worked on, up to kSpareBuffers spare buffers.
class ChunkWorkers {
 public:
  explicit ChunkWorkers(Backup& b) : b_(b) {}
  ~ChunkWorkers() { Stop(); }
  void Start(int threads, size_t max_queued_bytes);
  // Queues a copy of `chunk`; waits while the queue is full. Throws the
  // first failure of a worker.
  void Emit(ByteSpan chunk, Id* slot);
  // Lets the workers finish what is queued and joins them. Idempotent.
  void Stop();
  // After Stop: rethrows the first failure of a worker.
  void ThrowIfFailed() const {
    if (fatal_) throw *fatal_;
  }

 private:
  struct Job {
    Bytes data;
    Id* slot;
  };
  void Worker();

  Backup& b_;
  std::mutex mu_;
  std::condition_variable work_cv_, room_cv_;
  std::deque<Job> jobs_;
  std::vector<Bytes> spare_;  // chunk buffers to reuse
  static constexpr size_t kSpareBuffers = 8;
  size_t queued_bytes_ = 0, max_queued_bytes_ = 0;
  bool closed_ = false;
  std::optional<bulwark::Error> fatal_;
  std::vector<std::thread> workers_;
};

void ChunkWorkers::Start(int threads, size_t max_queued_bytes) {
  max_queued_bytes_ = max_queued_bytes;
  if (threads <= 0) threads = static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Worker(); });
}

void ChunkWorkers::Worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return !jobs_.empty() || closed_; });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
      queued_bytes_ -= job.data.size();
      room_cv_.notify_one();
      if (fatal_) continue;  // failing: drop the rest
    }
    try {
      Id id = b_.repo_.ids().Mac(job.data);
      *job.slot = id;
      if (b_.saver_.Save(BlobType::kData, job.data, id)) b_.progress_->bytes_added += job.data.size();
    } catch (const bulwark::Error& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!fatal_) fatal_ = e;
      room_cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (spare_.size() < kSpareBuffers) spare_.push_back(std::move(job.data));
  }
}

void ChunkWorkers::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ChunkWorkers::Emit(ByteSpan chunk, Id* slot) {
  Job job{{}, slot};
  std::unique_lock<std::mutex> lock(mu_);
  if (!spare_.empty()) {
    job.data = std::move(spare_.back());
    spare_.pop_back();
  }
  lock.unlock();
  job.data.assign(chunk.begin(), chunk.end());  // a spare buffer: no allocation, no page faults
  b_.progress_->bytes += chunk.size();
  lock.lock();
  room_cv_.wait(lock,
                [&] { return queued_bytes_ == 0 || queued_bytes_ + chunk.size() <= max_queued_bytes_ || fatal_; });
  if (fatal_) throw *fatal_;
  queued_bytes_ += chunk.size();
  jobs_.push_back(std::move(job));
  work_cv_.notify_one();
}

class TarBackup {
 public:
  TarBackup(repo::Repository& repo, const BackupOptions& opts) : b_(repo, opts), pool_(b_) {}
  // Workers first: they write into entries and use the saver.
  ~TarBackup() { pool_.Stop(); }
  BackupResult Run(int fd, const std::string& root_name, const std::string& kind, const TarHooks& hooks);

 private:
  struct Entry {
    Node node;
    std::map<std::string, std::unique_ptr<Entry>> children;  // directories
    std::deque<Id> content;  // files: chunk ids in order, written by the workers (stable addresses)
    std::string hardlink;    // hardlinks: the normalised path of the member linked to
  };

  Entry* Insert(const std::string& path, Node node);
  Entry* Find(const std::string& path);
  void AddMember(archive* a, archive_entry* ent, const TarHooks& hooks);
  void ReadData(archive* a, Entry* e, std::string* capture);
  void ResolveHardlinks();
  Id SaveDir(Entry* dir);
  Node ImpliedDir() const;

  Backup b_;
  ChunkWorkers pool_;
  Entry root_;
  int64_t now_ns_ = 0;
  bool have_owner_ = false, root_listed_ = false;
  Node owner_;                                    // the first member: owner and mtime of implied directories
  std::vector<std::unique_ptr<Entry>> replaced_;  // superseded by a later member; workers may still fill them
  std::vector<Entry*> hardlinks_;
  Bytes window_;
};

Node TarBackup::ImpliedDir() const {
  // The same tar, the same tree: the time of its first member.
  Node n = SyntheticNode(NodeType::kDir, 0700, owner_, have_owner_ ? owner_.mtime_ns : now_ns_);
  return n;
}

TarBackup::Entry* TarBackup::Insert(const std::string& path, Node node) {
  if (path.empty()) {  // "." or "./": the root directory itself
    if (node.type != NodeType::kDir)
      throw bulwark::Error(ErrorCode::kSourceFailed, "tar stream: member '.' is not a directory");
    node.name = root_.node.name;
    root_.node = std::move(node);
    root_listed_ = true;
    return &root_;
  }
  Entry* dir = &root_;
  size_t i = 0;
  for (;;) {
    size_t j = path.find('/', i);
    std::string name = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
    auto& slot = dir->children[name];
    if (j == std::string::npos) {
      if (slot && slot->node.type == NodeType::kDir && node.type == NodeType::kDir) {
        slot->node = std::move(node);  // listed after its contents: keep them
      } else {
        if (slot) replaced_.push_back(std::move(slot));
        slot = std::make_unique<Entry>();
        slot->node = std::move(node);
      }
      slot->node.name = name;
      return slot.get();
    }
    if (!slot) {
      slot = std::make_unique<Entry>();
      slot->node = ImpliedDir();
    } else if (slot->node.type != NodeType::kDir) {
      throw bulwark::Error(ErrorCode::kSourceFailed,
                           "tar stream: member '" + path + "': '" + path.substr(0, j) + "' is not a directory");
    }
    dir = slot.get();
    i = j + 1;
  }
}

TarBackup::Entry* TarBackup::Find(const std::string& path) {
  Entry* e = &root_;
  size_t i = 0;
  while (e && i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    auto it = e->children.find(path.substr(i, j - i));
    e = it == e->children.end() ? nullptr : it->second.get();
    i = j + 1;
  }
  return e;
}

// The member's data, through the chunker, to the workers. libarchive hands
// out blocks at offsets; a gap between blocks (a hole of a sparse member,
// or one up to its size at the end) is stored as zeros.
void TarBackup::ReadData(archive* a, Entry* e, std::string* capture) {
  const size_t max = b_.chunker_.params().max_size;
  const size_t cap = max + (1u << 20);  // a maximal chunk plus read-ahead: a cut is always found
  if (window_.size() != cap) window_.resize(cap);
  const uint64_t size = e->node.size;
  const uint8_t* block = nullptr;
  size_t block_len = 0;
  uint64_t block_off = 0, placed = 0;  // member offsets: of `block`, and of the window's end
  bool blocks_done = false;
  auto done = [&] { return blocks_done && block_len == 0 && placed >= size; };
  size_t start = 0, end = 0;
  for (;;) {
    ByteSpan avail(window_.data() + start, end - start);
    size_t cut = avail.empty() ? 0 : b_.chunker_.FindCut(avail, done());
    if (cut == 0) {
      // No cut in the window yet (less than a maximal chunk): refill it,
      // moving only the unconsumed tail (StoreContent does the same).
      if (done()) break;
      if (start > 0) {
        std::memmove(window_.data(), window_.data() + start, end - start);
        end -= start;
        start = 0;
      }
      while (end < cap) {
        if (block_len == 0 && !blocks_done) {
          const void* p;
          size_t n;
          la_int64_t off;
          int r = archive_read_data_block(a, &p, &n, &off);
          if (r == ARCHIVE_EOF) {
            blocks_done = true;
          } else if (r < ARCHIVE_WARN) {
            throw TarError(a, "reading member '" + e->node.name + "'");
          } else {
            if (off < 0 || static_cast<uint64_t>(off) < placed)
              throw bulwark::Error(ErrorCode::kSourceFailed,
                                   "tar stream: member '" + e->node.name + "': data block out of order");
            block = static_cast<const uint8_t*>(p);
            block_len = n;
            block_off = static_cast<uint64_t>(off);
          }
          continue;
        }
        uint64_t data_at = block_len > 0 ? block_off : std::max(size, placed);
        if (placed < data_at) {  // a hole
          size_t n = static_cast<size_t>(std::min<uint64_t>(cap - end, data_at - placed));
          std::memset(window_.data() + end, 0, n);
          if (capture) capture->append(n, '\0');
          end += n;
          placed += n;
          e->node.sparse = true;
          continue;
        }
        if (block_len == 0) break;
        size_t n = std::min(cap - end, block_len);
        std::memcpy(window_.data() + end, block, n);
        if (capture) capture->append(reinterpret_cast<const char*>(block), n);
        block += n;
        block_len -= n;
        block_off += n;
        end += n;
        placed += n;
      }
      continue;
    }
    pool_.Emit(avail.subspan(0, cut), &e->content.emplace_back());
    start += cut;
  }
  e->node.size = placed;
}

void TarBackup::AddMember(archive* a, archive_entry* ent, const TarHooks& hooks) {
  const char* raw = archive_entry_pathname(ent);
  if (!raw) throw TarError(a, "a member name");
  std::string path = NormalizeTarPath(raw);
  Node n;
  n.mode = archive_entry_perm(ent) & 07777;
  n.uid = static_cast<uint32_t>(archive_entry_uid(ent));
  n.gid = static_cast<uint32_t>(archive_entry_gid(ent));
  if (const char* u = archive_entry_uname(ent)) n.user = u;
  if (const char* g = archive_entry_gname(ent)) n.group = g;
  n.mtime_ns = archive_entry_mtime_is_set(ent)
                   ? static_cast<int64_t>(archive_entry_mtime(ent)) * 1000000000 + archive_entry_mtime_nsec(ent)
                   : now_ns_;
  n.ctime_ns = n.mtime_ns;  // no change detection against tar members
  n.nlink = 1;
  archive_entry_xattr_reset(ent);
  const char* xname;
  const void* xvalue;
  size_t xsize;
  while (archive_entry_xattr_next(ent, &xname, &xvalue, &xsize) == ARCHIVE_OK)
    n.xattrs.emplace_back(xname, std::string(static_cast<const char*>(xvalue), xsize));
  std::sort(n.xattrs.begin(), n.xattrs.end());
  if (!have_owner_) {
    owner_ = n;
    have_owner_ = true;
    if (!root_listed_) {
      root_.node.uid = n.uid;
      root_.node.gid = n.gid;
      root_.node.user = n.user;
      root_.node.group = n.group;
      root_.node.mtime_ns = root_.node.ctime_ns = n.mtime_ns;
    }
  }
  if (const char* target = archive_entry_hardlink(ent)) {
    n.type = NodeType::kFile;
    Entry* e = Insert(path, std::move(n));
    e->hardlink = NormalizeTarPath(target);
    hardlinks_.push_back(e);
    return;
  }
  switch (archive_entry_filetype(ent)) {
    case AE_IFREG: {
      n.type = NodeType::kFile;
      n.size = static_cast<uint64_t>(std::max<la_int64_t>(0, archive_entry_size(ent)));
      Entry* e = Insert(path, std::move(n));
      bool want = hooks.want_content && hooks.want_content(path);
      std::string content;
      ReadData(a, e, want ? &content : nullptr);
      b_.progress_->files++;
      if (want && hooks.on_content) hooks.on_content(path, std::move(content));
      return;
    }
    case AE_IFDIR:
      n.type = NodeType::kDir;
      break;
    case AE_IFLNK:
      n.type = NodeType::kSymlink;
      if (const char* t = archive_entry_symlink(ent)) n.link_target = t;
      break;
    case AE_IFIFO:
      n.type = NodeType::kFifo;
      break;
    case AE_IFCHR:
    case AE_IFBLK:
      n.type = archive_entry_filetype(ent) == AE_IFCHR ? NodeType::kCharDev : NodeType::kBlockDev;
      n.rdev = archive_entry_rdev(ent);
      break;
    case AE_IFSOCK:
      n.type = NodeType::kSocket;
      break;
    default:
      throw bulwark::Error(ErrorCode::kSourceFailed, "tar stream: member '" + path + "' has an unknown type");
  }
  Insert(path, std::move(n));
}

// A hardlink gets the content of the member it links to; the group shares a
// made-up inode number and its link count, so that restore links them again.
void TarBackup::ResolveHardlinks() {
  uint64_t next_inode = 0;
  std::map<Entry*, std::vector<Entry*>> groups;
  for (Entry* link : hardlinks_) {
    Entry* target = Find(link->hardlink);
    for (int hops = 0; target && !target->hardlink.empty() && hops < 64; ++hops) target = Find(target->hardlink);
    if (!target || target == link || target->node.type != NodeType::kFile || !target->hardlink.empty())
      throw bulwark::Error(ErrorCode::kSourceFailed, "tar stream: hardlink '" + link->node.name + "' to '" +
                                                         link->hardlink + "', which is not a file in the archive");
    groups[target].push_back(link);
  }
  for (auto& [target, links] : groups) {
    target->node.inode = ++next_inode;
    target->node.nlink = links.size() + 1;
    for (Entry* l : links) {
      l->content = target->content;
      l->node.size = target->node.size;
      l->node.sparse = target->node.sparse;
      l->node.inode = target->node.inode;
      l->node.nlink = target->node.nlink;
    }
  }
}

Id TarBackup::SaveDir(Entry* dir) {
  Tree t;
  t.nodes.reserve(dir->children.size());
  for (auto& [name, child] : dir->children) {
    Node n = std::move(child->node);
    n.name = name;
    if (n.type == NodeType::kDir) {
      n.subtree = SaveDir(child.get());
      b_.dirs_++;
    } else if (n.type == NodeType::kFile) {
      n.content.assign(child->content.begin(), child->content.end());
      b_.files_new_++;
    } else {
      b_.others_++;
    }
    t.nodes.push_back(std::move(n));
  }
  return b_.saver_.SaveTree(t);
}

void DrainFd(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

BackupResult TarBackup::Run(int fd, const std::string& root_name, const std::string& kind, const TarHooks& hooks) {
  auto t0 = std::chrono::steady_clock::now();
  if (!repo::IsSafeName(root_name))
    throw bulwark::Error(ErrorCode::kInvalidArgument, "tar backup name '" + root_name + "' is not a valid file name");
  now_ns_ = b_.opts_.time_ns.value_or(repo::NowNs());
  root_.node = ImpliedDir();
  root_.node.name = root_name;
  root_.node.uid = geteuid();
  root_.node.gid = getegid();
  pool_.Start(b_.opts_.threads, 4 * static_cast<size_t>(b_.chunker_.params().max_size));

  std::unique_ptr<archive, int (*)(archive*)> a(archive_read_new(), archive_read_free);
  if (!a) throw bulwark::Error(ErrorCode::kInternal, "archive_read_new failed");
  archive_read_support_format_tar(a.get());
  if (archive_read_open_fd(a.get(), fd, 1u << 20) != ARCHIVE_OK) throw TarError(a.get(), "opening");
  for (;;) {
    archive_entry* ent;
    int r = archive_read_next_header(a.get(), &ent);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) throw TarError(a.get(), "reading a member header");
    AddMember(a.get(), ent, hooks);
  }
  DrainFd(fd);  // padding after the end-of-archive blocks: the producer finishes writing
  pool_.Stop();
  pool_.ThrowIfFailed();
  ResolveHardlinks();
  nlohmann::json facts = b_.opts_.facts;
  if (hooks.finish) hooks.finish(&facts);

  Node root = root_.node;
  root.subtree = SaveDir(&root_);
  b_.dirs_++;
  Tree top;
  top.nodes.push_back(std::move(root));
  Id top_id = b_.saver_.SaveTree(top);
  return b_.Commit(top_id, {"/" + root_name}, kind, std::move(facts), t0);
}

}  // namespace

BackupResult BackupTar(repo::Repository& repo, int fd, const std::string& root_name, const std::string& kind,
                       const BackupOptions& options, const TarHooks& hooks) {
  repo.IndexOrphanPacks();
  TarBackup b(repo, options);
  return b.Run(fd, root_name, kind, hooks);
}

}  // namespace bulwark::ops

// ---------------------------------------------------------------------------
// TreeBackup: a snapshot built entry by entry (backup.h).

namespace bulwark::ops {

struct TreeBackup::Impl {
  struct Entry {
    Node node;
    std::map<std::string, std::unique_ptr<Entry>> children;  // directories
    std::deque<Id> content;  // files: chunk ids in order, written by the workers (stable addresses)
    bool unchanged = false;  // the node is the parent's, complete (content or subtree set)
  };

  Impl(repo::Repository& repo, const BackupOptions& options, std::string kind)
      : opts(options), b(repo, opts), pool(b), kind(std::move(kind)) {
    now_ns = opts.time_ns.value_or(repo::NowNs());
    owner.uid = geteuid();
    owner.gid = getegid();
    owner.user = sys::UserName(owner.uid);
    owner.group = sys::GroupName(owner.gid);
    root.node = SyntheticNode(NodeType::kDir, 0700, owner, now_ns);
    if (!opts.force) {
      if (opts.parent) {
        b.parent_ = repo.ResolveSnapshot(*opts.parent, {});
      } else {
        const std::string host = opts.host.empty() ? sys::Hostname() : opts.host;
        for (auto& s : repo.LoadSnapshots([](const bulwark::Error& e) { log::Warn(e.what()); }))
          if (s.kind == this->kind && s.host == host && s.source == opts.source) b.parent_ = s;
      }
    }
    pool.Start(opts.threads, 4 * static_cast<size_t>(b.chunker_.params().max_size));
  }
  ~Impl() { pool.Stop(); }  // workers first: they write into entries

  static std::vector<std::string> Split(const std::string& path) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i <= path.size()) {
      size_t j = path.find('/', i);
      if (j == std::string::npos) j = path.size();
      parts.push_back(path.substr(i, j - i));
      i = j + 1;
    }
    for (const auto& p : parts)
      if (!repo::IsSafeName(p))
        throw bulwark::Error(ErrorCode::kInvalidArgument, "'" + path + "' is not a valid path in a snapshot");
    return parts;
  }

  // The entry at `path`, created (directories on the way implied); a former
  // entry there is replaced, except that with `merge` a directory keeps the
  // entries already added below it.
  Entry* Insert(const std::string& path, Node node, bool merge = true) {
    const std::vector<std::string> parts = Split(path);
    Entry* dir = &root;
    for (size_t k = 0; k + 1 < parts.size(); ++k) {
      auto& slot = dir->children[parts[k]];
      if (!slot) {
        slot = std::make_unique<Entry>();
        slot->node = SyntheticNode(NodeType::kDir, 0700, owner, now_ns);
      } else if (slot->node.type != NodeType::kDir || slot->unchanged) {
        throw bulwark::Error(ErrorCode::kInvalidArgument,
                             "'" + path + "': '" + parts[k] + "' is already a file or an unchanged directory");
      }
      dir = slot.get();
    }
    auto& slot = dir->children[parts.back()];
    node.name = parts.back();
    if (slot && merge && slot->node.type == NodeType::kDir && !slot->unchanged && node.type == NodeType::kDir) {
      slot->node = std::move(node);  // a directory given after its contents: keep them
      return slot.get();
    }
    if (slot) replaced.push_back(std::move(slot));  // workers may still fill its content
    slot = std::make_unique<Entry>();
    slot->node = std::move(node);
    return slot.get();
  }

  Node FileNode() const {
    Node n = SyntheticNode(NodeType::kFile, 0600, owner, now_ns);
    n.atime_ns = 0;
    return n;
  }

  // The bytes of `read` through the chunker to the workers; the ids land in
  // `content`. Returns the size.
  uint64_t Chunk(const Reader& read, std::deque<Id>* content, crypto::Sha256Stream* sha) {
    const size_t max = b.chunker_.params().max_size;
    const size_t cap = max + (1u << 20);
    if (window.size() != cap) window.resize(cap);
    size_t start = 0, end = 0;
    bool eof = false;
    uint64_t total = 0;
    for (;;) {
      ByteSpan avail(window.data() + start, end - start);
      size_t cut = avail.empty() ? 0 : b.chunker_.FindCut(avail, eof);
      if (cut == 0) {
        if (eof) break;
        if (start > 0) {
          std::memmove(window.data(), window.data() + start, end - start);
          end -= start;
          start = 0;
        }
        while (end < cap && !eof) {
          size_t n = read(window.data() + end, cap - end);
          if (n == 0) eof = true;
          end += n;
        }
        continue;
      }
      ByteSpan chunk = avail.subspan(0, cut);
      if (sha) sha->Update(chunk);
      pool.Emit(chunk, &content->emplace_back());
      total += cut;
      start += cut;
    }
    return total;
  }

  uint64_t AddLocalEntry(const std::string& path, const std::string& local) {
    Node n;
    struct stat st;
    ReadNode(local, "", &n, &st);  // throws naming `local`
    n.atime_ns = 0;
    if (n.type == NodeType::kDir) {
      Insert(path, n);
      DIR* d = ::opendir(local.c_str());
      if (!d) throw ErrnoError("opendir", local);
      std::vector<std::string> names;
      while (dirent* e = ::readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) names.emplace_back(e->d_name);
      ::closedir(d);
      std::sort(names.begin(), names.end());
      uint64_t total = 0;
      for (const auto& name : names) total += AddLocalEntry(path + "/" + name, local + "/" + name);
      return total;
    }
    if (n.type == NodeType::kSymlink) {
      Insert(path, std::move(n));
      b.others_++;
      return 0;
    }
    if (n.type != NodeType::kFile)
      throw bulwark::Error(ErrorCode::kInvalidArgument, local + ": not a regular file, directory or symlink");
    const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
    int fd = ::open(local.c_str(), flags | O_NOATIME);
    if (fd < 0 && errno == EPERM) fd = ::open(local.c_str(), flags);
    if (fd < 0) throw ErrnoError("open", local);
    struct FdGuard {
      int fd;
      ~FdGuard() { ::close(fd); }
    } guard{fd};
    if (st.st_size > (1 << 20)) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    n.sparse = false;
    Entry* e = Insert(path, std::move(n));
    uint64_t size = WithContext(local, [&] {
      return Chunk(
          [&](uint8_t* buf, size_t len) -> size_t {
            for (;;) {
              ssize_t r = ::read(fd, buf, len);
              if (r >= 0) return static_cast<size_t>(r);
              if (errno != EINTR) throw ErrnoError("reading", "");
            }
          },
          &e->content, nullptr);
    });
    e->node.size = size;
    b.progress_->files++;
    b.files_new_++;
    return size;
  }

  // Whether every blob below `node` is in the index; counts what it holds.
  bool Indexed(const Node& node, uint64_t* files, uint64_t* dirs) {
    auto& index = b.repo_.index();
    if (node.type == NodeType::kFile) {
      for (const Id& id : node.content)
        if (!index.Has(id)) return false;
      ++*files;
      return true;
    }
    if (node.type != NodeType::kDir) return true;
    if (!index.Has(node.subtree)) return false;
    ++*dirs;
    for (const Node& c : LoadTree(node.subtree).nodes)
      if (!Indexed(c, files, dirs)) return false;
    return true;
  }

  Tree LoadTree(const Id& id) {
    auto it = trees.find(id);
    if (it != trees.end()) return it->second;
    Tree t = b.repo_.LoadTree(id);
    if (trees.size() > 4096) trees.clear();
    trees.emplace(id, t);
    return t;
  }

  Id SaveDir(Entry* dir) {
    Tree t;
    t.nodes.reserve(dir->children.size());
    for (auto& [name, child] : dir->children) {
      Node n = std::move(child->node);
      n.name = name;
      if (child->unchanged) {
        // as the parent had it
      } else if (n.type == NodeType::kDir) {
        n.subtree = SaveDir(child.get());
        b.dirs_++;
      } else if (n.type == NodeType::kFile) {
        n.content.assign(child->content.begin(), child->content.end());
      }
      t.nodes.push_back(std::move(n));
    }
    return b.saver_.SaveTree(t);
  }

  const BackupOptions opts;  // Backup keeps a reference
  Backup b;
  ChunkWorkers pool;
  std::string kind;
  int64_t now_ns = 0;
  Node owner;
  Entry root;
  std::vector<std::unique_ptr<Entry>> replaced;
  Bytes window;
  std::map<Id, Tree> trees;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  bool committed = false;
};

TreeBackup::TreeBackup(repo::Repository& repo, const BackupOptions& options, const std::string& kind) {
  repo.IndexOrphanPacks();
  impl_ = std::make_unique<Impl>(repo, options, kind);
}

TreeBackup::~TreeBackup() = default;

const repo::Snapshot* TreeBackup::parent() const { return impl_->b.parent_ ? &*impl_->b.parent_ : nullptr; }

repo::Tree TreeBackup::LoadTree(const Id& id) { return impl_->LoadTree(id); }

std::optional<repo::Node> TreeBackup::ParentNode(const std::string& path) {
  const repo::Snapshot* p = parent();
  if (!p) return std::nullopt;
  Id tree = p->tree;
  std::optional<Node> found;
  for (const std::string& part : Impl::Split(path)) {
    if (found && found->type != NodeType::kDir) return std::nullopt;
    if (found) tree = found->subtree;
    Tree t = impl_->LoadTree(tree);
    auto it = std::find_if(t.nodes.begin(), t.nodes.end(), [&](const Node& n) { return n.name == part; });
    if (it == t.nodes.end()) return std::nullopt;
    found = *it;
  }
  return found;
}

uint64_t TreeBackup::AddStream(const std::string& path, const Reader& read, std::string* sha256_hex) {
  Impl::Entry* e = impl_->Insert(path, impl_->FileNode());
  crypto::Sha256Stream sha;
  e->node.size = impl_->Chunk(read, &e->content, &sha);
  if (sha256_hex) *sha256_hex = sha.Final().Hex();
  impl_->b.progress_->files++;
  impl_->b.files_new_++;
  return e->node.size;
}

void TreeBackup::AddFile(const std::string& path, std::string_view content) {
  size_t pos = 0;
  AddStream(path, [&](uint8_t* buf, size_t n) {
    size_t k = std::min(n, content.size() - pos);
    std::memcpy(buf, content.data() + pos, k);
    pos += k;
    return k;
  });
}

uint64_t TreeBackup::AddLocal(const std::string& path, const std::string& local) {
  return impl_->AddLocalEntry(path, local);
}

bool TreeBackup::AddUnchanged(const std::string& path, const repo::Node& node) {
  uint64_t files = 0, dirs = 0;
  if (!impl_->Indexed(node, &files, &dirs)) return false;
  Impl::Entry* e = impl_->Insert(path, node, /*merge=*/false);
  e->unchanged = true;
  impl_->b.files_unmodified_ += files;
  impl_->b.dirs_ += dirs;
  return true;
}

std::vector<Id> TreeBackup::ContentIds(std::string_view data) {
  std::vector<Id> ids;
  ByteSpan rest = AsBytes(data);
  while (!rest.empty()) {
    size_t cut = impl_->b.chunker_.FindCut(rest, true);
    ids.push_back(impl_->b.repo_.ids().Mac(rest.subspan(0, cut)));
    rest = rest.subspan(cut);
  }
  return ids;
}

BackupResult TreeBackup::Commit(const nlohmann::json& facts) {
  Impl& m = *impl_;
  if (m.committed) throw Error(ErrorCode::kInternal, "TreeBackup committed twice");
  m.committed = true;
  m.pool.Stop();
  m.pool.ThrowIfFailed();
  std::vector<std::string> paths;
  for (const auto& [name, child] : m.root.children) paths.push_back("/" + name);
  Id root = m.SaveDir(&m.root);
  nlohmann::json all = m.b.opts_.facts;
  if (facts.is_object())
    for (const auto& [k, v] : facts.items()) all[k] = v;
  return m.b.Commit(root, paths, m.kind, std::move(all), m.t0);
}

}  // namespace bulwark::ops
