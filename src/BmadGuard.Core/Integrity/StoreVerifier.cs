using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Integrity
{
    /// <summary>How a store verify runs.</summary>
    public sealed class StoreVerifyOptions
    {
        public IProgress<IntegrityProgress>? Progress { get; set; }

        /// <summary>Extra checks run after the built-in ones (backup manifests…).</summary>
        public IList<IIntegrityCheck> Checks { get; } = new List<IIntegrityCheck>();

        /// <summary>Also run the process-wide <see cref="IntegrityChecks.Registered"/> checks (default true).</summary>
        public bool IncludeRegisteredChecks { get; set; } = true;

        /// <summary>
        /// How long the check may wait for the writers' lock to confirm a suspected torn tail (default 1 s;
        /// <see cref="TimeSpan.Zero"/>: never take the lock). The lock is held only for a second look at the tail.
        /// </summary>
        public TimeSpan ConfirmLockTimeout { get; set; } = TimeSpan.FromSeconds(1);
    }

    /// <summary>An inclusive range of seqs.</summary>
    public readonly struct SeqRange
    {
        public SeqRange(long first, long last)
        {
            First = first;
            Last = last;
        }

        public long First { get; }
        public long Last { get; }
        public long Count => Last - First + 1;

        public override string ToString() => First == Last ? First.ToString(CultureInfo.InvariantCulture) : $"{First}..{Last}";

        /// <summary>
        /// Ranges as a person reads them: sorted, overlapping and adjacent ones merged, with the noun agreeing
        /// ("seq 7", "seqs 1..40", "seqs 1..40 and 45"), never "seqs 10, 1..40".
        /// </summary>
        public static string Describe(System.Collections.Generic.IEnumerable<SeqRange>? ranges)
        {
            var merged = new System.Collections.Generic.List<SeqRange>();
            foreach (var r in System.Linq.Enumerable.OrderBy(ranges ?? System.Array.Empty<SeqRange>(), x => x.First))
            {
                if (merged.Count > 0 && r.First <= merged[merged.Count - 1].Last + 1)
                {
                    var last = merged[merged.Count - 1];
                    merged[merged.Count - 1] = new SeqRange(last.First, System.Math.Max(last.Last, r.Last));
                }
                else
                {
                    merged.Add(r);
                }
            }

            if (merged.Count == 0)
            {
                return "no seqs";
            }

            string noun = merged.Count == 1 && merged[0].First == merged[0].Last ? "seq " : "seqs ";
            var parts = System.Linq.Enumerable.ToList(System.Linq.Enumerable.Select(merged, m => m.ToString()));
            return noun + (parts.Count == 1 ? parts[0] : string.Join(", ", System.Linq.Enumerable.Take(parts, parts.Count - 1)) + " and " + parts[parts.Count - 1]);
        }
    }

    /// <summary>
    /// Test-BmadIntegrity for a store: reads every byte of every segment once, forward, in 1 MiB blocks
    /// (memory does not grow with the store), and checks every record's checksum and shape, the headers,
    /// segment names against headers, seq continuity across segments, the settings and consumer files,
    /// and reports quarantined bytes, torn tails and leftover temporary files. It reads a live store: what a writer or
    /// reader may be changing as it passes (the newest segment's tail, a roll-over's temporary segment, a consumer's
    /// temporary file, a consumer past the end seen) gets a second look, holding the matching lock for at most
    /// <see cref="StoreVerifyOptions.ConfirmLockTimeout"/>, before it is reported.
    /// </summary>
    public static class StoreVerifier
    {
        public static IntegrityReport Verify(string storeRoot, StoreVerifyOptions? options = null, CancellationToken cancellationToken = default)
        {
            options ??= new StoreVerifyOptions();
            string root = Path.GetFullPath(storeRoot);
            var report = new IntegrityReportBuilder(root, "store");
            Scan(root, report, options.Progress, cancellationToken, options.ConfirmLockTimeout);

            var checks = new List<IIntegrityCheck>(options.Checks);
            if (options.IncludeRegisteredChecks)
            {
                checks.AddRange(IntegrityChecks.Registered);
            }

            foreach (var check in checks)
            {
                cancellationToken.ThrowIfCancellationRequested();
                options.Progress?.Report(new IntegrityProgress("Checking " + check.Name, null, 0, 0));
                try
                {
                    check.Check(root, report, options.Progress, cancellationToken);
                }
                catch (Exception ex) when (!(ex is OperationCanceledException))
                {
                    report.Error(FindingCodes.CheckFailed, root, $"The '{check.Name}' check could not run: {ex.Message}");
                }
            }

            return report.Build();
        }

        /// <summary>Throws StoreNotFound unless <paramref name="root"/> looks like a store (settings file or segments folder).</summary>
        internal static void EnsureStore(string root)
        {
            if (File.Exists(root))
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    $"'{root}' is a file, not a store directory. To check a JSON file, use --file (Test-BmadIntegrity -Path).", root);
            }

            if (!StorePaths.IsStore(root) && !Directory.Exists(Path.Combine(root, StorePaths.SegmentsDirName)))
            {
                throw new BmadGuardException(ErrorCodes.StoreNotFound, FailureKind.StoreProblem,
                    Directory.Exists(root)
                        ? $"'{root}' is not a BmadGuard store (no {StorePaths.MetaFileName} and no {StorePaths.SegmentsDirName}/ folder)."
                        : $"No BmadGuard store at '{root}'.", root);
            }
        }

        /// <summary>The built-in checks; returns the segment model the repair works from.</summary>
        /// <param name="confirmLockTimeout">
        /// Zero when the caller holds the writers' lock already (repair), or must not take it; otherwise how long to wait
        /// for it to confirm a suspected torn tail.
        /// </param>
        internal static StoreScan Scan(string root, IntegrityReportBuilder report, IProgress<IntegrityProgress>? progress, CancellationToken cancellationToken, TimeSpan confirmLockTimeout = default)
        {
            EnsureStore(root);
            var scan = new StoreScan(root);
            CheckSettings(root, report, scan);
            CheckTopLevel(root, report, confirmLockTimeout);
            ScanSegments(root, report, scan, progress, confirmLockTimeout, cancellationToken);
            CheckConsumers(root, report, scan, confirmLockTimeout, cancellationToken);
            CheckQuarantine(root, report);
            CheckSetAside(root, report, cancellationToken);
            report.LastValidSeq = scan.LastContiguousSeq;
            return scan;
        }

        // ------------------------------------------------------------------ settings

        private static void CheckSettings(string root, IntegrityReportBuilder report, StoreScan scan)
        {
            string path = Path.Combine(root, StorePaths.MetaFileName);
            if (!File.Exists(path))
            {
                report.Error(FindingCodes.SettingsMissing, path,
                    $"The settings file is missing. Repair-BmadStore ('bmadguard repair --store {root}') writes one with the default settings.");
                scan.SettingsNeedRepair = true;
                return;
            }

            report.Files++;
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(path);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                report.Error(FindingCodes.UnreadableFile, path, $"Cannot read the settings file: {ex.Message}");
                return;
            }

            report.Bytes += bytes.Length;
            string? problem = null;
            long? at = null;
            try
            {
                using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowDuplicateProperties = false });
                var r = doc.RootElement;
                string format = r.GetProperty("format").GetString() ?? "";
                string created = r.GetProperty("created").GetString() ?? "";
                var segMax = r.GetProperty("segmentMaxBytes");
                var maxEvent = r.GetProperty("maxEventBytes");
                var maxDepth = r.GetProperty("maxDepth");
                scan.Settings = new StoreSettings { SegmentMaxBytes = segMax.GetInt64(), MaxEventBytes = maxEvent.GetInt32(), MaxDepth = maxDepth.GetInt32() };
                if (format != "bmadguard-store/1")
                {
                    problem = $"its format is '{format}', not bmadguard-store/1";
                }
                else if (scan.Settings.MaxEventBytes < 1024 || scan.Settings.MaxDepth < 1 || scan.Settings.MaxDepth > 1000 || scan.Settings.SegmentMaxBytes < scan.Settings.MaxEventBytes)
                {
                    problem = "its limits are out of range";
                }
                else if (!DateTimeOffset.TryParseExact(created, "o", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
                {
                    problem = $"its creation time '{created}' is not a valid ISO 8601 time";
                }
                else if (UnknownProperty(r, SettingsProperties) is string unknown)
                {
                    problem = $"it has an unknown property \"{unknown}\" (a damaged name?)";
                }
                else if (r.TryGetProperty(MetadataChecksum.PropertyName, out var sum))
                {
                    string expected = MetadataChecksum.Settings(format, created, segMax.GetRawText(), maxEvent.GetRawText(), maxDepth.GetRawText());
                    if (sum.ValueKind != JsonValueKind.String || sum.GetString() != expected)
                    {
                        problem = "its checksum does not match its values (a value was changed or damaged)";
                    }
                    else if (!Canonical(r.GetProperty("format")) || !Canonical(r.GetProperty("created")) || !Canonical(sum))
                    {
                        problem = "a value is not written the way BmadGuard writes it (a byte of an escape sequence was changed)";
                    }
                }
                else
                {
                    report.Info(FindingCodes.SettingsUnchecked, path, "The settings file has no checksum (written by an older BmadGuard); its values were checked for range only.");
                }
            }
            catch (JsonException ex)
            {
                problem = "it is not valid JSON: " + ex.Message;
                at = TextPosition.ToOffset(bytes, ex.LineNumber ?? 0, ex.BytePositionInLine ?? 0);
            }
            catch (Exception ex) when (ex is KeyNotFoundException || ex is InvalidOperationException || ex is FormatException)
            {
                problem = "a setting is missing or has the wrong type (" + ex.Message + ")";
            }

            if (problem != null)
            {
                scan.SettingsNeedRepair = true;
                report.Error(FindingCodes.SettingsDamaged, path,
                    $"The store's settings file is damaged: {problem}. Repair-BmadStore moves it to quarantine and writes a checked one (verify the limits afterwards), or restore it from a backup.", at);
            }
        }

        private static readonly string[] SettingsProperties = { "format", "created", "segmentMaxBytes", "maxEventBytes", "maxDepth", MetadataChecksum.PropertyName };
        // "rewoundFrom": written (without a checksum) by restores before seqs were never reused, which moved consumers back.
        // Such a file is a position like any other (its seq is what the consumer reads after), not damage.
        private static readonly string[] ConsumerProperties = { "consumer", "seq", "updated", MetadataChecksum.PropertyName, "rewoundFrom" };

        private static string? UnknownProperty(JsonElement obj, string[] known)
        {
            foreach (var p in obj.EnumerateObject())
            {
                if (Array.IndexOf(known, p.Name) < 0)
                {
                    return p.Name;
                }
            }

            return null;
        }

        /// <summary>
        /// True when a string is written exactly as Utf8JsonWriter's default encoder writes it. The checksum covers
        /// decoded values, so this catches the one change it cannot see: an escape whose hex digit changed case
        /// (<c>\u002B</c> → <c>\u002b</c>), which decodes to the same text.
        /// </summary>
        // The store writes these files with EventSerializer.WriterOptions (relaxed escaping: '+' in "+00:00" stays as
        // is); the default encoder's form (\u002B) is accepted too. Any other spelling of the same value is a changed byte.
        private static bool Canonical(JsonElement value)
            => value.ValueKind == JsonValueKind.String
               && (value.GetRawText() == "\"" + JsonEncodedText.Encode(value.GetString()!, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping).ToString() + "\""
                   || value.GetRawText() == "\"" + JsonEncodedText.Encode(value.GetString()!).ToString() + "\"");

        private static void CheckTopLevel(string root, IntegrityReportBuilder report, TimeSpan confirmLockTimeout)
        {
            foreach (string dir in Directory.EnumerateDirectories(root))
            {
                // ".segments.restore-<time>.tmp": a restore killed before its swap (its unfinished copy of a backup) or
                // between the swap and moving the replaced segments to quarantine (the old set). A restore in progress
                // holds the writers' lock the whole time: only report what is there while the lock is free.
                string name = Path.GetFileName(dir);
                if (IsTempName(name) && name.StartsWith(".segments.restore-", StringComparison.Ordinal) && (confirmLockTimeout == TimeSpan.Zero || WritersLockFree(root)))
                {
                    report.Warning(FindingCodes.TempFileLeftOver, dir,
                        $"'{name}' is a segment set left by an interrupted restore (the backup's copy, or the replaced segments); it is not part of the log. Repair-BmadStore moves it to quarantine.");
                }
            }


            foreach (string file in Directory.EnumerateFiles(root))
            {
                string name = Path.GetFileName(file);
                if (IsTempName(name) && !IsFeatureFileBeingWritten(file, name))
                {
                    report.Warning(FindingCodes.TempFileLeftOver, file,
                        $"A temporary file left by an interrupted write ({Length(file)} bytes). It is not part of the store; Repair-BmadStore moves it to quarantine.");
                }
            }
        }

        /// <summary>
        /// Files the other features keep next to the store (the monitor's heartbeat and metrics, the remembered backup
        /// destinations) are replaced atomically through <c>.&lt;name&gt;.&lt;id&gt;.tmp</c> every few seconds while a
        /// monitor runs. Such a temporary file younger than a minute is a write in progress, not something left over.
        /// (Everything else the features create, such as backups/, outbox/, monitor/, audit.jsonl, monitor.lock and
        /// import locks, is never looked at by the store verify: only temporary files at the top level are.)
        /// </summary>
        private static readonly string[] FeatureFiles =
        {
            "monitor.json", "metrics.prom", "metrics.json", "backup-destinations.json", "bmadguard.monitor.json", "audit.jsonl",
        };

        private static bool IsFeatureFileBeingWritten(string path, string name)
        {
            foreach (string f in FeatureFiles)
            {
                if (name.StartsWith("." + f + ".", StringComparison.Ordinal))
                {
                    try
                    {
                        return DateTime.UtcNow - File.GetLastWriteTimeUtc(path) < TimeSpan.FromMinutes(1);
                    }
                    catch (IOException)
                    {
                        return true; // gone already: it was renamed into place
                    }
                }
            }

            return false;
        }

        internal static bool IsTempName(string name) => name.StartsWith(".", StringComparison.Ordinal) && name.EndsWith(".tmp", StringComparison.Ordinal);

        private static long Length(string path)
        {
            try
            {
                return new FileInfo(path).Length;
            }
            catch (IOException)
            {
                return 0;
            }
        }

        // ------------------------------------------------------------------ segments

        private static void ScanSegments(string root, IntegrityReportBuilder report, StoreScan scan, IProgress<IntegrityProgress>? progress, TimeSpan confirmLockTimeout, CancellationToken cancellationToken)
        {
            string dir = Path.Combine(root, StorePaths.SegmentsDirName);
            if (!Directory.Exists(dir))
            {
                report.Error(FindingCodes.SegmentsMissing, dir, "The segments folder is missing: the store holds no events. Restore from a backup (Restore-BmadStore); Repair-BmadStore can only start an empty log.");
                scan.LogMissing = true;
                return;
            }

            var segments = new List<SegmentScan>();
            foreach (string file in Directory.EnumerateFiles(dir))
            {
                string name = Path.GetFileName(file);
                if (SegmentNames.TryParse(name, out long nameFirst))
                {
                    segments.Add(new SegmentScan(file, nameFirst));
                }
                else if (IsTempName(name))
                {
                    if (RollOverInFlight(root, file, confirmLockTimeout, cancellationToken))
                    {
                        continue; // a writer was creating the next segment while we listed the folder
                    }

                    report.Warning(FindingCodes.TempFileLeftOver, file,
                        $"A temporary segment left by an interrupted roll-over ({Length(file)} bytes). It holds no acknowledged events; Repair-BmadStore moves it to quarantine.");
                    scan.StrayFiles.Add(file);
                }
                else
                {
                    long headerFirst = TryReadHeader(file, out _);
                    if (headerFirst > 0)
                    {
                        report.Error(FindingCodes.SegmentMisplaced, file,
                            $"'{name}' is a segment starting at seq {headerFirst} under the wrong name (renamed?): the store does not read it. Repair-BmadStore renames it to {SegmentNames.For(headerFirst)} when that name is free.");
                        scan.Misplaced.Add((file, headerFirst));
                    }
                    else
                    {
                        report.Warning(FindingCodes.UnknownFile, file, $"'{name}' is not a segment and does not belong in the segments folder; Repair-BmadStore moves it to quarantine.");
                        scan.StrayFiles.Add(file);
                    }
                }
            }

            long total = 0;
            foreach (var s in segments)
            {
                s.Length = Length(s.Path);
                total += s.Length;
                s.HeaderFirstSeq = TryReadHeader(s.Path, out long recordsStart);
                s.RecordsStart = s.HeaderFirstSeq > 0 ? recordsStart : FirstLineEnd(s.Path);
            }

            // Order by the seq each segment says it starts at (its header when readable, else its name).
            segments.Sort((a, b) => a.EffectiveFirstSeq != b.EffectiveFirstSeq ? a.EffectiveFirstSeq.CompareTo(b.EffectiveFirstSeq) : string.CompareOrdinal(a.Path, b.Path));
            scan.Segments.AddRange(segments);
            if (segments.Count == 0)
            {
                report.Error(FindingCodes.SegmentsMissing, Path.Combine(dir, SegmentNames.For(1)),
                    "The store has no segments: every event is gone from the log. Restore from a backup (Restore-BmadStore).");
                scan.LogMissing = true;
                return;
            }

            long done = 0;
            long expected = 1;
            bool contiguous = true;
            for (int i = 0; i < segments.Count; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var s = segments[i];
                s.IsLast = i == segments.Count - 1;
                report.Files++;
                string name = Path.GetFileName(s.Path);
                if (s.HeaderFirstSeq <= 0)
                {
                    report.Error(FindingCodes.SegmentHeaderDamaged, s.Path,
                        $"The header line of {name} is damaged or missing; its records are checked on the assumption (from its name) that it starts at seq {s.NameFirstSeq}. Repair-BmadStore rewrites the header.", 0, s.RecordsStart);
                    s.NeedsRebuild = true;
                }
                else if (s.HeaderFirstSeq != s.NameFirstSeq)
                {
                    report.Error(FindingCodes.SegmentNameMismatch, s.Path,
                        $"{name} says in its header that it starts at seq {s.HeaderFirstSeq}, but its name says {s.NameFirstSeq} (renamed?). Repair-BmadStore renames it to {SegmentNames.For(s.HeaderFirstSeq)} when that name is free.", 0);
                    s.NeedsRename = true;
                }

                if (s.EffectiveFirstSeq > expected)
                {
                    var missing = new SeqRange(expected, s.EffectiveFirstSeq - 1);
                    scan.Missing.Add(missing);
                    string expectedFile = Path.Combine(dir, SegmentNames.For(expected));
                    report.Error(FindingCodes.SeqGap, expectedFile,
                        $"Seqs {missing} are missing: no segment holds them ({(i == 0 ? "the log must start at seq 1" : $"{Path.GetFileName(segments[i - 1].Path)} ends at seq {expected - 1}")}, the next segment {name} starts at {s.EffectiveFirstSeq}; "
                        + $"{SegmentNames.For(expected)} was deleted, or the end of the previous segment was cut). Restore from a backup; Repair-BmadStore can only mark them lost.", 0);
                    contiguous = false;
                    expected = s.EffectiveFirstSeq;
                }
                else if (s.EffectiveFirstSeq < expected)
                {
                    report.Error(FindingCodes.SeqOutOfOrder, s.Path,
                        $"{name} starts at seq {s.EffectiveFirstSeq}, but the previous segment already holds seqs up to {expected - 1}: two segments overlap (a copied or renamed segment?). Repair-BmadStore moves the overlapping records to quarantine.", 0);
                }

                s.ExpectedFirst = expected;
                expected = ScanRecords(root, s, expected, report, progress, ref done, total, confirmLockTimeout, cancellationToken, ref contiguous);
                if (contiguous)
                {
                    scan.LastContiguousSeq = expected - 1;
                }

                s.ExpectedNext = expected;
                report.Bytes += s.Length;
            }

            scan.LastSeq = expected - 1;
            progress?.Report(new IntegrityProgress("Verified segments", null, total, total));
        }

        /// <summary>Checks one segment's records; returns the seq expected after it.</summary>
        /// <summary>
        /// A temporary segment is created, fsynced and renamed by a writer holding the writers' lock: if it is gone once
        /// the lock is free (or at once), it was a roll-over in flight, not a leftover.
        /// </summary>
        private static bool RollOverInFlight(string root, string tempSegment, TimeSpan confirmLockTimeout, CancellationToken cancellationToken)
        {
            if (confirmLockTimeout <= TimeSpan.Zero)
            {
                return false;
            }

            if (!File.Exists(tempSegment))
            {
                return true;
            }

            using (var held = TryLock(Path.Combine(root, StorePaths.LockFileName), confirmLockTimeout, cancellationToken))
            {
                return held != null && !File.Exists(tempSegment);
            }
        }

        /// <summary>
        /// A consumer's position is written to a temporary file and renamed holding <c>consumers/&lt;name&gt;.lock</c>:
        /// if the temporary file is gone once that lock is free (or at once), it was a commit in flight.
        /// </summary>
        private static bool ConsumerCommitInFlight(string consumersDir, string tempFile, string name, TimeSpan confirmLockTimeout, CancellationToken cancellationToken)
        {
            if (confirmLockTimeout <= TimeSpan.Zero)
            {
                return false;
            }

            if (!File.Exists(tempFile))
            {
                return true;
            }

            // ".<consumer>.json.<8 hex>.tmp"
            int json = name.LastIndexOf(".json.", StringComparison.Ordinal);
            if (json <= 1)
            {
                return false;
            }

            string lockPath = Path.Combine(consumersDir, name.Substring(1, json - 1) + ".lock");
            using (var held = TryLock(lockPath, confirmLockTimeout, cancellationToken))
            {
                return held != null && !File.Exists(tempFile);
            }
        }

        /// <summary>The last seq of the log as it is now (read back from the end of the newest segment); 0 if unknown.</summary>
        private static long CurrentLastSeq(string root)
        {
            try
            {
                var segments = SegmentNames.List(Path.Combine(root, StorePaths.SegmentsDirName));
                return segments.Count == 0 ? 0 : SegmentTail.Scan(segments[segments.Count - 1].Path).LastSeq;
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is BmadGuardException)
            {
                return 0;
            }
        }

        /// <summary>The writers' lock for a second look, or null: no lock file (a copy), a read-only store, or a writer holding it longer than we wait.</summary>
        private static StoreLock? TryLock(string lockPath, TimeSpan timeout, CancellationToken cancellationToken)
        {
            if (timeout <= TimeSpan.Zero || !File.Exists(lockPath))
            {
                return null;
            }

            try
            {
                return StoreLock.Acquire(lockPath, timeout, cancellationToken);
            }
            catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LockTimeout)
            {
                return null;
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                return null;
            }
        }

        /// <summary>Newline-terminated lines between two offsets that fail their checksum but have a whole record's shape.</summary>
        private static int CompleteShapedLines(string path, long from, long to)
        {
            int n = 0;
            foreach (var line in SegmentReader.ReadLines(path, from, to))
            {
                if (line.Terminated && !RecordCodec.ChecksumOk(line.Span) && RecordCodec.HasRecordShape(line.Span))
                {
                    n++;
                }
            }

            return n;
        }

        /// <summary>
        /// Bad bytes at the end of the newest segment: a second look without the lock, then (if they are still bad and
        /// the store has a lock file) one holding the writers' lock, when no append can be in flight. True when the
        /// record there is complete on a second look.
        /// </summary>
        private static bool AppendInFlight(string root, string path, long offset, TimeSpan confirmLockTimeout, CancellationToken cancellationToken, out bool confirmed)
        {
            confirmed = false;
            if (FileEventStore.LookAgain(path, offset) == FileEventStore.SecondLook.NowComplete)
            {
                return true;
            }

            using (var held = TryLock(Path.Combine(root, StorePaths.LockFileName), confirmLockTimeout, cancellationToken))
            {
                if (held == null)
                {
                    return false; // reported as unconfirmed
                }

                confirmed = true;
                return FileEventStore.LookAgain(path, offset) == FileEventStore.SecondLook.NowComplete;
            }
        }

        private static long ScanRecords(string root, SegmentScan s, long expected, IntegrityReportBuilder report, IProgress<IntegrityProgress>? progress, ref long done, long total, TimeSpan confirmLockTimeout, CancellationToken cancellationToken, ref bool contiguous)
        {
            string name = Path.GetFileName(s.Path);
            long regionStart = -1, regionEnd = -1;
            int regionLines = 0;
            long lastProgress = done;
            bool lastLineTerminated = true;
            bool brokenAtEnd = false; // the segment ends in damaged complete records
            long lines = 0;

            void CloseRegion(bool atEnd)
            {
                if (regionStart < 0)
                {
                    return;
                }

                bool confirmed = false;
                if (atEnd && s.IsLast && AppendInFlight(root, s.Path, regionStart, confirmLockTimeout, cancellationToken, out confirmed))
                {
                    // The record is complete on a second look: a writer was appending while we read.
                    report.Info(FindingCodes.AppendInFlight, s.Path,
                        $"A writer was appending to {name} at byte {regionStart} during the check; the records from there on were written after the check read the file and are not part of this report.", regionStart);
                    regionStart = -1;
                    return;
                }

                int complete = atEnd && s.IsLast ? CompleteShapedLines(s.Path, regionStart, regionEnd) : 0;
                var region = new BadRegion(regionStart, regionEnd - regionStart, atEnd && s.IsLast && complete == 0);
                s.BadRegions.Add(region);
                if (complete > 0)
                {
                    var lost = new SeqRange(expected, expected + complete - 1);
                    s.Gaps.Add(lost);
                    s.TrailingLostEnd = lost.Last;
                    brokenAtEnd = true;
                    report.Error(FindingCodes.RecordDamaged, s.Path,
                        $"{complete} complete record(s) at the end of {name} from byte {region.Offset} ({region.Length} bytes) fail their checksum: a byte changed after they were written (a torn write never ends in a complete line), so they held seqs {lost}. "
                        + "Publishing is refused until this is fixed, so those seqs are not reused. Restore from a backup (Restore-BmadStore), or Repair-BmadStore: it moves the bytes to quarantine and marks the seqs lost.", region.Offset, region.Length);
                    s.NeedsRebuild = true;
                    regionStart = -1;
                    regionLines = 0;
                    return;
                }

                if (region.IsTornTail)
                {
                    report.Warning(FindingCodes.TornTail, s.Path,
                        $"The last {region.Length} bytes of {name} (from byte {region.Offset}) are not a complete checksummed record: a writer crashed mid-append, or the last record was damaged"
                        + (confirmed ? " (looked at again holding the writers' lock). " : " (not confirmed under the writers' lock: it may be an append in flight). ")
                        + "The next publish (or Repair-BmadStore) moves them to quarantine and cuts them; any event in them was never acknowledged unless its publisher saw it succeed.", region.Offset, region.Length);
                }
                else if (atEnd && !lastLineTerminated)
                {
                    report.Error(FindingCodes.SegmentIncomplete, s.Path,
                        $"The sealed segment {name} ends in {region.Length} bytes (from byte {region.Offset}) that are not complete records: it was truncated or overwritten. Repair-BmadStore moves them to quarantine; the seqs they held are lost unless a backup has them.", region.Offset, region.Length);
                    s.NeedsRebuild = true;
                }
                else
                {
                    report.Error(FindingCodes.RecordDamaged, s.Path,
                        $"{regionLines} line(s) of {name} from byte {region.Offset} ({region.Length} bytes) fail their checksum or are not records (bit flips, zeros or foreign bytes). Repair-BmadStore moves them to quarantine; the records in them are lost unless a backup has them.", region.Offset, region.Length);
                    s.NeedsRebuild = true;
                }

                regionStart = -1;
                regionLines = 0;
            }

            foreach (var line in SegmentReader.ReadLines(s.Path, s.RecordsStart, s.Length))
            {
                lastLineTerminated = line.Terminated;
                long seq = line.Terminated ? RecordCheck.ValidSeq(line.Span) : -1;
                if (seq > 0 && seq < expected)
                {
                    report.Error(FindingCodes.SeqOutOfOrder, s.Path,
                        $"The record at byte {line.Offset} of {name} has seq {seq}, but seq {expected - 1} came before it (a duplicated or misplaced record). Repair-BmadStore moves it to quarantine.", line.Offset, line.End - line.Offset);
                    seq = -1;
                }

                if (seq < 0)
                {
                    if (regionStart < 0)
                    {
                        regionStart = line.Offset;
                    }

                    regionEnd = line.End;
                    regionLines++;
                }
                else
                {
                    CloseRegion(false);
                    if (seq > expected)
                    {
                        var missing = new SeqRange(expected, seq - 1);
                        s.Gaps.Add(missing);
                        report.Error(FindingCodes.SeqGap, s.Path,
                            $"Seqs {missing} are missing before the record at byte {line.Offset} of {name} (seq {seq}){(s.BadRegions.Count > 0 ? ", most likely inside the damaged bytes before it" : "")}. Restore from a backup; Repair-BmadStore can only mark them lost.", line.Offset);
                        contiguous = false;
                    }

                    if (s.FirstValidSeq < 0)
                    {
                        s.FirstValidSeq = seq;
                    }

                    s.LastValidSeq = seq;
                    s.ValidCount++;
                    report.Records++;
                    expected = seq + 1;
                }

                done += line.End - line.Offset;
                if (progress != null && done - lastProgress >= 16 << 20)
                {
                    lastProgress = done;
                    progress.Report(new IntegrityProgress("Verifying segments", s.Path, done, total));
                }

                if ((++lines & 4095) == 0)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }

            CloseRegion(true);
            if (brokenAtEnd || (s.BadRegions.Count > 0 && !(s.BadRegions.Count == 1 && s.BadRegions[0].IsTornTail)))
            {
                contiguous = false;
            }

            return expected;
        }

        /// <summary>firstSeq from a checked header (and where records start), or -1.</summary>
        internal static long TryReadHeader(string path, out long recordsStart)
        {
            recordsStart = 0;
            try
            {
                foreach (var line in SegmentReader.ReadLines(path, 0, 4096))
                {
                    long first = line.Terminated ? SegmentHeader.ParseFirstSeq(line.Span) : -1;
                    recordsStart = line.End;
                    return first >= 1 ? first : -1;
                }
            }
            catch (IOException)
            {
            }

            return -1;
        }

        /// <summary>Where the first line ends (records start), for a segment whose header is damaged: 0 when the first line is a record.</summary>
        private static long FirstLineEnd(string path)
        {
            foreach (var line in SegmentReader.ReadLines(path, 0))
            {
                if (line.Terminated && RecordCheck.ValidSeq(line.Span) > 0)
                {
                    return 0; // the header is gone entirely; records start at byte 0
                }

                return line.End;
            }

            return 0;
        }

        // ------------------------------------------------------------------ consumers and quarantine

        private static void CheckConsumers(string root, IntegrityReportBuilder report, StoreScan scan, TimeSpan confirmLockTimeout, CancellationToken cancellationToken)
        {
            string dir = Path.Combine(root, StorePaths.ConsumersDirName);
            if (!Directory.Exists(dir))
            {
                return;
            }

            foreach (string file in Directory.EnumerateFiles(dir))
            {
                string name = Path.GetFileName(file);
                if (name.EndsWith(".lock", StringComparison.Ordinal))
                {
                    continue;
                }

                if (IsTempName(name))
                {
                    if (ConsumerCommitInFlight(dir, file, name, confirmLockTimeout, cancellationToken))
                    {
                        continue; // a reader was saving its position while we listed the folder
                    }

                    report.Warning(FindingCodes.TempFileLeftOver, file, $"A temporary consumer file left by an interrupted write ({Length(file)} bytes); Repair-BmadStore moves it to quarantine.");
                    scan.StrayFiles.Add(file);
                    continue;
                }

                if (!name.EndsWith(".json", StringComparison.Ordinal))
                {
                    report.Warning(FindingCodes.UnknownFile, file, $"'{name}' is not a consumer position file; Repair-BmadStore moves it to quarantine.");
                    scan.StrayFiles.Add(file);
                    continue;
                }

                report.Files++;
                string consumer = name.Substring(0, name.Length - 5);
                string? problem = null;
                long? at = null;
                long seqValue = 0;
                byte[] bytes = Array.Empty<byte>();
                try
                {
                    bytes = File.ReadAllBytes(file);
                    report.Bytes += bytes.Length;
                    using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowDuplicateProperties = false });
                    var r = doc.RootElement;
                    string? c = r.GetProperty("consumer").GetString();
                    var seq = r.GetProperty("seq");
                    seqValue = seq.GetInt64();
                    string updated = r.TryGetProperty("updated", out var u) ? u.GetString() ?? "" : "";
                    if (c != consumer)
                    {
                        problem = $"it names consumer '{c}', not '{consumer}'";
                    }
                    else if (seqValue < 0)
                    {
                        problem = $"its seq {seqValue} is negative";
                    }
                    else if (UnknownProperty(r, ConsumerProperties) is string unknown)
                    {
                        problem = $"it has an unknown property \"{unknown}\" (a damaged name?)";
                    }
                    else if (r.TryGetProperty(MetadataChecksum.PropertyName, out var sum))
                    {
                        if (sum.ValueKind != JsonValueKind.String || sum.GetString() != MetadataChecksum.Consumer(consumer, seq.GetRawText(), updated))
                        {
                            problem = "its checksum does not match its values (the position was changed or damaged)";
                        }
                        else if (!Canonical(r.GetProperty("consumer")) || !Canonical(r.GetProperty("updated")) || !Canonical(sum))
                        {
                            problem = "a value is not written the way BmadGuard writes it (a byte of an escape sequence was changed)";
                        }
                    }
                    else
                    {
                        report.Info(FindingCodes.ConsumerUnchecked, file, $"Consumer '{consumer}' has no checksum (written by an older BmadGuard); it is checked again at its next commit.");
                    }
                }
                catch (JsonException ex)
                {
                    problem = "it is not valid JSON: " + ex.Message;
                    at = TextPosition.ToOffset(bytes, ex.LineNumber ?? 0, ex.BytePositionInLine ?? 0);
                }
                catch (Exception ex) when (ex is KeyNotFoundException || ex is InvalidOperationException || ex is FormatException)
                {
                    problem = "a field is missing or has the wrong type (" + ex.Message + ")";
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
                {
                    report.Error(FindingCodes.UnreadableFile, file, $"Cannot read consumer '{consumer}': {ex.Message}");
                    continue;
                }

                if (problem != null)
                {
                    report.Error(FindingCodes.ConsumerDamaged, file,
                        $"The position file of consumer '{consumer}' is damaged: {problem}. Repair-BmadStore moves it to quarantine (the consumer then reads from the start: events may be delivered again, none are skipped).", at);
                    scan.DamagedConsumers.Add(file);
                }
                else if (!scan.LogMissing && seqValue > scan.LastSeq && !(confirmLockTimeout > TimeSpan.Zero && seqValue <= CurrentLastSeq(root)))
                {
                    // (A live reader may have read past the end this check saw: the log grew while it was checked.)
                    report.Error(FindingCodes.ConsumerAheadOfLog, file,
                        $"Consumer '{consumer}' has read up to seq {seqValue}, but the log ends at seq {scan.LastSeq}: the newest events (or the newest segment) are gone. Restore from a backup.");
                }
            }
        }

        private static bool WritersLockFree(string root)
        {
            try
            {
                using (StoreLock.Acquire(Path.Combine(root, StorePaths.LockFileName), TimeSpan.FromMilliseconds(200)))
                {
                    return true;
                }
            }
            catch (BmadGuardException)
            {
                return false;
            }
        }

        /// <summary>Acknowledged events a restore set aside and nobody has put back or dismissed: named until someone does.</summary>
        private static void CheckSetAside(string root, IntegrityReportBuilder report, CancellationToken cancellationToken)
        {
            IReadOnlyList<Backup.SetAsideFile> files;
            try
            {
                files = Backup.SetAsideEvents.List(root, cancellationToken);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                report.Warning(FindingCodes.SetAsideEvents, Path.Combine(root, StorePaths.QuarantineDirName), $"The kept-aside files could not be read: {ex.Message}");
                return;
            }

            foreach (var f in files)
            {
                if (f.Missing > 0)
                {
                    report.Warning(FindingCodes.SetAsideEvents, f.Path,
                        $"{f.Missing} acknowledged event(s) are not in the log: a restore set them aside in '{f.Name}'" + (f.Unreadable ? " (some of its lines cannot be read back)" : "") +
                        ". Put them back (appended with their ids and times) or dismiss the file once they are dealt with.");
                }
                else
                {
                    report.Warning(FindingCodes.QuarantinePresent, f.Path,
                        $"'{f.Name}' holds {f.Events} event(s) a restore set aside; all of them are in the log again. Dismiss the file when done.");
                }
            }
        }

        private static void CheckQuarantine(string root, IntegrityReportBuilder report)
        {
            string dir = Path.Combine(root, StorePaths.QuarantineDirName);
            if (!Directory.Exists(dir))
            {
                return;
            }

            foreach (string file in Directory.EnumerateFiles(dir))
            {
                if (Backup.SetAsideEvents.IsKeptAsideName(Path.GetFileName(file)))
                {
                    continue; // CheckSetAside names it, with what the log is missing
                }

                report.Warning(FindingCodes.QuarantinePresent, file,
                    $"Quarantined bytes ({Length(file)} bytes) cut from the store by a torn-tail cut or a repair: '{Path.GetFileName(file)}'. Look at them, then delete them or archive them; nothing reads them.");
            }
        }
    }

    /// <summary>The cheap but complete per-record check: checksum, then the event's fields up to its data (the checksum covers the rest).</summary>
    internal static class RecordCheck
    {
        /// <summary>The seq of a valid event line (without its newline), or -1.</summary>
        public static long ValidSeq(ReadOnlySpan<byte> line)
        {
            if (!RecordCodec.ChecksumOk(line) || RecordCodec.IsHeader(line))
            {
                return -1;
            }

            try
            {
                var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = 1000 });
                if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                {
                    return -1;
                }

                long seq = -1;
                int seen = 0;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    if (reader.ValueTextEquals("data"))
                    {
                        return seen == 0x3F && reader.Read() && reader.TokenType == JsonTokenType.StartObject ? seq : -1;
                    }

                    int bit = reader.ValueTextEquals("seq") ? 1 : reader.ValueTextEquals("id") ? 2 : reader.ValueTextEquals("timestamp") ? 4
                        : reader.ValueTextEquals("type") ? 8 : reader.ValueTextEquals("source") ? 16 : reader.ValueTextEquals("correlationId") ? 32 : 0;
                    if (!reader.Read())
                    {
                        return -1;
                    }

                    switch (bit)
                    {
                        case 1:
                            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out seq) || seq < 1)
                            {
                                return -1;
                            }

                            break;
                        case 4:
                            if (reader.TokenType != JsonTokenType.String || !reader.TryGetDateTimeOffset(out _))
                            {
                                return -1;
                            }

                            break;
                        case 32:
                            if (reader.TokenType != JsonTokenType.String && reader.TokenType != JsonTokenType.Null)
                            {
                                return -1;
                            }

                            break;
                        case 0:
                            reader.Skip();
                            break;
                        default:
                            if (reader.TokenType != JsonTokenType.String)
                            {
                                return -1;
                            }

                            break;
                    }

                    seen |= bit;
                }

                return -1;
            }
            catch (JsonException)
            {
                return -1;
            }
        }
    }

    /// <summary>Bytes of a segment that are not valid records.</summary>
    internal readonly struct BadRegion
    {
        public BadRegion(long offset, long length, bool isTornTail)
        {
            Offset = offset;
            Length = length;
            IsTornTail = isTornTail;
        }

        public long Offset { get; }
        public long Length { get; }

        /// <summary>At the end of the last segment with no valid record after it: what a crash mid-append leaves.</summary>
        public bool IsTornTail { get; }
    }

    /// <summary>What the verify learned about one segment (the repair works from it).</summary>
    internal sealed class SegmentScan
    {
        public SegmentScan(string path, long nameFirstSeq)
        {
            Path = path;
            NameFirstSeq = nameFirstSeq;
        }

        public string Path { get; }
        public long NameFirstSeq { get; }
        public long HeaderFirstSeq { get; set; } = -1;
        public long EffectiveFirstSeq => HeaderFirstSeq > 0 ? HeaderFirstSeq : NameFirstSeq;
        public long RecordsStart { get; set; }
        public long Length { get; set; }
        public bool IsLast { get; set; }
        public long ExpectedFirst { get; set; }
        public long ExpectedNext { get; set; }
        public long FirstValidSeq { get; set; } = -1;
        public long LastValidSeq { get; set; } = -1;
        public long ValidCount { get; set; }
        public bool NeedsRebuild { get; set; }
        public bool NeedsRename { get; set; }

        public List<BadRegion> BadRegions { get; } = new List<BadRegion>();
        public List<SeqRange> Gaps { get; } = new List<SeqRange>();

        /// <summary>
        /// The last seq held by complete-but-damaged records at the end of the newest segment (-1: none). Their
        /// seqs were used: a repair writes placeholders for them instead of handing them to new events.
        /// </summary>
        public long TrailingLostEnd { get; set; } = -1;
    }

    /// <summary>What the verify learned about the store (the repair works from it).</summary>
    internal sealed class StoreScan
    {
        public StoreScan(string root)
        {
            Root = root;
        }

        public string Root { get; }
        public StoreSettings? Settings { get; set; }
        public bool SettingsNeedRepair { get; set; }
        public bool LogMissing { get; set; }
        public List<SegmentScan> Segments { get; } = new List<SegmentScan>();
        public List<(string Path, long HeaderFirstSeq)> Misplaced { get; } = new List<(string, long)>();
        public List<string> StrayFiles { get; } = new List<string>();
        public List<string> DamagedConsumers { get; } = new List<string>();
        public List<SeqRange> Missing { get; } = new List<SeqRange>();
        public long LastSeq { get; set; }
        public long? LastContiguousSeq { get; set; }
    }
}
