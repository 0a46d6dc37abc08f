using System;
using System.Linq;
using BmadGuard.Core.Backup;

namespace BmadGuard
{
    /// <summary>A backup of a store, as Backup-BmadStore and Get-BmadBackup report it.</summary>
    public sealed class BmadBackup
    {
        internal BmadBackup(BackupInfo b)
        {
            Name = b.Name;
            Store = b.Store;
            Path = b.Path;
            Kind = b.Kind;
            Created = b.Created;
            ConsistentAt = b.ConsistentAt;
            LastSeq = b.LastSeq;
            EventCount = b.EventCount;
            SizeBytes = b.SizeBytes;
            State = b.State.ToString();
            Reason = b.Reason;
            Check = b.Check.ToString();
            Findings = b.Findings.Select(f => f.ToString()).ToArray();
            FilesCopied = b.FilesCopied;
            BytesCopied = b.BytesCopied;
            FilesReused = b.FilesReused + b.FilesLinked;
            RetentionRemoved = b.Retention?.Removed.ToArray() ?? Array.Empty<string>();
            RetentionSkipped = b.Retention?.Skipped.ToArray() ?? Array.Empty<string>();
        }

        /// <summary>The backup's name: a sortable UTC timestamp and a short id, e.g. 20261122T021717123Z-1a2b3c.</summary>
        public string Name { get; }

        /// <summary>The store the backup belongs to (binds -Store of Restore-BmadStore by property name).</summary>
        public string Store { get; }

        /// <summary>The backup directory.</summary>
        public string Path { get; }

        /// <summary>backup (taken on request or on schedule) or safety (taken by a restore before it changed anything).</summary>
        public string Kind { get; }

        /// <summary>When the backup was made.</summary>
        public DateTimeOffset Created { get; }

        /// <summary>The moment the backup is consistent to (every event up to LastSeq).</summary>
        public DateTimeOffset ConsistentAt { get; }

        /// <summary>The last seq the backup holds.</summary>
        public long LastSeq { get; }

        /// <summary>How many events the backup holds.</summary>
        public long EventCount { get; }

        /// <summary>The size of the backup's files, in bytes.</summary>
        public long SizeBytes { get; }

        /// <summary>Verified, Unverified (an interrupted backup) or Damaged.</summary>
        public string State { get; }

        /// <summary>Why a backup is not Verified.</summary>
        public string? Reason { get; }

        /// <summary>How deeply it was checked: Quick (manifest, presence, sizes) or Deep (every hash and record).</summary>
        public string Check { get; }

        /// <summary>What is wrong, one line per finding: severity, code, file, offset and message.</summary>
        public string[] Findings { get; }

        /// <summary>Files this backup copied (Backup-BmadStore only).</summary>
        public int FilesCopied { get; }

        /// <summary>Bytes this backup copied (Backup-BmadStore only).</summary>
        public long BytesCopied { get; }

        /// <summary>Sealed segments taken from an earlier backup instead of copied (hard links or reuse).</summary>
        public int FilesReused { get; }

        /// <summary>Backups the retention policy removed after this backup (Backup-BmadStore -Keep*).</summary>
        public string[] RetentionRemoved { get; }

        /// <summary>Backups retention left alone because they are damaged or incomplete: a person decides.</summary>
        public string[] RetentionSkipped { get; }
    }
}
