using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Store
{
    /// <summary>Consumers, permissions, segment rollover, the get filters and stats, through the CLI.</summary>
    public sealed class StoreBehaviourTests
    {
        private static string[] Publish(string store, int count, string prefix, Func<int, string>? type = null, Func<int, string>? source = null)
        {
            var sb = new StringBuilder();
            for (int i = 0; i < count; i++)
            {
                sb.Append($"{{\"type\":\"{(type ?? (_ => "t.x"))(i)}\",\"source\":\"{(source ?? (_ => "s1"))(i)}\",\"data\":{{\"marker\":\"{prefix}{i}\",\"pad\":\"{new string('p', (i * 53) % 400)}\"}}}}\n");
            }

            var r = Support.Cli.RunWithStdin(sb.ToString(), "publish", "--store", store, "--stdin");
            Assert.True(r.ExitCode == 0, r.StdErr);
            Assert.Equal(count, r.Lines.Length);
            return r.Lines;
        }

        private static long[] Seqs(Support.Cli.Result r)
        {
            Assert.True(r.ExitCode == 0, r.StdErr);
            return r.Lines.Select(l => CliProcess.ParseAck(l).Seq).ToArray();
        }

        private static long[] Range(long from, long to) => Enumerable.Range((int)from, (int)(to - from + 1)).Select(i => (long)i).ToArray();

        [Fact]
        public void A_consumer_gets_only_what_it_has_not_read_and_resumes_after_a_restart()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            Publish(store, 5, "a");

            Assert.Equal(Range(1, 5), Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c")));
            Assert.Empty(Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c")));

            // The position is a file in the store, so a new process (a restarted agent) resumes there.
            string position = Path.Combine(store, "consumers", "c.json");
            using (var doc = JsonDocument.Parse(File.ReadAllText(position)))
            {
                Assert.Equal(5, doc.RootElement.GetProperty("seq").GetInt64());
                Assert.Equal("c", doc.RootElement.GetProperty("consumer").GetString());
            }

            Publish(store, 3, "b");
            Assert.Equal(Range(6, 8), Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c")));

            // A second consumer is independent of the first.
            Assert.Equal(Range(1, 8), Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "other")));
            Publish(store, 2, "c");
            Assert.Equal(Range(9, 10), Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c")));
            Assert.Equal(Range(9, 10), Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "other")));

            // Reading without --consumer never moves a position.
            Assert.Equal(Range(1, 10), Seqs(Support.Cli.Run("get", "--store", store)));
            Assert.Empty(Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c")));

            // The position survives in Core too.
            using var s = FileEventStore.Open(store);
            Assert.Equal(10, s.GetConsumerPosition("c"));
            Assert.Equal(0, s.GetConsumerPosition("never-read"));
        }

        [Fact]
        public void A_following_consumer_killed_with_sigkill_loses_nothing_and_one_stopped_with_sigterm_keeps_its_place()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            Publish(store, 3, "a");

            foreach (bool graceful in new[] { true, false })
            {
                string consumer = graceful ? "term" : "kill";
                using var follow = CliProcess.Start(false, "get", "--store", store, "--consumer", consumer, "--follow");
                WaitFor(() => follow.Lines().Count >= 3, "the follower printed the first events");
                Publish(store, 4, consumer);
                WaitFor(() => follow.Lines().Count >= 7, "the follower printed the new events");
                Thread.Sleep(500); // a poll cycle or two: the follower commits its position as it goes
                if (graceful)
                {
                    using (var kill = Process.Start("kill", new[] { "-TERM", follow.Process.Id.ToString() }))
                    {
                        kill.WaitForExit();
                    }

                    Assert.Equal(0, follow.Wait());
                }
                else
                {
                    follow.Kill();
                    follow.Wait();
                }

                long[] printed = follow.Lines().Select(l => CliProcess.ParseAck(l).Seq).ToArray();
                long total = StoreInspector.AssertClean(store).Count;
                Publish(store, 1, consumer + "-after");
                long[] next = Seqs(Support.Cli.Run("get", "--store", store, "--consumer", consumer));
                if (graceful)
                {
                    // Stopped cleanly: it resumes exactly after what it printed.
                    Assert.Equal(Range(1, total), printed);
                    Assert.Equal(new[] { total + 1 }, next);
                }
                else
                {
                    // Killed: at-least-once. Nothing is skipped; at most what it printed comes again.
                    Assert.Equal(Range(1, total + 1), printed.Union(next).OrderBy(x => x).ToArray());
                    Assert.Contains(total + 1, next);
                }
            }
        }

        private static void WaitFor(Func<bool> condition, string what)
        {
            var clock = Stopwatch.StartNew();
            while (!condition())
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "timed out waiting until " + what);
                Thread.Sleep(20);
            }
        }

        [Fact]
        public void New_stores_are_owner_only_and_a_wider_store_is_reported()
        {
            if (OperatingSystem.IsWindows())
            {
                return;
            }

            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            Publish(store, 2, "a");
            Assert.Equal(2, Seqs(Support.Cli.Run("get", "--store", store, "--consumer", "c")).Length);
            string segment = Directory.GetFiles(Path.Combine(store, "segments")).Single();
            File.AppendAllText(segment, "{\"torn"); // so the store also creates a quarantine file
            Assert.Contains("TornTailRepaired", Support.Cli.Run("get", "--store", store).StdErr);

            const UnixFileMode dirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            const UnixFileMode fileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            foreach (string d in new[] { store, Path.Combine(store, "segments"), Path.Combine(store, "consumers"), Path.Combine(store, "quarantine") })
            {
                Assert.True(File.GetUnixFileMode(d) == dirMode, $"{d} is {File.GetUnixFileMode(d)}");
            }

            var files = Directory.GetFiles(store, "*", SearchOption.AllDirectories);
            Assert.Contains(files, f => f.EndsWith("c.json", StringComparison.Ordinal));
            Assert.Contains(files, f => f.EndsWith(".torn", StringComparison.Ordinal));
            foreach (string f in files)
            {
                Assert.True(File.GetUnixFileMode(f) == fileMode, $"{f} is {File.GetUnixFileMode(f)}");
            }

            var quiet = Support.Cli.Run("get", "--store", store);
            Assert.Equal("", quiet.StdErr);

            File.SetUnixFileMode(store, dirMode | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            var wide = Support.Cli.Run("get", "--store", store);
            Assert.Equal(0, wide.ExitCode);
            Assert.StartsWith("bmadguard: notice: StorePermissionsTooWide: ", wide.StdErr);
            Assert.Contains(store, wide.StdErr);
            Assert.Equal(2, wide.Lines.Length);
            using (var s = FileEventStore.Open(store))
            {
                Assert.Equal("StorePermissionsTooWide", Assert.Single(s.Notices).Code);
            }

            File.SetUnixFileMode(Path.Combine(store, StorePaths.MetaFileName), fileMode | UnixFileMode.OtherRead);
            File.SetUnixFileMode(store, dirMode);
            Assert.Contains("bmadguard.store.json", Support.Cli.Run("stats", "--store", store).StdErr);
        }

        [Fact]
        public void Segments_roll_over_and_reads_filters_and_stats_span_them()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store, "--segment-max-bytes", "4096", "--max-event-bytes", "2048");
            string[] types = { "story.created", "story.done", "build.failed", "Story.Reviewed" };
            for (int batch = 0; batch < 4; batch++)
            {
                Publish(store, 50, $"b{batch}-", i => types[(i + batch) % types.Length], i => i % 3 == 0 ? "architect" : "dev-1");
                Thread.Sleep(20); // distinct timestamps between batches
            }

            var records = StoreInspector.AssertClean(store);
            Assert.Equal(200, records.Count);
            var segments = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").OrderBy(p => p).ToArray();
            Assert.True(segments.Length >= 10, $"only {segments.Length} segments");
            Assert.All(segments, s => Assert.True(new FileInfo(s).Length <= 4096, $"{s} is over the segment size"));

            // Sealed segments are never written again.
            var sealedBefore = segments.Take(segments.Length - 1).ToDictionary(p => p, File.ReadAllBytes);
            Publish(store, 30, "late-", _ => "late.event");
            foreach (var (path, bytes) in sealedBefore)
            {
                Assert.Equal(bytes, File.ReadAllBytes(path));
            }

            records = StoreInspector.AssertClean(store);
            Assert.Equal(230, records.Count);

            string G(params string[] args) => string.Join(",", Seqs(Support.Cli.Run(new[] { "get", "--store", store }.Concat(args).ToArray())));
            string Expect(IEnumerable<RawRecord> rs) => string.Join(",", rs.Select(r => r.Seq));

            Assert.Equal(Expect(records), G());
            Assert.Equal(Expect(records.Where(r => r.Seq > 137)), G("--after", "137"));
            Assert.Equal(Expect(records.Where(r => r.Seq > 0)), G("--after", "0"));
            Assert.Equal("", G("--after", "230"));
            Assert.Equal(Expect(records.TakeLast(7)), G("--last", "7"));
            Assert.Equal("", G("--last", "0"));
            Assert.Equal(Expect(records), G("--last", "1000"));
            Assert.Equal(Expect(records.Where(r => r.Type.StartsWith("story.", StringComparison.OrdinalIgnoreCase))), G("--type", "story.*"));
            Assert.Equal(Expect(records.Where(r => r.Type == "story.done")), G("--type", "STORY.DONE"));
            Assert.Equal(Expect(records.Where(r => r.Type is "story.done")), G("--type", "st?ry.d*"));
            Assert.Equal(Expect(records.Where(r => r.Type is "story.created" or "story.done")), G("--type", "*.[cd]*"));
            Assert.Equal(Expect(records.Where(r => r.Source == "architect")), G("--source", "architect"));
            Assert.Equal(Expect(records.Where(r => r.Source == "dev-1" && r.Type == "build.failed" && r.Seq > 40).TakeLast(3)),
                G("--source", "dev-*", "--type", "build.failed", "--after", "40", "--last", "3"));

            DateTimeOffset Ts(RawRecord r)
            {
                using var doc = JsonDocument.Parse(r.EventJson);
                return DateTimeOffset.Parse(doc.RootElement.GetProperty("timestamp").GetString()!);
            }

            var since = Ts(records[120]);
            Assert.Equal(Expect(records.Where(r => Ts(r) >= since)), G("--since", since.ToString("o")));
            Assert.Equal(Expect(records.Where(r => Ts(r) >= since)), G("--since", since.ToOffset(TimeSpan.FromHours(2)).ToString("o")));
            Assert.Equal("", G("--since", DateTimeOffset.UtcNow.AddHours(1).ToString("o")));

            // stats
            var st = Support.Cli.Run("stats", "--store", store);
            Assert.True(st.ExitCode == 0, st.StdErr);
            using var stats = JsonDocument.Parse(st.StdOut);
            var s = stats.RootElement;
            Assert.Equal(230, s.GetProperty("totalEvents").GetInt64());
            Assert.Equal(1, s.GetProperty("firstSeq").GetInt64());
            Assert.Equal(230, s.GetProperty("lastSeq").GetInt64());
            Assert.Equal(Ts(records[0]), DateTimeOffset.Parse(s.GetProperty("firstTimestamp").GetString()!));
            Assert.Equal(Ts(records[^1]), DateTimeOffset.Parse(s.GetProperty("lastTimestamp").GetString()!));
            var byType = s.GetProperty("byType").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
            Assert.Equal(records.GroupBy(r => r.Type).ToDictionary(g => g.Key, g => (long)g.Count()), byType);
            var bySource = s.GetProperty("bySource").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
            Assert.Equal(records.GroupBy(r => r.Source).ToDictionary(g => g.Key, g => (long)g.Count()), bySource);
            var segmentFiles = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl");
            Assert.Equal(segmentFiles.Length, s.GetProperty("segments").GetInt32());
            Assert.Equal(segmentFiles.Sum(f => new FileInfo(f).Length), s.GetProperty("segmentBytes").GetInt64());
            Assert.Equal(Directory.GetFiles(store, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length), s.GetProperty("bytesOnDisk").GetInt64());
            Assert.Equal(0, s.GetProperty("quarantineFiles").GetInt32());
        }

        [Fact]
        public void Stats_of_an_empty_store()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            StoreInspector.Init(store);
            var st = Support.Cli.Run("stats", "--store", store);
            Assert.True(st.ExitCode == 0, st.StdErr);
            using var doc = JsonDocument.Parse(st.StdOut);
            var s = doc.RootElement;
            Assert.Equal(0, s.GetProperty("totalEvents").GetInt64());
            Assert.Equal(JsonValueKind.Null, s.GetProperty("firstSeq").ValueKind);
            Assert.Equal(JsonValueKind.Null, s.GetProperty("lastTimestamp").ValueKind);
            Assert.Empty(s.GetProperty("byType").EnumerateObject());
            Assert.Equal(1, s.GetProperty("segments").GetInt32());
            Assert.Equal("", Support.Cli.Run("get", "--store", store).StdOut);
        }
    }
}
