using System;
using System.Linq;
using BmadGuard.Core.Backup;

namespace BmadGuard
{
    /// <summary>What Restore-BmadStore changed.</summary>
    public sealed class BmadRestoreResult
    {
        internal BmadRestoreResult(RestoreReport r)
        {
            Store = r.Store;
            Backup = r.Backup;
            BackupPath = r.BackupPath;
            SafetyBackup = r.SafetyBackup;
            SafetyBackupPath = r.SafetyBackupPath;
            Mode = r.Mode;
            RestoredLastSeq = r.RestoredLastSeq;
            EventsBefore = r.EventsBefore;
            LastSeqBefore = r.LastSeqBefore;
            EventsAfter = r.EventsAfter;
            KeptAside = r.KeptAside;
            KeptAsideFile = r.KeptAsideFile;
            ReplacedSegments = r.ReplacedSegments;
            ConsumersRewound = r.ConsumersRewound.ToArray();
            CurrentDamage = r.CurrentDamage.Select(f => f.ToString()).ToArray();
            Notices = r.Notices.ToArray();
            Duration = TimeSpan.FromMilliseconds(r.DurationMilliseconds);
        }

        /// <summary>The store that was restored.</summary>
        public string Store { get; }

        /// <summary>The backup it was restored from.</summary>
        public string Backup { get; }

        /// <summary>That backup's directory.</summary>
        public string BackupPath { get; }

        /// <summary>The backup of the state before the restore (restore it to undo).</summary>
        public string SafetyBackup { get; }

        /// <summary>The safety backup's directory.</summary>
        public string SafetyBackupPath { get; }

        /// <summary>latest, backup, at or seq.</summary>
        public string Mode { get; }

        /// <summary>The store's last seq after the restore.</summary>
        public long RestoredLastSeq { get; }

        /// <summary>Valid events in the store before the restore.</summary>
        public long EventsBefore { get; }

        /// <summary>The last seq before the restore; null for an empty store.</summary>
        public long? LastSeqBefore { get; }

        /// <summary>Events in the store after the restore.</summary>
        public long EventsAfter { get; }

        /// <summary>Events of the old state not in the restored one, written to KeptAsideFile (never discarded).</summary>
        public long KeptAside { get; }

        /// <summary>NDJSON file holding the kept-aside events; null when there were none.</summary>
        public string? KeptAsideFile { get; }

        /// <summary>Where the replaced segment files were moved (never deleted).</summary>
        public string? ReplacedSegments { get; }

        /// <summary>Consumers whose position was beyond the restored point and were moved back to it.</summary>
        public string[] ConsumersRewound { get; }

        /// <summary>Unreadable bytes found in the old state while collecting its events.</summary>
        public string[] CurrentDamage { get; }

        /// <summary>Things a person should know (e.g. every backup was older than -At).</summary>
        public string[] Notices { get; }

        /// <summary>How long the restore took.</summary>
        public TimeSpan Duration { get; }
    }
}
