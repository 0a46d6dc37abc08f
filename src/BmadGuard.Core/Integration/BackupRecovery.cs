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

        /// <summary>Events newer than the backup that were appended again, with their own ids and times.</summary>
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
                sb.Append(FormattableString.Invariant($"; {r.KeptAside} events newer than the backup kept aside in '{r.KeptAsideFile}'"));
                if (PutBack > 0)
                {
                    sb.Append(FormattableString.Invariant($" and {PutBack} of them appended again with their ids and times"));
                }

                if (LeftAside != null)
                {
                    sb.Append(" (not put back: ").Append(LeftAside).Append(')');
                }
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
    /// segments moved to quarantine). Then the kept-aside events are put back: when they are exactly the events after
    /// the restored point (seqs cut+1, cut+2, … in order, which is the case when the log only grew since the backup),
    /// they are appended again with their own ids and timestamps, so each gets its old seq back unless another writer
    /// published in the moment between the restore and the append (then they follow that event, ids and times
    /// unchanged). Events that differ from the backup at a seq it holds (a rewritten history) are never put back
    /// automatically: they stay in the kept-aside file, which is never deleted, and the report says so.
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
                    report = StoreRestore.Restore(storeRoot, new RestoreRequest { BackupName = candidate.Name, LockTimeout = lockTimeout, Force = true }, null, cancellationToken);
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

            return putBack ? PutBack(storeRoot, report, lockTimeout) : new BackupRecoveryResult(report, 0, null);
        }

        internal static BackupRecoveryResult FromRestore(RestoreReport report, long putBack, string? leftAside) => new BackupRecoveryResult(report, putBack, leftAside);

        private static BackupRecoveryResult PutBack(string storeRoot, RestoreReport report, TimeSpan lockTimeout)
        {
            if (report.KeptAsideFile == null || report.KeptAside == 0)
            {
                return new BackupRecoveryResult(report, 0, null);
            }

            var events = new List<EventRecord>();
            long expect = report.RestoredLastSeq + 1;
            foreach (string line in File.ReadLines(report.KeptAsideFile))
            {
                if (line.Length == 0)
                {
                    continue;
                }

                var bytes = Encoding.UTF8.GetBytes(line);
                var record = ParseEvent(bytes);
                if (record == null)
                {
                    return new BackupRecoveryResult(report, 0, $"a kept-aside line could not be read back as an event");
                }

                if (record.Seq != expect)
                {
                    return new BackupRecoveryResult(report, 0,
                        $"the kept-aside events are not simply the ones after seq {report.RestoredLastSeq} (seq {record.Seq} where {expect} was expected): the history was rewritten, so they are left for a person to review");
                }

                expect++;
                events.Add(record);
            }

            using var store = FileEventStore.Open(storeRoot, new StoreOpenOptions { LockTimeout = lockTimeout });
            long putBack = 0;
            const int Batch = 1000;
            for (int i = 0; i < events.Count; i += Batch)
            {
                var batch = events.Skip(i).Take(Batch)
                    .Select(e => (EventDraft.FromJson(e.Type, e.Source, e.CorrelationId, e.DataJson), e.Id, e.Timestamp))
                    .ToList();
                putBack += store.PublishImported(batch, null, CancellationToken.None, allowReserved: true).Count;
            }

            return new BackupRecoveryResult(report, putBack, null);
        }

        /// <summary>An event line (event JSON, as in the kept-aside file) parsed back into a record.</summary>
        private static EventRecord? ParseEvent(byte[] eventJson)
        {
            // RecordCodec.DecodeEvent takes a checked record line (body + crc trailer); the kept-aside file holds
            // the event JSON (body + '}'), which is what EventBytes returns for a line. Rebuild a line to reuse it.
            if (eventJson.Length < 2 || eventJson[eventJson.Length - 1] != (byte)'}')
            {
                return null;
            }

            var buffer = new MemoryStream(eventJson.Length + 32);
            buffer.Write(eventJson, 0, eventJson.Length - 1);
            RecordCodec.AppendTrailer(buffer, 0);
            var line = buffer.ToArray();
            int length = line.Length;
            if (length > 0 && line[length - 1] == (byte)'\n')
            {
                length--;
            }

            return RecordCodec.DecodeEvent(new ReadOnlySpan<byte>(line, 0, length));
        }
    }
}
