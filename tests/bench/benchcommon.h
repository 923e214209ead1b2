/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the throughput benchmarks measure and how: one round's figures, the
 * process's CPU time and a monotonic clock, the median round and paired
 * ratios, the JSON that tests/bench/run reads, and the contenders run round
 * by round. */

#pragma once

#include <glib.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
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

/* The contenders of one message size: which of them run (all, or the one
 * --only names), every round of each, and what is compared from them. */
class Contenders
{
public:
  using Figure = double (Result::*) () const;

  Contenders (const char *const *names, int n, const std::string &only,
      size_t size)
      : names_ (names), size_ (size), all_ (n), median_ (n), wanted_ (n)
  {
    for (int k = 0; k < n; k++)
      wanted_[k] = only.empty () || only == names[k];
  }

  /* Whether --only may name @v. */
  static bool known (const char *const *names, int n, const char *v)
  {
    return std::find_if (names, names + n, [v] (const char *name) {
      return strcmp (name, v) == 0;
    }) != names + n;
  }

  /* Runs @rounds rounds, @run (k) measuring contender k once. The order
   * rotates from round to round, so that none always goes first. */
  template <typename Run> void run (int rounds, Run run)
  {
    int n = int (all_.size ());
    for (int round = 0; round < rounds; round++)
      for (int k = 0; k < n; k++) {
        int which = (k + round) % n;
        if (wanted_[which])
          all_[which].push_back (run (which));
      }
    for (int k = 0; k < n; k++)
      if (!all_[k].empty ())
        median_[k] = median_round (all_[k]);
  }

  bool wanted (int k) const
  {
    return wanted_[k];
  }
  const char *name (int k) const
  {
    return names_[k];
  }
  /* The round of median throughput of contender @k. */
  const Result &median (int k) const
  {
    return median_[k];
  }
  /* paired_ratio() of @a's figure @f to @b's. */
  double ratio (int a, int b, Figure f) const
  {
    return paired_ratio (all_[a], all_[b], f);
  }

  /* One table row per contender that ran, with the start-up time if
   * @startup. */
  void print (bool startup) const
  {
    for (size_t k = 0; k < all_.size (); k++) {
      if (!wanted_[k])
        continue;
      const Result &r = median_[k];
      printf ("%9zu %-10s %9zu %12.0f %10.1f %12.2f", size_, names_[k],
          r.messages, r.msgs_per_s (), r.mb_per_s (), r.cpu_per_gb ());
      if (startup)
        printf (" %10.3f", r.startup);
      printf ("\n");
    }
  }

  /* "@a/@b: throughput, CPU per GB", as paired ratios, when both ran. */
  void print_ratios (int a, int b) const
  {
    if (wanted_[a] && wanted_[b])
      printf ("%9zu %s/%s: throughput %.2f, CPU per GB %.2f\n", size_,
          names_[a], names_[b], ratio (a, b, &Result::mb_per_s),
          ratio (a, b, &Result::cpu_per_gb));
  }

  /* Figure @f of @a against @b as JSON (medians and their paired ratio),
   * when both ran. */
  void figure (Json &json, const char *name, int a, int b, Figure f,
      const char *unit) const
  {
    if (wanted_[a] && wanted_[b])
      json.figure (name, size_, (median_[a].*f) (), (median_[b].*f) (),
          names_[b], unit, ratio (a, b, f));
  }

private:
  const char *const *names_;
  size_t size_;
  std::vector<std::vector<Result>> all_;
  std::vector<Result> median_;
  std::vector<bool> wanted_;
};

/* The throughput goal, @a at least 0.95x @b, over every size where both
 * ran. */
class Goal
{
public:
  void check (const Contenders &c, int a, int b)
  {
    if (!c.wanted (a) || !c.wanted (b))
      return;
    met_ &= c.ratio (a, b, &Result::mb_per_s) >= 0.95;
    a_ = c.name (a);
    b_ = c.name (b);
  }
  /* "goal (...): met" or "missed", unless it was never checked. */
  void print () const
  {
    if (a_)
      printf ("goal (%s >= 0.95x %s throughput): %s\n", a_, b_,
          met_ ? "met" : "missed");
  }

private:
  bool met_ = true;
  const char *a_ = nullptr, *b_ = nullptr;
};

} // namespace bench
