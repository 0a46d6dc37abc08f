using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using BmadGuard.Core.Monitoring;
using BmadGuard.Core.Storage;
using BmadGuard.Tests.Support;
using Xunit;

namespace BmadGuard.Tests.Monitoring
{
    /// <summary>The Core API as Start-BmadMonitor will use it: typed events through an observer, a token to stop, pluggable hooks.</summary>
    [Collection(MonitoringCollection.Name)]
    public class InProcessMonitorTests
    {
        private sealed class RecordingBackups : IBackupTaker
        {
            public List<string> Reasons { get; } = new List<string>();
            public int Failures { get; set; }

            public BackupResult TakeBackup(string store, string reason, CancellationToken cancellationToken)
            {
                lock (Reasons)
                {
                    Reasons.Add(reason);
                    bool ok = Reasons.Count > Failures;
                    return new BackupResult(true, ok, ok ? "backup taken" : "disk on fire", ok ? new BackupInfo("b" + Reasons.Count, DateTimeOffset.UtcNow, true) : null);
                }
            }

            public BackupInfo? NewestVerified(string store) => null;
        }

        private sealed class RecordingHealer : IStoreHealer
        {
            public int Restores;

            public HealResult Repair(string store, IntegrityResult damage, CancellationToken cancellationToken)
                => TornTailHealer.Instance.Repair(store, damage, cancellationToken);

            public HealResult RestoreLatest(string store, CancellationToken cancellationToken)
            {
                Interlocked.Increment(ref Restores);
                return new HealResult(HealOutcome.Failed, "restore refused by the test healer");
            }
        }

        /// <summary>A backup sweep that takes as long as the test wants (a store with gigabytes of backups).</summary>
        private sealed class SlowBackupInspector : IBackupInspector
        {
            public ManualResetEventSlim Started { get; } = new ManualResetEventSlim(false);
            public ManualResetEventSlim Release { get; } = new ManualResetEventSlim(false);

            public BackupSweep Verify(string store, CancellationToken cancellationToken)
            {
                Started.Set();
                Release.Wait(cancellationToken);
                return new BackupSweep(0, 0, 0, Array.Empty<BackupProblem>(), TimeSpan.Zero);
            }
        }

        /// <summary>The real inspector, with a scheduled deep verify (beside the loop) that takes as long as the test wants.</summary>
        private sealed class SlowDeepInspector : IStoreInspector, IDetachedDeepVerifier
        {
            private readonly Core.Integration.VerifierInspector _inner = new Core.Integration.VerifierInspector();

            public ManualResetEventSlim Started { get; } = new ManualResetEventSlim(false);
            public ManualResetEventSlim Release { get; } = new ManualResetEventSlim(false);

            public IntegrityResult QuickCheck(string store, CancellationToken cancellationToken) => _inner.QuickCheck(store, cancellationToken);

            public IntegrityResult DeepVerify(string store, CancellationToken cancellationToken) => _inner.DeepVerify(store, cancellationToken);

            public IntegrityResult DeepVerifyDetached(string store, CancellationToken cancellationToken)
            {
                Started.Set();
                Release.Wait(cancellationToken);
                return _inner.DeepVerifyDetached(store, cancellationToken);
            }
        }

        /// <summary>
        /// The store's own inspector, with its quick checks behind a gate the test can hold: a test that changes a segment
        /// in two steps (the bytes, then the modification time back) holds it so no quick check runs between them.
        /// </summary>
        private sealed class GatedQuickInspector : IStoreInspector, IDetachedDeepVerifier
        {
            private readonly Core.Integration.VerifierInspector _inner = new Core.Integration.VerifierInspector();

            public SemaphoreSlim Gate { get; } = new SemaphoreSlim(1, 1);

            public IntegrityResult QuickCheck(string store, CancellationToken cancellationToken)
            {
                Gate.Wait(cancellationToken);
                try { return _inner.QuickCheck(store, cancellationToken); }
                finally { Gate.Release(); }
            }

            public IntegrityResult DeepVerify(string store, CancellationToken cancellationToken) => _inner.DeepVerify(store, cancellationToken);

            public IntegrityResult DeepVerifyDetached(string store, CancellationToken cancellationToken) => _inner.DeepVerifyDetached(store, cancellationToken);
        }

        /// <summary>A monitor of one store on a task until disposed: checks every 300 ms, no probes, alerts only.</summary>
        private sealed class RunningMonitor : IAsyncDisposable
        {
            private readonly CancellationTokenSource _cts = new CancellationTokenSource();
            private readonly StoreMonitor _monitor;
            private readonly Task _run;

            public RunningMonitor(string store, MonitorHooks hooks, TimeSpan? deepInterval = null)
            {
                var config = MonitorConfig.Load(store, null);
                config.Interval = TimeSpan.FromMilliseconds(300);
                config.DeepInterval = deepInterval ?? config.DeepInterval;
                config.ProbeInterval = TimeSpan.Zero;
                config.OnDamage = DamagePolicy.Alert;
                _monitor = new StoreMonitor(config, hooks, Queue);
                _run = Task.Run(() => _monitor.Run(_cts.Token));
            }

            public MonitorEventQueue Queue { get; } = new MonitorEventQueue();

            /// <summary>The first event of type <typeparamref name="T"/> within <paramref name="within"/>, else null.</summary>
            public T? Next<T>(TimeSpan within) where T : MonitorEvent
            {
                using var timeout = new CancellationTokenSource(within);
                try
                {
                    foreach (var e in Queue.GetConsumingEnumerable(timeout.Token))
                    {
                        if (e is T found)
                        {
                            return found;
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                }

                return null;
            }

            public async ValueTask DisposeAsync()
            {
                _cts.Cancel();
                Assert.True(await Task.WhenAny(_run, Task.Delay(TimeSpan.FromSeconds(30))) == _run, "Run did not return after cancellation");
                _monitor.Dispose();
                Queue.Dispose();
                _cts.Dispose();
            }
        }

        /// <summary>
        /// The two long reads that run beside the loop (a scheduled deep verify of the store, the backup sweep), each made
        /// to last as long as the test wants: a torn tail is still found by a quick check meanwhile.
        /// </summary>
        [Theory]
        [InlineData("deep verify")]
        [InlineData("backup sweep")]
        public async System.Threading.Tasks.Task ALongReadBesideTheLoopDoesNotHoldUpDamageDetection(string read)
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 10);
            var deep = new SlowDeepInspector();
            var sweep = new SlowBackupInspector();
            var (started, release) = read == "deep verify" ? (deep.Started, deep.Release) : (sweep.Started, sweep.Release);
            var hooks = read == "deep verify"
                ? new MonitorHooks { Inspector = deep, BackupInspector = null }
                : new MonitorHooks { BackupInspector = sweep };
            await using var monitor = new RunningMonitor(store, hooks, TimeSpan.FromSeconds(1));
            try
            {
                Assert.True(started.Wait(TimeSpan.FromSeconds(30)), $"no {read} started beside the loop");

                // While it is still reading (many gigabytes), a crash leaves a torn last record.
                Kit.TearLastRecord(store, 30);

                Assert.NotNull(monitor.Next<DamageDetected>(TimeSpan.FromSeconds(20)));
                Assert.False(release.IsSet); // found by a quick check while the long read was still running
            }
            finally
            {
                release.Set();
            }
        }

        [Fact]
        public async System.Threading.Tasks.Task DamageOnlyADeepVerifySeesIsFoundBesideTheLoopAndActedOn()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 10);
            var inspector = new GatedQuickInspector();
            await using var monitor = new RunningMonitor(store, new MonitorHooks { Inspector = inspector, BackupInspector = null }, TimeSpan.FromSeconds(1));
            Assert.NotNull(monitor.Next<Checked>(TimeSpan.FromSeconds(30))); // the first pass is done

            // Silent media decay: one byte of a middle record changes, the size and the modification time do not,
            // so the quick checks (which skip segments unchanged since they were verified) cannot see it. The flip
            // and the restored time are two steps; no quick check may run between them.
            string segment = Kit.Segment(store);
            inspector.Gate.Wait();
            try
            {
                var mtime = File.GetLastWriteTimeUtc(segment);
                Kit.FlipByte(segment, Kit.LineStart(segment, 5) + 40);
                File.SetLastWriteTimeUtc(segment, mtime);
            }
            finally
            {
                inspector.Gate.Release();
            }

            var detected = monitor.Next<DamageDetected>(TimeSpan.FromSeconds(20));
            Assert.NotNull(detected);
            Assert.True(detected!.Deep, "found by a quick check: the test did not hide the change from them");
            Assert.Equal(store, detected.Target);
        }

        [Fact]
        public async System.Threading.Tasks.Task TypedEventsFlowToAQueueScheduledBackupsRunAndTheTokenStopsTheMonitor()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 10);
            var backups = new RecordingBackups { Failures = 1 };
            var healer = new RecordingHealer();
            var config = MonitorConfig.Load(store, null);
            config.Interval = TimeSpan.FromMilliseconds(300);
            config.DeepInterval = TimeSpan.FromSeconds(1);
            config.BackupInterval = TimeSpan.FromSeconds(1);
            config.ProbeInterval = TimeSpan.FromSeconds(1);
            config.OnDamage = DamagePolicy.Restore;
            using var queue = new MonitorEventQueue();
            using var cts = new CancellationTokenSource();
            using var monitor = new StoreMonitor(config, new MonitorHooks { Backups = backups, Healer = healer }, queue);
            var run = Task.Run(() => monitor.Run(cts.Token));

            var seen = new List<MonitorEvent>();
            bool corrupted = false;
            var clock = Stopwatch.StartNew();
            foreach (var e in queue.GetConsumingEnumerable(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token))
            {
                seen.Add(e);
                if (!corrupted && seen.OfType<BackupTaken>().Count() >= 2 && seen.OfType<Checked>().Any(c => c.Deep))
                {
                    corrupted = true;
                    string segment = Kit.Segment(store);
                    Kit.FlipByte(segment, Kit.LineStart(segment, 4) + 7); // inside the log: repair is not possible, restore is
                }

                if (seen.OfType<Restored>().Any())
                {
                    break;
                }
            }

            cts.Cancel();
            Assert.True(await System.Threading.Tasks.Task.WhenAny(run, System.Threading.Tasks.Task.Delay(TimeSpan.FromSeconds(30))) == run, "Run did not return after cancellation");
            await run; // rethrows if the monitor failed

            var taken = seen.OfType<BackupTaken>().ToList();
            Assert.False(taken[0].Success);
            Assert.True(taken[1].Success);
            Assert.Contains("scheduled", backups.Reasons);
            Assert.Contains("safety", backups.Reasons); // a safety backup before the restore
            Assert.True(backups.Reasons.IndexOf("safety") > 0);
            var damage = seen.OfType<DamageDetected>().Single();
            Assert.Equal(FindingKind.ChecksumMismatch, damage.Findings[0].Kind);
            var restored = seen.OfType<Restored>().Single();
            Assert.Equal(HealOutcome.Failed, restored.Outcome);
            Assert.False(restored.Verified);
            Assert.Equal(1, healer.Restores);

            // The lock is released when Run returns: another monitor can start at once.
            using var next = new StoreMonitor(MonitorConfig.Load(store, null));
            next.Start();
            var status = MonitorStatus.Read(store, probeLock: false);
            Assert.NotNull(status.Pid);

            // Metrics count the backups (1 of 2 succeeded at least) and the failed restore.
            string json = File.ReadAllText(Path.Combine(store, MonitorMetrics.JsonFileName));
            Assert.Contains("\"restoresFailed\": 1", json);
            Assert.Matches("\"backupsAttempted\": [2-9]", json);
            Assert.Matches("\"publishLatencyP50Ms\": [0-9]", json); // from the round-trip probes
            Assert.Matches("\"verifyLatencyP99Ms\": [0-9]", json);
        }

        /// <summary>Bad bytes at the end of the active segment while another process holds the writers' lock may be an append in flight: not reported until confirmed.</summary>
        [Fact]
        public void ATornTailIsOnlyReportedOnceConfirmedUnderTheWritersLock()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 3);
            File.AppendAllText(Kit.Segment(store), "{\"seq\":4,\"id\":\"half-writ");
            var inspector = new SegmentScanInspector { ConfirmLockTimeout = TimeSpan.FromMilliseconds(200) };
            var psi = new ProcessStartInfo(SmtpSink.Python) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("import fcntl,sys\nf=open(sys.argv[1],'a')\nfcntl.flock(f,fcntl.LOCK_EX)\nprint('LOCKED',flush=True)\nsys.stdin.read()");
            psi.ArgumentList.Add(Path.Combine(store, StorePaths.LockFileName));
            using (var holder = Process.Start(psi)!)
            {
                Assert.Equal("LOCKED", holder.StandardOutput.ReadLine());
                Assert.True(inspector.QuickCheck(store, CancellationToken.None).Ok); // a writer may be mid-append
                holder.StandardInput.Close();
                holder.WaitForExit();
            }

            var result = inspector.QuickCheck(store, CancellationToken.None);
            Assert.Equal(FindingKind.TornTail, result.Findings.Single().Kind);

            // Repair cuts it to quarantine; the three records stay.
            var heal = TornTailHealer.Instance.Repair(store, result, CancellationToken.None);
            Assert.Equal(HealOutcome.Healed, heal.Outcome);
            Assert.Equal("{\"seq\":4,\"id\":\"half-writ", File.ReadAllText(heal.Quarantined.Single()));
            Assert.True(inspector.QuickCheck(store, CancellationToken.None).Ok);
            Assert.Equal(3, Kit.Events(store).Count);
        }

        [Fact]
        public void ADeletedSegmentIsMissingDamage()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 0);
            // Two segments: a tiny segment size makes the store roll over.
            File.WriteAllText(Path.Combine(store, StorePaths.MetaFileName),
                File.ReadAllText(Path.Combine(store, StorePaths.MetaFileName)).Replace("\"segmentMaxBytes\": 67108864", "\"segmentMaxBytes\": 2048").Replace("\"maxEventBytes\": 1048576", "\"maxEventBytes\": 1024"));
            using (var s = FileEventStore.Open(store))
            {
                for (int i = 0; i < 30; i++)
                {
                    s.Publish(Core.Events.EventDraft.FromJson("test.n", null, null, "{\"n\":" + i + "}"));
                }
            }

            var segments = Directory.GetFiles(Path.Combine(store, "segments"), "segment-*.jsonl").OrderBy(x => x).ToList();
            Assert.True(segments.Count >= 2);
            var inspector = new SegmentScanInspector();
            Assert.True(inspector.QuickCheck(store, CancellationToken.None).Ok);
            File.Delete(segments[1]);
            var r = inspector.QuickCheck(store, CancellationToken.None);
            Assert.Contains(r.Findings, f => f.Kind == FindingKind.Missing && f.Path == segments[1]);
            Assert.Equal(HealOutcome.NotPossible, TornTailHealer.Instance.Repair(store, r, CancellationToken.None).Outcome);
        }

        /// <summary>A legacy agent mid-write under its flock on &lt;file&gt;.lock is not damage: the check waits for the lock.</summary>
        [Fact]
        public void AHalfWrittenLegacyFileUnderItsWritersLockIsNotDamage()
        {
            using var dir = new TempDir();
            string store = Kit.NewStore(dir, 0);
            string legacy = dir.Combine("shared_context.json");
            File.WriteAllText(legacy, "{\"v\":1}");
            var guarded = new GuardedFile(legacy, store);
            Assert.True(guarded.Check(CancellationToken.None).Ok);

            var psi = new ProcessStartInfo(SmtpSink.Python) { RedirectStandardOutput = true, UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("import fcntl,sys,time\nl=open(sys.argv[1]+'.lock','a')\nfcntl.flock(l,fcntl.LOCK_EX)\n" +
                                 "f=open(sys.argv[1],'w'); f.write('{\"v\":2, \"half'); f.flush()\nprint('HALF',flush=True)\ntime.sleep(0.5)\n" +
                                 "f.write('\":true}'); f.close()\nfcntl.flock(l,fcntl.LOCK_UN)");
            psi.ArgumentList.Add(legacy);
            using var writer = Process.Start(psi)!;
            Assert.Equal("HALF", writer.StandardOutput.ReadLine());
            Assert.Equal("{\"v\":2, \"half", File.ReadAllText(legacy)); // it is half-written right now
            var result = guarded.Check(CancellationToken.None);
            writer.WaitForExit();
            Assert.True(result.Ok, string.Join(" ", result.Findings.Select(f => f.Message)));
            Assert.Equal("{\"v\":2, \"half\":true}", File.ReadAllText(legacy));
            Assert.Empty(Directory.GetFiles(Path.Combine(store, "quarantine")));
        }
    }
}
