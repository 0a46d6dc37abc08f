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
    /// Seqs are never reused (docs/store-format.md, "Rollback"): a restore continues the log above its old high-water
    /// mark with bmadguard.rolledback placeholders; set-aside events stay reported until put back or dismissed; consumers
    /// and followers never skip an event; kill -9 of restore or repair leaves the old state or the new one.
    /// </summary>
    public sealed class RollbackTests
    {
        private readonly ITestOutputHelper _output;

        public RollbackTests(ITestOutputHelper output) => _output = output;

        [Fact]
        public void Restore_ContinuesAboveTheOldHighWaterMark_NoSeqNamesANewEvent()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            List<Core.Events.EventRecord> first, second;
            using (var s = BackupFixture.NewStore(store))
            {
                first = BackupFixture.Publish(s, 30);
            }

            var backup = StoreBackup.Create(store);
            using (var s = FileEventStore.Open(store))
            {
                second = BackupFixture.Publish(s, 20); // seqs 31..50
                s.CommitConsumer("ahead", 45);
            }

            var report = StoreRestore.Restore(store, new RestoreRequest { BackupName = backup.Name, Force = true });
            Assert.Equal(30, report.RestoredLastSeq);
            Assert.Equal(50, report.LastSeqAfter);
            Assert.Equal(20, report.RolledBack);
            Assert.Empty(report.ConsumersRewound);

            var log = BackupFixture.ReadAll(store);
            Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), log.Select(e => e.Seq));
            Assert.Equal(first.Select(e => e.Id), log.Take(30).Select(e => e.Id));
            Assert.All(log.Skip(30), e => Assert.Equal(StoreRestore.RolledBackEventType, e.Type));
            using (var s = FileEventStore.Open(store))
            {
                Assert.Equal(51, BackupFixture.Publish(s, 1)[0].Seq); // never 31: that seq named another event
                Assert.Equal(45, s.GetConsumerPosition("ahead")); // not ahead of the log, so not moved
            }

            // The 20 events are named until someone deals with them.
            var verify = StoreVerifier.Verify(store);
            var finding = Assert.Single(verify.Findings, f => f.Code == FindingCodes.SetAsideEvents);
            Assert.Contains("20 acknowledged event(s)", finding.Message);
            Assert.Equal(20, Assert.Single(SetAsideEvents.List(store)).Missing);

            // Put back: appended with their ids, the file renamed; nothing reported any more.
            var putBack = SetAsideEvents.PutBack(store, Path.GetFileName(report.KeptAsideFile!), TimeSpan.FromSeconds(5));
            Assert.Equal(20, putBack.Appended);
            Assert.Equal(second.Select(e => e.Id), putBack.Records.Select(e => e.Id));
            Assert.Equal(52, putBack.Records[0].Seq);
            Assert.DoesNotContain(StoreVerifier.Verify(store).Findings, f => f.Code == FindingCodes.SetAsideEvents);
            Assert.True(File.Exists(report.KeptAsideFile + SetAsideEvents.PutBackSuffix));
        }

        [Fact]
        public void InterruptedPutBack_IsReportedWithWhatIsMissing_AndFinishedWithoutDuplicates()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 10);
            }

            var backup = StoreBackup.Create(store);
            List<Core.Events.EventRecord> newer;
            using (var s = FileEventStore.Open(store))
            {
                newer = BackupFixture.Publish(s, 6);
            }

            var report = StoreRestore.Restore(store, new RestoreRequest { BackupName = backup.Name, Force = true });

            // A put-back killed after its first events were appended: those are in the log again (same ids).
            using (var s = FileEventStore.Open(store))
            {
                s.PublishWithIds(newer.Take(2).Select(e => (Core.Events.EventDraft.FromJson(e.Type, e.Source, e.CorrelationId, e.DataJson), (string?)e.Id)).ToList(), allowReserved: false);
            }

            Assert.Equal(4, Assert.Single(SetAsideEvents.List(store)).Missing);
            var done = SetAsideEvents.PutBack(store, Path.GetFileName(report.KeptAsideFile!), TimeSpan.FromSeconds(5));
            Assert.Equal(4, done.Appended);
            Assert.Equal(2, done.AlreadyInLog);
            var ids = BackupFixture.ReadAll(store).Select(e => e.Id).ToList();
            Assert.All(newer, e => Assert.Equal(1, ids.Count(i => i == e.Id)));
        }

        [Fact]
        public void DismissedSetAsideFile_IsNoLongerReported_AndItsBytesStay()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 5);
            }

            var backup = StoreBackup.Create(store);
            using (var s = FileEventStore.Open(store))
            {
                BackupFixture.Publish(s, 3);
            }

            var report = StoreRestore.Restore(store, new RestoreRequest { BackupName = backup.Name, Force = true });
            string before = File.ReadAllText(report.KeptAsideFile!);
            var r = CliRunner.Run("set-aside", "--store", store, "--dismiss", Path.GetFileName(report.KeptAsideFile!));
            Assert.True(r.ExitCode == 0, r.StdErr);
            Assert.DoesNotContain(StoreVerifier.Verify(store).Findings, f => f.Code == FindingCodes.SetAsideEvents);
            Assert.Equal(before, File.ReadAllText(report.KeptAsideFile + SetAsideEvents.DismissedSuffix));

            var bad = CliRunner.Run("set-aside", "--store", store, "--dismiss", "../settings");
            Assert.Equal(2, bad.ExitCode);
        }

        [Fact]
        public void RewoundConsumerFile_IsAPosition_NotDamage()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 5);
            }

            // Exactly what restores wrote before seqs were never reused.
            File.WriteAllText(Path.Combine(store, "consumers", "x.json"),
                "{\"consumer\":\"x\",\"seq\":3,\"updated\":\"2026-11-22T02:20:00.0000000+00:00\",\"rewoundFrom\":\"20000\"}\n");
            var verify = StoreVerifier.Verify(store);
            Assert.DoesNotContain(verify.Findings, f => f.Code == FindingCodes.ConsumerDamaged);
            Assert.True(verify.Healthy);
            var repair = StoreRepair.Repair(store);
            Assert.DoesNotContain(repair.Actions, a => a.Kind == "ConsumerReset");
            using var s2 = FileEventStore.Open(store);
            Assert.Equal(3, s2.GetConsumerPosition("x"));
        }

        [Fact]
        public void RestoreLeftovers_AreReportedByVerify_AndMovedToQuarantineByRepair()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 5);
            }

            // What a restore killed before its swap leaves: its unfinished copy of a backup.
            string leftover = Path.Combine(store, ".segments.restore-20261122T021759000Z.tmp");
            Directory.CreateDirectory(leftover);
            File.WriteAllText(Path.Combine(leftover, "segment-00000000000000000001.jsonl"), "x");
            var verify = StoreVerifier.Verify(store);
            Assert.Contains(verify.Findings, f => f.Code == FindingCodes.TempFileLeftOver && f.File == leftover);

            var repair = StoreRepair.Repair(store);
            Assert.False(Directory.Exists(leftover));
            var moved = Assert.Single(repair.Actions, a => a.File == leftover).QuarantinePath!;
            Assert.Equal("x", File.ReadAllText(Path.Combine(moved, "segment-00000000000000000001.jsonl")));
            Assert.DoesNotContain(StoreVerifier.Verify(store).Findings, f => f.Code == FindingCodes.TempFileLeftOver);
        }

        /// <summary>(a) A CLI follower with a consumer across `restore --latest --force` while publishers go on.</summary>
        [Fact]
        public void Follower_AcrossARestore_ReceivesEveryEventInTheLogExactlyOnce()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            Assert.Equal(0, CliRunner.Run("init", "--store", store, "--max-event-bytes", "1024", "--segment-max-bytes", "4096").ExitCode);
            var acks = new List<Ack>();
            void Publish(int n, string prefix)
            {
                for (int i = 0; i < n; i++)
                {
                    var r = CliRunner.Run("publish", "--store", store, "--type", "t.e", "--data", "{\"marker\":\"" + prefix + i + "\"}");
                    Assert.True(r.ExitCode == 0, r.StdErr);
                    acks.Add(CliProcess.ParseAck(r.Lines.Single()));
                }
            }

            Publish(10, "a");
            Assert.Equal(0, CliRunner.Run("backup", "--store", store).ExitCode);
            using var follower = CliProcess.Start(false, "get", "--store", store, "--consumer", "X", "--follow");
            Publish(15, "b");
            WaitFor(() => follower.Lines().Count >= 25, "the follower to read the first 25 events", follower);
            var restore = CliRunner.Run("restore", "--store", store, "--latest", "--force");
            Assert.True(restore.ExitCode == 0, restore.StdErr);
            Publish(15, "c");

            var log = BackupFixture.ReadAll(store);
            long last = log[log.Count - 1].Seq;
            WaitFor(() => follower.Lines().Count > 0 && SeqOf(follower.Lines().Last()) >= last, "the follower to reach seq " + last, follower);
            follower.Kill();
            follower.Wait();
            var got = follower.Lines().Select(l => JsonDocument.Parse(l).RootElement).Select(e => (Seq: e.GetProperty("seq").GetInt64(), Id: e.GetProperty("id").GetString()!)).ToList();

            // Every seq once, in order; every event the log holds now (the 15 published after the restore included) delivered
            // as the log holds it; a rolled-back seq delivered either as the event it named or as its placeholder.
            Assert.Equal(Enumerable.Range(1, (int)last).Select(i => (long)i), got.Select(g => g.Seq));
            var byAck = acks.ToDictionary(a => a.Seq, a => a.Id);
            foreach (var e in log)
            {
                var g = got[(int)e.Seq - 1];
                Assert.True(g.Id == e.Id || (e.Type == StoreRestore.RolledBackEventType && byAck[e.Seq] == g.Id), $"seq {e.Seq}: got {g.Id}, log has {e.Id}");
            }

            Assert.All(acks.Where(a => a.Marker.StartsWith("c", StringComparison.Ordinal)), a => Assert.Contains(got, g => g.Id == a.Id));
            Assert.DoesNotContain("disappeared", follower.StdErr);
        }

        /// <summary>(b) kill -9 of `restore` at random points, several rounds on one store, publishers' acks recorded.</summary>
        [Fact]
        public void KilledRestores_NeverLoseAnAcknowledgedEvent_NorReuseASeq_NorLeaveAConsumerAhead()
            => KillRounds("restore", Rounds("BMADGUARD_ROLLBACK_KILLS", 3));

        /// <summary>(c) kill -9 of `repair` while it restores a backup and keeps the newer events (the put-back).</summary>
        [Fact]
        public void KilledRepairPutBack_NeverLosesAnAcknowledgedEvent_NorReusesASeq()
            => KillRounds("repair", Rounds("BMADGUARD_ROLLBACK_KILLS", 3));

        private static long SeqOf(string line) => JsonDocument.Parse(line).RootElement.GetProperty("seq").GetInt64();

        private static int Rounds(string variable, int fallback)
            => int.TryParse(Environment.GetEnvironmentVariable(variable), out int n) && n > 0 ? n : fallback;

        private void KillRounds(string what, int rounds)
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            var random = new Random(what.Length * 7919 + rounds);
            var history = new Dictionary<long, string>(); // every (seq, id) ever acknowledged or read: one id per seq, forever
            var acked = new List<Ack>();
            using (var s = BackupFixture.NewStore(store, segmentMaxBytes: 64 * 1024))
            {
                foreach (var e in BackupFixture.Publish(s, 2000, batch: 500))
                {
                    Record(history, e.Seq, e.Id);
                    acked.Add(new Ack(e.Seq, e.Id, "", e.Json));
                }
            }

            int killed = 0;
            for (int round = 0; round < rounds; round++)
            {
                Assert.Equal(0, CliRunner.Run("backup", "--store", store).ExitCode);
                using (var s = FileEventStore.Open(store))
                {
                    foreach (var e in BackupFixture.Publish(s, 1500, batch: 500))
                    {
                        Record(history, e.Seq, e.Id);
                        acked.Add(new Ack(e.Seq, e.Id, "", e.Json));
                    }

                    s.CommitConsumer("reader", BackupFixture.ReadAll(store).Last().Seq);
                }

                if (what == "repair")
                {
                    FlipAByteOfAnEarlyRecord(store);
                }

                string[] args = what == "restore"
                    ? new[] { "restore", "--store", store, "--latest", "--force" }
                    : new[] { "repair", "--store", store };
                using (var p = Process.Start(CliRunner.StartInfo(args))!)
                {
                    if (!p.WaitForExit(100 + random.Next(1200)))
                    {
                        p.Kill(entireProcessTree: true); // SIGKILL: no cleanup code runs
                        p.WaitForExit();
                        killed++;
                    }
                }

                // The next run: repair finishes what a kill left (a damaged record, leftovers), verify then says what it says.
                var repair = CliRunner.Run("repair", "--store", store);
                Assert.True(repair.ExitCode == 0, $"round {round}: {repair.StdOut} {repair.StdErr}");
                var verify = StoreVerifier.Verify(store);
                Assert.True(verify.Healthy, $"round {round}: " + string.Join("; ", verify.Findings.Select(f => f.Code + " " + f.Message)));
                Assert.DoesNotContain(verify.Findings, f => f.Code == FindingCodes.TempFileLeftOver);
                CheckInvariants(store, history, acked, round);
            }

            _output.WriteLine($"{what}: killed {killed} of {rounds}; {acked.Count} events acknowledged");
        }

        private static void Record(Dictionary<long, string> history, long seq, string id)
        {
            if (history.TryGetValue(seq, out string? had))
            {
                Assert.True(had == id, $"seq {seq} named {had} and then {id}");
            }
            else
            {
                history[seq] = id;
            }
        }

        /// <summary>Invariants 1-3 after a round: one id per seq ever; every acknowledged event in the log or a reported kept-aside file; no consumer ahead.</summary>
        private static void CheckInvariants(string store, Dictionary<long, string> history, List<Ack> acked, int round)
        {
            var log = BackupFixture.ReadAll(store);
            var inLog = new HashSet<string>();
            foreach (var e in log)
            {
                if (!e.Type.StartsWith("bmadguard.", StringComparison.Ordinal))
                {
                    Record(history, e.Seq, e.Id);
                    inLog.Add(e.Id);
                }
            }

            var reported = new HashSet<string>();
            foreach (var f in SetAsideEvents.List(store).Where(f => f.Missing > 0))
            {
                reported.UnionWith(BackupFixture.ReadIds(f.Path));
            }

            var lost = acked.Where(a => !inLog.Contains(a.Id) && !reported.Contains(a.Id)).ToList();
            Assert.True(lost.Count == 0, $"round {round}: {lost.Count} acknowledged events neither in the log nor in a reported kept-aside file (first seq {lost.FirstOrDefault()?.Seq})");
            using var s = FileEventStore.Open(store);
            Assert.True(s.GetConsumerPosition("reader") <= log.Last().Seq, $"round {round}: consumer ahead of the log");
        }

        private static void FlipAByteOfAnEarlyRecord(string store)
        {
            string first = SegmentNames_First(store);
            byte[] bytes = File.ReadAllBytes(first);
            int nl = Array.IndexOf(bytes, (byte)'\n');
            int at = Array.IndexOf(bytes, (byte)'\n', nl + 1) + 30; // inside the second record
            bytes[at] ^= 0x01;
            File.WriteAllBytes(first, bytes);
        }

        private static string SegmentNames_First(string store)
            => Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").OrderBy(f => f, StringComparer.Ordinal).First();

        private static void WaitFor(Func<bool> condition, string what, CliProcess process)
        {
            var clock = Stopwatch.StartNew();
            while (!condition())
            {
                if (clock.Elapsed > TimeSpan.FromSeconds(90) || process.Process.HasExited)
                {
                    throw new Xunit.Sdk.XunitException($"Gave up waiting for {what}; follower stderr: {process.StdErr}; lines: {process.Lines().Count}");
                }

                Thread.Sleep(50);
            }
        }
    }
}
