using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Store;
using BmadGuard.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Backup
{
    /// <summary>
    /// The soak of issue 9, invariants 1-4, behind BMADGUARD_SOAK_SECONDS (not in the default run): publishers,
    /// followers with and without a type filter, backup, restore, repair and a monitor (--on-damage repair) all at once,
    /// with kill -9 of random participants. Then, after a final repair: no seq ever named two events (publishers' acks,
    /// followers' output and the final log), every acknowledged event is in the log or in a kept-aside file that verify
    /// reports, every follower delivered every (matching) event up to its committed position, no consumer is ahead of the log.
    /// </summary>
    public sealed class RollbackSoakTests
    {
        private readonly ITestOutputHelper _output;

        public RollbackSoakTests(ITestOutputHelper output) => _output = output;

        [Fact]
        public void Soak_RestoreRepairMonitorFollowersPublishers_WithKills_HoldInvariants1To4()
        {
            if (!int.TryParse(Environment.GetEnvironmentVariable("BMADGUARD_SOAK_SECONDS"), out int seconds) || seconds <= 0)
            {
                return; // a flag, like BMADGUARD_POWERLOSS_SEEDS
            }

            using var dir = new TempDir();
            string store = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", store, "--max-event-bytes", "4096", "--segment-max-bytes", "65536").ExitCode);
            var random = new Random(Environment.TickCount);
            var finished = new List<CliProcess>();
            var publishers = new List<CliProcess>();
            var allPublishers = new List<CliProcess>();
            var followers = new Dictionary<string, List<CliProcess>> { ["all"] = new List<CliProcess>(), ["typed"] = new List<CliProcess>() };
            CliProcess? monitor = null;
            var counts = new Dictionary<string, int>();
            void Count(string what) => counts[what] = counts.TryGetValue(what, out int n) ? n + 1 : 1;

            CliProcess StartPublisher(int n)
            {
                var p = CliProcess.Start(true, "publish", "--store", store, "--stdin", "--lock-timeout", "30");
                allPublishers.Add(p);
                Count("publisher");
                return p;
            }

            CliProcess StartFollower(string name)
                => name == "all"
                    ? CliProcess.Start(false, "get", "--store", store, "--consumer", "all", "--follow")
                    : CliProcess.Start(false, "get", "--store", store, "--consumer", "typed", "--type", "t.a", "--follow");

            for (int i = 0; i < 2; i++)
            {
                publishers.Add(StartPublisher(i));
            }

            foreach (var name in followers.Keys.ToList())
            {
                followers[name].Add(StartFollower(name));
            }

            monitor = CliProcess.Start(false, "monitor", "--store", store, "--interval", "500ms", "--on-damage", "repair");
            var clock = Stopwatch.StartNew();
            int marker = 0;
            while (clock.Elapsed < TimeSpan.FromSeconds(seconds))
            {
                // Feed the publishers a few events each.
                foreach (var p in publishers.Where(p => !p.Process.HasExited))
                {
                    try
                    {
                        for (int k = 0; k < 5; k++)
                        {
                            string type = (marker % 3 == 0) ? "t.a" : "t.b";
                            p.StdIn.WriteLine("{\"type\":\"" + type + "\",\"data\":{\"marker\":\"m" + marker++ + "\"}}");
                        }

                        p.StdIn.Flush();
                    }
                    catch (IOException)
                    {
                        // killed
                    }
                }

                int action = random.Next(20);
                switch (action)
                {
                    case 0:
                        Run("backup", "--store", store);
                        Count("backup");
                        break;
                    case 1:
                        if (RunMaybeKilled(random, "restore", "--store", store, "--latest", "--force"))
                        {
                            Count("restoreKilled");
                        }

                        Count("restore");
                        break;
                    case 2:
                        if (RunMaybeKilled(random, "repair", "--store", store))
                        {
                            Count("repairKilled");
                        }

                        Count("repair");
                        break;
                    case 3:
                    {
                        int i = random.Next(publishers.Count);
                        publishers[i].Kill();
                        finished.Add(publishers[i]);
                        publishers[i] = StartPublisher(i);
                        Count("publisherKilled");
                        break;
                    }

                    case 4:
                    {
                        string name = random.Next(2) == 0 ? "all" : "typed";
                        followers[name].Last().Kill();
                        followers[name].Add(StartFollower(name));
                        Count("followerKilled");
                        break;
                    }

                    case 5:
                        monitor.Kill();
                        finished.Add(monitor);
                        monitor = CliProcess.Start(false, "monitor", "--store", store, "--interval", "500ms", "--on-damage", "repair");
                        Count("monitorKilled");
                        break;
                }

                Thread.Sleep(100);
            }

            // Stop: publishers end cleanly (stdin closed), the monitor is killed, one last repair settles any leftover.
            foreach (var p in publishers)
            {
                try
                {
                    p.StdIn.Close();
                }
                catch (IOException)
                {
                }

                p.Wait();
                finished.Add(p);
            }

            monitor.Kill();
            monitor.Wait();
            Assert.Equal(0, CliRunner.Run("repair", "--store", store).ExitCode);

            // Let the live followers catch up with the log, then stop them.
            var log = BackupFixture.ReadAll(store);
            long last = log.Count == 0 ? 0 : log[log.Count - 1].Seq;
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromSeconds(60) && Position(store, "all") < last)
            {
                Thread.Sleep(200);
            }

            foreach (var list in followers.Values)
            {
                list.Last().Kill();
                foreach (var f in list)
                {
                    f.Wait();
                }
            }

            // Invariant 1: one id per seq, across acks, followers and the final log.
            var history = new Dictionary<long, string>();
            var acked = new List<Ack>();
            foreach (var p in allPublishers)
            {
                foreach (string line in p.Lines())
                {
                    var ack = JsonDocument.Parse(line).RootElement;
                    if (ack.TryGetProperty("seq", out var seq))
                    {
                        acked.Add(new Ack(seq.GetInt64(), ack.GetProperty("id").GetString()!, "", line));
                        Same(history, seq.GetInt64(), ack.GetProperty("id").GetString()!, "ack");
                    }
                }
            }

            var inLog = new HashSet<string>();
            foreach (var e in log.Where(e => !e.Type.StartsWith("bmadguard.", StringComparison.Ordinal)))
            {
                Same(history, e.Seq, e.Id, "log");
                inLog.Add(e.Id);
            }

            var delivered = new Dictionary<string, HashSet<long>>();
            foreach (var (name, list) in followers)
            {
                delivered[name] = new HashSet<long>();
                foreach (var f in list)
                {
                    foreach (string line in f.Lines())
                    {
                        var e = JsonDocument.Parse(line).RootElement;
                        long seq = e.GetProperty("seq").GetInt64();
                        string type = e.GetProperty("type").GetString()!;
                        if (!type.StartsWith("bmadguard.", StringComparison.Ordinal))
                        {
                            Same(history, seq, e.GetProperty("id").GetString()!, "follower " + name);
                        }

                        delivered[name].Add(seq);
                    }
                }
            }

            // Invariant 2: every acknowledged event in the log or in a kept-aside file verify reports.
            var verify = StoreVerifier.Verify(store);
            Assert.True(verify.Healthy, string.Join("; ", verify.Findings.Select(f => f.Code + " " + f.Message)));
            var reported = new HashSet<string>();
            foreach (var f in SetAsideEvents.List(store).Where(f => f.Missing > 0))
            {
                Assert.Contains(verify.Findings, x => x.Code == FindingCodes.SetAsideEvents && x.File == f.Path);
                reported.UnionWith(BackupFixture.ReadIds(f.Path));
            }

            var lost = acked.Where(a => !inLog.Contains(a.Id) && !reported.Contains(a.Id)).ToList();
            Assert.True(lost.Count == 0, $"{lost.Count} acknowledged events neither in the log nor in a reported kept-aside file");

            // Invariant 3: no follower skipped an event up to its committed position; none ahead of the log.
            foreach (var name in followers.Keys)
            {
                long position = Position(store, name);
                Assert.True(position <= last, $"consumer {name} at {position}, log ends at {last}");
                var skipped = log.Where(e => e.Seq <= position && (name == "all" || e.Type == "t.a") && !delivered[name].Contains(e.Seq)).Select(e => e.Seq).ToList();
                Assert.True(skipped.Count == 0, $"consumer {name} skipped {skipped.Count} events (first seq {skipped.FirstOrDefault()})");
            }

            // Invariant 4's leftovers: a killed restore's segment set is gone after the final repair (followers killed
            // after it may leave a consumer's temporary file: not a restore's, and reported as such).
            Assert.DoesNotContain(verify.Findings, f => f.Code == FindingCodes.TempFileLeftOver && (f.File ?? "").Contains(".segments.restore-"));
            _output.WriteLine($"soak {seconds}s: {acked.Count} acknowledged, log ends at {last} ({log.Count(e => e.Type == StoreRestore.RolledBackEventType)} rolled-back placeholders), " +
                              $"set aside and reported {reported.Count}; " + string.Join(", ", counts.OrderBy(k => k.Key).Select(k => k.Key + "=" + k.Value)) +
                              $"; delivered all={delivered["all"].Count} typed={delivered["typed"].Count}");
        }

        private static void Same(Dictionary<long, string> history, long seq, string id, string where)
        {
            if (history.TryGetValue(seq, out string? had))
            {
                Assert.True(had == id, $"seq {seq} named {had} and then {id} ({where})");
            }
            else
            {
                history[seq] = id;
            }
        }

        private static long Position(string store, string consumer)
        {
            using var s = FileEventStore.Open(store);
            return s.GetConsumerPosition(consumer);
        }

        private static void Run(params string[] args) => CliRunner.Run(args);

        /// <summary>Runs a command and kills it (SIGKILL) at a random moment half of the time; true when it was killed.</summary>
        private static bool RunMaybeKilled(Random random, params string[] args)
        {
            using var p = Process.Start(CliRunner.StartInfo(args))!;
            p.StandardOutput.ReadToEndAsync();
            p.StandardError.ReadToEndAsync();
            int wait = random.Next(2) == 0 ? 120_000 : 50 + random.Next(1500);
            if (!p.WaitForExit(wait))
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                return true;
            }

            return false;
        }
    }
}
