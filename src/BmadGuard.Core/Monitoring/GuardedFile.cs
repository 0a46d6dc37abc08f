using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Legacy;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// A legacy JSON file the monitor guards (e.g. the old bus's <c>shared_context.json</c>).
    /// <para>
    /// Check: read it and parse it strictly with System.Text.Json (no comments, no trailing commas). Damage =
    /// missing, unreadable, or not JSON (truncated, half-written, garbage). The legacy agents write under
    /// <c>fcntl.flock</c> on <c>&lt;file&gt;.lock</c>, so a failed parse is confirmed holding that lock before it is
    /// reported: a writer caught mid-write (an in-place copy has 0-byte moments) is not damage.
    /// </para>
    /// <para>
    /// Watch: a high-water mark (the most events and the newest timestamp seen, kept beside the known-good copy) —
    /// a valid bus file that holds fewer events than the mark is reported (<see cref="FindingKind.LegacyEventsLost"/>)
    /// once, and the mark follows the file. The lock file's identity (device, inode) is remembered across checks: when
    /// it changes or vanishes, the agents' bus deletes its lock file and nothing excludes its writers
    /// (<see cref="FindingKind.LegacyLockFileDeleted"/>, reported, and the monitor does not heal such a file).
    /// </para>
    /// <para>
    /// Heal: never replaces a live file with a copy holding fewer events. Under <c>&lt;file&gt;.lock</c> the damage is
    /// confirmed again, the damaged bytes are copied to the store's <c>quarantine/</c> (fsynced), and the file is
    /// rebuilt from every complete event it still holds (salvage) together with the known-good copy's events it lacks
    /// (the union, duplicates by exact event JSON dropped), keeping the file's mode. A file that is not a legacy bus
    /// file gets the known-good copy back, as before.
    /// </para>
    /// </summary>
    public sealed class GuardedFile
    {
        private long _goodLength = -1;
        private DateTime _goodMtime;
        private (ulong Dev, ulong Ino)? _lockIdentity;
        private bool _lockSeen;

        public GuardedFile(string path, string store)
        {
            Path = System.IO.Path.GetFullPath(path);
            Store = store;
            string hash;
            using (var sha = SHA256.Create())
            {
                hash = BitConverter.ToString(sha.ComputeHash(Encoding.UTF8.GetBytes(Path))).Replace("-", "").Substring(0, 12).ToLowerInvariant();
            }

            KnownGoodPath = System.IO.Path.Combine(store, "monitor", "known-good", hash + "-" + System.IO.Path.GetFileName(Path));
            MarkPath = KnownGoodPath + ".mark.json";
        }

        public string Path { get; }
        public string Store { get; }
        public string LockPath => Path + ".lock";
        public string KnownGoodPath { get; }

        /// <summary>The high-water mark: <c>{"events": n, "lastTimestamp": "…"}</c>.</summary>
        public string MarkPath { get; }

        public TimeSpan ConfirmLockTimeout { get; set; } = TimeSpan.FromSeconds(1);

        /// <summary>How long damage in a file without a lock file must persist before it counts.</summary>
        public TimeSpan SettleTime { get; set; } = TimeSpan.FromMilliseconds(250);

        /// <summary>True once the lock file was seen deleted or replaced by the file's writers.</summary>
        public bool LockFileDeletionSeen { get; private set; }

        public IntegrityResult Check(CancellationToken ct)
        {
            var clock = Stopwatch.StartNew();
            var findings = new List<IntegrityFinding>();
            ObserveLockFile(findings, null);
            var (finding, bytes, length, mtime) = Inspect();
            if (finding != null && !File.Exists(LockPath))
            {
                // A writer that takes no lock may be between truncate and write: damage must still be there a
                // moment later before anything is done about it.
                ct.WaitHandle.WaitOne(SettleTime);
                (finding, bytes, length, mtime) = Inspect();
            }
            else if (finding != null)
            {
                // Maybe a legacy writer is mid-write: look again holding its lock.
                try
                {
                    using (var held = StoreLock.Acquire(LockPath, ConfirmLockTimeout, ct))
                    {
                        ObserveLockFile(findings, held);
                        (finding, bytes, length, mtime) = Inspect();
                    }
                }
                catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LockTimeout)
                {
                    // Busy for a whole second: report what we saw.
                }
            }

            if (finding != null)
            {
                findings.Add(finding);
            }

            if (finding == null && bytes != null && (length != _goodLength || mtime != _goodMtime))
            {
                var lost = CheckMark(bytes);
                if (lost != null)
                {
                    findings.Add(lost);
                }

                SaveKnownGood(bytes);
                _goodLength = length;
                _goodMtime = mtime;
            }

            return new IntegrityResult(Path, true, findings, bytes?.Length ?? 0, 0, clock.Elapsed);
        }

        /// <summary>Remembers the lock file's identity; a change or disappearance after it was seen is the writers deleting it.</summary>
        private void ObserveLockFile(List<IntegrityFinding> findings, StoreLock? held)
        {
            string? evidence = null;
            if (held != null && held.LockFileReplaced > 0)
            {
                evidence = $"the lock file was deleted or replaced {held.LockFileReplaced} time(s) while the monitor waited for it";
            }

            var now = FileIdentity.OfPath(LockPath);
            if (FileIdentity.Supported && evidence == null)
            {
                if (_lockSeen && now != _lockIdentity)
                {
                    evidence = now == null ? "the lock file vanished since the last check" : "the lock file was replaced since the last check (another inode)";
                }
            }

            if (now != null)
            {
                _lockSeen = true;
            }

            _lockIdentity = now;
            if (evidence != null && findings.All(f => f.Kind != FindingKind.LegacyLockFileDeleted))
            {
                LockFileDeletionSeen = true;
                findings.Add(new IntegrityFinding(FindingKind.LegacyLockFileDeleted, Path, null,
                    LegacyLocking.Explain(Path, evidence) + " Migrate the agents to the store (import-legacy), or make the bus keep its lock file; the monitor does not heal this file while its lock excludes no one."));
            }
        }

        private (IntegrityFinding? Finding, byte[]? Bytes, long Length, DateTime Mtime) Inspect()
        {
            byte[] bytes;
            DateTime mtime;
            try
            {
                if (!File.Exists(Path))
                {
                    return (new IntegrityFinding(FindingKind.Missing, Path, null, $"Guarded file '{Path}' is missing (deleted or renamed)."), null, -1, default);
                }

                mtime = File.GetLastWriteTimeUtc(Path);
                bytes = ReadShared(Path);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                return (new IntegrityFinding(FindingKind.Unreadable, Path, null, $"Guarded file '{Path}' cannot be read: {ex.Message}"), null, -1, default);
            }

            try
            {
                using var doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false, MaxDepth = 256 });
                return (null, bytes, bytes.Length, mtime);
            }
            catch (JsonException ex)
            {
                bool truncated = bytes.Length == 0 || ex.Message.IndexOf("end of data", StringComparison.OrdinalIgnoreCase) >= 0
                                 || ex.Message.IndexOf("incomplete", StringComparison.OrdinalIgnoreCase) >= 0
                                 || ex.Message.IndexOf("expected end", StringComparison.OrdinalIgnoreCase) >= 0;
                string what = bytes.Length == 0 ? "is empty" : truncated ? "is truncated (the JSON ends early)" : "is not valid JSON";
                return (new IntegrityFinding(FindingKind.InvalidJson, Path, null,
                    $"Guarded file '{Path}' {what}: line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1} of the line; {bytes.Length} bytes."), bytes, bytes.Length, mtime);
            }
            catch (ArgumentException ex)
            {
                // invalid UTF-8
                return (new IntegrityFinding(FindingKind.InvalidJson, Path, null, $"Guarded file '{Path}' is not valid JSON: {ex.Message}"), bytes, bytes.Length, mtime);
            }
        }

        /// <summary>
        /// Compares a valid bus file with the high-water mark; a file with fewer events than the mark lost events
        /// since the monitor last saw it. The mark then follows the file (reported once per drop).
        /// </summary>
        private IntegrityFinding? CheckMark(byte[] bytes)
        {
            var scan = LegacyScanner.Scan(bytes);
            if (!scan.Clean)
            {
                return null; // not a legacy bus file: its events cannot be counted
            }

            int count = scan.Events.Count;
            string? last = count > 0 ? scan.Events[count - 1].Timestamp : null;
            var (markCount, markLast) = ReadMark();
            IntegrityFinding? lost = null;
            if (markCount.HasValue && count < markCount.Value)
            {
                lost = new IntegrityFinding(FindingKind.LegacyEventsLost, Path, null,
                    $"Guarded file '{Path}' holds {count} events, {markCount.Value - count} fewer than the {markCount.Value} the monitor saw before (newest then {markLast ?? "unknown"}): events were lost or removed. "
                    + $"The monitor's known-good copy and the bus's generations may still hold them (bmadguard import-legacy --recover).");
            }

            WriteMark(count, last);
            return lost;
        }

        private (int? Count, string? Last) ReadMark()
        {
            try
            {
                if (!File.Exists(MarkPath))
                {
                    return (null, null);
                }

                using var doc = JsonDocument.Parse(File.ReadAllBytes(MarkPath));
                int? n = doc.RootElement.TryGetProperty("events", out var e) && e.TryGetInt32(out int v) ? v : (int?)null;
                string? t = doc.RootElement.TryGetProperty("lastTimestamp", out var ts) && ts.ValueKind == JsonValueKind.String ? ts.GetString() : null;
                return (n, t);
            }
            catch (Exception ex) when (ex is IOException || ex is JsonException || ex is UnauthorizedAccessException)
            {
                return (null, null);
            }
        }

        private void WriteMark(int count, string? last)
        {
            var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteNumber("events", count);
                if (last != null)
                {
                    w.WriteString("lastTimestamp", last);
                }

                w.WriteEndObject();
            }

            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(MarkPath)!);
            AtomicFile.Write(OsStorageIO.Instance, MarkPath, buffer.ToArray());
        }

        private static byte[] ReadShared(string path)
        {
            using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            var ms = new MemoryStream();
            s.CopyTo(ms);
            return ms.ToArray();
        }

        private void SaveKnownGood(byte[] bytes)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(KnownGoodPath)!);
            AtomicFile.Write(OsStorageIO.Instance, KnownGoodPath, bytes);
        }

        public bool HasKnownGood => File.Exists(KnownGoodPath);

        /// <summary>
        /// Heals the file under its lock: confirms the damage again, quarantines the damaged bytes, then writes every
        /// complete event the file still holds plus the known-good copy's events it lacks (never fewer events than the
        /// live file). A file that is not a legacy bus file gets its known-good copy back.
        /// </summary>
        public HealResult Restore(CancellationToken ct)
        {
            using (var held = StoreLock.Acquire(LockPath, TimeSpan.FromSeconds(10), ct))
            {
                var seen = new List<IntegrityFinding>();
                ObserveLockFile(seen, held);
                var (finding, _, _, _) = Inspect();
                if (finding == null)
                {
                    return new HealResult(HealOutcome.NotNeeded, $"'{Path}' parsed again when its lock was taken: nothing to do.");
                }

                if (LockFileDeletionSeen)
                {
                    return new HealResult(HealOutcome.NotPossible,
                        $"'{Path}' was not touched: its writers delete their lock file, so no lock excludes them and a rewrite could drop an event a writer is adding. Migrate the agents to the store, or make the bus keep its lock file.");
                }

                byte[]? current = File.Exists(Path) ? ReadShared(Path) : null;
                byte[]? good = File.Exists(KnownGoodPath) ? File.ReadAllBytes(KnownGoodPath) : null;
                var goodScan = good != null ? LegacyScanner.Scan(good) : null;
                var currentScan = current != null ? LegacyScanner.Scan(current) : null;
                byte[] healed;
                string how;
                if (goodScan != null && goodScan.Clean)
                {
                    var union = Union(currentScan?.Events ?? Array.Empty<LegacyEvent>(), goodScan.Events, out int fromCopy);
                    healed = LegacyBusFile.Rebuild(union);
                    how = $"Rebuilt '{Path}' with {union.Count} events: {currentScan?.Events.Count ?? 0} salvaged from the file and {fromCopy} only the known-good copy held";
                }
                else if (goodScan == null && currentScan != null && currentScan.Events.Count > 0)
                {
                    healed = LegacyBusFile.Rebuild(currentScan.Events);
                    how = $"Rebuilt '{Path}' from the {currentScan.Events.Count} complete events it still held (no known-good copy yet)";
                }
                else if (good != null && (currentScan == null || currentScan.Events.Count == 0))
                {
                    healed = good;
                    how = $"Restored '{Path}' from its last known-good copy ({good.Length} bytes)";
                }
                else
                {
                    return new HealResult(HealOutcome.NotPossible, good == null
                        ? $"There is no known-good copy of '{Path}' yet (the monitor never saw it parse) and nothing to salvage, so it cannot be healed. The file was not touched."
                        : $"'{Path}' still holds {currentScan!.Events.Count} events and its known-good copy is not a legacy bus file: putting the copy back could lose events. The file was not touched; run 'bmadguard repair --file'.");
                }

                var quarantined = new List<string>();
                long qbytes = 0;
                if (current != null)
                {
                    string qdir = System.IO.Path.Combine(Store, StorePaths.QuarantineDirName);
                    Directory.CreateDirectory(qdir);
                    string qpath = System.IO.Path.Combine(qdir, $"{DateTime.UtcNow:yyyyMMddTHHmmssfffZ}-{System.IO.Path.GetFileName(Path)}.damaged");
                    for (int i = 1; File.Exists(qpath); i++)
                    {
                        qpath = System.IO.Path.Combine(qdir, $"{DateTime.UtcNow:yyyyMMddTHHmmssfffZ}-{i.ToString(CultureInfo.InvariantCulture)}-{System.IO.Path.GetFileName(Path)}.damaged");
                    }

                    using (var q = new FileStream(qpath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1))
                    {
                        q.Write(current, 0, current.Length);
                        q.Flush(true); // the damaged bytes are durable in quarantine before the file is replaced
                    }

                    DirectorySync.Sync(qdir);
                    quarantined.Add(qpath);
                    qbytes = current.Length;
                }

                if (!held.StillAtPath())
                {
                    return new HealResult(HealOutcome.NotPossible, $"'{Path}' was not touched: its lock file was deleted while the monitor held it (its writers delete their lock file).", quarantined, qbytes);
                }

                // Keeps the file's mode (the agents may run as other users): temp, fsync, rename, fsync the directory.
                LegacyBusFile.ReplaceKeepingMode(OsStorageIO.Instance, Path, healed);
                _goodLength = -1; // re-read (and re-snapshot) at the next check
                return new HealResult(HealOutcome.Healed,
                    how + (quarantined.Count > 0 ? $"; the damaged {qbytes} bytes are in '{quarantined[0]}'." : " (the file had been deleted)."),
                    quarantined, qbytes, KnownGoodPath);
            }
        }

        /// <summary>
        /// Every event of <paramref name="live"/>, plus the events of <paramref name="copy"/> it lacks (the same exact
        /// event JSON counted per occurrence), in timestamp order where timestamps parse (stable otherwise).
        /// </summary>
        internal static List<LegacyEvent> Union(IReadOnlyList<LegacyEvent> live, IReadOnlyList<LegacyEvent> copy, out int fromCopy)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var e in live)
            {
                string k = e.CanonicalJson();
                counts[k] = counts.TryGetValue(k, out int n) ? n + 1 : 1;
            }

            var all = new List<LegacyEvent>(live);
            fromCopy = 0;
            foreach (var e in copy)
            {
                string k = e.CanonicalJson();
                if (counts.TryGetValue(k, out int n) && n > 0)
                {
                    counts[k] = n - 1;
                    continue;
                }

                all.Add(e);
                fromCopy++;
            }

            if (fromCopy == 0)
            {
                return all;
            }

            var keyed = all.Select((e, i) => (e, i, t: LegacyEvent.TryParseTimestamp(e.Timestamp, TimeZoneInfo.Utc, out var ts) ? ts.UtcTicks : long.MaxValue)).ToList();
            return keyed.OrderBy(x => x.t).ThenBy(x => x.i).Select(x => x.e).ToList();
        }
    }
}
