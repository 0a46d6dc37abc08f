using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using BmadGuard.Core.Backup;
using BmadGuard.Core.Events;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Integration
{
    /// <summary>What a recovery from backup did.</summary>
    public sealed class BackupRecoveryResult
    {
        internal BackupRecoveryResult(RestoreReport restore, long putBack, string? leftAside)
        {
            Restore = restore;
            PutBack = putBack;
            LeftAside = leftAside;
        }

        /// <summary>The restore: backup used, safety backup, kept-aside file, replaced segments.</summary>
        public RestoreReport Restore { get; }

        /// <summary>Events newer than the backup that stayed in the log at their own seqs (part of the restore's atomic swap).</summary>
        public long PutBack { get; }

        /// <summary>Why kept-aside events were not put back (null when all were, or there were none).</summary>
        public string? LeftAside { get; }

        public string Describe()
        {
            var r = Restore;
            var sb = new StringBuilder();
            sb.Append(FormattableString.Invariant($"Restored backup '{r.Backup}' (seq {r.RestoredLastSeq}); safety backup '{r.SafetyBackup}' of the damaged state"));
            if (r.ReplacedSegments != null)
            {
                sb.Append(FormattableString.Invariant($"; replaced segments moved to '{r.ReplacedSegments}'"));
            }

            if (r.KeptAsideFile != null)
            {
                sb.Append(FormattableString.Invariant($"; {r.KeptAside} events the restored log does not hold kept aside in '{r.KeptAsideFile}'"));
                if (LeftAside != null)
                {
                    sb.Append(" (not put back: ").Append(LeftAside).Append(')');
                }
            }

            if (PutBack > 0)
            {
                sb.Append(FormattableString.Invariant($"; {PutBack} events newer than the backup kept at their own seqs"));
            }

            if (r.RolledBack > 0)
            {
                sb.Append(FormattableString.Invariant($"; seqs up to {r.LastSeqAfter} marked with {r.RolledBack} {StoreRestore.RolledBackEventType} placeholder(s), so no seq is reused"));
            }

            sb.Append('.');
            return sb.ToString();
        }
    }

    /// <summary>
    /// Restore from backup for Repair-BmadStore (<see cref="StoreRepairOptions.RestoreFromBackup"/>) and the monitor.
    /// <para>
    /// Semantics. StoreRepair calls the hook with the seq ranges that no byte of the store holds any more, before it
    /// changes anything. The hook picks the newest verified backup (not a safety backup) whose last seq reaches the
    /// highest lost seq; if there is none it returns false and the repair marks the loss with placeholders as before.
    /// Otherwise it restores that backup with <see cref="StoreRestore"/> (writers' lock, safety backup of the damaged
    /// state, current events the backup lacks written to <c>quarantine/restore-…-kept-aside.jsonl</c>, replaced
    /// segments moved to quarantine). With put-back, the current log's intact events after the restored point stay at
    /// their own seqs: the restore writes them into the restored set before its one atomic swap (RestoreRequest.PutBackNewer),
    /// so a crash leaves either the old log or the restored one with them, never a log without them. Events that differ
    /// from the backup at a seq it holds (a rewritten history) are never put back automatically: they stay in the
    /// kept-aside file, which is never deleted, and verify keeps naming it (SetAsideEvents) until an operator deals with it.
    /// </para>
    /// </summary>
    public static class BackupRecovery
    {
        /// <summary>Options for Repair-BmadStore that restore lost seqs from a covering verified backup (the CLI's default).</summary>
        public static StoreRepairOptions RepairOptions(TimeSpan lockTimeout)
        {
            var options = new StoreRepairOptions { LockTimeout = lockTimeout };
            options.RestoreFromBackup = (root, ranges, ct) =>
            {
                var r = Recover(root, ranges, lockTimeout, ct);
                if (r == null)
                {
                    return false;
                }

                options.RestoreNote = r.Describe();
                return true;
            };
            return options;
        }

        /// <summary>
        /// Restores the newest verified backup that holds every seq in <paramref name="lost"/> (any verified backup when
        /// null; a backup that fails restore's deep check is passed over for the next older one) and puts back the events
        /// newer than it. Null when no verified backup covers the loss (nothing changed).
        /// </summary>
        public static BackupRecoveryResult? Recover(string storeRoot, IReadOnlyList<SeqRange>? lost, TimeSpan lockTimeout, CancellationToken cancellationToken)
            => Recover(storeRoot, lost, lockTimeout, putBack: true, cancellationToken);

        /// <summary>
        /// As <see cref="Recover(string, IReadOnlyList{SeqRange}?, TimeSpan, CancellationToken)"/>; with
        /// <paramref name="putBack"/> false the events newer than the backup stay in the kept-aside file (Restore-BmadStore's
        /// semantics, the monitor's policy restore). Either way a backup that fails restore's deep check is skipped for the
        /// next older one, so a damaged newest backup never blocks a restore an older verified one can do.
        /// </summary>
        public static BackupRecoveryResult? Recover(string storeRoot, IReadOnlyList<SeqRange>? lost, TimeSpan lockTimeout, bool putBack, CancellationToken cancellationToken)
        {
            long need = lost == null || lost.Count == 0 ? 0 : lost.Max(r => r.Last);
            var candidates = BackupCatalog.List(storeRoot, null, BackupCheck.Quick, null, cancellationToken)
                .Where(b => b.State == BackupState.Verified && b.Kind == BackupKinds.Backup && b.LastSeq >= need)
                .OrderByDescending(b => b, BackupCatalog.LogOrder)
                .ToList();
            RestoreReport? report = null;
            foreach (var candidate in candidates)
            {
                try
                {
                    report = StoreRestore.Restore(storeRoot, new RestoreRequest { BackupName = candidate.Name, LockTimeout = lockTimeout, PutBackNewer = putBack, Force = true }, null, cancellationToken);
                    break;
                }
                catch (BmadGuardException ex) when (ex.Code == ErrorCodes.BackupDamaged || ex.Code == ErrorCodes.BackupNotFound)
                {
                    // It failed the deep check (a changed byte the quick listing cannot see) or vanished: nothing
                    // changed; try the next older covering backup.
                }
            }

            if (report == null)
            {
                return null;
            }

            // With putBack the newer events stayed in the log at their own seqs, inside the restore's one atomic swap:
            // there is no second step a crash could interrupt. What is kept aside now differed from the backup at a seq
            // it holds (a rewritten history): left for a person (verify names the file and its count).
            return new BackupRecoveryResult(report, report.PutBack,
                putBack && report.KeptAside > 0 ? "they differ from the backup at seqs it holds (a rewritten history), so they are left for a person to review" : null);
        }

        internal static BackupRecoveryResult FromRestore(RestoreReport report, long putBack, string? leftAside) => new BackupRecoveryResult(report, putBack, leftAside);
    }
}
