using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// The default <see cref="IStoreInspector"/>: reads segments with <see cref="SegmentReader"/> and checks each
    /// line with <see cref="RecordCodec.ChecksumOk"/> and seq continuity.
    /// <para>
    /// Quick check = incremental. It remembers each segment's length and modification time. An unchanged segment
    /// is not read. The active segment that only grew is read from the last verified record on. Any other change
    /// (a sealed segment touched, same length but new mtime, shrunk, new) is read whole. A flipped byte in an
    /// old record of a segment that also grew in the same interval is therefore only caught by the deep verify:
    /// that is the trade for a quick check that costs nothing on an idle store.
    /// </para>
    /// <para>
    /// Bad bytes at the end of the last segment may be an append in flight, so they are confirmed under the
    /// writers' lock (1 s) before they are reported; if the lock is busy they are looked at again next time.
    /// </para>
    /// </summary>
    public sealed class SegmentScanInspector : IStoreInspector, IDetachedDeepVerifier
    {
        private sealed class SegmentState
        {
            public long Length;
            public DateTime Mtime;
            public long FirstSeq;
            public long ValidEnd;
            public long LastSeq;
        }

        private readonly Dictionary<string, Dictionary<string, SegmentState>> _stores = new Dictionary<string, Dictionary<string, SegmentState>>(StringComparer.Ordinal);
        private readonly object _gate = new object();
        private readonly Dictionary<string, long?> _epochs = new Dictionary<string, long?>(StringComparer.Ordinal);

        /// <summary>How long a check waits for the writers' lock to confirm a torn tail.</summary>
        public TimeSpan ConfirmLockTimeout { get; set; } = TimeSpan.FromSeconds(1);

        public IntegrityResult QuickCheck(string store, CancellationToken cancellationToken) => Check(store, deep: false, cancellationToken);

        public IntegrityResult DeepVerify(string store, CancellationToken cancellationToken) => Check(store, deep: true, cancellationToken);

        /// <summary>
        /// A deep verify beside the monitor's loop: every byte, from a blank slate, without the state or the lock the
        /// quick checks use, so reading gigabytes never holds them up. It reports what it finds and remembers nothing.
        /// </summary>
        public IntegrityResult DeepVerifyDetached(string store, CancellationToken cancellationToken)
            => Scan(Path.GetFullPath(store), deep: true, new Dictionary<string, SegmentState>(StringComparer.Ordinal), cancellationToken);

        /// <summary>Forgets what was verified in <paramref name="store"/>: the next check reads every segment again.</summary>
        public void Forget(string store)
        {
            lock (_gate)
            {
                _stores.Remove(Path.GetFullPath(store));
            }
        }

        private IntegrityResult Check(string store, bool deep, CancellationToken ct)
        {
            lock (_gate)
            {
                store = Path.GetFullPath(store);
                if (!_stores.TryGetValue(store, out var known))
                {
                    known = new Dictionary<string, SegmentState>(StringComparer.Ordinal);
                    _stores[store] = known;
                }

                // A restore or repair replaces segment files under the same names and bumps the writer epoch: what was
                // verified in the old files says nothing about the new ones (reading on from an old offset in a replaced
                // file would report an operator's restore as damage). Start over when the epoch moved.
                long? epoch = StoreLock.PeekEpoch(Path.Combine(store, StorePaths.LockFileName));
                if (!_epochs.TryGetValue(store, out long? seen) || seen != epoch)
                {
                    known.Clear();
                    _epochs[store] = epoch;
                }

                return Scan(store, deep, known, ct);
            }
        }

        /// <summary>One check of <paramref name="store"/> (a full path) against what <paramref name="known"/> says was verified before.</summary>
        private IntegrityResult Scan(string store, bool deep, Dictionary<string, SegmentState> known, CancellationToken ct)
        {
            var clock = Stopwatch.StartNew();
            var findings = new List<IntegrityFinding>();
            long bytes = 0, records = 0;
            string meta = Path.Combine(store, StorePaths.MetaFileName);
            string segmentsDir = Path.Combine(store, StorePaths.SegmentsDirName);
            if (!File.Exists(meta))
            {
                findings.Add(new IntegrityFinding(FindingKind.Missing, meta, null, $"The store's settings file '{meta}' is missing."));
            }

            if (!Directory.Exists(segmentsDir))
            {
                findings.Add(new IntegrityFinding(FindingKind.Missing, segmentsDir, null, $"The segments folder '{segmentsDir}' is missing."));
                return new IntegrityResult(store, deep, findings, 0, 0, clock.Elapsed);
            }

            List<(long FirstSeq, string Path)> segments;
            try
            {
                segments = SegmentNames.List(segmentsDir);
            }
            catch (IOException ex)
            {
                findings.Add(new IntegrityFinding(FindingKind.Unreadable, segmentsDir, null, $"Cannot list '{segmentsDir}': {ex.Message}"));
                return new IntegrityResult(store, deep, findings, 0, 0, clock.Elapsed);
            }

            var present = new HashSet<string>(StringComparer.Ordinal);
            foreach (var s in segments)
            {
                present.Add(s.Path);
            }

            foreach (var gone in new List<string>(known.Keys))
            {
                if (!present.Contains(gone))
                {
                    findings.Add(new IntegrityFinding(FindingKind.Missing, gone, null, $"Segment '{gone}' has disappeared (it was there at the previous check)."));
                    known.Remove(gone);
                }
            }

            if (segments.Count == 0)
            {
                findings.Add(new IntegrityFinding(FindingKind.Missing, segmentsDir, null, $"The store has no segments: '{segmentsDir}' is empty."));
            }
            else if (segments[0].FirstSeq != 1)
            {
                findings.Add(new IntegrityFinding(FindingKind.Missing, segments[0].Path, 0, $"The log starts at seq {segments[0].FirstSeq}, not 1: earlier segments are missing."));
            }

            long expectNext = -1;
            for (int i = 0; i < segments.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                var (firstSeq, path) = segments[i];
                bool isLast = i == segments.Count - 1;
                FileInfo fi;
                try
                {
                    fi = new FileInfo(path);
                    fi.Refresh();
                    _ = fi.Length;
                }
                catch (IOException ex)
                {
                    findings.Add(new IntegrityFinding(FindingKind.Unreadable, path, null, $"Cannot stat segment '{path}': {ex.Message}"));
                    continue;
                }

                if (expectNext > 0 && firstSeq != expectNext)
                {
                    findings.Add(new IntegrityFinding(FindingKind.SeqGap, path, 0, $"Segment '{path}' starts at seq {firstSeq} but the previous one ends at seq {expectNext - 1}."));
                }

                known.TryGetValue(path, out var state);
                long length = fi.Length;
                DateTime mtime = fi.LastWriteTimeUtc;
                if (!deep && state != null && state.Length == length && state.Mtime == mtime)
                {
                    expectNext = state.LastSeq + 1;
                    continue; // unchanged since it was verified
                }

                long from = 0;
                long expectSeq = firstSeq;
                if (!deep && state != null && isLast && length > state.Length && state.ValidEnd == state.Length)
                {
                    from = state.ValidEnd; // the active segment only grew: check the new records
                    expectSeq = state.LastSeq + 1;
                }

                var scan = ScanSegment(path, firstSeq, from, expectSeq, isLast, ct);
                bytes += scan.Bytes;
                records += scan.Records;
                if (scan.Findings.Count > 0 && isLast && scan.OnlyTornTail)
                {
                    scan = ConfirmTornTail(store, path, firstSeq, from, expectSeq, scan, ct);
                }

                findings.AddRange(scan.Findings);
                expectNext = scan.LastSeq + 1;
                if (scan.Findings.Count == 0 && !scan.Unconfirmed)
                {
                    known[path] = new SegmentState { Length = length, Mtime = mtime, FirstSeq = firstSeq, ValidEnd = scan.ValidEnd, LastSeq = scan.LastSeq };
                }
                else
                {
                    known.Remove(path); // read it whole next time
                }
            }

            return new IntegrityResult(store, deep, findings, bytes, records, clock.Elapsed);
        }

        private sealed class SegmentScan
        {
            public List<IntegrityFinding> Findings = new List<IntegrityFinding>();
            public long ValidEnd;
            public long LastSeq;
            public long Bytes;
            public long Records;
            public bool OnlyTornTail;
            public bool Unconfirmed;
        }

        private static SegmentScan ScanSegment(string path, long firstSeq, long from, long expectSeq, bool isLast, CancellationToken ct)
        {
            var scan = new SegmentScan { LastSeq = expectSeq - 1, ValidEnd = from };
            try
            {
                if (from == 0)
                {
                    long headerFirst = -1;
                    foreach (var line in SegmentReader.ReadLines(path, 0, 4096))
                    {
                        headerFirst = line.Terminated ? SegmentHeader.ParseFirstSeq(line.Span) : -1;
                        scan.ValidEnd = line.End;
                        break;
                    }

                    if (headerFirst != firstSeq)
                    {
                        scan.Findings.Add(new IntegrityFinding(FindingKind.HeaderDamaged, path, 0,
                            headerFirst < 1 ? $"Segment '{path}' has a damaged or missing header at byte 0." : $"Segment '{path}' says it starts at seq {headerFirst}, but its name says {firstSeq}."));
                        return scan;
                    }
                }

                long firstBad = -1;
                bool badTerminated = false;
                long firstDamagedRecord = -1; // a complete line with a record's shape: a changed byte, never a torn write
                foreach (var line in SegmentReader.ReadLines(path, scan.ValidEnd))
                {
                    ct.ThrowIfCancellationRequested();
                    scan.Bytes += line.Length + (line.Terminated ? 1 : 0);
                    bool ok = line.Terminated && RecordCodec.ChecksumOk(line.Span) && !RecordCodec.IsHeader(line.Span);
                    long seq = ok ? RecordCodec.ReadSeq(line.Span) : -1;
                    if (!ok || seq < 1)
                    {
                        if (firstBad < 0)
                        {
                            firstBad = line.Offset;
                            badTerminated = line.Terminated;
                        }

                        if (firstDamagedRecord < 0 && !ok && line.Terminated && RecordCodec.HasRecordShape(line.Span))
                        {
                            firstDamagedRecord = line.Offset;
                        }

                        continue;
                    }

                    if (firstBad >= 0)
                    {
                        // A valid record after bad bytes: the damage is inside the log, not a torn tail.
                        scan.Findings.Add(new IntegrityFinding(FindingKind.ChecksumMismatch, path, firstBad,
                            $"Segment '{path}' is damaged at byte {firstBad}: a record's checksum or format does not hold, and valid records follow it."));
                        return scan;
                    }

                    if (seq != expectSeq)
                    {
                        scan.Findings.Add(new IntegrityFinding(FindingKind.SeqGap, path, line.Offset, $"Segment '{path}' at byte {line.Offset}: expected seq {expectSeq} but found {seq}."));
                        return scan;
                    }

                    scan.Records++;
                    scan.LastSeq = seq;
                    expectSeq++;
                    scan.ValidEnd = line.End;
                }

                if (firstBad >= 0)
                {
                    if (isLast && firstDamagedRecord >= 0)
                    {
                        scan.Findings.Add(new IntegrityFinding(FindingKind.ChecksumMismatch, path, firstDamagedRecord,
                            $"Segment '{path}' ends in a complete record that fails its checksum, at byte {firstDamagedRecord}: a byte changed after it was written (not a torn write), so cutting it would lose an event and reuse its seq. Writers refuse until it is restored or repaired."));
                    }
                    else if (isLast)
                    {
                        scan.OnlyTornTail = true;
                        scan.Findings.Add(new IntegrityFinding(FindingKind.TornTail, path, firstBad,
                            $"Segment '{path}' ends in {new FileInfo(path).Length - firstBad} bytes that are not a valid record, from byte {firstBad} (a torn tail: a crash mid-append)."));
                    }
                    else
                    {
                        scan.Findings.Add(new IntegrityFinding(FindingKind.ChecksumMismatch, path, firstBad,
                            badTerminated ? $"Sealed segment '{path}' is damaged at byte {firstBad}: a record's checksum or format does not hold."
                                          : $"Sealed segment '{path}' ends in an incomplete record at byte {firstBad}."));
                    }
                }
            }
            catch (IOException ex)
            {
                scan.Findings.Add(new IntegrityFinding(FindingKind.Unreadable, path, null, $"Cannot read segment '{path}': {ex.Message}"));
            }
            catch (UnauthorizedAccessException ex)
            {
                scan.Findings.Add(new IntegrityFinding(FindingKind.Unreadable, path, null, $"Cannot read segment '{path}': {ex.Message}"));
            }

            return scan;
        }

        /// <summary>Bad bytes at the very end may be a writer mid-append: look again holding the writers' lock.</summary>
        private SegmentScan ConfirmTornTail(string store, string path, long firstSeq, long from, long expectSeq, SegmentScan first, CancellationToken ct)
        {
            StoreLock held;
            try
            {
                held = StoreLock.Acquire(Path.Combine(store, StorePaths.LockFileName), ConfirmLockTimeout, ct);
            }
            catch (BmadGuardException ex) when (ex.Code == ErrorCodes.LockTimeout)
            {
                return new SegmentScan { LastSeq = first.LastSeq, ValidEnd = first.ValidEnd, Unconfirmed = true };
            }

            using (held)
            {
                // Only the part this check read: the lock is held for the few records appended since the last check.
                var again = ScanSegment(path, firstSeq, from, expectSeq, isLast: true, ct);
                again.Bytes = first.Bytes;
                again.Records = first.Records;
                return again;
            }
        }
    }
}
