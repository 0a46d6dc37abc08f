using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using BmadGuard.Core.Storage;

namespace BmadGuard.Bench
{
    /// <summary>
    /// The BmadGuard benchmarks. Every figure is reported as a ratio to a baseline measured in the same run
    /// (see bench/README.md); nothing here is a pass/fail timing test.
    /// </summary>
    internal static class Program
    {
        public static int Main(string[] args)
        {
            if (args.Length > 0 && args[0] == "--worker")
            {
                return Worker.Run(args);
            }

            BenchConfig config;
            try
            {
                config = BenchConfig.Parse(args);
            }
            catch (UsageException ex)
            {
                if (ex.Message.Length > 0)
                {
                    Console.Error.WriteLine("bench: " + ex.Message);
                }

                Console.Error.WriteLine(BenchConfig.Usage);
                return ex.Message.Length > 0 ? 2 : 0;
            }

            var clock = Stopwatch.StartNew();
            string baseDir = config.Dir ?? Path.GetDirectoryName(Path.GetFullPath(StorePaths.DefaultStore()))!;
            Directory.CreateDirectory(baseDir);
            string root = Path.Combine(Path.GetFullPath(baseDir), $"bmadguard-bench-{Environment.ProcessId}-{Guid.NewGuid().ToString("N").Substring(0, 6)}");
            Directory.CreateDirectory(root);
            void Log(string message) => Console.Error.WriteLine($"[{clock.Elapsed.TotalSeconds,6:0.0}s] {message}");

            var run = new RunInfo
            {
                Started = DateTimeOffset.UtcNow.ToString("o"),
                Quick = config.Quick,
                Directory = root,
                FileSystem = FileSystemOf(root),
                LoadAverageBefore = LoadAverage(),
            };

            try
            {
                var (pad, recordBytes) = Workload.Calibrate(Path.Combine(root, "00-calibrate"));
                run.RecordBytes = recordBytes;
                Log($"bench in {root} ({run.FileSystem ?? "unknown fs"}); record size {recordBytes} bytes; {(config.Quick ? "quick" : "full")} run");
                var scenarios = new Scenarios(config, root, pad, recordBytes, Log);
                if (config.Runs(1) || config.Runs(2) || config.Runs(5))
                {
                    RunScenario(run, "1-2", scenarios.SinglePublish, Log);
                }

                if (config.Runs(3))
                {
                    RunScenario(run, "3", scenarios.CostAtSize, Log);
                }

                if (config.Runs(4))
                {
                    RunScenario(run, "4", scenarios.BatchThroughput, Log);
                }

                if (config.Runs(5))
                {
                    RunScenario(run, "5", scenarios.ConcurrentProcesses, Log);
                }

                if (config.Runs(6))
                {
                    RunScenario(run, "6", () => LegacyScenario.Run(root, config.Quick, Log), Log);
                }

                if (config.Profile)
                {
                    RunScenario(run, "P", scenarios.Profile, Log);
                }
            }
            finally
            {
                if (!config.Keep)
                {
                    Scenarios.DeleteQuietly(root);
                }
            }

            run.LoadAverageAfter = LoadAverage();
            run.Seconds = clock.Elapsed.TotalSeconds;
            string output = config.Out ?? Path.Combine(RepoRoot() ?? Directory.GetCurrentDirectory(), "bench", "results", "latest.json");
            Report.WriteJson(run, output);
            Report.PrintTable(run);
            Console.WriteLine($"results: {output}");
            return run.Rows.Any(r => r.Met == false) ? 3 : 0;
        }

        /// <summary>Runs one scenario; if it fails, the rows it produced stay and a failed row says why.</summary>
        private static void RunScenario(RunInfo run, string id, Func<IEnumerable<Row>> scenario, Action<string> log)
        {
            try
            {
                run.Rows.AddRange(scenario());
            }
            catch (Exception ex)
            {
                log($"scenario {id} failed: {ex}");
                run.Rows.Add(new Row { Id = id, Name = "scenario failed", Unit = "", Value = double.NaN, Met = false, Note = ex.GetType().Name + ": " + ex.Message });
            }
        }

        private static string? RepoRoot()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "BmadGuard.slnx")))
                {
                    return dir.FullName;
                }
            }

            return null;
        }

        private static string? LoadAverage()
        {
            try
            {
                return File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : null;
            }
            catch (IOException)
            {
                return null;
            }
        }

        /// <summary>The mount (device and type) holding <paramref name="path"/>, from /proc/mounts on Linux.</summary>
        private static string? FileSystemOf(string path)
        {
            try
            {
                if (!File.Exists("/proc/mounts"))
                {
                    return null;
                }

                var best = File.ReadAllLines("/proc/mounts")
                    .Select(l => l.Split(' '))
                    .Where(p => p.Length >= 3 && (path == p[1] || path.StartsWith(p[1].TrimEnd('/') + "/", StringComparison.Ordinal)))
                    .OrderByDescending(p => p[1].Length)
                    .FirstOrDefault();
                return best == null ? null : $"{best[0]} on {best[1]} ({best[2]})";
            }
            catch (IOException)
            {
                return null;
            }
        }
    }
}
