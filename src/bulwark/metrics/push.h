// Pushing metrics to a Prometheus Pushgateway
// (https://github.com/prometheus/pushgateway#api): for one-shot commands run
// from cron or a Kubernetes CronJob, where nothing stays up to be scraped.
//
// The grouping key is job="bulwark" plus one label (e.g. source="docs"):
// URL/metrics/job/bulwark/<label>/<value>; a value that is not plain
// [A-Za-z0-9._-] is sent base64url-encoded (<label>@base64/<value>).
// kReplaceGroup (HTTP PUT) replaces every metric of the group; kReplaceFamilies
// (HTTP POST) replaces only the families sent, so a `forget` push does not
// erase what the last `backup` pushed.
//
// Thread-safety: Push is reentrant.
#pragma once

#include <string>
#include <vector>

#include "bulwark/metrics/exposition.h"

namespace bulwark::metrics {

enum class PushMode { kReplaceGroup, kReplaceFamilies };

// Sends `families` (exposition text) to the gateway at `url` ("http://host:port"
// or "https://...", optionally with a path prefix). Throws Error(kInvalidArgument)
// for a malformed URL, Error(kIo) naming the URL for a connection failure or
// a non-2xx answer (with its body). Times out after 10 s.
void Push(const std::string& url, const std::string& label, const std::string& value,
          const std::vector<Family>& families, PushMode mode);

// The request path for the group (exposed for tests).
std::string PushPath(const std::string& prefix, const std::string& label, const std::string& value);

}  // namespace bulwark::metrics
