using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using BmadGuard.Core;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;
using CliRunner = BmadGuard.Tests.Support.Cli;

namespace BmadGuard.Tests.Backup
{
    public sealed class RestoreTests
    {
        /// <summary>A store with 70 events published one at a time (distinct timestamps), a backup after 50.</summary>
        private static (List<EventRecord> All, BackupInfo Backup) Build(string store)
        {
            var all = new List<EventRecord>();
            using (var s = BackupFixture.NewStore(store))
            {
                for (int i = 0; i < 50; i++)
                {
                    all.AddRange(BackupFixture.Publish(s, 1));
                    Thread.Sleep(1);
                }
            }

            var backup = StoreBackup.Create(store);
            using (var s = FileEventStore.Open(store))
            {
                for (int i = 0; i < 20; i++)
                {
                    all.AddRange(BackupFixture.Publish(s, 1));
                    Thread.Sleep(1);
                }
            }

            Assert.Equal(50, backup.LastSeq);
            return (all, backup);
        }

        [Fact]
        public void RestoreToSeq_KeepsEventsUpToSeq_AndKeepsAsideExactlyTheNewerOnes()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            var (all, _) = Build(store);

            var report = StoreRestore.Restore(store, new RestoreRequest { Force = true, Sequence = 30 });

            var after = BackupFixture.ReadEvents(store);
            Assert.Equal(all.Take(30).Select(e => e.Json), after.Select(e => e.Json));
            Assert.Equal(70, report.EventsBefore);
            Assert.Equal(30, report.EventsAfter);
            Assert.Equal(30, report.RestoredLastSeq);
            Assert.Equal(40, report.KeptAside);
            Assert.StartsWith(Path.Combine(store, "quarantine", "restore-"), report.KeptAsideFile);
            Assert.EndsWith("-kept-aside.jsonl", report.KeptAsideFile);
            Assert.Equal(all.Skip(30).Select(e => e.Json), File.ReadAllLines(report.KeptAsideFile!));

            // The state before is in a verified safety backup, and the replaced segments are kept whole.
            var safety = BackupCatalog.List(store, check: BackupCheck.Deep).Single(b => b.Name == report.SafetyBackup);
            Assert.Equal(BackupKinds.Safety, safety.Kind);
            Assert.Equal(BackupState.Verified, safety.State);
            Assert.Equal(70, safety.LastSeq);
            Assert.True(Directory.Exists(report.ReplacedSegments));

            // The restored store takes new events after the restored point.
            using (var s = FileEventStore.Open(store))
            {
                Assert.Equal(71, BackupFixture.Publish(s, 1)[0].Seq); // seqs 31..70 named the kept-aside events: never reused
            }
        }

        [Fact]
        public void A_restore_that_would_leave_fewer_events_is_refused_without_Force_for_every_selector_and_changes_nothing()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            var (all, backup) = Build(store); // 70 events in the log, a backup at seq 50
            var before = BackupFixture.Snapshot(store);

            foreach (var request in new[]
                     {
                         new RestoreRequest { At = all[0].Timestamp.AddMinutes(-1) }, // earlier than every event: would empty the log
                         new RestoreRequest { Sequence = 30 },
                         new RestoreRequest { Latest = true },
                         new RestoreRequest { BackupName = backup.Name },
                     })
            {
                var ex = Assert.Throws<BmadGuardException>(() => StoreRestore.Restore(store, request));
                Assert.Equal(ErrorCodes.SetAsideNeedsForce, ex.Code);
                Assert.Equal(FailureKind.InvalidInput, ex.Kind);
                long cut = request.At.HasValue ? 0 : request.Sequence ?? 50;
                Assert.Contains($"{70 - cut} event(s), seqs {cut + 1}..70", ex.Message);
                Assert.Equal(before, BackupFixture.Snapshot(store)); // no safety backup, nothing kept aside, nothing swapped
            }

            // With Force the earliest point empties the log, and says how many events it set aside.
            var forced = StoreRestore.Restore(store, new RestoreRequest { At = all[0].Timestamp.AddMinutes(-1), Force = true });
            Assert.Equal(70, forced.KeptAside);
            Assert.Contains(forced.Notices, n => n.StartsWith("70 event(s)", StringComparison.Ordinal));
            Assert.Empty(BackupFixture.ReadEvents(store)); // seqs 1..70 stay taken by placeholders
        }

        [Fact]
        public void A_restore_that_sets_nothing_aside_needs_no_Force()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 20);
            }

            StoreBackup.Create(store);
            var report = StoreRestore.Restore(store, new RestoreRequest { Latest = true });
            Assert.Equal(0, report.KeptAside);
            Assert.Equal(20, BackupFixture.ReadAll(store).Count);
        }

        [Fact]
        public void RestoreToPointInTime_KeepsEventsAtOrBeforeIt()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            var (all, _) = Build(store);
            var at = all[24].Timestamp; // event seq 25

            var report = StoreRestore.Restore(store, new RestoreRequest { Force = true, At = at });

            var expected = all.Where(e => e.Timestamp <= at).ToList();
            Assert.Equal(25, expected.Count);
            Assert.Equal(expected.Select(e => e.Json), BackupFixture.ReadEvents(store).Select(e => e.Json));
            Assert.Equal("at", report.Mode);
            Assert.Equal(all.Where(e => e.Timestamp > at).Select(e => e.Json), File.ReadAllLines(report.KeptAsideFile!));
        }

        [Fact]
        public void RestoreLatest_AfterDamage_BringsBackTheBackup_AndKeepsNewerEventsAside()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            var (all, backup) = Build(store);

            // Damage a sealed segment of the live store: the store cannot be read past it any more.
            string firstSegment = SegmentNames.List(Path.Combine(store, "segments"))[0].Path;
            var bytes = File.ReadAllBytes(firstSegment);
            bytes[bytes.Length / 2] ^= 0x04;
            File.WriteAllBytes(firstSegment, bytes);
            Assert.ThrowsAny<BmadGuardException>(() => BackupFixture.ReadAll(store));

            var report = StoreRestore.Restore(store, new RestoreRequest { Force = true, Latest = true });

            Assert.Equal(backup.Name, report.Backup);
            Assert.Equal(all.Take(50).Select(e => e.Json), BackupFixture.ReadEvents(store).Select(e => e.Json));
            Assert.NotEmpty(report.CurrentDamage);
            Assert.Equal(firstSegment, report.CurrentDamage[0].File);
            // The 20 newer events are kept aside (the damaged record itself is not an event; it stays in the safety backup).
            Assert.Equal(all.Skip(50).Select(e => e.Json), File.ReadAllLines(report.KeptAsideFile!));
            var safetySegment = Path.Combine(report.SafetyBackupPath, "segments", Path.GetFileName(firstSegment));
            Assert.Equal(bytes, File.ReadAllBytes(safetySegment));
        }

        [Fact]
        public void SafetyBackupOfAStoreWithATornTail_CanBeRestoredByName_UndoingTheRestore()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            var (all, _) = Build(store);
            string active = SegmentNames.List(Path.Combine(store, "segments"))[^1].Path;
            File.AppendAllText(active, "{\"seq\":71,\"id\":\"torn"); // a crash mid-append

            var first = StoreRestore.Restore(store, new RestoreRequest { Force = true, Sequence = 10 });
            Assert.Equal(10, BackupFixture.ReadEvents(store).Count);
            Assert.Contains(first.CurrentDamage, f => f.File == active);

            var undo = StoreRestore.Restore(store, new RestoreRequest { Force = true, BackupName = first.SafetyBackup });

            Assert.Equal(all.Select(e => e.Json), BackupFixture.ReadEvents(store).Select(e => e.Json));
            Assert.Equal(0, undo.KeptAside);
        }

        [Theory]
        [InlineData("--seq")]
        [InlineData("--at")]
        public void CliRestoreBySeqAndTime_PrintsTheReport(string flag)
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            var (all, backup) = Build(store);
            string value = flag == "--seq" ? "20" : all[19].Timestamp.UtcDateTime.ToString("o");

            var r = CliRunner.Run("restore", "--store", store, flag, value, "--force");

            Assert.True(r.ExitCode == 0, r.StdErr);
            var report = BackupFixture.Json(r.StdOut);
            Assert.Equal(flag.TrimStart('-'), report.GetProperty("mode").GetString());
            Assert.Equal(backup.Name, report.GetProperty("backup").GetString());
            Assert.Equal(70, report.GetProperty("eventsBefore").GetInt64());
            Assert.Equal(20, report.GetProperty("eventsAfter").GetInt64());
            Assert.Equal(20, report.GetProperty("restoredLastSeq").GetInt64());
            Assert.Equal(50, report.GetProperty("keptAside").GetInt64());
            Assert.Equal(all.Skip(20).Select(e => e.Id), BackupFixture.ReadIds(report.GetProperty("keptAsideFile").GetString()!));
            Assert.Equal(all.Take(20).Select(e => e.Json), BackupFixture.ReadEvents(store).Select(e => e.Json));
        }

        [Fact]
        public void RestoreOverADivergedHistory_KeepsAsideExactlyTheEventsThatDiffer()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            var (all, backup) = Build(store);
            StoreRestore.Restore(store, new RestoreRequest { Force = true, Sequence = 10 });
            List<EventRecord> diverged;
            using (var s = FileEventStore.Open(store))
            {
                diverged = BackupFixture.Publish(s, 15, type: "other.event"); // seqs 71..85: 11..70 are never reused
            }

            var report = StoreRestore.Restore(store, new RestoreRequest { Force = true, BackupName = backup.Name });

            Assert.Equal(all.Take(50).Select(e => e.Json), BackupFixture.ReadEvents(store).Select(e => e.Json));
            Assert.Equal(85, report.EventsBefore); // 1..10, the placeholders 11..70 of the first restore, the diverged 71..85
            Assert.Equal(diverged.Select(e => e.Json), File.ReadAllLines(report.KeptAsideFile!));
        }

        [Fact]
        public void RestoreLeavesConsumersWhereTheyAre_NoneIsAheadOfTheRestoredLog()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            Build(store);
            using (var s = FileEventStore.Open(store))
            {
                s.CommitConsumer("ahead", 60);
                s.CommitConsumer("behind", 10);
            }

            var report = StoreRestore.Restore(store, new RestoreRequest { Force = true, Sequence = 40 });

            // The log continues to the old high-water mark (placeholders for 41..70), so seq 60 is still in it and the
            // consumer's next events are the ones published after the restore: nothing to rewind, nothing skipped.
            Assert.Empty(report.ConsumersRewound);
            Assert.Equal(70, report.LastSeqAfter);
            using var s2 = FileEventStore.Open(store);
            Assert.Equal(60, s2.GetConsumerPosition("ahead"));
            Assert.Equal(10, s2.GetConsumerPosition("behind"));
        }

        [Theory]
        [InlineData("segment")]
        [InlineData("manifest")]
        public void TamperedBackupIsRefused_AndNothingChanges(string what)
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            var (_, backup) = Build(store);
            string target;
            if (what == "segment")
            {
                target = Directory.GetFiles(Path.Combine(backup.Path, "segments")).OrderBy(f => f).First();
                var bytes = File.ReadAllBytes(target);
                bytes[200] ^= 0x01; // one bit in a record's data: same size, same line count
                File.WriteAllBytes(target, bytes);
            }
            else
            {
                target = Path.Combine(backup.Path, "manifest.json");
                string text = File.ReadAllText(target);
                File.WriteAllText(target, text.Replace("\"lastSeq\": 50", "\"lastSeq\": 60"));
                Assert.NotEqual(text, File.ReadAllText(target));
            }

            var before = BackupFixture.Snapshot(store);
            foreach (var request in new[] { new RestoreRequest { Force = true, BackupName = backup.Name }, new RestoreRequest { Force = true, Latest = true } })
            {
                var ex = Assert.Throws<BmadGuardException>(() => StoreRestore.Restore(store, request));
                Assert.Equal(ErrorCodes.BackupDamaged, ex.Code);
                Assert.Contains(Path.GetFileName(target), ex.Message);
            }

            Assert.Equal(before, BackupFixture.Snapshot(store));
        }

        [Fact]
        public void IncrementalBackup_LinksSealedSegments_AndCopiesOnlyTheActiveOne()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 300, batch: 10);
            }

            var first = StoreBackup.Create(store);
            using (var s = FileEventStore.Open(store))
            {
                BackupFixture.Publish(s, 3); // only the active segment changes
            }

            var second = StoreBackup.Create(store);
            var segments = SegmentNames.List(Path.Combine(store, "segments"));
            Assert.True(segments.Count > 5);
            int sealedInFirst = Directory.GetFiles(Path.Combine(first.Path, "segments")).Length - 1;
            Assert.Equal(sealedInFirst, second.FilesLinked);
            Assert.Equal(first.Name, second.ReusedFrom);
            foreach (var (_, path) in segments.Take(sealedInFirst))
            {
                string name = Path.GetFileName(path);
                Assert.Equal(BackupFixture.Inode(Path.Combine(first.Path, "segments", name)), BackupFixture.Inode(Path.Combine(second.Path, "segments", name)));
            }

            string active = Path.GetFileName(segments[^1].Path);
            Assert.NotEqual(BackupFixture.Inode(Path.Combine(first.Path, "segments", active)), BackupFixture.Inode(Path.Combine(second.Path, "segments", active)));
            Assert.Equal(2, second.FilesCopied); // the active segment and the settings file
            Assert.Equal(303, second.LastSeq);
            Assert.Equal(BackupState.Verified, BackupVerifier.Verify(second.Path).Healthy ? BackupState.Verified : BackupState.Damaged);
        }

        [Fact]
        public void IncrementalBackup_DoesNotLinkAnEarlierCopyThatNoLongerMatchesItsManifest()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 200, batch: 10);
            }

            var first = StoreBackup.Create(store);
            string damaged = Directory.GetFiles(Path.Combine(first.Path, "segments")).OrderBy(f => f).First();
            var bytes = File.ReadAllBytes(damaged);
            bytes[100] ^= 0x10;
            File.WriteAllBytes(damaged, bytes); // same size: the quick check cannot see it, the link check must

            var second = StoreBackup.Create(store);

            string copy = Path.Combine(second.Path, "segments", Path.GetFileName(damaged));
            Assert.NotEqual(BackupFixture.Inode(damaged), BackupFixture.Inode(copy));
            Assert.Equal(File.ReadAllBytes(Path.Combine(store, "segments", Path.GetFileName(damaged))), File.ReadAllBytes(copy));
            Assert.True(BackupVerifier.Verify(second.Path).Healthy);
            Assert.False(BackupVerifier.Verify(first.Path).Healthy);
        }

        [Fact]
        public void BackupToAnotherDestination_IsListedAndRestorable()
        {
            using var dir = new TempDir();
            string store = dir.Combine("store");
            string elsewhere = dir.Combine("elsewhere", "backups");
            using (var s = BackupFixture.NewStore(store))
            {
                BackupFixture.Publish(s, 40);
            }

            var b = StoreBackup.Create(store, new BackupOptions { Destination = elsewhere });
            Assert.StartsWith(elsewhere, b.Path);
            Assert.Contains(BackupCatalog.List(store), x => x.Name == b.Name && x.State == BackupState.Verified);
            using (var s = FileEventStore.Open(store))
            {
                BackupFixture.Publish(s, 5);
            }

            var report = StoreRestore.Restore(store, new RestoreRequest { Force = true, Latest = true });
            Assert.Equal(b.Name, report.Backup);
            Assert.Equal(40, BackupFixture.ReadEvents(store).Count);
        }
    }
}
