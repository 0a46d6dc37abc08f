using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Integrity
{
    /// <summary>How Repair-BmadStore runs.</summary>
    public sealed class StoreRepairOptions
    {
        public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(30);

        public IProgress<IntegrityProgress>? Progress { get; set; }

        /// <summary>
        /// Called when seqs are lost that only a backup can bring back, before the repair changes anything and
        /// without the writers' lock held (a restore takes it itself). Arguments: the store root and the lost
        /// ranges. Return true when it restored the store; the repair then works on the restored store.
        /// Restore-from-backup belongs to the backup feature, which plugs in here.
        /// </summary>
        public Func<string, IReadOnlyList<SeqRange>, CancellationToken, bool>? RestoreFromBackup { get; set; }

        /// <summary>What the restore hook did (backup used, events kept aside / put back), added to the repair's RestoredFromBackup action.</summary>
        public string? RestoreNote { get; set; }

        /// <summary>The most placeholder records a repair writes for lost seqs; beyond it the store is left for a restore.</summary>
        public long MaxPlaceholders { get; set; } = 1_000_000;

        public IStorageIO IO { get; set; } = OsStorageIO.Instance;
    }

    /// <summary>One change a repair made. Every byte moved is named: file, offset, length, and where it went.</summary>
    public sealed class RepairAction
    {
        public RepairAction(string kind, string file, string message, long? offset = null, long? length = null, string? quarantinePath = null)
        {
            Kind = kind;
            File = file;
            Message = message;
            Offset = offset;
            Length = length;
            QuarantinePath = quarantinePath;
        }

        /// <summary>TornTailCut, RegionQuarantined, SegmentRebuilt, SegmentQuarantined, SegmentRenamed, FileQuarantined,
        /// PlaceholdersWritten, SettingsRebuilt, ConsumerReset, LogRestarted, RestoredFromBackup.</summary>
        public string Kind { get; }

        public string File { get; }
        public long? Offset { get; }
        public long? Length { get; }

        /// <summary>Where the bytes are now (the same offsets in that file, for a quarantined segment copy).</summary>
        public string? QuarantinePath { get; }

        public string Message { get; }
    }

    /// <summary>Seqs a repair could not bring back: they are marked by <c>bmadguard.lost</c> placeholder events.</summary>
    public sealed class LostRange
    {
        public LostRange(long first, long last, string reason, string? quarantinePath)
        {
            First = first;
            Last = last;
            Reason = reason;
            QuarantinePath = quarantinePath;
        }

        public long First { get; }
        public long Last { get; }
        public string Reason { get; }
        public string? QuarantinePath { get; }
    }

    /// <summary>What Repair-BmadStore did, and the store's state before and after.</summary>
    public sealed class StoreRepairReport
    {
        internal StoreRepairReport(string store, IntegrityReport before, IntegrityReport after, IReadOnlyList<RepairAction> actions, IReadOnlyList<LostRange> lost, bool restored)
        {
            Store = store;
            Before = before;
            After = after;
            Actions = actions;
            Lost = lost;
            RestoredFromBackup = restored;
        }

        public string Store { get; }
        public IntegrityReport Before { get; }
        public IntegrityReport After { get; }
        public IReadOnlyList<RepairAction> Actions { get; }

        /// <summary>Seqs that could not be repaired without a backup (empty when nothing was lost).</summary>
        public IReadOnlyList<LostRange> Lost { get; }

        public bool RestoredFromBackup { get; }

        /// <summary>True when the store verifies clean after the repair.</summary>
        public bool Healthy => After.Healthy;

        /// <summary>True when data is lost that a backup might still hold.</summary>
        public bool NeedsRestore => Lost.Count > 0 || !After.Healthy;

        public long BytesMoved
        {
            get
            {
                long n = 0;
                foreach (var a in Actions)
                {
                    n += a.QuarantinePath != null ? a.Length ?? 0 : 0;
                }

                return n;
            }
        }

        public void WriteJson(Utf8JsonWriter w)
        {
            w.WriteStartObject();
            w.WriteString("store", Store);
            w.WriteBoolean("healthy", Healthy);
            w.WriteBoolean("needsRestore", NeedsRestore);
            w.WriteBoolean("restoredFromBackup", RestoredFromBackup);
            w.WriteNumber("bytesMoved", BytesMoved);
            w.WriteStartArray("actions");
            foreach (var a in Actions)
            {
                w.WriteStartObject();
                w.WriteString("kind", a.Kind);
                w.WriteString("file", a.File);
                if (a.Offset.HasValue)
                {
                    w.WriteNumber("offset", a.Offset.Value);
                }

                if (a.Length.HasValue)
                {
                    w.WriteNumber("length", a.Length.Value);
                }

                if (a.QuarantinePath != null)
                {
                    w.WriteString("quarantine", a.QuarantinePath);
                }

                w.WriteString("message", a.Message);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("lost");
            foreach (var l in Lost)
            {
                w.WriteStartObject();
                w.WriteNumber("firstSeq", l.First);
                w.WriteNumber("lastSeq", l.Last);
                w.WriteString("reason", l.Reason);
                if (l.QuarantinePath != null)
                {
                    w.WriteString("quarantine", l.QuarantinePath);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WritePropertyName("before");
            Before.WriteJson(w);
            w.WritePropertyName("after");
            After.WriteJson(w);
            w.WriteEndObject();
        }
    }

    /// <summary>
    /// Repair-BmadStore for a store. Under the writers' lock: cuts a torn tail (the store's own mechanism),
    /// renames misnamed segments back, rebuilds damaged segments from their valid records (the damaged
    /// original is copied whole to quarantine first, so its bytes sit at the same offsets there), marks seqs
    /// that no byte of the store holds any more with <c>bmadguard.lost</c> placeholder events (so the log stays
    /// contiguous and readers learn of the loss), moves damaged consumer positions and stray files to
    /// quarantine, and rewrites a damaged settings file. Nothing is deleted except a file whose exact bytes
    /// were first made durable in quarantine.
    /// </summary>
    public static class StoreRepair
    {
        public const string LostEventType = "bmadguard.lost";

        /// <summary>How long a backup's temporary directory must have been left alone before repair treats it as a leftover.</summary>
        public static TimeSpan StaleBackupAge { get; set; } = TimeSpan.FromMinutes(10);

        /// <summary>
        /// Placeholder records for seqs <paramref name="first"/>..<paramref name="last"/>: one valid record per seq (so the log
        /// stays contiguous), id <c>&lt;idPrefix&gt;&lt;seq&gt;</c>, the reserved <paramref name="type"/>, source <c>bmadguard</c>.
        /// Shared by repair (<c>bmadguard.lost</c>) and restore (<c>bmadguard.rolledback</c>).
        /// </summary>
        internal static void WritePlaceholderRecords(Stream target, long first, long last, string type, string idPrefix, byte[] dataJson, string timestamp)
        {
            var prepared = EventSerializer.Prepare(EventDraft.FromJson(type, "bmadguard", null, dataJson), new EventLimits(EventLimits.DefaultMaxEventBytes, EventLimits.DefaultMaxDepth), allowReserved: true, id: idPrefix + "0");
            var buffer = new MemoryStream();
            for (long seq = first; seq <= last; seq++)
            {
                buffer.SetLength(0);
                FileEventStore.WritePrefix(buffer, seq, idPrefix + seq.ToString(CultureInfo.InvariantCulture), timestamp);
                buffer.Write(prepared.Tail, 0, prepared.Tail.Length);
                RecordCodec.AppendTrailer(buffer, 0);
                target.Write(buffer.GetBuffer(), 0, (int)buffer.Length);
            }
        }

        public static StoreRepairReport Repair(string storeRoot, StoreRepairOptions? options = null, CancellationToken cancellationToken = default)
        {
            try
            {
                return RepairUnmapped(storeRoot, options, cancellationToken);
            }
            catch (IOException ex) when (StoreFs.IsDiskFull(ex))
            {
                throw StoreFs.MapIOException(ex, $"Repairing '{storeRoot}'", storeRoot, "Free some space and repair again.");
            }
        }

        private static StoreRepairReport RepairUnmapped(string storeRoot, StoreRepairOptions? options, CancellationToken cancellationToken)
        {
            options ??= new StoreRepairOptions();
            string root = Path.GetFullPath(storeRoot);
            StoreVerifier.EnsureStore(root);
            var actions = new List<RepairAction>();
            var lost = new List<LostRange>();

            var beforeBuilder = new IntegrityReportBuilder(root, "store");
            var first = StoreVerifier.Scan(root, beforeBuilder, options.Progress, cancellationToken);
            var before = beforeBuilder.Build();
            bool restored = false;
            if (options.RestoreFromBackup != null && !before.Healthy)
            {
                var ranges = LostRanges(first);
                if (ranges.Count > 0 && options.RestoreFromBackup(root, ranges, cancellationToken))
                {
                    restored = true;
                    actions.Add(new RepairAction("RestoredFromBackup", root, $"Seqs {string.Join(", ", ranges)} were lost; the store was restored from a backup." + (options.RestoreNote != null ? " " + options.RestoreNote : "")));
                }
            }

            // 1. A torn tail: the store's own mechanism (Open cuts it under the lock and quarantines the bytes).
            try
            {
                using var store = FileEventStore.Open(root, new StoreOpenOptions { LockTimeout = options.LockTimeout, IO = options.IO });
                foreach (var n in store.Notices)
                {
                    if (n.QuarantinePath != null)
                    {
                        actions.Add(new RepairAction("TornTailCut", n.Path ?? root, n.Message, n.Offset, n.Bytes, n.QuarantinePath));
                    }
                }
            }
            catch (BmadGuardException ex) when (ex.Code != ErrorCodes.LockTimeout)
            {
                // Damage Open cannot handle (settings, headers): the steps below deal with it.
            }

            using (var held = StoreLock.Acquire(Path.Combine(root, StorePaths.LockFileName), options.LockTimeout, cancellationToken))
            {
                int actionsBefore = actions.Count;
                var ctx = new Context(root, options, actions, lost);
                var scan = StoreVerifier.Scan(root, new IntegrityReportBuilder(root, "store"), null, cancellationToken);
                ctx.RepairSettings(scan);
                ctx.QuarantineStrays(scan);
                if (ctx.RenameSegments(scan))
                {
                    scan = StoreVerifier.Scan(root, new IntegrityReportBuilder(root, "store"), null, cancellationToken);
                }

                ctx.RepairSegments(scan, cancellationToken);
                ctx.RepairConsumers(scan);
                if (actions.Count > actionsBefore)
                {
                    // Files under the store changed behind other processes' backs: a writer that cached its active segment
                    // looks again, and a monitor's high-water mark (SeqWatermark) takes the repaired log as the new
                    // baseline instead of reporting a deliberate change as vanished events. Still under the lock, so
                    // anyone reading the epoch under it sees the change and the bump together.
                    held.BumpEpoch();
                }
            }

            // The store alone: a damaged backup is reported by verify, but it is not something a store repair fixes or needs.
            var after = StoreVerifier.Verify(root, new StoreVerifyOptions { Progress = options.Progress, IncludeRegisteredChecks = false }, cancellationToken);
            return new StoreRepairReport(root, before, after, actions, lost, restored);
        }

        private static List<SeqRange> LostRanges(StoreScan scan)
        {
            var ranges = new List<SeqRange>(scan.Missing);
            foreach (var s in scan.Segments)
            {
                ranges.AddRange(s.Gaps);
                foreach (var r in s.BadRegions)
                {
                    if (!r.IsTornTail)
                    {
                        long end = s.IsLast ? Math.Max(s.ExpectedFirst, s.LastValidSeq) : s.ExpectedNext - 1;
                        ranges.Add(new SeqRange(s.ExpectedFirst, Math.Max(s.ExpectedFirst, end)));
                        break;
                    }
                }
            }

            return ranges;
        }

        private sealed class Context
        {
            private readonly string _root;
            private readonly StoreRepairOptions _options;
            private readonly IStorageIO _io;
            private readonly List<RepairAction> _actions;
            private readonly List<LostRange> _lost;
            private long _placeholders;
            private DateTimeOffset? _lastTimestamp;

            public Context(string root, StoreRepairOptions options, List<RepairAction> actions, List<LostRange> lost)
            {
                _root = root;
                _options = options;
                _io = StoreFs.Confine(root, options.IO); // nothing below the root is followed through a link
                _actions = actions;
                _lost = lost;
            }

            private string QuarantineDir => Path.Combine(_root, StorePaths.QuarantineDirName);

            private string SegmentsDir => Path.Combine(_root, StorePaths.SegmentsDirName);

            private string QuarantineName(string file, string suffix)
            {
                _io.CreateDirectory(QuarantineDir);
                string baseName = $"{DateTime.UtcNow:yyyyMMddTHHmmssfffZ}-{Path.GetFileName(file)}{suffix}";
                string path = Path.Combine(QuarantineDir, baseName);
                for (int i = 1; File.Exists(path); i++)
                {
                    path = Path.Combine(QuarantineDir, baseName + "-" + i.ToString(CultureInfo.InvariantCulture));
                }

                return path;
            }

            /// <summary>Copies a file whole into quarantine, durably. Returns the copy's path.</summary>
            private string CopyToQuarantine(string file, string suffix)
            {
                string target = QuarantineName(file, suffix);
                using (var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16))
                using (var copy = _io.OpenForWrite(target, createNew: true))
                {
                    source.CopyTo(copy, 1 << 20);
                    _io.Sync(copy); // the copy is durable before the original is changed or removed
                }

                _io.SyncDirectory(QuarantineDir); // and so is its name
                return target;
            }

            /// <summary>Moves a file into quarantine by renaming it (same volume: no bytes copied).</summary>
            private string MoveToQuarantine(string file, string suffix)
            {
                string target = QuarantineName(file, suffix);
                _io.Move(file, target);
                _io.SyncDirectory(QuarantineDir); // the new name is durable…
                _io.SyncDirectory(Path.GetDirectoryName(file)!); // …and so is the old name's removal
                return target;
            }

            /// <summary>
            /// Directories an interrupted restore or safety backup left behind, moved whole into quarantine (a rename:
            /// no byte copied or deleted). Under the writers' lock no restore runs, so a <c>.segments.restore-*.tmp</c>
            /// is a leftover: the backup's copy (killed before the swap) or the replaced segments (killed after it).
            /// A backup's temporary directory in <c>backups/</c> is moved once nothing in it changed for
            /// <see cref="StaleBackupAge"/> (a regular backup does not hold the writers' lock while it copies).
            /// </summary>
            private void QuarantineLeftoverDirectories()
            {
                var leftovers = new List<(string Path, string Why)>();
                foreach (string dir in Directory.EnumerateDirectories(_root))
                {
                    string name = Path.GetFileName(dir);
                    // Without 'segments' (a restore's two-rename swap, off Linux, cut between its renames) the leftover may be the
                    // restored set itself: left where it is for a person (verify names it), never moved away from the store.
                    if (StoreVerifier.IsTempName(name) && name.StartsWith(".segments.restore-", StringComparison.Ordinal) && Directory.Exists(SegmentsDir))
                    {
                        leftovers.Add((dir, "a segment set left by an interrupted restore"));
                    }
                }

                string backups = Path.Combine(_root, "backups");
                if (Directory.Exists(backups))
                {
                    foreach (string dir in Directory.EnumerateDirectories(backups))
                    {
                        string name = Path.GetFileName(dir);
                        if (StoreVerifier.IsTempName(name) && DateTime.UtcNow - NewestWrite(dir) > StaleBackupAge)
                        {
                            leftovers.Add((dir, "an interrupted backup that never finished (BackupIncomplete)"));
                        }
                    }
                }

                foreach (var (dir, why) in leftovers)
                {
                    string target = QuarantineName(dir, ".leftover");
                    Directory.Move(dir, target);
                    _io.SyncDirectory(QuarantineDir); // the new name is durable…
                    _io.SyncDirectory(Path.GetDirectoryName(dir)!); // …and so is the old name's removal
                    _actions.Add(new RepairAction("FileQuarantined", dir, $"'{Path.GetFileName(dir)}' is {why}; moved whole to '{target}'.", null, null, target));
                }
            }

            private static DateTime NewestWrite(string dir)
            {
                var newest = Directory.GetLastWriteTimeUtc(dir);
                foreach (string f in Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories))
                {
                    var t = File.GetLastWriteTimeUtc(f);
                    newest = t > newest ? t : newest;
                }

                return newest;
            }

            public void RepairSettings(StoreScan scan)
            {
                if (!scan.SettingsNeedRepair)
                {
                    return;
                }

                string path = Path.Combine(_root, StorePaths.MetaFileName);
                var settings = scan.Settings;
                bool usable = settings != null && settings.MaxEventBytes >= 1024 && settings.MaxDepth >= 1 && settings.MaxDepth <= 1000 && settings.SegmentMaxBytes >= settings.MaxEventBytes;
                if (!usable)
                {
                    settings = new StoreSettings();
                }

                string? q = File.Exists(path) ? CopyToQuarantine(path, ".damaged") : null;
                AtomicFile.Write(_io, path, FileEventStore.EncodeSettings(settings!));
                long length = q != null ? new FileInfo(q).Length : 0;
                _actions.Add(new RepairAction("SettingsRebuilt", path,
                    (q != null ? $"The damaged settings file was copied to '{q}' and rewritten" : "The missing settings file was written")
                    + (usable ? $" with the values it held (segmentMaxBytes {settings!.SegmentMaxBytes}, maxEventBytes {settings.MaxEventBytes}, maxDepth {settings.MaxDepth}); check them." : " with the default settings (its own values were unreadable); check them."),
                    q != null ? 0 : (long?)null, q != null ? length : (long?)null, q));
            }

            public void QuarantineStrays(StoreScan scan)
            {
                QuarantineLeftoverDirectories();
                var strays = new List<string>(scan.StrayFiles);
                foreach (string f in Directory.EnumerateFiles(_root))
                {
                    if (StoreVerifier.IsTempName(Path.GetFileName(f)))
                    {
                        strays.Add(f);
                    }
                }

                string consumers = Path.Combine(_root, StorePaths.ConsumersDirName);
                foreach (string f in strays)
                {
                    if (!File.Exists(f))
                    {
                        continue;
                    }

                    // Consumer positions are written under their own lock, not the writers' lock this repair holds:
                    // a temporary file there younger than a minute may be a commit in flight, not a leftover.
                    if (string.Equals(Path.GetDirectoryName(f), consumers, StringComparison.Ordinal) && StoreVerifier.IsTempName(Path.GetFileName(f))
                        && DateTime.UtcNow - File.GetLastWriteTimeUtc(f) < TimeSpan.FromMinutes(1))
                    {
                        continue;
                    }

                    long length = new FileInfo(f).Length;
                    string q = MoveToQuarantine(f, ".stray");
                    _actions.Add(new RepairAction("FileQuarantined", f, $"'{Path.GetFileName(f)}' does not belong where it was (a leftover temporary or foreign file); moved to '{q}'.", 0, length, q));
                }
            }

            /// <summary>Gives misnamed segments their proper names. True when anything was renamed.</summary>
            public bool RenameSegments(StoreScan scan)
            {
                bool any = false;
                var moves = new List<(string From, long First)>(scan.Misplaced);
                foreach (var s in scan.Segments)
                {
                    if (s.NeedsRename && s.HeaderFirstSeq > 0)
                    {
                        moves.Add((s.Path, s.HeaderFirstSeq));
                    }
                }

                foreach (var (from, firstSeq) in moves)
                {
                    string to = Path.Combine(SegmentsDir, SegmentNames.For(firstSeq));
                    long length = new FileInfo(from).Length;
                    if (!File.Exists(to))
                    {
                        _io.Move(from, to);
                        _io.SyncDirectory(SegmentsDir); // the rename is durable before records are trusted under the new name
                        _actions.Add(new RepairAction("SegmentRenamed", from, $"Renamed to {Path.GetFileName(to)}, the name its header gives (seq {firstSeq}).", null, null, null));
                    }
                    else
                    {
                        string q = MoveToQuarantine(from, ".conflict");
                        _actions.Add(new RepairAction("SegmentQuarantined", from,
                            $"Its header says it starts at seq {firstSeq}, but {Path.GetFileName(to)} already exists; moved to '{q}' for a person to compare.", 0, length, q));
                    }

                    any = true;
                }

                return any;
            }

            public void RepairSegments(StoreScan scan, CancellationToken cancellationToken)
            {
                if (!Directory.Exists(SegmentsDir))
                {
                    _io.CreateDirectory(SegmentsDir);
                }

                var segments = scan.Segments;
                long expected = 1;
                for (int i = 0; i < segments.Count; i++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var s = segments[i];
                    long nextFirst = i + 1 < segments.Count ? segments[i + 1].EffectiveFirstSeq : long.MaxValue;
                    if (s.EffectiveFirstSeq > expected)
                    {
                        // A whole range with no segment: a placeholder segment keeps the log contiguous.
                        WritePlaceholderSegment(expected, s.EffectiveFirstSeq - 1, NextTimestamp(s));
                        expected = s.EffectiveFirstSeq;
                    }

                    bool tornOnly = s.IsLast && s.BadRegions.Count == 1 && s.BadRegions[0].IsTornTail && s.Gaps.Count == 0 && s.HeaderFirstSeq == s.EffectiveFirstSeq && s.EffectiveFirstSeq == expected;
                    bool clean = s.BadRegions.Count == 0 && s.Gaps.Count == 0 && s.HeaderFirstSeq > 0 && s.EffectiveFirstSeq == expected;
                    if (clean)
                    {
                        _lastTimestamp = SegmentTail.Scan(s.Path).LastTimestamp ?? _lastTimestamp;
                        expected = s.ExpectedNext;
                        continue;
                    }

                    if (tornOnly)
                    {
                        CutTail(s, s.BadRegions[0]);
                        _lastTimestamp = SegmentTail.Scan(s.Path).LastTimestamp ?? _lastTimestamp;
                        expected = s.ExpectedNext;
                        continue;
                    }

                    // A sealed segment must reach the next one's first seq; the newest one must keep the seqs of damaged
                    // complete records at its end (placeholders), so they are never handed to new events.
                    long end = s.IsLast ? s.TrailingLostEnd : nextFirst - 1;
                    expected = RebuildSegment(s, expected, end, cancellationToken);
                }

                if (SegmentNames.List(SegmentsDir).Count == 0)
                {
                    // Every segment is gone or was unusable: start an empty log after the last known seq so the store works again.
                    long startAt = Math.Max(1, expected);
                    string path = CreateSegmentFile(startAt, Array.Empty<byte>());
                    _actions.Add(new RepairAction("LogRestarted", path,
                        $"The store had no usable segment; started an empty one at seq {startAt}. Earlier events can only come back from a backup (Restore-BmadStore)."));
                }
            }

            private DateTimeOffset? NextTimestamp(SegmentScan s)
            {
                foreach (var line in SegmentReader.ReadLines(s.Path, s.RecordsStart, s.Length))
                {
                    if (line.Terminated && RecordCheck.ValidSeq(line.Span) > 0)
                    {
                        return RecordCodec.DecodeEvent(line.Span)?.Timestamp;
                    }
                }

                return null;
            }

            private void CutTail(SegmentScan s, BadRegion region)
            {
                // The store's tail mechanism, for when Open could not run it: bytes to quarantine (fsynced), then truncate (fsynced).
                string q = QuarantineName(s.Path, $"-at-{region.Offset}.torn");
                byte[] torn = new byte[region.Length];
                using (var read = new FileStream(s.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1))
                {
                    read.Position = region.Offset;
                    int done = 0;
                    while (done < torn.Length)
                    {
                        int n = read.Read(torn, done, torn.Length - done);
                        if (n == 0)
                        {
                            break;
                        }

                        done += n;
                    }
                }

                using (var qs = _io.OpenForWrite(q, createNew: true))
                {
                    qs.Write(torn, 0, torn.Length);
                    _io.Sync(qs); // the cut bytes are durable before the segment loses them
                }

                _io.SyncDirectory(QuarantineDir);
                using (var seg = _io.OpenForWrite(s.Path, createNew: false))
                {
                    _io.SetLength(seg, region.Offset);
                    _io.Sync(seg); // the cut is durable before anything is appended after it
                }

                _actions.Add(new RepairAction("TornTailCut", s.Path, $"Cut a torn tail of {region.Length} bytes at offset {region.Offset}; the bytes are in '{q}'.", region.Offset, region.Length, q));
            }

            /// <summary>
            /// Rewrites a segment from its valid records in seq order, with placeholders for seqs it should hold
            /// but does not; the original is copied to quarantine first. Returns the seq expected after it.
            /// </summary>
            private long RebuildSegment(SegmentScan s, long expected, long end, CancellationToken cancellationToken)
            {
                long firstSeq = expected;
                string quarantine;
                string name = Path.GetFileName(s.Path);
                long validCopied = 0;
                var pendingLost = new List<LostRange>();

                // The original, whole, in quarantine first: every byte the rebuild leaves out stays at its offset there.
                quarantine = CopyToQuarantine(s.Path, ".damaged");
                string tempPath = Path.Combine(SegmentsDir, "." + SegmentNames.For(firstSeq) + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp");
                long written = 0;
                using (var temp = _io.OpenForWrite(tempPath, createNew: true))
                {
                    byte[] header = SegmentHeader.Encode(firstSeq, DateTimeOffset.UtcNow);
                    temp.Write(header, 0, header.Length);
                    foreach (var line in SegmentReader.ReadLines(s.Path, s.RecordsStart, s.Length))
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        long seq = line.Terminated ? RecordCheck.ValidSeq(line.Span) : -1;
                        if (seq < expected || (end > 0 && seq > end))
                        {
                            continue; // damaged, duplicated or out of range: only in the quarantine copy
                        }

                        var record = RecordCodec.DecodeEvent(line.Span);
                        if (seq > expected)
                        {
                            written += WritePlaceholders(temp, expected, seq - 1, _lastTimestamp ?? record?.Timestamp, name, quarantine, pendingLost);
                        }

                        temp.Write(line.Buffer, line.Start, line.Length);
                        temp.WriteByte((byte)'\n');
                        validCopied++;
                        _lastTimestamp = record?.Timestamp ?? _lastTimestamp;
                        expected = seq + 1;
                    }

                    if (end > 0 && expected <= end)
                    {
                        written += WritePlaceholders(temp, expected, end, _lastTimestamp, name, quarantine, pendingLost);
                        expected = end + 1;
                    }

                    _io.Sync(temp); // the rebuilt segment is durable before it replaces the damaged one
                }

                string target = Path.Combine(SegmentsDir, SegmentNames.For(firstSeq));
                if (validCopied == 0 && written == 0)
                {
                    // Nothing to keep (a last segment with no valid record): the original is already in quarantine.
                    File.Delete(tempPath);
                    File.Delete(s.Path); // its exact bytes are durable in quarantine (CopyToQuarantine fsynced them)
                    _io.SyncDirectory(SegmentsDir);
                    _actions.Add(new RepairAction("SegmentQuarantined", s.Path, $"{name} held no valid record; it was moved to '{quarantine}'.", 0, s.Length, quarantine));
                    return expected;
                }

                _io.Move(tempPath, target);
                if (!string.Equals(target, s.Path, StringComparison.Ordinal) && File.Exists(s.Path))
                {
                    File.Delete(s.Path); // its exact bytes are durable in quarantine (CopyToQuarantine fsynced them)
                }

                _io.SyncDirectory(SegmentsDir); // the replacement is durable

                foreach (var region in s.BadRegions)
                {
                    _actions.Add(new RepairAction("RegionQuarantined", s.Path,
                        $"{region.Length} bytes at offset {region.Offset} of {name} were not valid records; they are at the same offset in '{quarantine}'.", region.Offset, region.Length, quarantine));
                }

                if (s.HeaderFirstSeq <= 0 && s.RecordsStart > 0)
                {
                    _actions.Add(new RepairAction("RegionQuarantined", s.Path, $"The damaged header of {name} ({s.RecordsStart} bytes) was replaced; the old bytes are at offset 0 of '{quarantine}'.", 0, s.RecordsStart, quarantine));
                }

                _lost.AddRange(pendingLost);
                _actions.Add(new RepairAction("SegmentRebuilt", target,
                    $"Rebuilt {Path.GetFileName(target)} from {validCopied} valid record(s){(written > 0 ? $" and {written} bmadguard.lost placeholder(s)" : "")}; the original is in '{quarantine}'.", null, null, null));
                return expected;
            }

            private void WritePlaceholderSegment(long first, long last, DateTimeOffset? nextTimestamp)
            {
                var pending = new List<LostRange>();
                var body = new MemoryStream();
                long written = WritePlaceholders(body, first, last, _lastTimestamp ?? nextTimestamp, SegmentNames.For(first), null, pending);
                if (written == 0)
                {
                    return;
                }

                string path = CreateSegmentFile(first, body.ToArray());
                _lost.AddRange(pending);
                _actions.Add(new RepairAction("PlaceholdersWritten", path,
                    $"No segment held seqs {first}..{last} (a deleted segment?); wrote {written} bmadguard.lost placeholder(s) so the log is contiguous again. Only a backup can bring the events back."));
            }

            /// <summary>Creates a segment whole: temp, fsync, rename, fsync directory (as the store does).</summary>
            private string CreateSegmentFile(long firstSeq, byte[] records)
            {
                string path = Path.Combine(SegmentsDir, SegmentNames.For(firstSeq));
                string temp = Path.Combine(SegmentsDir, "." + SegmentNames.For(firstSeq) + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp");
                using (var s = _io.OpenForWrite(temp, createNew: true))
                {
                    byte[] header = SegmentHeader.Encode(firstSeq, DateTimeOffset.UtcNow);
                    s.Write(header, 0, header.Length);
                    s.Write(records, 0, records.Length);
                    _io.Sync(s); // durable before the name exists: a segment is never seen half-written
                }

                _io.Move(temp, path);
                _io.SyncDirectory(SegmentsDir); // the new name survives a crash
                return path;
            }

            /// <summary>Writes bmadguard.lost records for seqs first..last; returns how many (0 beyond the placeholder cap).</summary>
            private long WritePlaceholders(Stream target, long first, long last, DateTimeOffset? timestamp, string segment, string? quarantine, List<LostRange> lost)
            {
                long count = last - first + 1;
                if (count <= 0)
                {
                    return 0;
                }

                string reason = quarantine != null ? "damaged" : "missing";
                lost.Add(new LostRange(first, last, quarantine != null ? $"the records were damaged in {segment}" : $"no segment held them ({segment} was missing)", quarantine));
                if (_placeholders + count > _options.MaxPlaceholders)
                {
                    throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                        $"Seqs {first}..{last} are lost: more than {_options.MaxPlaceholders} placeholders would be needed. Restore the store from a backup (Restore-BmadStore).", Path.Combine(SegmentsDir, segment));
                }

                _placeholders += count;
                var ts = (timestamp ?? new DateTimeOffset(1970, 1, 1, 0, 0, 0, TimeSpan.Zero)).ToUniversalTime().ToString("o", CultureInfo.InvariantCulture);
                var data = new MemoryStream();
                using (var w = new Utf8JsonWriter(data))
                {
                    w.WriteStartObject();
                    w.WriteString("reason", reason);
                    w.WriteString("segment", segment);
                    if (quarantine != null)
                    {
                        w.WriteString("quarantine", quarantine);
                    }

                    w.WriteNumber("firstLostSeq", first);
                    w.WriteNumber("lastLostSeq", last);
                    w.WriteEndObject();
                }

                WritePlaceholderRecords(target, first, last, LostEventType, "lost-", data.ToArray(), ts);
                return count;
            }

            public void RepairConsumers(StoreScan scan)
            {
                foreach (string file in scan.DamagedConsumers)
                {
                    if (!File.Exists(file))
                    {
                        continue;
                    }

                    long length = new FileInfo(file).Length;
                    string q = MoveToQuarantine(file, ".damaged");
                    string consumer = Path.GetFileNameWithoutExtension(file);
                    _actions.Add(new RepairAction("ConsumerReset", file,
                        $"Consumer '{consumer}''s position file was damaged; moved to '{q}'. The consumer reads from the start next time (events may be delivered again; none are skipped). Set its position by hand if you know it.", 0, length, q));
                }
            }
        }
    }
}
