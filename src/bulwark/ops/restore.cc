#include "bulwark/ops/restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "bulwark/base/error.h"
#include "bulwark/ops/fsmeta.h"
#include "bulwark/repo/pack.h"

namespace bulwark::ops {

using repo::Node;
using repo::NodeType;

namespace {

struct PlannedFile {
  std::string path;     // on disk
  std::string display;  // in the snapshot
  const Node* node;
  bool failed = false;
  std::unique_ptr<std::atomic<int>> remaining;  // blob writes still to do; the last one applies metadata
};

struct BlobTarget {
  uint32_t file;
  uint64_t offset;
};

bool Matches(const std::vector<std::string>& patterns, const std::string& path) {
  for (const auto& p : patterns) {
    if (fnmatch(p.c_str(), path.c_str(), 0) == 0) return true;
    // A pattern naming a directory selects everything below it.
    if (path.size() > p.size() && path.compare(0, p.size(), p) == 0 && path[p.size()] == '/') return true;
  }
  return false;
}

bool IsAllZero(ByteSpan b) {
  static const uint8_t zeros[4096] = {};
  for (size_t i = 0; i < b.size(); i += sizeof zeros) {
    size_t n = std::min(sizeof zeros, b.size() - i);
    if (std::memcmp(b.data() + i, zeros, n) != 0) return false;
  }
  return true;
}

void WriteAt(int fd, ByteSpan data, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ErrnoError("writing", path);
    }
    done += static_cast<size_t>(n);
  }
}

// Writes `data` at `offset`, skipping all-zero 4 KiB blocks (aligned to the
// file) so they stay holes. The file must already be sized (FinishFile) or be
// extended by a later write / ftruncate.
void WriteSparse(int fd, ByteSpan data, uint64_t offset, const std::string& path) {
  constexpr uint64_t kBlock = 4096;
  size_t i = 0;
  while (i < data.size()) {
    size_t block_end = std::min<size_t>(data.size(), i + (kBlock - (offset + i) % kBlock));
    bool zero = IsAllZero(data.subspan(i, block_end - i));
    size_t run_end = block_end;
    // Extend the run while blocks have the same zero-ness.
    while (run_end < data.size()) {
      size_t next = std::min<size_t>(data.size(), run_end + kBlock);
      if (IsAllZero(data.subspan(run_end, next - run_end)) != zero) break;
      run_end = next;
    }
    if (!zero) WriteAt(fd, data.subspan(i, run_end - i), offset + i, path);
    i = run_end;
  }
}

class Restorer {
 public:
  Restorer(repo::Repository& repo, const RestoreOptions& opts) : repo_(repo), opts_(opts) {}

  RestoreResult Run(const repo::Snapshot& snap);

 private:
  // Returns true if anything at or below this directory was selected.
  bool Walk(const Id& tree_id, const std::string& disk, const std::string& display, bool ancestor_selected);
  void CreateEntry(const Node& n, const std::string& disk, const std::string& display);
  void RestoreData();
  void FinishFile(PlannedFile& pf, int fd);
  void PrepareTarget();

  repo::Repository& repo_;
  const RestoreOptions& opts_;
  RestoreResult result_;
  std::vector<std::unique_ptr<repo::Tree>> trees_;  // keep nodes alive
  std::vector<PlannedFile> files_;
  std::vector<std::pair<std::string, const Node*>> dirs_post_order_;
  std::vector<std::pair<std::string, const Node*>> others_;  // symlinks, fifos, devices: metadata later
  std::map<std::pair<uint64_t, uint64_t>, std::string> hardlinks_;  // (device, inode) -> first path
  std::vector<std::pair<std::string, std::string>> links_;          // (existing, new) hardlinks to make
  std::mutex mu_;
};

void Restorer::PrepareTarget() {
  struct stat st;
  if (::lstat(opts_.target.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) throw Error(ErrorCode::kAlreadyExists, "restore target " + opts_.target + " exists and is not a directory");
    DIR* d = ::opendir(opts_.target.c_str());
    if (!d) throw ErrnoError("opening restore target", opts_.target);
    bool empty = true;
    while (dirent* e = ::readdir(d)) {
      if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
      // The root of a freshly made file system holds only lost+found: a
      // normal restore target (a new volume).
      if (!std::strcmp(e->d_name, "lost+found") && e->d_type == DT_DIR) continue;
      empty = false;
    }
    ::closedir(d);
    if (!empty && !opts_.overwrite)
      throw Error(ErrorCode::kAlreadyExists, "restore target " + opts_.target +
                                                 " is not empty (restore into a new directory, or pass --overwrite)");
  } else {
    if (errno != ENOENT) throw ErrnoError("stat", opts_.target);
    // Create with parents.
    std::string cur;
    for (size_t i = 0; i <= opts_.target.size(); ++i) {
      if (i == opts_.target.size() || (opts_.target[i] == '/' && i > 0)) {
        cur = opts_.target.substr(0, i);
        if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) throw ErrnoError("creating restore target", cur);
      }
    }
  }
}

void RemoveExisting(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (S_ISDIR(st.st_mode)) return;  // kept; contents are overwritten entry by entry
  if (::unlink(path.c_str()) != 0) throw ErrnoError("removing existing entry", path);
}

void Restorer::CreateEntry(const Node& n, const std::string& disk, const std::string& display) {
  if (opts_.overwrite && n.type != NodeType::kDir) RemoveExisting(disk);
  switch (n.type) {
    case NodeType::kFile: {
      if (n.nlink > 1) {
        auto key = std::make_pair(n.device, n.inode);
        auto it = hardlinks_.find(key);
        if (it != hardlinks_.end()) {
          links_.emplace_back(it->second, disk);  // after the data phase created the first
          result_.files++;
          return;
        }
        hardlinks_[key] = disk;
      }
      // Created by the data phase (one open per file for the common single-blob case).
      files_.push_back({disk, display, &n, false, std::make_unique<std::atomic<int>>(0)});
      result_.files++;
      result_.bytes += n.size;
      if (opts_.progress) {
        opts_.progress->total_files++;
        opts_.progress->total_bytes += n.size;
      }
      break;
    }
    case NodeType::kSymlink:
      if (::symlink(n.link_target.c_str(), disk.c_str()) != 0) throw ErrnoError("symlink", disk);
      others_.emplace_back(disk, &n);
      result_.symlinks++;
      break;
    case NodeType::kFifo:
      if (::mkfifo(disk.c_str(), 0600) != 0) throw ErrnoError("mkfifo", disk);
      others_.emplace_back(disk, &n);
      result_.others++;
      break;
    case NodeType::kCharDev:
    case NodeType::kBlockDev:
      if (::mknod(disk.c_str(), (n.type == NodeType::kCharDev ? S_IFCHR : S_IFBLK) | 0600, n.rdev) != 0)
        throw ErrnoError("mknod", disk);
      others_.emplace_back(disk, &n);
      result_.others++;
      break;
    case NodeType::kSocket:
      result_.warnings.push_back(display + ": socket not restored (sockets are created by their servers)");
      break;
    case NodeType::kDir:
      break;
  }
}

bool Restorer::Walk(const Id& tree_id, const std::string& disk, const std::string& display, bool ancestor_selected) {
  trees_.push_back(std::make_unique<repo::Tree>(repo_.LoadTree(tree_id)));
  const repo::Tree* tree = trees_.back().get();
  bool any = false;
  for (const Node& n : tree->nodes) {
    std::string child_display = (display == "/" ? "/" : display + "/") + n.name;
    std::string child_disk = disk + "/" + n.name;
    if (!opts_.excludes.empty() && Matches(opts_.excludes, child_display)) continue;
    bool selected = ancestor_selected || opts_.includes.empty() || Matches(opts_.includes, child_display);
    try {
      if (n.type == NodeType::kDir) {
        if (::mkdir(child_disk.c_str(), 0700) != 0) {
          struct stat st;
          bool reuse = opts_.overwrite || (n.name == "lost+found" && display == "/");  // see PrepareTarget
          if (!(errno == EEXIST && reuse && ::lstat(child_disk.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))
            throw ErrnoError("mkdir", child_disk);
        }
        bool below = Walk(n.subtree, child_disk, child_display, selected);
        if (selected || below) {
          dirs_post_order_.emplace_back(child_disk, &n);
          result_.dirs++;
          any = true;
        } else {
          ::rmdir(child_disk.c_str());  // nothing selected inside
        }
      } else if (selected) {
        CreateEntry(n, child_disk, child_display);
        any = true;
      }
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kCorrupt || e.code() == ErrorCode::kNotFound) {
        result_.errors.push_back(child_display + ": " + e.what());
        continue;
      }
      throw;
    }
  }
  return any;
}

// Opens (creating if needed) a planned file for writing.
static int OpenForWrite(const PlannedFile& pf) {
  int fd = ::open(pf.path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw ErrnoError("creating", pf.path);
  return fd;
}

// Called once per file after its last blob was written (or immediately for
// files without content): fixes the size (trailing holes, empty files) and
// applies metadata.
void Restorer::FinishFile(PlannedFile& pf, int fd) {
  bool own = fd < 0;
  if (own) fd = OpenForWrite(pf);
  struct stat st;
  if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) != pf.node->size &&
      ::ftruncate(fd, static_cast<off_t>(pf.node->size)) != 0) {
    int e = errno;
    if (own) ::close(fd);
    throw ErrnoError("sizing", pf.path, e);
  }
  if (own) ::close(fd);
  auto w = ApplyMetadata(pf.path, *pf.node);
  std::lock_guard<std::mutex> lock(mu_);
  result_.warnings.insert(result_.warnings.end(), w.begin(), w.end());
  if (opts_.progress) opts_.progress->files++;
}

void Restorer::RestoreData() {
  // Group blob targets by pack.
  struct PackWork {
    Id pack;
    std::vector<std::pair<repo::PackedBlob, std::vector<BlobTarget>>> blobs;
  };
  std::unordered_map<Id, size_t, IdHash> pack_no;
  std::unordered_map<Id, std::pair<size_t, size_t>, IdHash> blob_slot;  // blob -> (pack work, index)
  std::vector<PackWork> work;
  std::vector<uint32_t> no_content;
  for (uint32_t f = 0; f < files_.size(); ++f) {
    uint64_t offset = 0;
    const Node* n = files_[f].node;
    int writes = 0;
    for (const Id& id : n->content) {
      auto loc = repo_.index().Find(id);
      if (!loc) {
        result_.errors.push_back(files_[f].display + ": blob " + id.Hex() + " is missing from the repository");
        files_[f].failed = true;
        offset += 0;
        continue;
      }
      auto sit = blob_slot.find(id);
      if (sit == blob_slot.end()) {
        auto [pit, inserted] = pack_no.emplace(loc->pack, work.size());
        if (inserted) work.push_back({loc->pack, {}});
        PackWork& pw = work[pit->second];
        pw.blobs.push_back({loc->blob, {}});
        sit = blob_slot.emplace(id, std::make_pair(pit->second, pw.blobs.size() - 1)).first;
      }
      work[sit->second.first].blobs[sit->second.second].second.push_back({f, offset});
      offset += loc->blob.raw_length;
      ++writes;
    }
    files_[f].remaining->store(writes);
    if (writes == 0) no_content.push_back(f);
  }
  for (uint32_t f : no_content) FinishFile(files_[f], -1);

  // Work items: packs, split so that both cores stay busy even with few packs.
  struct Item {
    size_t pack;
    size_t begin, end;  // blob range within the pack's (sorted) blob list
  };
  std::vector<Item> items;
  for (size_t i = 0; i < work.size(); ++i) {
    auto& pw = work[i];
    std::sort(pw.blobs.begin(), pw.blobs.end(), [](auto& a, auto& b) { return a.first.offset < b.first.offset; });
    size_t begin = 0;
    uint64_t bytes = 0;
    for (size_t j = 0; j < pw.blobs.size(); ++j) {
      bytes += pw.blobs[j].first.length;
      if (bytes >= (4u << 20) || j + 1 == pw.blobs.size()) {
        items.push_back({i, begin, j + 1});
        begin = j + 1;
        bytes = 0;
      }
    }
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < items.size();) {
      const Item& item = items[i];
      PackWork& pw = work[item.pack];
      uint64_t lo = pw.blobs[item.begin].first.offset;
      uint64_t hi = pw.blobs[item.end - 1].first.offset + pw.blobs[item.end - 1].first.length;
      std::string name = repo::Repository::ObjectName(repo::ObjectType::kPack, pw.pack);
      thread_local Bytes range_buf;
      ByteSpan range;
      std::string read_error;
      try {
        range = repo_.backend().GetRangeInto(name, lo, hi - lo, &range_buf);
      } catch (const Error& e) {
        read_error = e.what();
      }
      for (size_t bi = item.begin; bi < item.end; ++bi) {
        auto& [blob, targets] = pw.blobs[bi];
        ByteSpan plain;
        std::string err = read_error;
        if (err.empty()) {
          try {
            ByteSpan sealed(range.data() + (blob.offset - lo), blob.length);
            plain = repo::OpenBlobView(repo_.aead(), repo_.ids(), blob, sealed,
                                   "blob " + blob.id.Short() + " in pack " + pw.pack.Short());
          } catch (const Error& e) {
            err = e.what();
          }
        }
        bool zero = err.empty() && IsAllZero(plain);
        for (const auto& t : targets) {
          PlannedFile& pf = files_[t.file];
          if (!err.empty()) {
            std::lock_guard<std::mutex> lock(mu_);
            result_.errors.push_back(pf.display + ": damaged data at offset " + std::to_string(t.offset) + ": " + err);
            pf.failed = true;
          }
          try {
            if (err.empty() && !(zero && pf.node->sparse)) {
              int fd = OpenForWrite(pf);
              struct Guard {
                int fd;
                ~Guard() { ::close(fd); }
              } g{fd};
              if (pf.node->sparse) WriteSparse(fd, plain, t.offset, pf.path);
              else WriteAt(fd, plain, t.offset, pf.path);
              if (opts_.progress) opts_.progress->bytes += plain.size();
              // Count down only after writing: the last writer applies the
              // metadata, and no other thread may still be writing then.
              if (pf.remaining->fetch_sub(1) == 1) FinishFile(pf, fd);
            } else {
              if (opts_.progress && err.empty()) opts_.progress->bytes += plain.size();
              // A hole (or damage): size and metadata still apply at the end.
              if (pf.remaining->fetch_sub(1) == 1) FinishFile(pf, -1);
            }
          } catch (const Error& e) {
            if (e.code() == ErrorCode::kNoSpace) throw;
            std::lock_guard<std::mutex> lock(mu_);
            result_.errors.push_back(pf.display + ": " + e.what());
            pf.failed = true;
          }
        }
      }
    }
  };
  int n = opts_.threads > 0 ? opts_.threads : static_cast<int>(2 * std::max(1u, std::thread::hardware_concurrency()));
  n = std::max(1, std::min<int>(n, static_cast<int>(items.size())));
  std::vector<std::thread> threads;
  std::optional<Error> fatal;
  std::mutex fatal_mu;
  auto guarded = [&] {
    try {
      worker();
    } catch (const Error& e) {
      std::lock_guard<std::mutex> lock(fatal_mu);
      if (!fatal) fatal = e;
      next = items.size();
    }
  };
  for (int i = 1; i < n; ++i) threads.emplace_back(guarded);
  guarded();
  for (auto& t : threads) t.join();
  if (fatal) throw *fatal;
}

RestoreResult Restorer::Run(const repo::Snapshot& snap) {
  PrepareTarget();
  Walk(snap.tree, opts_.target, "/", false);
  RestoreData();
  for (auto& [existing, path] : links_)
    if (::link(existing.c_str(), path.c_str()) != 0)
      result_.errors.push_back(path + ": hardlink to " + existing + ": " + std::strerror(errno));
  for (auto& [path, node] : others_) {
    auto w = ApplyMetadata(path, *node);
    result_.warnings.insert(result_.warnings.end(), w.begin(), w.end());
  }
  // dirs_post_order_ is already children-before-parents.
  for (auto& [path, node] : dirs_post_order_) {
    auto w = ApplyMetadata(path, *node);
    result_.warnings.insert(result_.warnings.end(), w.begin(), w.end());
    if (opts_.progress) opts_.progress->dirs++;
  }
  return result_;
}

}  // namespace

RestoreResult Restore(repo::Repository& repo, const repo::Snapshot& snapshot, const RestoreOptions& options) {
  Restorer r(repo, options);
  return r.Run(snapshot);
}

Node FindNode(repo::Repository& repo, const repo::Snapshot& snapshot, const std::string& path) {
  Node cur;
  cur.type = NodeType::kDir;
  cur.subtree = snapshot.tree;
  cur.name = "/";
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string comp = path.substr(i, j - i);
    i = j + 1;
    if (comp.empty() || comp == ".") continue;
    if (cur.type != NodeType::kDir) throw Error(ErrorCode::kNotFound, path + ": not found in snapshot " + snapshot.id.Short());
    repo::Tree t = repo.LoadTree(cur.subtree);
    auto it = std::find_if(t.nodes.begin(), t.nodes.end(), [&](const Node& n) { return n.name == comp; });
    if (it == t.nodes.end()) throw Error(ErrorCode::kNotFound, path + ": not found in snapshot " + snapshot.id.Short());
    cur = *it;
  }
  return cur;
}

bool FileMatchesNode(const repo::Repository& repo, const Node& node, const std::string& path,
                     std::atomic<uint64_t>* bytes_read) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  thread_local Bytes buf;
  for (const Id& id : node.content) {
    auto loc = repo.index().Find(id);
    if (!loc) return false;
    size_t len = loc->blob.raw_length;
    if (buf.size() < len) buf.resize(len);
    size_t got = 0;
    while (got < len) {
      ssize_t r = ::read(fd, buf.data() + got, len - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    if (repo.ids().Mac(ByteSpan(buf.data(), len)) != id) return false;
    if (bytes_read) *bytes_read += len;
  }
  char extra;
  return ::read(fd, &extra, 1) == 0;
}

namespace {

void VerifyTree(repo::Repository& repo, const Id& tree_id, const std::string& disk, const std::string& display,
                VerifyResult* r) {
  const repo::Tree tree = repo.LoadTree(tree_id);
  for (const Node& n : tree.nodes) {
    const std::string child_display = (display == "/" ? "/" : display + "/") + n.name;
    const std::string child_disk = disk + "/" + n.name;
    struct stat st;
    if (n.type == NodeType::kSocket) continue;  // never restored
    if (::lstat(child_disk.c_str(), &st) != 0) {
      r->errors.push_back(child_display + ": missing from the restored tree");
      continue;
    }
    switch (n.type) {
      case NodeType::kDir:
        if (!S_ISDIR(st.st_mode)) {
          r->errors.push_back(child_display + ": not a directory");
          break;
        }
        r->dirs++;
        VerifyTree(repo, n.subtree, child_disk, child_display, r);
        break;
      case NodeType::kFile: {
        std::atomic<uint64_t> bytes{0};
        if (S_ISREG(st.st_mode) && FileMatchesNode(repo, n, child_disk, &bytes)) {
          r->files++;
          r->bytes += bytes;
        } else {
          r->errors.push_back(child_display + ": content does not match its blob ids (" + std::to_string(n.size) +
                              " bytes, " + std::to_string(n.content.size()) + " blobs)");
        }
        break;
      }
      case NodeType::kSymlink: {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t len = S_ISLNK(st.st_mode) ? ::readlink(child_disk.c_str(), target.data(), target.size()) : -1;
        if (len < 0 || target.substr(0, static_cast<size_t>(len)) != n.link_target)
          r->errors.push_back(child_display + ": not a symlink to '" + n.link_target + "'");
        else
          r->symlinks++;
        break;
      }
      default:
        break;  // fifos and devices: their existence is all there is
    }
  }
}

}  // namespace

VerifyResult VerifyRestore(repo::Repository& repo, const repo::Snapshot& snapshot, const std::string& target) {
  VerifyResult r;
  VerifyTree(repo, snapshot.tree, target, "/", &r);
  return r;
}

uint64_t DumpFile(repo::Repository& repo, const Node& node, int fd) {
  uint64_t total = 0;
  for (const Id& id : node.content) {
    Bytes b = repo.LoadBlob(id);
    size_t done = 0;
    while (done < b.size()) {
      ssize_t n = ::write(fd, b.data() + done, b.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw ErrnoError("writing output", "");
      }
      done += static_cast<size_t>(n);
    }
    total += b.size();
  }
  return total;
}

}  // namespace bulwark::ops
