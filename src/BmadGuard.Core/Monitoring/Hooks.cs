using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;

namespace BmadGuard.Core.Monitoring
{
    // The monitor's seams. The integrity checker (Test-BmadIntegrity, Repair-BmadStore) and backups/restore are
    // built on other branches; they plug in here. The defaults in this folder are built only on the store's own
    // mechanisms (SegmentReader + RecordCodec.ChecksumOk, the torn-tail cut) and say plainly what they cannot do.

    /// <summary>What kind of damage a finding is.</summary>
    public enum FindingKind
    {
        /// <summary>Bytes after the last valid record of the last segment (a crash mid-append, or a damaged last record).</summary>
        TornTail,
        /// <summary>A record whose checksum or format does not hold, with valid records after it.</summary>
        ChecksumMismatch,
        /// <summary>Records out of sequence, or segments that do not follow each other.</summary>
        SeqGap,
        /// <summary>A segment (or the whole segments folder, or the settings file) is gone.</summary>
        Missing,
        /// <summary>A segment's header is damaged.</summary>
        HeaderDamaged,
        /// <summary>A file cannot be read at all.</summary>
        Unreadable,
        /// <summary>A guarded JSON file does not parse (truncated, half-written, garbage).</summary>
        InvalidJson,
        /// <summary>
        /// The log is valid but ends below the monitor's high-water mark under the same writer epoch (the newest segment
        /// deleted, the log cut at a record boundary): acknowledged events vanished. See <see cref="SeqWatermark"/>.
        /// </summary>
        LogShrunk,
        /// <summary>A guarded legacy bus file holds fewer events than the monitor saw in it before (its high-water mark).</summary>
        LegacyEventsLost,
        /// <summary>A guarded legacy bus file's writers delete or replace its lock file: the lock excludes no one.</summary>
        LegacyLockFileDeleted,
    }

    /// <summary>One piece of damage, with where it is.</summary>
    public sealed class IntegrityFinding
    {
        public IntegrityFinding(FindingKind kind, string path, long? offset, string message)
        {
            Kind = kind;
            Path = path;
            Offset = offset;
            Message = message;
        }

        public FindingKind Kind { get; }
        public string Path { get; }
        public long? Offset { get; }
        public string Message { get; }

        /// <summary>For <see cref="FindingKind.LogShrunk"/>: the first and last seq that vanished.</summary>
        public long? LostFirst { get; set; }

        public long? LostLast { get; set; }

        /// <summary>A stable identity for alert de-duplication: the same damage in the same place.</summary>
        public string Key => $"{Kind}:{Path}";

        public override string ToString() => Message;
    }

    /// <summary>The outcome of one check of one target (a store or a guarded file).</summary>
    public sealed class IntegrityResult
    {
        public IntegrityResult(string target, bool deep, IReadOnlyList<IntegrityFinding> findings, long bytesChecked, long recordsChecked, TimeSpan duration)
        {
            Target = target;
            Deep = deep;
            Findings = findings;
            BytesChecked = bytesChecked;
            RecordsChecked = recordsChecked;
            Duration = duration;
        }

        public string Target { get; }
        public bool Deep { get; }
        public bool Ok => Findings.Count == 0;
        public IReadOnlyList<IntegrityFinding> Findings { get; }
        public long BytesChecked { get; }
        public long RecordsChecked { get; }
        public TimeSpan Duration { get; }

        /// <summary>True when every finding is one the store's torn-tail cut repairs without deleting anything.</summary>
        public bool OnlyTornTail => Findings.Count > 0 && Findings.All(f => f.Kind == FindingKind.TornTail);
    }

    /// <summary>Checks a store. The integrity checker's Test-BmadIntegrity plugs in here.</summary>
    public interface IStoreInspector
    {
        /// <summary>Cheap: checks what changed since the previous call (everything on the first call).</summary>
        IntegrityResult QuickCheck(string store, CancellationToken cancellationToken);

        /// <summary>Thorough: every byte of every segment.</summary>
        IntegrityResult DeepVerify(string store, CancellationToken cancellationToken);
    }

    /// <summary>
    /// A store inspector whose deep verify can run beside the monitor's loop: it keeps no state between such calls
    /// and holds nothing the quick checks need. The monitor then reads every byte in the background and, when that
    /// finds damage, checks again on the loop (the store may have changed meanwhile) before it acts.
    /// </summary>
    public interface IDetachedDeepVerifier
    {
        IntegrityResult DeepVerifyDetached(string store, CancellationToken cancellationToken);
    }

    public enum HealOutcome
    {
        /// <summary>Done and verified by the healer.</summary>
        Healed,
        /// <summary>Nothing to do (the damage was gone when the lock was taken).</summary>
        NotNeeded,
        /// <summary>This healer cannot fix this damage without losing data; another action is needed.</summary>
        NotPossible,
        /// <summary>The feature is not installed in this build (e.g. restore before backups exist).</summary>
        NotAvailable,
        /// <summary>Tried and failed.</summary>
        Failed,
    }

    /// <summary>What a repair or restore did.</summary>
    public sealed class HealResult
    {
        public HealResult(HealOutcome outcome, string message, IReadOnlyList<string>? quarantined = null, long bytesQuarantined = 0, string? restoredFrom = null)
        {
            Outcome = outcome;
            Message = message;
            Quarantined = quarantined ?? Array.Empty<string>();
            BytesQuarantined = bytesQuarantined;
            RestoredFrom = restoredFrom;
        }

        public HealOutcome Outcome { get; }
        public string Message { get; }
        public IReadOnlyList<string> Quarantined { get; }
        public long BytesQuarantined { get; }
        public string? RestoredFrom { get; }
        public bool Success => Outcome == HealOutcome.Healed || Outcome == HealOutcome.NotNeeded;
    }

    /// <summary>
    /// Repairs and restores a store. Implementations take the writers' lock themselves (StoreLock on
    /// <c>writer.lock</c>), never delete damaged bytes (quarantine), and take a safety backup first where they can.
    /// </summary>
    public interface IStoreHealer
    {
        /// <summary>Repairs what can be repaired without losing acknowledged events; NotPossible otherwise.</summary>
        HealResult Repair(string store, IntegrityResult damage, CancellationToken cancellationToken);

        /// <summary>Replaces the store with its latest verified backup (damaged files kept in quarantine).</summary>
        HealResult RestoreLatest(string store, CancellationToken cancellationToken);
    }

    /// <summary>
    /// Optional for an <see cref="IStoreHealer"/>: brings back seqs that vanished from a log that still verifies
    /// (<see cref="FindingKind.LogShrunk"/>), from the newest verified backup holding them. Repair cannot: there is
    /// nothing damaged to repair.
    /// </summary>
    public interface ILostEventsHealer
    {
        HealResult RestoreLost(string store, long firstLost, long lastLost, CancellationToken cancellationToken);
    }

    /// <summary>One damaged backup as the monitor's backup sweep found it.</summary>
    public sealed class BackupProblem
    {
        public BackupProblem(string name, string path, IReadOnlyList<IntegrityFinding> findings, IReadOnlyList<string> codes)
        {
            Name = name;
            Path = path;
            Findings = findings;
            Codes = codes;
        }

        /// <summary>The backup's name (its directory name).</summary>
        public string Name { get; }

        /// <summary>The backup directory.</summary>
        public string Path { get; }

        /// <summary>What does not match the manifest: the backup file and byte offset where known.</summary>
        public IReadOnlyList<IntegrityFinding> Findings { get; }

        /// <summary>The backup verifier's codes (BackupFileHashMismatch, BackupManifestMissing, …), one per finding.</summary>
        public IReadOnlyList<string> Codes { get; }

        /// <summary>Changes when the damage changes (a new alert and audit entry), stable while it stays the same.</summary>
        public string Signature => string.Join("|", Findings.Select((f, i) => Codes[i] + ":" + f.Path + "@" + f.Offset));
    }

    /// <summary>What one sweep over a store's backups found.</summary>
    public sealed class BackupSweep
    {
        public BackupSweep(int backups, int read, long bytesRead, IReadOnlyList<BackupProblem> damaged, TimeSpan duration)
        {
            Backups = backups;
            Read = read;
            BytesRead = bytesRead;
            Damaged = damaged;
            Duration = duration;
        }

        /// <summary>Backups looked at (temporary ones excluded).</summary>
        public int Backups { get; }

        /// <summary>Backups read in full this time (the others were unchanged and verified recently).</summary>
        public int Read { get; }

        public long BytesRead { get; }
        public IReadOnlyList<BackupProblem> Damaged { get; }
        public TimeSpan Duration { get; }
    }

    /// <summary>Verifies a store's backups against their manifests (on the monitor's deep schedule).</summary>
    public interface IBackupInspector
    {
        BackupSweep Verify(string store, CancellationToken cancellationToken);
    }

    /// <summary>A backup as the monitor and the health report see it.</summary>
    public sealed class BackupInfo
    {
        public BackupInfo(string name, DateTimeOffset created, bool verified, string? path = null)
        {
            Name = name;
            Created = created;
            Verified = verified;
            Path = path;
        }

        public string Name { get; }
        public DateTimeOffset Created { get; }
        public bool Verified { get; }
        public string? Path { get; }
    }

    public sealed class BackupResult
    {
        public BackupResult(bool available, bool success, string message, BackupInfo? backup = null)
        {
            Available = available;
            Success = success;
            Message = message;
            Backup = backup;
        }

        /// <summary>False when this build has no backup feature (nothing was attempted).</summary>
        public bool Available { get; }
        public bool Success { get; }
        public string Message { get; }
        public BackupInfo? Backup { get; }
    }

    /// <summary>Takes and lists backups (the backup feature plugs in here).</summary>
    public interface IBackupTaker
    {
        /// <summary>Takes a backup; <paramref name="reason"/> is "scheduled" or "safety" (before a restore).</summary>
        BackupResult TakeBackup(string store, string reason, CancellationToken cancellationToken);

        /// <summary>The newest backup that passed verification, or null when there is none.</summary>
        BackupInfo? NewestVerified(string store);
    }

    /// <summary>The default until the backup feature is merged: says so, attempts nothing.</summary>
    public sealed class UnavailableBackups : IBackupTaker
    {
        public static UnavailableBackups Instance { get; } = new UnavailableBackups();

        public const string Message = "Backups are not available in this build yet (the backup feature, Backup-BmadStore, is not installed); nothing was backed up.";

        public BackupResult TakeBackup(string store, string reason, CancellationToken cancellationToken) => new BackupResult(false, false, Message);

        public BackupInfo? NewestVerified(string store) => null;
    }
}
