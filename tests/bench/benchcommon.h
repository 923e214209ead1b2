/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the throughput benchmarks measure and how: one round's figures, the
 * process's CPU time and a monotonic clock, the median round, and the JSON
 * that tests/bench/run reads. */

#pragma once

#include <glib.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace bench {

/* One round of one contender. */
struct Result
{
  double seconds = 0;
  double cpu = 0;
  /* From the start to the first message (consumers only). */
  double startup = 0;
  size_t messages = 0;
  size_t bytes = 0;

  double msgs_per_s () const
  {
    return messages / seconds;
  }
  double mb_per_s () const
  {
    return bytes / seconds / 1e6;
  }
  double cpu_per_gb () const
  {
    return cpu / (bytes / 1e9);
  }
};

/* User plus system CPU seconds of this process so far. */
inline double
cpu_seconds ()
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

inline double
now_seconds ()
{
  return g_get_monotonic_time () / 1e6;
}

/* The round of median throughput. */
inline Result
median_round (std::vector<Result> v)
{
  std::sort (v.begin (), v.end (), [] (const Result &a, const Result &b) {
    return a.mb_per_s () < b.mb_per_s ();
  });
  return v[v.size () / 2];
}

/* The median over the rounds of @a's figure divided by @b's in the same
 * round. Each round runs the contenders one right after the other, so what
 * other processes do to the machine from one round to the next cancels out
 * of each ratio; 0 when no round has both. */
inline double
paired_ratio (const std::vector<Result> &a, const std::vector<Result> &b,
    double (Result::*figure) () const)
{
  std::vector<double> r;
  for (size_t i = 0; i < a.size () && i < b.size (); i++) {
    double d = (b[i].*figure) ();
    if (d > 0)
      r.push_back ((a[i].*figure) () / d);
  }
  if (r.empty ())
    return 0;
  std::sort (r.begin (), r.end ());
  size_t m = r.size () / 2;
  return r.size () % 2 ? r[m] : (r[m - 1] + r[m]) / 2;
}

/* "1 KB", "100 KB", "1 MB". */
inline std::string
size_name (size_t size)
{
  if (size >= 1024 * 1024 && size % (1024 * 1024) == 0)
    return std::to_string (size / (1024 * 1024)) + " MB";
  if (size >= 1024 && size % 1024 == 0)
    return std::to_string (size / 1024) + " KB";
  return std::to_string (size) + " B";
}

/* A benchmark's figures as the JSON tests/bench/run reads: each one a
 * value, the baseline measured in the same run, and their names. */
class Json
{
public:
  /* Writes nothing when @path is null; returns false when it cannot be
   * created. */
  bool open (const char *path, const char *benchmark, int rounds, double mbytes)
  {
    if (!path)
      return true;
    f_ = fopen (path, "w");
    if (!f_)
      return false;
    fprintf (f_,
        "{\"benchmark\": \"%s\", \"rounds\": %d, \"mbytes\": %g, "
        "\"results\": [",
        benchmark, rounds, mbytes);
    return true;
  }
  /* @ratio: the paired_ratio() of value to baseline, or 0 for none (the
   * ratio is then value / baseline). */
  void figure (const char *name, size_t size, double value, double baseline,
      const char *baseline_name, const char *unit, double ratio = 0)
  {
    if (!f_)
      return;
    fprintf (f_,
        "%s\n {\"name\": \"%s %s\", \"value\": %.4g, \"baseline\": "
        "%.4g, \"baseline_name\": \"%s\", \"unit\": \"%s\", \"size\": %zu",
        first_ ? "" : ",", name, size_name (size).c_str (), value, baseline,
        baseline_name, unit, size);
    if (ratio > 0)
      fprintf (f_, ", \"paired_ratio\": %.4g", ratio);
    fprintf (f_, "}");
    first_ = false;
  }
  ~Json ()
  {
    if (f_) {
      fprintf (f_, "\n]}\n");
      fclose (f_);
    }
  }

private:
  FILE *f_ = nullptr;
  bool first_ = true;
};

} // namespace bench
