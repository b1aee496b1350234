// A minimal parallel loop for I/O-bound work (object reads and HEADs against
// storage), where the useful parallelism is the backend's connection count,
// not the number of cores.
#pragma once

#include <cstddef>
#include <functional>

namespace bulwark {

// Runs fn(i) for every i in [0, n) on up to `threads` threads (the calling
// thread is one of them; threads < 1 counts as 1). The first exception any
// call throws stops the others from taking new items and is rethrown here
// once every thread has stopped. Items are handed out in order, each once.
void ParallelFor(size_t n, int threads, const std::function<void(size_t)>& fn);

}  // namespace bulwark
