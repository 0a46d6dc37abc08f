using System.Collections.Generic;
using System.Linq;
using BmadGuard.Core.Integrity;
using BmadGuard.Core.Legacy;

namespace BmadGuard
{
    /// <summary>One thing Repair-BmadStore did to a file: the bytes it moved and where they went.</summary>
    public sealed class BmadRepairAction
    {
        private BmadRepairAction(string kind, string file, long? offset, long? length, string? quarantinePath, string message)
        {
            Kind = kind;
            File = file;
            Offset = offset;
            Length = length;
            QuarantinePath = quarantinePath;
            Message = message;
        }

        /// <summary>What was done, e.g. TornTailCut, SegmentRebuilt, Quarantined, DamagedRegion.</summary>
        public string Kind { get; }

        /// <summary>The file acted on.</summary>
        public string File { get; }

        /// <summary>Where the moved bytes start in <see cref="File"/>, when the action concerns a region.</summary>
        public long? Offset { get; }

        /// <summary>How many bytes were moved, when the action concerns a region.</summary>
        public long? Length { get; }

        /// <summary>Where the bytes were kept (nothing is deleted to recover).</summary>
        public string? QuarantinePath { get; }

        /// <summary>What happened, in words.</summary>
        public string Message { get; }

        public override string ToString() => $"{Kind} {File}: {Message}";

        internal static BmadRepairAction FromAction(RepairAction a)
            => new BmadRepairAction(a.Kind, a.File, a.Offset, a.Length, a.QuarantinePath, a.Message);

        internal static BmadRepairAction Create(string kind, string file, long? offset, long? length, string? quarantinePath, string message)
            => new BmadRepairAction(kind, file, offset, length, quarantinePath, message);
    }

    /// <summary>What Repair-BmadStore did to a store or a legacy bus file, and the state afterwards.</summary>
    public sealed class BmadRepairReport
    {
        private BmadRepairReport(string target, string kind, bool wasHealthy, bool healthy, long bytesMoved, long recoveredEvents, long lostEvents,
            bool needsRestore, bool restoredFromBackup, long? damageOffset, int? damageLine, int? damageColumn, string? quarantinePath,
            BmadRepairAction[] actions, BmadIntegrityReport? before, BmadIntegrityReport? after)
        {
            Target = target;
            Kind = kind;
            WasHealthy = wasHealthy;
            Healthy = healthy;
            BytesMoved = bytesMoved;
            RecoveredEvents = recoveredEvents;
            LostEvents = lostEvents;
            NeedsRestore = needsRestore;
            RestoredFromBackup = restoredFromBackup;
            DamageOffset = damageOffset;
            DamageLine = damageLine;
            DamageColumn = damageColumn;
            QuarantinePath = quarantinePath;
            Actions = actions;
            Before = before;
            After = after;
        }

        /// <summary>The store directory or legacy bus file repaired (full path).</summary>
        public string Target { get; }

        /// <summary>store or file.</summary>
        public string Kind { get; }

        /// <summary>True when there was nothing to repair (nothing was changed).</summary>
        public bool WasHealthy { get; }

        /// <summary>True when the target is healthy after the repair.</summary>
        public bool Healthy { get; }

        /// <summary>Every byte moved to quarantine (or cut and kept there), in total.</summary>
        public long BytesMoved { get; }

        /// <summary>Legacy file: the complete events recovered and written back. Store: the events the log holds after the repair, placeholders for lost seqs not counted.</summary>
        public long RecoveredEvents { get; }

        /// <summary>Store: seqs no byte holds any more (each replaced by a bmadguard.lost placeholder event). Legacy file: the damaged stretches not carried over (each held at least one event).</summary>
        public long LostEvents { get; }

        /// <summary>True when events were lost or damage remains: restore from a backup (Restore-BmadStore).</summary>
        public bool NeedsRestore { get; }

        /// <summary>True when lost seqs were brought back from a backup.</summary>
        public bool RestoredFromBackup { get; }

        /// <summary>Where the damage starts: the byte offset in the original file (legacy file) or in the first file whose bytes were moved to quarantine (store).</summary>
        public long? DamageOffset { get; }

        /// <summary>Legacy file: the line where the damage starts.</summary>
        public int? DamageLine { get; }

        /// <summary>Legacy file: the column where the damage starts.</summary>
        public int? DamageColumn { get; }

        /// <summary>Where the damaged bytes were kept: the whole original (legacy file), or the first quarantine file written (store; every one is in Actions).</summary>
        public string? QuarantinePath { get; }

        /// <summary>Every action taken, with the file, offset, length and quarantine path of each moved region.</summary>
        public BmadRepairAction[] Actions { get; }

        /// <summary>Store: the integrity report before the repair.</summary>
        public BmadIntegrityReport? Before { get; }

        /// <summary>Store: the integrity report after the repair.</summary>
        public BmadIntegrityReport? After { get; }

        public override string ToString() => $"{Kind} {Target}: {(WasHealthy ? "was healthy" : Healthy ? "repaired" : "damage remains")}, {BytesMoved} bytes moved";

        internal static BmadRepairReport FromStoreReport(StoreRepairReport r)
        {
            long lost = r.Lost.Sum(l => l.Last - l.First + 1);
            // The placeholders written for lost seqs are records of the repaired store, not recovered events.
            long recovered = System.Math.Max(0, r.After.RecordsChecked - lost);
            // Where the damage was and where its bytes were kept: the first action that moved bytes to quarantine.
            var moved = r.Actions.FirstOrDefault(a => a.QuarantinePath != null);
            return new BmadRepairReport(r.Store, "store", r.Before.Healthy && r.Actions.Count == 0, r.Healthy, r.BytesMoved,
                recovered, lost, r.NeedsRestore, r.RestoredFromBackup, moved?.Offset, null, null, moved?.QuarantinePath,
                r.Actions.Select(BmadRepairAction.FromAction).ToArray(), BmadIntegrityReport.FromReport(r.Before), BmadIntegrityReport.FromReport(r.After));
        }

        internal static BmadRepairReport FromLegacyResult(LegacyRepairResult r)
        {
            var actions = new List<BmadRepairAction>();
            if (r.Written)
            {
                actions.Add(BmadRepairAction.Create("Quarantined", r.Path, 0, r.OriginalBytes, r.QuarantinePath,
                    "The damaged original was copied whole to quarantine before the file was replaced."));
                foreach (var d in r.Damage)
                {
                    actions.Add(BmadRepairAction.Create("DamagedRegion", r.Path, d.Offset, d.Length, r.QuarantinePath,
                        $"Not carried over (kept in the quarantine copy at the same offset): {d.Reason}"));
                }

                actions.Add(BmadRepairAction.Create("Rewritten", r.Path, null, null, null,
                    $"The file was replaced atomically with the {r.RecoveredEvents} recovered events."));
            }

            // Each damaged stretch not carried over held at least one event (a torn event is one stretch).
            long lost = r.Written ? r.Damage.Count : 0;
            return new BmadRepairReport(r.Path, "file", r.WasHealthy, r.WasHealthy || r.Written, r.Written ? r.OriginalBytes : 0, r.RecoveredEvents, lost,
                false, false, r.DamageOffset, r.DamageLine, r.DamageColumn, r.QuarantinePath, actions.ToArray(), null, null);
        }
    }
}
