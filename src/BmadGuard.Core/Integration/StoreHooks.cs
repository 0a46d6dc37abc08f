using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Monitoring;
using BackupInfoModel = BmadGuard.Core.Backup.BackupInfo;
using MonitorBackupInfo = BmadGuard.Core.Monitoring.BackupInfo;
using MonitorFinding = BmadGuard.Core.Monitoring.IntegrityFinding;
using StoreFindingSeverity = BmadGuard.Core.Integrity.FindingSeverity;

namespace BmadGuard.Core.Integration
{
    /// <summary>
    /// The monitor's and the health report's store inspector: the cheap check is the monitor's incremental
    /// segment scan (it confirms a suspected torn tail under the writers' lock, so a busy writer is not
    /// mistaken for damage); the deep verify is that scan plus <see cref="StoreVerifier"/> (Test-BmadIntegrity:
    /// settings, headers, segment names, seq continuity across segments, consumer files).
    /// <para>
    /// Backup findings are not store damage: a tampered backup is reported by <c>bmadguard verify --store</c>
    /// and makes the health report's backup check use the newest backup that still verifies, but the monitor
    /// does not "heal" a store for it.
    /// </para>
    /// </summary>
    public sealed class VerifierInspector : IStoreInspector, IDetachedDeepVerifier
    {
        private readonly SegmentScanInspector _scan = new SegmentScanInspector();

        public IntegrityResult QuickCheck(string store, CancellationToken cancellationToken) => Settled(store, () => _scan.QuickCheck(store, cancellationToken));

        private IntegrityResult Settled(string store, Func<IntegrityResult> check) => Settled(store, check, () => _scan.Forget(store));

        public IntegrityResult DeepVerify(string store, CancellationToken cancellationToken)
            => Settled(store, () => Deep(store, _scan.DeepVerify(store, cancellationToken), cancellationToken));

        /// <summary>The same deep verify beside the monitor's loop: the scan keeps no state and takes no lock of the quick checks'.</summary>
        public IntegrityResult DeepVerifyDetached(string store, CancellationToken cancellationToken)
            => Settled(store, () => Deep(store, _scan.DeepVerifyDetached(store, cancellationToken), cancellationToken));

        /// <summary>How long a check that found something waits for the writers' lock before it looks again.</summary>
        public static TimeSpan SettleWait { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>
        /// An operator's restore or repair is not damage. Both hold the writers' lock while they replace segment files and
        /// bump the writer epoch: a check that read the files half-way through such a swap sees a mix of the old and new sets
        /// (a segment gone, a seq out of order). So a check that found something waits for the lock (the swap, if any, is
        /// over once it gets it) and, when the epoch moved since it started or the lock was busy, looks again; only what it
        /// finds in a store nobody was replacing is reported. Real damage is found again, so it is never hidden. The first
        /// look again is always made, from scratch (the incremental scan forgets what it verified): a swap that ended just
        /// before a check began leaves nothing to see but stale offsets into replaced files.
        /// </summary>
        private static IntegrityResult Settled(string store, Func<IntegrityResult> check, Action forget)
        {
            string lockPath = Path.Combine(store, Storage.StorePaths.LockFileName);
            for (int attempt = 0; ; attempt++)
            {
                long? before = Storage.StoreLock.PeekEpoch(lockPath);
                var result = check();
                if (result.Ok || attempt >= 2)
                {
                    return result;
                }

                bool wasBusy = false;
                try
                {
                    using (Storage.StoreLock.Acquire(lockPath, TimeSpan.FromMilliseconds(50)))
                    {
                    }
                }
                catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LockTimeout)
                {
                    wasBusy = true;
                    try
                    {
                        using (Storage.StoreLock.Acquire(lockPath, SettleWait))
                        {
                        }
                    }
                    catch (BmadGuardException inner) when (inner.Code == ErrorCodes.LockTimeout)
                    {
                        // Still busy: report what was seen; the next check looks again.
                    }
                }

                if (attempt >= 1 && !wasBusy && Storage.StoreLock.PeekEpoch(lockPath) == before)
                {
                    return result; // seen twice, and nobody replaced anything while we looked: it is there
                }

                forget();
            }
        }

        private static IntegrityResult Deep(string store, IntegrityResult scan, CancellationToken cancellationToken)
        {
            var clock = Stopwatch.StartNew(); // the verifier's part; the scan's is in scan.Duration
            var findings = new List<MonitorFinding>(scan.Findings);
            long bytes = scan.BytesChecked, records = scan.RecordsChecked;
            IntegrityReport report;
            try
            {
                report = StoreVerifier.Verify(store, new StoreVerifyOptions { IncludeRegisteredChecks = false }, cancellationToken);
            }
            catch (BmadGuardException ex)
            {
                if (findings.Count == 0)
                {
                    findings.Add(new MonitorFinding(FindingKind.Missing, store, null, ex.Message));
                }

                return new IntegrityResult(scan.Target, true, findings, bytes, records, scan.Duration + clock.Elapsed);
            }

            var seen = new HashSet<string>(findings.Select(f => f.Path), StringComparer.Ordinal);
            foreach (var f in report.Findings.Where(f => f.Severity == StoreFindingSeverity.Error))
            {
                string path = f.File ?? store;
                if (seen.Add(path))
                {
                    findings.Add(new MonitorFinding(KindOf(f.Code), path, f.Offset, f.Message));
                }
            }

            return new IntegrityResult(scan.Target, true, findings, Math.Max(bytes, report.BytesChecked), Math.Max(records, report.RecordsChecked), scan.Duration + clock.Elapsed);
        }

        internal static FindingKind KindOf(string code)
        {
            switch (code)
            {
                case FindingCodes.TornTail: return FindingKind.TornTail;
                case FindingCodes.SeqGap:
                case FindingCodes.SeqOutOfOrder:
                case FindingCodes.SegmentIncomplete: return FindingKind.SeqGap;
                case FindingCodes.SettingsMissing:
                case FindingCodes.SegmentsMissing: return FindingKind.Missing;
                case FindingCodes.SegmentHeaderDamaged:
                case FindingCodes.SegmentNameMismatch:
                case FindingCodes.SegmentMisplaced: return FindingKind.HeaderDamaged;
                case FindingCodes.UnreadableFile: return FindingKind.Unreadable;
                default: return FindingKind.ChecksumMismatch;
            }
        }
    }

    /// <summary>
    /// The monitor's healer, built on Repair-BmadStore and Restore-BmadStore.
    /// <list type="bullet">
    /// <item><see cref="Repair"/>: <see cref="StoreRepair"/>, but only where it loses nothing. StoreRepair calls its
    /// restore hook with the lost seq ranges before it changes anything; this healer's hook stops it there, so a
    /// repair that would write <c>bmadguard.lost</c> placeholders is never done: the outcome is NotPossible and the
    /// monitor goes on to <see cref="RestoreLatest"/>.</item>
    /// <item><see cref="RestoreLatest"/>: with <see cref="PutBackNewerEvents"/> (policy Repair) the newest verified
    /// backup that holds the lost seqs is restored and the events newer than it are appended again with their ids and
    /// times (<see cref="BackupRecovery"/>); otherwise (policy Restore) <see cref="StoreRestore"/> restores the latest
    /// verified backup and the newer events stay in the kept-aside file. Either way StoreRestore takes the writers'
    /// lock, makes a safety backup of the damaged state first, keeps every current event the backup lacks in
    /// <c>quarantine/restore-…-kept-aside.jsonl</c>, and moves the replaced segments to quarantine (never deleted).</item>
    /// </list>
    /// </summary>
    public sealed class BackupHealer : IStoreHealer, ILostEventsHealer
    {
        private readonly ConditionalWeakTableLite _lost = new ConditionalWeakTableLite();

        public BackupHealer(bool putBackNewerEvents = true)
        {
            PutBackNewerEvents = putBackNewerEvents;
        }

        /// <summary>After a restore, append the events newer than the backup again (policy Repair); else leave them kept aside (policy Restore).</summary>
        public bool PutBackNewerEvents { get; }

        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(10);

        public HealResult Repair(string store, IntegrityResult damage, CancellationToken cancellationToken)
        {
            // A torn tail alone: the store's own open-time cut (under the writers' lock, the bytes fsynced to quarantine
            // before the truncation) reads only the tail. StoreRepair reads the whole store before and after the cut:
            // seconds per GB for a few hundred bytes. The monitor checks the store again after either.
            if (damage.OnlyTornTail)
            {
                try
                {
                    var cut = new TornTailHealer { LockTimeout = LockTimeout }.Repair(store, damage, cancellationToken);
                    if (cut.Outcome == HealOutcome.Healed || cut.Outcome == HealOutcome.NotNeeded)
                    {
                        _lost.Set(store, null);
                        return cut;
                    }
                }
                catch (Exception ex) when (ex is BmadGuardException || ex is IOException)
                {
                    // Not a plain torn tail after all (opening refuses damage it must not cut): the full repair decides.
                }
            }

            IReadOnlyList<SeqRange>? lost = null;
            var options = new StoreRepairOptions
            {
                LockTimeout = LockTimeout,
                RestoreFromBackup = (root, ranges, ct) =>
                {
                    lost = ranges;
                    throw new RepairWouldLose(ranges);
                },
            };
            StoreRepairReport report;
            try
            {
                report = StoreRepair.Repair(store, options, cancellationToken);
            }
            catch (RepairWouldLose)
            {
                _lost.Set(store, lost);
                return new HealResult(HealOutcome.NotPossible,
                    $"Repair alone would lose {SeqRange.Describe(lost)} (damage inside the log); nothing was changed. A verified backup is needed.");
            }
            catch (BmadGuardException ex)
            {
                return new HealResult(HealOutcome.Failed, $"Repair failed: {ex.Message}");
            }

            _lost.Set(store, null);
            var moved = report.Actions.Where(a => a.QuarantinePath != null).ToList();
            string what = report.Actions.Count == 0 ? "nothing to repair" : string.Join(" ", report.Actions.Select(a => a.Message));
            if (report.Lost.Count > 0)
            {
                // Cannot happen through this hook (it stops before placeholders), but say so if it does.
                return new HealResult(HealOutcome.Failed, $"Repair lost {SeqRange.Describe(report.Lost.Select(l => new SeqRange(l.First, l.Last)))}: {what}",
                    moved.Select(a => a.QuarantinePath!).ToList(), report.BytesMoved);
            }

            if (!report.Healthy)
            {
                return new HealResult(HealOutcome.Failed, $"The store still does not verify after repair ({string.Join("; ", report.After.Findings.Where(f => f.Severity == StoreFindingSeverity.Error).Select(f => f.Message).Take(3))}). {what}",
                    moved.Select(a => a.QuarantinePath!).ToList(), report.BytesMoved);
            }

            return new HealResult(report.Actions.Count == 0 ? HealOutcome.NotNeeded : HealOutcome.Healed, what,
                moved.Select(a => a.QuarantinePath!).ToList(), report.BytesMoved);
        }

        public HealResult RestoreLatest(string store, CancellationToken cancellationToken)
        {
            var lost = _lost.Get(store);
            try
            {
                // Newest verified backup first; one that fails the deep check (a byte changed since the listing's quick
                // check) is skipped for the next older one. Policy restore leaves the newer events kept aside.
                var r = BackupRecovery.Recover(store, PutBackNewerEvents ? lost : null, LockTimeout, PutBackNewerEvents, cancellationToken);
                if (r == null)
                {
                    return new HealResult(HealOutcome.NotPossible,
                        $"No verified backup holds {SeqRange.Describe(lost)}; the store was not touched. What is left: restoring an older backup by hand, or a repair that accepts the loss (it marks the lost seqs with placeholders).");
                }

                _lost.Set(store, null);
                var quarantined = new List<string>();
                if (r.Restore.ReplacedSegments != null)
                {
                    quarantined.Add(r.Restore.ReplacedSegments);
                }

                if (r.Restore.KeptAsideFile != null)
                {
                    quarantined.Add(r.Restore.KeptAsideFile);
                }

                return new HealResult(HealOutcome.Healed, r.Describe(), quarantined, 0, r.Restore.Backup);
            }
            catch (BmadGuardException ex) when (ex.Code == ErrorCodes.BackupNotFound || ex.Code == ErrorCodes.BackupDamaged)
            {
                return new HealResult(HealOutcome.NotPossible, ex.Message);
            }
            catch (BmadGuardException ex)
            {
                return new HealResult(HealOutcome.Failed, $"Restore failed: {ex.Message}");
            }
        }

        /// <summary>
        /// Brings back seqs <paramref name="firstLost"/>..<paramref name="lastLost"/> that vanished from a log that still
        /// verifies (the newest segment deleted, a cut at a record boundary): the newest verified backup holding them is
        /// restored (StoreRestore: writers' lock, safety backup of the current state, nothing deleted). Events the store
        /// has beyond that backup are put back (policy repair) or stay kept aside (policy restore). When no backup holds
        /// them all, the newest verified backup that holds some of them is restored, and the message names what is still missing.
        /// </summary>
        public HealResult RestoreLost(string store, long firstLost, long lastLost, CancellationToken cancellationToken)
        {
            try
            {
                var r = BackupRecovery.Recover(store, new[] { new SeqRange(firstLost, lastLost) }, LockTimeout, PutBackNewerEvents, cancellationToken);
                string missing = "";
                if (r == null)
                {
                    r = BackupRecovery.Recover(store, new[] { new SeqRange(firstLost, firstLost) }, LockTimeout, PutBackNewerEvents, cancellationToken);
                    if (r == null)
                    {
                        return new HealResult(HealOutcome.NotPossible,
                            $"No verified backup holds seq {firstLost} or later; the store was not touched. The vanished events cannot be brought back from backups.");
                    }

                    missing = $" No verified backup reaches seq {lastLost}: seqs {r.Restore.RestoredLastSeq + 1}..{lastLost} are still missing.";
                }

                var quarantined = new List<string>();
                if (r.Restore.ReplacedSegments != null)
                {
                    quarantined.Add(r.Restore.ReplacedSegments);
                }

                if (r.Restore.KeptAsideFile != null)
                {
                    quarantined.Add(r.Restore.KeptAsideFile);
                }

                return new HealResult(missing.Length == 0 ? HealOutcome.Healed : HealOutcome.Failed,
                    $"Seqs {firstLost}..{lastLost} had vanished. " + r.Describe() + missing, quarantined, 0, r.Restore.Backup);
            }
            catch (BmadGuardException ex)
            {
                return new HealResult(HealOutcome.Failed, $"Restore failed: {ex.Message}");
            }
        }

        private sealed class RepairWouldLose : Exception
        {
            public RepairWouldLose(IReadOnlyList<SeqRange> ranges)
                : base("repair would lose " + string.Join(", ", ranges))
            {
            }
        }

        /// <summary>The lost ranges the last repair attempt found, per store (the monitor calls Repair then RestoreLatest).</summary>
        private sealed class ConditionalWeakTableLite
        {
            private readonly Dictionary<string, IReadOnlyList<SeqRange>?> _map = new Dictionary<string, IReadOnlyList<SeqRange>?>(StringComparer.Ordinal);

            public void Set(string store, IReadOnlyList<SeqRange>? ranges)
            {
                lock (_map)
                {
                    _map[Path.GetFullPath(store)] = ranges;
                }
            }

            public IReadOnlyList<SeqRange>? Get(string store)
            {
                lock (_map)
                {
                    return _map.TryGetValue(Path.GetFullPath(store), out var r) ? r : null;
                }
            }
        }
    }

    /// <summary>
    /// Scheduled backups for the monitor, and the newest verified backup for the monitor and the health report:
    /// <see cref="StoreBackup.Create"/> (verified before it is reported done) followed by the retention policy, and
    /// <see cref="BackupCatalog.List"/> (quick check: manifest checksum, every file present with its size).
    /// </summary>
    public sealed class StoreBackupTaker : IBackupTaker
    {
        public StoreBackupTaker(RetentionPolicy? retention = null)
        {
            Retention = retention;
        }

        public RetentionPolicy? Retention { get; }

        public BackupResult TakeBackup(string store, string reason, CancellationToken cancellationToken)
        {
            if (reason == "safety")
            {
                // StoreBackup.Create refuses a damaged store (a backup must verify). Restore-BmadStore makes the
                // safety backup itself, under the writers' lock it already holds, of the bytes exactly as they are.
                return new BackupResult(true, true, "The restore makes its own safety backup of the damaged state, under the writers' lock, before it changes anything.");
            }

            var info = StoreBackup.Create(store, new BackupOptions { Retention = Retention }, null, cancellationToken);
            bool verified = info.State == BackupState.Verified;
            string removed = info.Retention != null && info.Retention.Removed.Count > 0 ? $" Retention removed {info.Retention.Removed.Count}." : "";
            return new BackupResult(true, verified,
                verified ? $"Backup '{info.Name}' taken and verified: seq {info.LastSeq}, {info.EventCount} events, {info.BytesCopied} bytes copied, {info.FilesReused} segments reused.{removed}"
                         : $"Backup '{info.Name}' did not verify: {info.Reason}",
                ToMonitor(info));
        }

        public MonitorBackupInfo? NewestVerified(string store)
        {
            var newest = BackupCatalog.List(store, null, BackupCheck.Quick)
                .Where(b => b.State == BackupState.Verified && b.Kind == BackupKinds.Backup)
                .OrderBy(b => b, BackupCatalog.LogOrder)
                .LastOrDefault();
            return newest == null ? null : ToMonitor(newest);
        }

        private static MonitorBackupInfo ToMonitor(BackupInfoModel b) => new MonitorBackupInfo(b.Name, b.Created, b.State == BackupState.Verified, b.Path);
    }

    /// <summary>The real hooks, the defaults of <c>bmadguard monitor</c>, <c>health</c> and <c>alert</c>.</summary>
    public static class DefaultHooks
    {
        /// <summary>Retention when the configuration names none: the last 24 and one a day for a week.</summary>
        public static RetentionPolicy DefaultRetention => new RetentionPolicy { KeepLast = 24, KeepDaily = 7 };

        public static MonitorHooks For(MonitorConfig config) => new MonitorHooks
        {
            Inspector = new VerifierInspector(),
            Healer = new BackupHealer(putBackNewerEvents: config.OnDamage != DamagePolicy.Restore),
            Backups = new StoreBackupTaker(config.BackupRetention ?? DefaultRetention),
            BackupInspector = new BackupWatch(config.BackupReverify),
        };
    }
}
