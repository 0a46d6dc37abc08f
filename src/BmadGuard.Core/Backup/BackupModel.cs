using System;
using System.Collections.Generic;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Backup
{
    /// <summary>A backup's verification state, as Get-BmadBackup and `bmadguard backups` show it.</summary>
    public enum BackupState
    {
        /// <summary>Read back and checked against its manifest when it was made, and still intact (see <see cref="BackupInfo.Check"/>).</summary>
        Verified,
        /// <summary>Not (yet) a complete backup: a temporary directory left by a backup that was interrupted.</summary>
        Unverified,
        /// <summary>Its manifest or files do not match: <see cref="BackupInfo.Reason"/> says which.</summary>
        Damaged,
    }

    /// <summary>How deeply a backup was checked for <see cref="BackupInfo.State"/>.</summary>
    public enum BackupCheck
    {
        /// <summary>The manifest's own checksum, and every file present with the right size.</summary>
        Quick,
        /// <summary>Everything in Quick, plus every file's SHA-256 and every record's checksum and seq.</summary>
        Deep,
    }

    public enum FindingSeverity
    {
        Warning,
        Error,
    }

    /// <summary>Something wrong with a backup: which file, where, and what a person can do about it.</summary>
    public sealed class BackupFinding
    {
        public BackupFinding(FindingSeverity severity, string code, string backup, string file, long? offset, string message)
        {
            Severity = severity;
            Code = code;
            Backup = backup;
            File = file;
            Offset = offset;
            Message = message;
        }

        public FindingSeverity Severity { get; }

        /// <summary>Stable code, e.g. <c>BackupFileHashMismatch</c>.</summary>
        public string Code { get; }

        /// <summary>The backup's name.</summary>
        public string Backup { get; }

        /// <summary>Full path of the file the finding is about.</summary>
        public string File { get; }

        /// <summary>Byte offset in <see cref="File"/>, when known.</summary>
        public long? Offset { get; }

        public string Message { get; }

        public override string ToString() => $"{Severity} {Code} {File}{(Offset.HasValue ? "@" + Offset.Value : "")}: {Message}";
    }

    /// <summary>What a backup was made for.</summary>
    public static class BackupKinds
    {
        /// <summary>Made by Backup-BmadStore: the store's records checked while copying.</summary>
        public const string Backup = "backup";

        /// <summary>Made by Restore-BmadStore of the current state before it changes anything: the bytes as they were, damage included.</summary>
        public const string Safety = "safety";
    }

    /// <summary>Stable finding codes.</summary>
    public static class BackupFindingCodes
    {
        public const string ManifestMissing = "BackupManifestMissing";
        public const string ManifestDamaged = "BackupManifestDamaged";
        public const string FileMissing = "BackupFileMissing";
        public const string FileSizeMismatch = "BackupFileSizeMismatch";
        public const string FileHashMismatch = "BackupFileHashMismatch";
        public const string RecordDamaged = "BackupRecordDamaged";
        public const string SeqMismatch = "BackupSeqMismatch";
        public const string UnexpectedFile = "BackupUnexpectedFile";
        public const string Incomplete = "BackupIncomplete";
        public const string SourceDamaged = "BackupSourceDamaged";
    }

    /// <summary>One backup, as listed or just made.</summary>
    public sealed class BackupInfo
    {
        internal BackupInfo(string name, string path, string store, string kind, DateTimeOffset created, DateTimeOffset consistentAt,
            long lastSeq, long eventCount, long sizeBytes, BackupState state, string? reason, BackupCheck check,
            IReadOnlyList<BackupFinding> findings, long? writerEpoch = null)
        {
            WriterEpoch = writerEpoch;
            Name = name;
            Path = path;
            Store = store;
            Kind = kind;
            Created = created;
            ConsistentAt = consistentAt;
            LastSeq = lastSeq;
            EventCount = eventCount;
            SizeBytes = sizeBytes;
            State = state;
            Reason = reason;
            Check = check;
            Findings = findings;
        }

        /// <summary>Sortable UTC timestamp plus a short id, e.g. <c>20261122T021717123Z-1a2b3c</c>.</summary>
        public string Name { get; }

        /// <summary>The backup's directory.</summary>
        public string Path { get; }

        /// <summary>The store it is a backup of (the path recorded when it was made).</summary>
        public string Store { get; }

        /// <summary><c>backup</c>, or <c>safety</c> for the one Restore makes of the current state first.</summary>
        public string Kind { get; }

        public DateTimeOffset Created { get; }

        /// <summary>When the consistent point was recorded (under the writers' lock): the backup holds every event acknowledged before this.</summary>
        public DateTimeOffset ConsistentAt { get; }

        /// <summary>The backup is consistent up to and including this seq (0 for an empty store).</summary>
        public long LastSeq { get; }

        public long EventCount { get; }

        /// <summary>
        /// The store's writer epoch at the consistent point (restore and repair raise it), when the manifest records it.
        /// With <see cref="LastSeq"/> it places the backup in the log: see <see cref="BackupCatalog.LogOrder"/>.
        /// </summary>
        public long? WriterEpoch { get; }

        /// <summary>Sum of the backup's file sizes (files shared by hard link with earlier backups count in each).</summary>
        public long SizeBytes { get; }

        public BackupState State { get; }

        /// <summary>Why the state is not Verified (the first finding), else null.</summary>
        public string? Reason { get; }

        public BackupCheck Check { get; }

        public IReadOnlyList<BackupFinding> Findings { get; }

        /// <summary>Set on a backup just made: files copied and bytes written.</summary>
        public int FilesCopied { get; internal set; }

        public long BytesCopied { get; internal set; }

        /// <summary>Set on a backup just made: sealed segments reused from an earlier backup (hard link, or copied from it).</summary>
        public int FilesReused { get; internal set; }

        public long BytesReused { get; internal set; }

        /// <summary>How many of the reused files are hard links (the rest were copied from the earlier backup).</summary>
        public int FilesLinked { get; internal set; }

        /// <summary>The earlier backup sealed segments were reused from.</summary>
        public string? ReusedFrom { get; internal set; }

        /// <summary>Set on a backup just made with a retention policy: what the policy removed.</summary>
        public RetentionResult? Retention { get; internal set; }
    }

    /// <summary>What Backup-BmadStore does.</summary>
    public sealed class BackupOptions
    {
        /// <summary>Where backups go; default <c>&lt;store&gt;/backups</c>. May be on another volume.</summary>
        public string? Destination { get; set; }

        /// <summary>Applied after a successful backup, when set.</summary>
        public RetentionPolicy? Retention { get; set; }

        /// <summary>How long to wait for the writers' lock (held only to record the consistent point).</summary>
        public TimeSpan LockTimeout { get; set; } = StoreLock.DefaultTimeout;

        /// <summary>Reuse sealed segments from the newest verified earlier backup (default true).</summary>
        public bool Incremental { get; set; } = true;

        public IStorageIO IO { get; set; } = OsStorageIO.Instance;

        /// <summary>Test seam: the clock that names and dates the backup (a clock set back is simulated with it).</summary>
        internal Func<DateTimeOffset>? Clock { get; set; }
    }

    /// <summary>Progress of long work (backup, verify, restore), for WriteProgress.</summary>
    public sealed class BackupProgress
    {
        public BackupProgress(string activity, string? file, long bytesDone, long bytesTotal)
        {
            Activity = activity;
            File = file;
            BytesDone = bytesDone;
            BytesTotal = bytesTotal;
        }

        public string Activity { get; }
        public string? File { get; }
        public long BytesDone { get; }
        public long BytesTotal { get; }

        public int PercentComplete => BytesTotal <= 0 ? 0 : (int)Math.Min(100, BytesDone * 100 / BytesTotal);
    }

    /// <summary>
    /// Retention in the manner of restic's <c>forget</c>. Each rule keeps, walking from the newest backup
    /// back (newest by the log, <see cref="BackupCatalog.LogOrder"/>, never by the clock), the newest backup of
    /// each of the last N hours/days/weeks (UTC, by when it was made; weeks are ISO weeks) that have one; a backup
    /// kept by any rule stays. Only verified regular backups are counted or removed by these rules; the newest
    /// verified one, and the one just made, are always kept. Safety backups follow <see cref="KeepSafety"/> alone.
    /// With no rule for a kind (regular or safety), no backup of that kind is removed.
    /// </summary>
    public sealed class RetentionPolicy
    {
        public int? KeepLast { get; set; }
        public int? KeepHourly { get; set; }
        public int? KeepDaily { get; set; }
        public int? KeepWeekly { get; set; }

        /// <summary>
        /// Safety backups (made by a restore, the only way to undo one) have a retention of their own: the rules above
        /// never count or remove them. With KeepSafety the newest N safety backups are kept and older ones removed;
        /// without it none is removed. The newest safety backup is always kept.
        /// </summary>
        public int? KeepSafety { get; set; }

        public bool IsEmpty => KeepLast == null && KeepHourly == null && KeepDaily == null && KeepWeekly == null && KeepSafety == null;
    }

    /// <summary>What a retention run kept and removed.</summary>
    public sealed class RetentionResult
    {
        internal RetentionResult(IReadOnlyList<string> kept, IReadOnlyList<string> removed, IReadOnlyList<string> skipped)
        {
            Kept = kept;
            Removed = removed;
            Skipped = skipped;
        }

        public IReadOnlyList<string> Kept { get; }

        /// <summary>Backups the policy removed (their directories are gone).</summary>
        public IReadOnlyList<string> Removed { get; }

        /// <summary>Backups left alone because they are not verified (damaged or incomplete): a person decides.</summary>
        public IReadOnlyList<string> Skipped { get; }
    }

    /// <summary>Which state Restore-BmadStore brings back. Set exactly one of Latest, BackupName, At, Sequence.</summary>
    public sealed class RestoreRequest
    {
        public bool Latest { get; set; }
        public string? BackupName { get; set; }

        /// <summary>
        /// A point in time: the first verified backup whose consistent point is at or after <c>At</c> is
        /// used (it holds the store as it was then, even if a later restore rewrote history), and only its
        /// events with timestamp ≤ At are kept. If every backup is older than At, the newest verified one
        /// is used whole, and the report says so in its notices.
        /// </summary>
        public DateTimeOffset? At { get; set; }

        /// <summary>A seq: the newest verified backup holding that seq is used, and only its events with seq ≤ Sequence are kept.</summary>
        public long? Sequence { get; set; }

        /// <summary>Where to look for backups besides <c>&lt;store&gt;/backups</c> and the destinations the store remembers.</summary>
        public string? Destination { get; set; }

        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(30);

        /// <summary>
        /// Whatever the selector, a restore that would leave the log ending below where it ends now sets the newer events
        /// aside: it is refused (<c>SetAsideNeedsForce</c>, naming how many) unless this is set. A restore that sets
        /// nothing aside needs no force.
        /// </summary>
        public bool Force { get; set; }

        public IStorageIO IO { get; set; } = OsStorageIO.Instance;

        /// <summary>
        /// Keep the current log's intact events after the restored point at their own seqs (repair and the monitor's heal:
        /// the backup only has to bring back what was damaged). False (Restore-BmadStore): they are kept aside and their
        /// seqs hold <c>bmadguard.rolledback</c> placeholders.
        /// </summary>
        public bool PutBackNewer { get; set; }
    }

    /// <summary>What Restore-BmadStore changed.</summary>
    public sealed class RestoreReport
    {
        public string Store { get; internal set; } = "";
        public string Backup { get; internal set; } = "";
        public string BackupPath { get; internal set; } = "";

        /// <summary>The backup made of the current state before anything changed.</summary>
        public string SafetyBackup { get; internal set; } = "";
        public string SafetyBackupPath { get; internal set; } = "";

        /// <summary>latest, backup, at or seq.</summary>
        public string Mode { get; internal set; } = "";

        /// <summary>The store's last seq after the restore.</summary>
        public long RestoredLastSeq { get; internal set; }

        /// <summary>
        /// The log's last seq after the restore: the old high-water mark (seqs are never reused), at least
        /// <see cref="RestoredLastSeq"/>. The next event published gets the seq after it.
        /// </summary>
        public long LastSeqAfter { get; internal set; }

        /// <summary>Seqs after the restored point marked with <c>bmadguard.rolledback</c> placeholders.</summary>
        public long RolledBack { get; internal set; }

        /// <summary>Current events after the restored point kept in the log at their own seqs (<see cref="RestoreRequest.PutBackNewer"/>).</summary>
        public long PutBack { get; internal set; }

        /// <summary>Valid events in the store before the restore.</summary>
        public long EventsBefore { get; internal set; }

        public long? LastSeqBefore { get; internal set; }

        public long EventsAfter { get; internal set; }

        /// <summary>Events of the current store not in the restored state (newer than the restored point, or differing from it), written to <see cref="KeptAsideFile"/>.</summary>
        public long KeptAside { get; internal set; }

        /// <summary>NDJSON of the kept-aside events, or null when there were none.</summary>
        public string? KeptAsideFile { get; internal set; }

        /// <summary>The segment files the restore replaced, moved here whole (never deleted).</summary>
        public string? ReplacedSegments { get; internal set; }

        /// <summary>Always empty since seqs are never reused: no consumer is ever ahead of a restored log. Kept for output compatibility.</summary>
        public IReadOnlyList<string> ConsumersRewound { get; internal set; } = Array.Empty<string>();

        /// <summary>Unreadable bytes found in the current store while collecting its events (they are in the safety backup and in <see cref="ReplacedSegments"/>).</summary>
        public IReadOnlyList<BackupFinding> CurrentDamage { get; internal set; } = Array.Empty<BackupFinding>();

        public IReadOnlyList<string> Notices { get; internal set; } = Array.Empty<string>();

        public long DurationMilliseconds { get; internal set; }

        /// <summary>Milliseconds from the start at which each phase ended (verifyBackup, safetyBackup, build, keepAside, swap, readBack).</summary>
        public IReadOnlyDictionary<string, long> PhaseEndMilliseconds { get; internal set; } = new Dictionary<string, long>();
    }
}
