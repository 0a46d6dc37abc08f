using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Events;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Backup
{
    /// <summary>
    /// Restore-BmadStore. Everything is checked before anything changes: the store exists, the request
    /// names one state, the backup's every file matches its manifest. Then, under the writers' lock:
    /// <list type="number">
    /// <item>a safety backup of the current state (bytes as they are, damage included) in <c>&lt;store&gt;/backups</c>;</item>
    /// <item>every current event that the restored state does not hold (newer than the restored point, or
    /// different at the same seq) is written to <c>quarantine/restore-&lt;time&gt;-kept-aside.jsonl</c> and fsynced;</item>
    /// <item>the restored segments are built in <c>.segments.restore-&lt;id&gt;.tmp</c> next to <c>segments</c>, fsynced;</item>
    /// <item>the two directories are exchanged in one atomic step (Linux renameat2 RENAME_EXCHANGE; elsewhere
    /// two renames, with a window where a crash leaves the new set under the temporary name — both sets
    /// survive and the report/notice names them), and the old set is moved whole to
    /// <c>quarantine/restore-&lt;time&gt;-replaced-segments</c>;</item>
    /// <item>the restored log is read back and checked.</item>
    /// </list>
    /// Nothing is deleted: the replaced segments, the kept-aside events and the safety backup all remain.
    /// <para>
    /// Seqs are never reused (docs/store-format.md, "Rollback"): the restored set continues up to the old log's
    /// high-water mark before it is swapped in. Seqs after the restored point hold <c>bmadguard.rolledback</c>
    /// placeholders naming the kept-aside file, or, with <see cref="RestoreRequest.PutBackNewer"/>, the current
    /// log's own intact records at their own seqs (the put-back is part of the one atomic swap). So the next event
    /// gets a seq above every seq ever acknowledged, and no consumer is ever ahead of the log: none is rewound.
    /// </para>
    /// </summary>
    public static class StoreRestore
    {
        public static RestoreReport Restore(string storeRoot, RestoreRequest request, IProgress<BackupProgress>? progress = null,
            CancellationToken cancellationToken = default)
        {
            try
            {
                return RestoreUnmapped(storeRoot, request, progress, cancellationToken);
            }
            catch (IOException ex) when (StoreFs.IsDiskFull(ex))
            {
                throw StoreFs.MapIOException(ex, $"Restoring '{storeRoot}'", storeRoot, "Free some space and restore again.");
            }
        }

        private static RestoreReport RestoreUnmapped(string storeRoot, RestoreRequest request, IProgress<BackupProgress>? progress,
            CancellationToken cancellationToken)
        {
            var clock = Stopwatch.StartNew();
            if (request == null)
            {
                throw new ArgumentNullException(nameof(request));
            }

            // ---- checks: nothing changes until all of these pass
            storeRoot = Validate(storeRoot, request);
            var notices = new List<string>();
            var backups = BackupCatalog.List(storeRoot, request.Destination, BackupCheck.Quick, null, cancellationToken);
            var chosen = Choose(backups, request, notices);

            var verification = BackupVerifier.Verify(chosen.Path, BackupCheck.Deep, progress, cancellationToken);
            var damage = verification.Findings.FirstOrDefault(f => f.Severity == FindingSeverity.Error)
                         ?? (chosen.Kind == BackupKinds.Safety ? verification.Findings.FirstOrDefault(f => f.Code == BackupFindingCodes.RecordDamaged && !IsTornTail(f, verification)) : null);
            if (damage != null || verification.Manifest == null)
            {
                throw new BmadGuardException(ErrorCodes.BackupDamaged, FailureKind.StoreProblem,
                    $"Backup '{chosen.Name}' does not match its manifest, so it was not restored and nothing changed: {damage?.Message} " +
                    $"('{damage?.File}'{(damage?.Offset.HasValue == true ? $" at byte {damage.Offset}" : "")}). Restore another backup with --backup NAME (see 'bmadguard backups').",
                    damage?.File, damage?.Offset);
            }

            var phases = new Dictionary<string, long> { ["verifyBackup"] = clock.ElapsedMilliseconds };
            var manifest = verification.Manifest;
            var segmentFiles = manifest.Files.Where(f => f.IsSegment).OrderBy(f => f.FirstSeq).ToList();
            long cut = PlanCut(chosen.Path, manifest, segmentFiles, request, notices, cancellationToken);

            var report = new RestoreReport
            {
                Store = storeRoot,
                Backup = chosen.Name,
                BackupPath = chosen.Path,
                Mode = request.Latest ? "latest" : request.BackupName != null ? "backup" : request.At.HasValue ? "at" : "seq",
                RestoredLastSeq = cut,
                EventsAfter = Math.Max(0, cut - manifest.FirstSeq + 1),
            };

            var io = StoreFs.Confine(storeRoot, request.IO); // nothing below the root is followed through a link
            string stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmssfff'Z'", CultureInfo.InvariantCulture);
            string segmentsDir = Path.Combine(storeRoot, StorePaths.SegmentsDirName);
            string quarantine = Path.Combine(storeRoot, StorePaths.QuarantineDirName);
            string building = Path.Combine(storeRoot, ".segments.restore-" + stamp + BackupLayout.TempSuffix);

            using (var held = StoreLock.Acquire(Path.Combine(storeRoot, StorePaths.LockFileName), request.LockTimeout, cancellationToken))
            {
                // 0. Under the lock (no append can slip in after the check): events would be set aside only with Force.
                RequireForceToSetAside(segmentsDir, cut, chosen, request);

                // 1. The current state, kept whole before anything changes.
                var safety = StoreBackup.CreateCore(storeRoot, BackupLayout.DefaultDestination(storeRoot), BackupKinds.Safety, lockHeld: true,
                    request.LockTimeout, io, incremental: true, progress, cancellationToken);
                report.SafetyBackup = safety.Name;
                report.SafetyBackupPath = safety.Path;

                phases["safetyBackup"] = clock.ElapsedMilliseconds;
                // 2. The restored segments, built beside the live ones (same volume, so the swap is a rename).
                // 3. Current events the restored state does not hold: kept aside, durably, before the swap.
                try
                {
                    Build(chosen.Path, segmentFiles, cut, building, io, progress, cancellationToken);
                    phases["build"] = clock.ElapsedMilliseconds;
                    io.CreateDirectory(quarantine);
                    string keptAsideName = StorePaths.QuarantineDirName + "/" + KeptAsideFileName(stamp);
                    using (var continuation = new Continuation(building, cut, chosen.Name, keptAsideName, io))
                    {
                        KeepAside(storeRoot, segmentsDir, chosen.Path, segmentFiles, cut, quarantine, stamp, io, report,
                            request.PutBackNewer ? continuation : null, out long trailingDamaged, cancellationToken);

                        // The old log's high-water mark: its last seq (damaged complete records at its end count: they
                        // were acknowledged), any consumer's position, the monitor's remembered mark. The restored set
                        // continues up to it, so no seq that was ever handed out names a new event.
                        long high = Math.Max(cut, (report.LastSeqBefore ?? 0) + trailingDamaged);
                        high = Math.Max(high, HighestConsumerPosition(storeRoot));
                        high = Math.Max(high, LastSegmentFloor(segmentsDir));
                        high = Math.Max(high, Monitoring.SeqWatermark.Load(storeRoot)?.Seq ?? 0);
                        continuation.PlaceholdersThrough(high);
                        continuation.Finish(); // fsynced before the swap
                        report.LastSeqAfter = high;
                        report.RolledBack = continuation.Placeholders;
                        report.PutBack = continuation.PutBack;
                        report.EventsAfter += continuation.PutBack;
                    }
                }
                catch
                {
                    BackupFiles.TryDeleteDirectory(building); // our own unfinished copy; the store is untouched
                    throw;
                }

                phases["keepAside"] = clock.ElapsedMilliseconds;
                // From here on the store changes: no cancellation until it is consistent again.
                cancellationToken = CancellationToken.None;

                // 4. The swap. First bump the writer epoch: a process that had this store open keeps its active
                // segment's handle, and must re-read the segments directory before its next append instead of
                // writing into a file that is no longer the log.
                held.BumpEpoch();
                string replaced = Path.Combine(quarantine, "restore-" + stamp + "-replaced-segments");
                if (!Directory.Exists(segmentsDir))
                {
                    Directory.Move(building, segmentsDir);
                    report.ReplacedSegments = null;
                }
                else if (BackupFiles.TryExchange(building, segmentsDir))
                {
                    io.SyncDirectory(storeRoot); // the exchange is durable: after a crash the store has the restored set
                    Directory.Move(building, replaced); // `building` now holds the old set
                    report.ReplacedSegments = replaced;
                }
                else
                {
                    Directory.Move(segmentsDir, replaced);
                    // A crash here leaves no 'segments' but both sets: the old one in quarantine, the new one under 'building'.
                    Directory.Move(building, segmentsDir);
                    report.ReplacedSegments = replaced;
                }

                io.SyncDirectory(storeRoot); // the new 'segments' entry and the old set's departure are durable
                io.SyncDirectory(quarantine); // the replaced set's new name is durable
                phases["swap"] = clock.ElapsedMilliseconds;
                // 5. Read the restored log back. No consumer is rewound: the log reaches the old high-water mark, so
                // every position is still inside it, and the events after it are the ones published from now on.
                CheckRestored(segmentsDir, manifest.FirstSeq, report.LastSeqAfter, report, cancellationToken);
            }

            phases["readBack"] = clock.ElapsedMilliseconds;
            if (report.KeptAside > 0)
            {
                notices.Add($"{report.KeptAside} event(s) of the log as it was are not in the restored state; they were set aside in '{report.KeptAsideFile}'.");
            }

            report.Notices = notices;
            report.DurationMilliseconds = clock.ElapsedMilliseconds;
            report.PhaseEndMilliseconds = phases;
            return report;
        }

        /// <summary>
        /// The checks that need no backup to be read: exactly one selector, a well-formed backup name, a
        /// non-negative seq, an existing store. Returns the store's full path. The CLI calls it before it asks
        /// for confirmation, so bad input is reported as such even without --force.
        /// </summary>
        public static string Validate(string storeRoot, RestoreRequest request)
        {
            int selectors = (request.Latest ? 1 : 0) + (request.BackupName != null ? 1 : 0) + (request.At.HasValue ? 1 : 0) + (request.Sequence.HasValue ? 1 : 0);
            if (selectors != 1)
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput,
                    "Say which state to restore, exactly once: --latest, --backup NAME, --at TIME or --seq N (-Latest, -Name, -At, -Sequence).");
            }

            if (request.BackupName != null)
            {
                BackupLayout.ValidateName(request.BackupName);
            }

            if (request.Sequence.HasValue && request.Sequence.Value < 0)
            {
                throw new BmadGuardException(ErrorCodes.InvalidArgument, FailureKind.InvalidInput, $"--seq must be 0 or more (it was {request.Sequence.Value}).");
            }

            return BackupCatalog.RequireStore(storeRoot);
        }

        /// <summary>
        /// The one rule for every selector (latest, a named backup, a time, a seq): a restore that leaves the log ending
        /// below where it ends now sets the events after <paramref name="cut"/> aside, and is refused without
        /// <see cref="RestoreRequest.Force"/>, saying how many. Nothing has changed when it throws.
        /// </summary>
        private static void RequireForceToSetAside(string segmentsDir, long cut, BackupInfo chosen, RestoreRequest request)
        {
            if (request.Force)
            {
                return;
            }

            long? currentLast = 0;
            var segments = Directory.Exists(segmentsDir) ? SegmentNames.List(segmentsDir) : new List<(long FirstSeq, string Path)>();
            if (segments.Count > 0)
            {
                try
                {
                    currentLast = SegmentTail.Scan(segments[segments.Count - 1].Path).LastSeq;
                }
                catch (Exception ex) when (ex is BmadGuardException || ex is IOException)
                {
                    currentLast = null; // the end of the current log cannot be read: what would be set aside is unknown
                }
            }

            if (currentLast == null)
            {
                throw new BmadGuardException(ErrorCodes.SetAsideNeedsForce, FailureKind.InvalidInput,
                    $"Restoring '{chosen.Name}' up to seq {cut}: the end of the current log cannot be read, so events after seq {cut} may be set aside. Nothing was changed.");
            }

            if (currentLast.Value > cut)
            {
                long count = currentLast.Value - cut;
                throw new BmadGuardException(ErrorCodes.SetAsideNeedsForce, FailureKind.InvalidInput,
                    $"Restoring '{chosen.Name}' up to seq {cut} would leave fewer events than the log holds now (it ends at seq {currentLast.Value}): " +
                    $"{count} event(s), seqs {cut + 1}..{currentLast.Value}, would be set aside in the store's quarantine. Nothing was changed.");
            }
        }

        private static BackupInfo Choose(IReadOnlyList<BackupInfo> backups, RestoreRequest request, List<string> notices)
        {
            // Safety backups are the state a restore replaced; they are restored only when named.
            var verified = backups.Where(b => b.State == BackupState.Verified && b.Kind == BackupKinds.Backup).OrderBy(b => b, BackupCatalog.LogOrder).ToList();
            if (request.BackupName != null)
            {
                var named = backups.FirstOrDefault(b => b.Name == request.BackupName);
                if (named == null)
                {
                    throw new BmadGuardException(ErrorCodes.BackupNotFound, FailureKind.InvalidInput,
                        $"There is no backup named '{request.BackupName}' for this store. List them with 'bmadguard backups --store …' or Get-BmadBackup.");
                }

                if (named.State != BackupState.Verified)
                {
                    throw new BmadGuardException(ErrorCodes.BackupDamaged, FailureKind.StoreProblem,
                        $"Backup '{named.Name}' is {named.State.ToString().ToLowerInvariant()}, so it was not restored and nothing changed: {named.Reason}", named.Path);
                }

                return named;
            }

            if (verified.Count == 0)
            {
                var unusable = backups.Where(b => b.Kind != BackupKinds.Safety).OrderBy(b => b, BackupCatalog.LogOrder).LastOrDefault();
                if (unusable == null)
                {
                    throw new BmadGuardException(ErrorCodes.BackupNotFound, FailureKind.StoreProblem,
                        "This store has no backups to restore from. Make one with 'bmadguard backup' or Backup-BmadStore.");
                }

                throw new BmadGuardException(ErrorCodes.BackupDamaged, FailureKind.StoreProblem,
                    $"None of this store's backups is verified, so nothing was restored and nothing changed. The newest, '{unusable.Name}', is {unusable.State.ToString().ToLowerInvariant()}: {unusable.Reason}",
                    unusable.Path);
            }

            var newestByName = backups.Where(b => b.Kind != BackupKinds.Safety).OrderBy(b => b, BackupCatalog.LogOrder).Last();
            if (newestByName.State != BackupState.Verified)
            {
                notices.Add($"The newest backup, '{newestByName.Name}', is {newestByName.State.ToString().ToLowerInvariant()} and was skipped: {newestByName.Reason}");
            }

            if (request.Latest)
            {
                return verified[verified.Count - 1];
            }

            if (request.At.HasValue)
            {
                var at = request.At.Value;
                var covering = verified.FirstOrDefault(b => b.ConsistentAt >= at);
                if (covering != null)
                {
                    return covering;
                }

                var newest = verified[verified.Count - 1];
                notices.Add($"Every backup is older than {at.UtcDateTime:o}; restored the newest, '{newest.Name}' (consistent at {newest.ConsistentAt.UtcDateTime:o}), whole. Current events after it are kept aside.");
                return newest;
            }

            long seq = request.Sequence!.Value;
            var holding = verified.LastOrDefault(b => b.LastSeq >= seq);
            if (holding != null)
            {
                return holding;
            }

            var last = verified[verified.Count - 1];
            notices.Add($"No backup reaches seq {seq}; restored the newest, '{last.Name}', which ends at seq {last.LastSeq}. Current events after it are kept aside.");
            return last;
        }

        /// <summary>
        /// A safety backup copies the active segment whole, so a torn tail left by a crash comes along. That
        /// is not damage to what is restored: the restore cuts after the manifest's lastSeq.
        /// </summary>
        private static bool IsTornTail(BackupFinding finding, BackupVerification verification)
        {
            var manifest = verification.Manifest;
            var last = manifest?.Files.Where(f => f.IsSegment).OrderBy(f => f.FirstSeq).LastOrDefault();
            if (manifest == null || last == null || finding.File != BackupLayout.ToFullPath(verification.Path, last.Path) || !finding.Offset.HasValue)
            {
                return false;
            }

            try
            {
                return finding.Offset.Value >= EndOfSeq(finding.File, manifest.LastSeq);
            }
            catch (BmadGuardException)
            {
                return false;
            }
        }

        /// <summary>The last seq to keep from the backup.</summary>
        private static long PlanCut(string backupDir, BackupManifest manifest, List<ManifestFile> segments, RestoreRequest request, List<string> notices, CancellationToken cancellationToken)
        {
            if (request.Sequence.HasValue)
            {
                return Math.Min(request.Sequence.Value, manifest.LastSeq);
            }

            if (!request.At.HasValue)
            {
                return manifest.LastSeq;
            }

            // Timestamps never decrease along the log (the writer guarantees it), so "events with timestamp
            // ≤ At" is a prefix: cut before the first event after At.
            var at = request.At.Value;
            long cut = manifest.FirstSeq - 1;
            foreach (var f in segments)
            {
                foreach (var record in ReadEvents(BackupLayout.ToFullPath(backupDir, f.Path), cancellationToken, null))
                {
                    if (record.Timestamp > at)
                    {
                        return cut;
                    }

                    cut = record.Seq;
                }
            }

            return cut;
        }

        /// <summary>Valid events of a segment file in order; damaged lines are passed to <paramref name="damaged"/> and skipped.</summary>
        private static IEnumerable<EventRecord> ReadEvents(string path, CancellationToken cancellationToken, Action<long, string>? damaged)
        {
            foreach (var line in SegmentReader.ReadLines(path, 0))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (line.Offset == 0 && line.Terminated && SegmentHeader.ParseFirstSeq(line.Span) > 0)
                {
                    continue;
                }

                EventRecord? record = line.Terminated && RecordCodec.ChecksumOk(line.Span) && !RecordCodec.IsHeader(line.Span)
                    ? RecordCodec.DecodeEvent(line.Span)
                    : null;
                if (record == null)
                {
                    damaged?.Invoke(line.Offset, line.Offset == 0 ? "a damaged segment header" : line.Terminated ? "a line whose checksum or format does not hold" : "an incomplete last line (torn tail)");
                    continue;
                }

                yield return record;
            }
        }

        /// <summary>The seq and id of a checked event line, read without parsing the rest of the event.</summary>
        private static bool TryReadSeqAndId(ReadOnlySpan<byte> line, out long seq, out string id)
        {
            seq = -1;
            id = "";
            try
            {
                var reader = new Utf8JsonReader(line.Slice(0, line.Length - RecordCodec.TrailerLength));
                if (reader.Read() && reader.TokenType == JsonTokenType.StartObject
                    && reader.Read() && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("seq") && reader.Read()
                    && reader.TryGetInt64(out seq)
                    && reader.Read() && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("id") && reader.Read()
                    && reader.TokenType == JsonTokenType.String)
                {
                    id = reader.GetString()!;
                    return seq > 0;
                }
            }
            catch (JsonException)
            {
            }

            return false;
        }

        /// <summary>Checked event lines of a segment in order (header skipped); other lines go to <paramref name="damaged"/>.</summary>
        internal static IEnumerable<(long Seq, string Id, SegmentLine Line)> ReadKeys(string path, CancellationToken cancellationToken, Action<long, string>? damaged, long fromOffset = 0)
        {
            foreach (var line in SegmentReader.ReadLines(path, fromOffset))
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (line.Offset == 0 && line.Terminated && SegmentHeader.ParseFirstSeq(line.Span) > 0)
                {
                    continue;
                }

                if (line.Terminated && RecordCodec.ChecksumOk(line.Span) && !RecordCodec.IsHeader(line.Span) && TryReadSeqAndId(line.Span, out long seq, out string id))
                {
                    yield return (seq, id, line);
                    continue;
                }

                damaged?.Invoke(line.Offset, line.Offset == 0 ? "a damaged segment header" : line.Terminated ? "a line whose checksum or format does not hold" : TornTailWhat);
            }
        }

        private const string TornTailWhat = "an incomplete last line (torn tail)";

        /// <summary>The name (in <c>quarantine/</c>) of the file holding a restore's kept-aside events.</summary>
        internal static string KeptAsideFileName(string stamp) => "restore-" + stamp + "-kept-aside.jsonl";

        /// <summary>True for BmadGuard's own placeholder records (<c>bmadguard.lost</c>, <c>bmadguard.rolledback</c>).</summary>
        private static bool IsPlaceholder(string id, SegmentLine line)
        {
            if (!id.StartsWith("lost-", StringComparison.Ordinal) && !id.StartsWith(RolledBackIdPrefix, StringComparison.Ordinal))
            {
                return false;
            }

            var record = RecordCodec.DecodeEvent(line.Span);
            return record != null && (record.Type == Integrity.StoreRepair.LostEventType || record.Type == RolledBackEventType);
        }

        /// <summary>The highest position any consumer has committed (0 when none can be read).</summary>
        private static long HighestConsumerPosition(string storeRoot)
        {
            string dir = Path.Combine(storeRoot, StorePaths.ConsumersDirName);
            long high = 0;
            if (!Directory.Exists(dir))
            {
                return 0;
            }

            foreach (string file in Directory.EnumerateFiles(dir, "*.json"))
            {
                try
                {
                    using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
                    high = Math.Max(high, doc.RootElement.GetProperty("seq").GetInt64());
                }
                catch (Exception ex) when (ex is JsonException || ex is KeyNotFoundException || ex is InvalidOperationException || ex is FormatException || ex is IOException)
                {
                    // A damaged position file: verify reports it; its value cannot be trusted as a mark.
                }
            }

            return high;
        }

        /// <summary>The newest segment's first seq minus one: seqs below it were handed out even if its records are gone.</summary>
        private static long LastSegmentFloor(string segmentsDir)
        {
            var list = Directory.Exists(segmentsDir) ? SegmentNames.List(segmentsDir) : new List<(long, string)>();
            return list.Count == 0 ? 0 : list[list.Count - 1].Item1 - 1;
        }

        public const string RolledBackEventType = "bmadguard.rolledback";
        internal const string RolledBackIdPrefix = "rolledback-";

        /// <summary>
        /// Seqs after the restored point, appended to the last restored segment in the building set (which is ours
        /// until the swap): the current log's own intact records at their own seqs (put back), and
        /// <c>bmadguard.rolledback</c> placeholders for every other seq up to the old high-water mark. The file is
        /// fsynced (and the set's directory) by <see cref="Finish"/>, before the swap makes any of it the log.
        /// </summary>
        private sealed class Continuation : IDisposable
        {
            private readonly IStorageIO _io;
            private readonly string _dir;
            private readonly string _backup;
            private readonly string _keptAside;
            private readonly Stream _file;
            private long _next;
            private string _timestamp;

            public Continuation(string dir, long cut, string backup, string keptAside, IStorageIO io)
            {
                _io = io;
                _dir = dir;
                _backup = backup;
                _keptAside = keptAside;
                _next = cut + 1;
                var segments = SegmentNames.List(dir);
                string last = segments[segments.Count - 1].Path;
                DateTimeOffset? ts = null;
                for (int i = segments.Count - 1; i >= 0 && ts == null; i--)
                {
                    ts = SegmentTail.Scan(segments[i].Path).LastTimestamp;
                }

                _timestamp = (ts ?? new DateTimeOffset(1970, 1, 1, 0, 0, 0, TimeSpan.Zero)).ToUniversalTime().ToString("o", CultureInfo.InvariantCulture);
                _file = io.OpenForWrite(last, createNew: false);
                _file.Seek(0, SeekOrigin.End); // Build cut it just after the record `cut`
            }

            public long Placeholders { get; private set; }

            public long PutBack { get; private set; }

            /// <summary>Writes the current log's record at its own seq; false when the seq is already behind (a duplicate).</summary>
            public bool TryPutBack(long seq, SegmentLine line)
            {
                if (seq < _next)
                {
                    return false;
                }

                PlaceholdersThrough(seq - 1); // seqs whose records were damaged or missing in the current log
                var record = RecordCodec.DecodeEvent(line.Span);
                _file.Write(line.Buffer, line.Start, line.Length);
                _file.WriteByte((byte)'\n');
                if (record != null)
                {
                    _timestamp = record.Timestamp.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture);
                }

                _next = seq + 1;
                PutBack++;
                return true;
            }

            public void PlaceholdersThrough(long last)
            {
                if (last < _next)
                {
                    return;
                }

                var data = new MemoryStream();
                using (var w = new Utf8JsonWriter(data))
                {
                    w.WriteStartObject();
                    w.WriteString("reason", "rolled back by a restore");
                    w.WriteString("backup", _backup);
                    w.WriteString("keptAside", _keptAside);
                    w.WriteNumber("firstSeq", _next);
                    w.WriteNumber("lastSeq", last);
                    w.WriteEndObject();
                }

                var buffered = new BufferedStream(_file, 1 << 16);
                Integrity.StoreRepair.WritePlaceholderRecords(buffered, _next, last, RolledBackEventType, RolledBackIdPrefix, data.ToArray(), _timestamp);
                buffered.Flush();
                Placeholders += last - _next + 1;
                _next = last + 1;
            }

            public void Finish()
            {
                _io.Sync(_file); // the continuation is durable before the swap makes it the log
                _io.SyncDirectory(_dir);
            }

            public void Dispose() => _file.Dispose();
        }

        /// <summary>
        /// Walks the current log and the restored log side by side (both in seq order, bounded memory): a
        /// current event is kept aside when the restored log has no event with its seq and id. Only seq and
        /// id are parsed; a kept-aside event is written as its stored JSON (the record without its checksum).
        /// </summary>
        private static void KeepAside(string storeRoot, string segmentsDir, string backupDir, List<ManifestFile> backupSegments, long cut,
            string quarantine, string stamp, IStorageIO io, RestoreReport report, Continuation? putBack, out long trailingDamaged, CancellationToken cancellationToken)
        {
            long damagedSinceValid = 0;
            var damage = new List<BackupFinding>();
            IEnumerable<(long Seq, string Id)> Restored()
            {
                foreach (var f in backupSegments)
                {
                    foreach (var r in ReadKeys(BackupLayout.ToFullPath(backupDir, f.Path), cancellationToken, null))
                    {
                        if (r.Seq > cut)
                        {
                            yield break;
                        }

                        yield return (r.Seq, r.Id);
                    }
                }
            }

            string finalPath = Path.Combine(quarantine, KeptAsideFileName(stamp));
            string tempPath = Path.Combine(quarantine, "." + KeptAsideFileName(stamp) + BackupLayout.TempSuffix);
            Stream? file = null;
            Stream? output = null;
            long before = 0, keptAside = 0;
            long? lastBefore = null;
            IEnumerator<(long Seq, string Id)>? restored = null; // opened only if a current event at or before the cut differs
            bool hasRestored = false;
            var lastBackupSegment = backupSegments.Count > 0 ? backupSegments[backupSegments.Count - 1] : null;
            try
            {
                var current = Directory.Exists(segmentsDir) ? SegmentNames.List(segmentsDir) : new List<(long, string)>();
                foreach (var (_, path) in current)
                {
                    // Fast path: the usual current segment begins with exactly the bytes the backup holds (the
                    // log only grows). Those records are verified (the backup was) and held: compare bytes, skip them.
                    long from = 0;
                    var twin = backupSegments.FirstOrDefault(f => f.Path == BackupLayout.SegmentsDir + "/" + Path.GetFileName(path));
                    if (twin?.FirstSeq != null && twin.LastSeq != null && twin.FirstSeq.Value <= cut && twin.LastSeq.Value >= twin.FirstSeq.Value)
                    {
                        string twinPath = BackupLayout.ToFullPath(backupDir, twin.Path);
                        long heldLast = Math.Min(twin.LastSeq.Value, cut);
                        long heldEnd = heldLast == twin.LastSeq.Value && twin != lastBackupSegment ? twin.Size : EndOfSeq(twinPath, heldLast);
                        if (new FileInfo(path).Length >= heldEnd && BackupFiles.PrefixEqual(path, twinPath, heldEnd, cancellationToken))
                        {
                            before += heldLast - twin.FirstSeq.Value + 1;
                            lastBefore = heldLast;
                            from = heldEnd;
                        }
                    }

                    foreach (var (seq, id, line) in ReadKeys(path, cancellationToken, (offset, what) =>
                             {
                                 if (what != TornTailWhat)
                                 {
                                     damagedSinceValid++;
                                 }

                                 if (damage.Count < 100)
                                 {
                                     damage.Add(new BackupFinding(FindingSeverity.Error, "StoreRecordDamaged", "", path, offset,
                                         $"{what} at byte {offset}: not an event, so not kept aside; its bytes are in the safety backup and the replaced segments."));
                                 }
                             }, from))
                    {
                        before++;
                        lastBefore = seq;
                        damagedSinceValid = 0;
                        bool held = false;
                        if (seq <= cut)
                        {
                            if (restored == null)
                            {
                                restored = Restored().GetEnumerator();
                                hasRestored = restored.MoveNext();
                            }

                            while (hasRestored && restored.Current.Seq < seq)
                            {
                                hasRestored = restored.MoveNext();
                            }

                            held = hasRestored && restored.Current.Seq == seq && restored.Current.Id == id;
                        }

                        if (!held && seq > cut && putBack != null && putBack.TryPutBack(seq, line))
                        {
                            held = true; // stays in the log at its own seq (see Continuation)
                        }

                        if (!held && IsPlaceholder(id, line))
                        {
                            held = true; // a placeholder marks seqs; it is not an event anyone published
                        }

                        if (!held)
                        {
                            if (output == null)
                            {
                                file = io.OpenForWrite(tempPath, createNew: true);
                                output = new BufferedStream(file, 1 << 16);
                            }

                            byte[] json = RecordCodec.EventBytes(line.Span);
                            output.Write(json, 0, json.Length);
                            output.WriteByte((byte)'\n');
                            keptAside++;
                        }
                    }
                }

                if (output != null)
                {
                    output.Flush();
                    io.Sync(file!); // the kept-aside events are durable before the segments holding them are replaced
                    output.Dispose();
                    output = null;
                    io.Move(tempPath, finalPath);
                    io.SyncDirectory(quarantine); // and so is the file's name
                    report.KeptAsideFile = finalPath;
                }
            }
            finally
            {
                output?.Dispose();
                restored?.Dispose();
            }

            trailingDamaged = damagedSinceValid;
            report.EventsBefore = before;
            report.LastSeqBefore = lastBefore;
            report.KeptAside = keptAside;
            report.CurrentDamage = damage;
        }

        /// <summary>Copies the backup's segments up to <paramref name="cut"/> into <paramref name="target"/>, fsynced.</summary>
        private static void Build(string backupDir, List<ManifestFile> segments, long cut, string target, IStorageIO io, IProgress<BackupProgress>? progress, CancellationToken cancellationToken)
        {
            io.CreateDirectory(target);
            long total = segments.Sum(s => s.Size), done = 0;
            for (int i = 0; i < segments.Count; i++)
            {
                var f = segments[i];
                bool first = i == 0;
                if (!first && f.FirstSeq > cut)
                {
                    break; // starts after the restored point
                }

                string source = BackupLayout.ToFullPath(backupDir, f.Path);
                string destination = Path.Combine(target, Path.GetFileName(source));
                bool lastIncluded = i == segments.Count - 1 || segments[i + 1].FirstSeq > cut;
                long length = f.Size;
                if (f.LastSeq > cut || (lastIncluded && f.LastSeq == cut))
                {
                    // Cut just after the record `cut`: nothing after it (a later record, or bytes a safety
                    // backup copied from a torn tail) becomes part of the restored log.
                    length = EndOfSeq(source, cut);
                }

                string sha = BackupFiles.CopyFileDurably(source, length, destination, io, null, cancellationToken); // each file fsynced before the swap
                if (length == f.Size && sha != f.Sha256)
                {
                    throw new BmadGuardException(ErrorCodes.BackupDamaged, FailureKind.StoreProblem,
                        $"'{source}' changed while it was being restored (its SHA-256 no longer matches the manifest); nothing was changed in the store.", source);
                }

                done += f.Size;
                progress?.Report(new BackupProgress("Restoring segments", destination, done, total));
            }

            io.SyncDirectory(target); // the restored segments' names are durable before the directory is swapped in
        }

        /// <summary>The offset just past the record with seq <paramref name="seq"/> (or past the header when seq precedes the segment).</summary>
        private static long EndOfSeq(string path, long seq)
        {
            foreach (var line in SegmentReader.ReadLines(path, 0))
            {
                if (line.Offset == 0)
                {
                    if (SegmentHeader.ParseFirstSeq(line.Span) > seq)
                    {
                        return line.End;
                    }

                    continue;
                }

                long s = RecordCodec.ReadSeq(line.Span);
                if (s == seq)
                {
                    return line.End;
                }
            }

            throw new BmadGuardException(ErrorCodes.BackupDamaged, FailureKind.StoreProblem, $"'{path}' has no record with seq {seq}, though its manifest says it does.", path);
        }

        private static void CheckRestored(string segmentsDir, long firstSeq, long cut, RestoreReport report, CancellationToken cancellationToken)
        {
            long expect = firstSeq;
            foreach (var (segFirst, path) in SegmentNames.List(segmentsDir))
            {
                var scan = BackupFiles.Scan(path, checkRecords: true, null, cancellationToken, hash: false);
                if (!scan.RecordsOk || scan.FirstSeq != expect)
                {
                    throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                        $"The restored log did not read back correctly at '{path}' (byte {scan.BadOffset}: {scan.BadReason ?? $"starts at seq {scan.FirstSeq}, expected {expect}"}). " +
                        $"The state before the restore is in the safety backup '{report.SafetyBackup}' and in '{report.ReplacedSegments}'.", path, scan.BadOffset);
                }

                expect = scan.LastSeq + 1;
            }

            if (expect - 1 != Math.Max(cut, firstSeq - 1))
            {
                throw new BmadGuardException(ErrorCodes.StoreDamaged, FailureKind.StoreProblem,
                    $"The restored log ends at seq {expect - 1}, not at seq {cut}. The state before the restore is in the safety backup '{report.SafetyBackup}'.", segmentsDir);
            }
        }
    }
}
