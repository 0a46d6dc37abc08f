using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core.Backup;
using BmadGuard.Tests.Support;
using CliRunner = BmadGuard.Tests.Support.Cli;
using Xunit;

namespace BmadGuard.Tests.Backup
{
    /// <summary>Backups and a restore taken by real bmadguard processes while two other bmadguard processes keep publishing.</summary>
    public sealed class ConcurrentBackupTests
    {
        private sealed class Publisher
        {
            public Publisher(string store, string tag)
            {
                Process = Process.Start(CliRunner.StartInfo(new[] { "publish", "--store", store, "--stdin" }, redirectStdin: true))!;
                Stderr = Process.StandardError.ReadToEndAsync();
                Reader = Task.Run(() =>
                {
                    string? line;
                    while ((line = Process.StandardOutput.ReadLine()) != null)
                    {
                        var e = BackupFixture.Json(line);
                        Acks.Add((e.GetProperty("id").GetString()!, e.GetProperty("seq").GetInt64()));
                    }
                });
                Writer = Task.Run(() =>
                {
                    // Publishes until asked to stop, then 50 more: so events are always published after
                    // the restore, however slow the machine. Capped so a failed test cannot run forever.
                    int extra = 0;
                    for (int i = 0; i < 20_000; i++)
                    {
                        if (_stop && ++extra > 50)
                        {
                            break;
                        }

                        try
                        {
                            Process.StandardInput.WriteLine("{\"type\":\"load." + tag + "\",\"source\":\"" + tag + "\",\"data\":{\"i\":" + i + ",\"pad\":\"" + new string('p', 60) + "\"}}");
                            Process.StandardInput.Flush();
                        }
                        catch (IOException)
                        {
                            // The publisher has exited (a broken pipe): Finish reports its exit code and stderr,
                            // which say why; this write's exception would only hide them.
                            return;
                        }

                        Written++;
                        Thread.Sleep(5); // paced, so the backups and the restore happen mid-stream
                    }

                    Process.StandardInput.Close();
                });
            }

            private volatile bool _stop;

            public int Written { get; private set; }

            public void Stop() => _stop = true;

            public Process Process { get; }
            public Task<string> Stderr { get; }
            public Task Reader { get; }
            public Task Writer { get; }
            public ConcurrentBag<(string Id, long Seq)> Acks { get; } = new ConcurrentBag<(string, long)>();

            public void Finish()
            {
                Assert.True(Writer.Wait(120_000), "the publisher's input was never closed");
                Assert.True(Process.WaitForExit(120_000), "the publisher did not exit");
                Reader.Wait();
                Assert.True(Process.ExitCode == 0, $"publisher exited {Process.ExitCode} after {Written} lines written: " + Stderr.Result);
            }
        }

        private static void WaitForAcks(IEnumerable<Publisher> publishers, int atLeast)
        {
            var clock = Stopwatch.StartNew();
            while (publishers.Sum(p => p.Acks.Count) < atLeast && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                Thread.Sleep(10);
            }
        }

        [Fact]
        public void BackupsAndRestoreWhileOtherProcessesPublish_NoAcknowledgedEventLostOrDuplicated()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            BackupFixture.NewStore(store).Dispose();

            var publishers = new[] { new Publisher(store, "a"), new Publisher(store, "b") };
            WaitForAcks(publishers, 150);
            var b1 = CliRunner.Run("backup", "--store", store);
            Assert.True(b1.ExitCode == 0, b1.StdErr);
            WaitForAcks(publishers, 400);
            var b2 = CliRunner.Run("backup", "--store", store);
            Assert.True(b2.ExitCode == 0, b2.StdErr);
            string b1Name = BackupFixture.Json(b1.StdOut).GetProperty("name").GetString()!;
            WaitForAcks(publishers, 500);

            // Restore the first backup while the publishers are still running.
            var restore = CliRunner.Run("restore", "--store", store, "--backup", b1Name, "--force");
            Assert.True(restore.ExitCode == 0, restore.StdErr);
            int ackedWhenRestoreReturned = publishers.Sum(p => p.Acks.Count);
            foreach (var p in publishers)
            {
                p.Stop();
            }

            foreach (var p in publishers)
            {
                p.Finish();
            }

            var acks = publishers.SelectMany(p => p.Acks).ToList();
            Assert.Equal(publishers.Sum(p => p.Written), acks.Count);
            Assert.True(acks.Count >= ackedWhenRestoreReturned + 100, "events must be published after the restore, or the test proves nothing");
            var seqOfId = acks.ToDictionary(a => a.Id, a => a.Seq); // ids are unique

            // Each backup is exactly the log up to its recorded seq: 1..lastSeq, once each, as acknowledged.
            var backupEvents = new Dictionary<string, List<Core.Events.EventRecord>>();
            foreach (var b in new[] { b1, b2 })
            {
                var info = BackupFixture.Json(b.StdOut);
                long lastSeq = info.GetProperty("lastSeq").GetInt64();
                Assert.True(lastSeq >= 150, $"backup lastSeq {lastSeq}");
                Assert.Equal("Verified", info.GetProperty("state").GetString());
                var events = BackupFixture.ReadBackup(info.GetProperty("path").GetString()!, dir.Path);
                Assert.Equal(Enumerable.Range(1, (int)lastSeq).Select(i => (long)i), events.Select(e => e.Seq));
                Assert.All(events, e => Assert.Equal(seqOfId[e.Id], e.Seq));
                backupEvents[info.GetProperty("name").GetString()!] = events;
            }

            Assert.True(BackupFixture.Json(b2.StdOut).GetProperty("filesLinked").GetInt32() > 0, "the second backup should hard-link sealed segments");

            // After the restore: the store starts with exactly the backup's events; every acknowledged
            // event is either in the store or in the kept-aside file, exactly once.
            var report = BackupFixture.Json(restore.StdOut);
            long cut = report.GetProperty("restoredLastSeq").GetInt64();
            var final = BackupFixture.ReadAll(store);
            Assert.Equal(backupEvents[b1Name].Select(e => e.Id), final.Where(e => e.Seq <= cut).Select(e => e.Id));
            Assert.Equal(Enumerable.Range(1, final.Count).Select(i => (long)i), final.Select(e => e.Seq));
            string? keptAsideFile = report.GetProperty("keptAsideFile").GetString();
            Assert.NotNull(keptAsideFile);
            var keptAside = BackupFixture.ReadIds(keptAsideFile!);
            Assert.Equal(report.GetProperty("keptAside").GetInt64(), keptAside.Count);
            var everywhere = final.Where(e => e.Type != StoreRestore.RolledBackEventType).Select(e => e.Id).Concat(keptAside).ToList();
            Assert.Equal(everywhere.Count, everywhere.Distinct().Count());
            Assert.Equal(acks.Select(a => a.Id).OrderBy(x => x), everywhere.OrderBy(x => x));
            Assert.All(keptAside, id => Assert.True(seqOfId[id] > cut));

            // No seq ever named two events: every event in the log is at the seq it was acknowledged with.
            Assert.All(final.Where(e => e.Type != StoreRestore.RolledBackEventType), e => Assert.Equal(seqOfId[e.Id], e.Seq));
        }
    }
}
