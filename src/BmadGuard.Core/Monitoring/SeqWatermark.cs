using System;
using System.Globalization;
using System.IO;
using System.Text.Json;
using System.Threading;
using BmadGuard.Core.Storage;

namespace BmadGuard.Core.Monitoring
{
    /// <summary>
    /// The monitor's high-water mark: the highest seq it has seen in a store, the id of that event and where its record
    /// ends, keyed by the store's writer epoch (<see cref="StoreLock.ReadEpoch"/>). A log that loses its newest segment,
    /// or is truncated exactly at a record boundary, still verifies (it is just shorter); only a memory of what was
    /// there shows that acknowledged events vanished.
    /// <list type="bullet">
    /// <item>The store's last seq is read without the lock (the last segment's tail). When it equals the mark and the
    /// mark's record is still in place, nothing else is done: no lock, a few hundred bytes read.</item>
    /// <item>Otherwise the epoch and the last seq are read again together under the writers' lock (a short try: a busy
    /// lock only postpones the reading to the next check). A different epoch means a restore replaced the log on
    /// purpose: the mark is reset to the new state, nothing is reported. Same epoch and the log ends below the mark,
    /// or the mark's record is gone or holds another event: <see cref="FindingKind.LogShrunk"/>.</item>
    /// <item>The mark advances only while the store is healthy, and is persisted in <c>monitor.json</c> as
    /// <c>highWater</c>, so a restarted monitor still knows it.</item>
    /// </list>
    /// </summary>
    public sealed class SeqWatermark
    {
        /// <summary>How long a check waits for the writers' lock before leaving the reading for the next check.</summary>
        public static TimeSpan LockWait { get; set; } = TimeSpan.FromMilliseconds(500);

        public SeqWatermark(long epoch, long seq, string? id, string? segment, long recordEnd)
        {
            Epoch = epoch;
            Seq = seq;
            Id = id;
            Segment = segment;
            RecordEnd = recordEnd;
        }

        public long Epoch { get; }
        public long Seq { get; }

        /// <summary>The id of the event at <see cref="Seq"/> (null for an empty store).</summary>
        public string? Id { get; }

        /// <summary>File name (in <c>segments/</c>) of the segment holding <see cref="Seq"/>.</summary>
        public string? Segment { get; }

        /// <summary>Offset just past that event's record.</summary>
        public long RecordEnd { get; }

        public void WriteJson(Utf8JsonWriter w, string name)
        {
            w.WriteStartObject(name);
            w.WriteNumber("epoch", Epoch);
            w.WriteNumber("seq", Seq);
            if (Id != null)
            {
                w.WriteString("id", Id);
            }

            if (Segment != null)
            {
                w.WriteString("segment", Segment);
            }

            w.WriteNumber("recordEnd", RecordEnd);
            w.WriteEndObject();
        }

        /// <summary>The mark a previous monitor left in <c>monitor.json</c>, or null.</summary>
        public static SeqWatermark? Load(string store)
        {
            string path = Path.Combine(store, MonitorInstance.StateFileName);
            try
            {
                if (!File.Exists(path))
                {
                    return null;
                }

                using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
                if (!doc.RootElement.TryGetProperty("highWater", out var hw) || hw.ValueKind != JsonValueKind.Object)
                {
                    return null;
                }

                return new SeqWatermark(
                    hw.GetProperty("epoch").GetInt64(),
                    hw.GetProperty("seq").GetInt64(),
                    hw.TryGetProperty("id", out var id) ? id.GetString() : null,
                    hw.TryGetProperty("segment", out var seg) ? seg.GetString() : null,
                    hw.TryGetProperty("recordEnd", out var end) ? end.GetInt64() : 0);
            }
            catch (Exception ex) when (ex is JsonException || ex is IOException || ex is InvalidOperationException || ex is System.Collections.Generic.KeyNotFoundException || ex is FormatException || ex is UnauthorizedAccessException)
            {
                return null; // an unreadable state file: start a new mark
            }
        }

        /// <summary>Where the log ends now: last seq, its event's id, its segment's file name and the record's end (no lock).</summary>
        internal static (long Seq, string? Id, string? Segment, long RecordEnd) ReadEnd(string store)
        {
            var segments = SegmentNames.List(Path.Combine(store, StorePaths.SegmentsDirName));
            for (int i = segments.Count - 1; i >= 0; i--)
            {
                var tail = SegmentTail.Scan(segments[i].Path);
                if (tail.LastSeq >= tail.FirstSeq)
                {
                    var record = ReadRecordEndingAt(segments[i].Path, tail.RecordsStart, tail.ValidEnd);
                    return (tail.LastSeq, record?.Id, Path.GetFileName(segments[i].Path), tail.ValidEnd);
                }

                if (i == segments.Count - 1 && segments.Count == 1)
                {
                    return (tail.FirstSeq - 1, null, Path.GetFileName(segments[i].Path), tail.ValidEnd);
                }
            }

            return (0, null, null, 0);
        }

        /// <summary>The event whose record ends (its '\n' included) at <paramref name="end"/>, or null when no valid record does.</summary>
        internal static Events.EventRecord? ReadRecordEndingAt(string path, long recordsStart, long end)
        {
            if (end <= recordsStart || !File.Exists(path))
            {
                return null;
            }

            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
            if (stream.Length < end)
            {
                return null;
            }

            long window = 4096;
            while (true)
            {
                long start = Math.Max(recordsStart, end - window);
                int count = (int)(end - start);
                var buffer = new byte[count];
                stream.Position = start;
                int read = 0;
                while (read < count)
                {
                    int n = stream.Read(buffer, read, count - read);
                    if (n <= 0)
                    {
                        return null;
                    }

                    read += n;
                }

                if (buffer[count - 1] != (byte)'\n')
                {
                    return null;
                }

                int nl = count >= 2 ? Array.LastIndexOf(buffer, (byte)'\n', count - 2) : -1;
                if (nl < 0 && start > recordsStart)
                {
                    window *= 4;
                    continue;
                }

                var span = new ReadOnlySpan<byte>(buffer, nl + 1, count - 1 - (nl + 1));
                return RecordCodec.ChecksumOk(span) && !RecordCodec.IsHeader(span) ? RecordCodec.DecodeEvent(span) : null;
            }
        }

        /// <summary>The mark's record is still where it was, holding the same event.</summary>
        internal bool StillInPlace(string store)
        {
            if (Id == null || Segment == null)
            {
                return true; // an empty store: nothing to lose
            }

            string path = Path.Combine(store, StorePaths.SegmentsDirName, Segment);
            try
            {
                var (_, recordsStart) = SegmentReader.ReadHeader(path);
                var record = ReadRecordEndingAt(path, recordsStart, RecordEnd);
                return record != null && record.Seq == Seq && string.Equals(record.Id, Id, StringComparison.Ordinal);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is BmadGuardException)
            {
                return false;
            }
        }

        public string Describe() => Id == null
            ? string.Format(CultureInfo.InvariantCulture, "seq {0} (epoch {1})", Seq, Epoch)
            : string.Format(CultureInfo.InvariantCulture, "seq {0}, id {1}, in '{2}' (epoch {3})", Seq, Id, Segment, Epoch);
    }

    /// <summary>Keeps one store's <see cref="SeqWatermark"/> and compares the store with it.</summary>
    public sealed class SeqWatch
    {
        private readonly string _store;

        public SeqWatch(string store, SeqWatermark? mark)
        {
            _store = store;
            Mark = mark;
        }

        public SeqWatermark? Mark { get; private set; }

        /// <summary>Forgets the mark (after the monitor's own repair or restore): the next check takes a new one.</summary>
        public void Reset() => Mark = null;

        /// <summary>
        /// Compares the store with the mark. Returns a <see cref="FindingKind.LogShrunk"/> finding when acknowledged events
        /// vanished under the same writer epoch; otherwise advances the mark when <paramref name="advance"/> (the store
        /// checked healthy) and returns null.
        /// </summary>
        public IntegrityFinding? Check(bool advance, CancellationToken cancellationToken)
        {
            var mark = Mark;
            (long Seq, string? Id, string? Segment, long RecordEnd) end;
            try
            {
                end = SeqWatermark.ReadEnd(_store);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is BmadGuardException)
            {
                return null; // the store check reports what cannot be read
            }

            if (mark != null && end.Seq == mark.Seq && end.Id == mark.Id)
            {
                return null; // unchanged: the common case, no lock
            }

            if (mark != null && end.Seq > mark.Seq && mark.StillInPlace(_store))
            {
                if (advance)
                {
                    Advance(cancellationToken);
                }

                return null; // grew: the mark's record is where it was
            }

            // Something moved back (or the mark's record changed), or there is no mark yet: read epoch and end together,
            // under the writers' lock, so a restore that bumps the epoch and swaps the segments is seen whole.
            StoreLock held;
            try
            {
                held = StoreLock.Acquire(Path.Combine(_store, StorePaths.LockFileName), SeqWatermark.LockWait, cancellationToken);
            }
            catch (BmadGuardException)
            {
                return null; // busy: the next check looks again
            }
            catch (IOException)
            {
                return null;
            }

            using (held)
            {
                long epoch = held.ReadEpoch();
                try
                {
                    end = SeqWatermark.ReadEnd(_store);
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is BmadGuardException)
                {
                    return null;
                }

                if (mark == null || epoch != mark.Epoch)
                {
                    if (advance || mark == null)
                    {
                        Mark = new SeqWatermark(epoch, end.Seq, end.Id, end.Segment, end.RecordEnd);
                    }

                    return null; // first sight, or a restore replaced the log on purpose: a new mark
                }

                bool shrunk = end.Seq < mark.Seq;
                if (!shrunk && mark.StillInPlace(_store))
                {
                    if (advance)
                    {
                        Mark = new SeqWatermark(epoch, end.Seq, end.Id, end.Segment, end.RecordEnd);
                    }

                    return null;
                }

                string expected = mark.Segment != null ? Path.Combine(_store, StorePaths.SegmentsDirName, mark.Segment) : Path.Combine(_store, StorePaths.SegmentsDirName);
                string message = shrunk
                    ? string.Format(CultureInfo.InvariantCulture,
                        "The log ends at seq {0}, but the monitor saw seq {1} under the same writer epoch {2}: acknowledged events {3}..{1} vanished (the newest of them was in '{4}'{5}). Nothing in the store looks damaged, so only this mark shows it: a deleted segment or a log cut at a record boundary.",
                        end.Seq, mark.Seq, epoch, end.Seq + 1, expected, File.Exists(expected) ? ", which is now shorter" : ", which is gone")
                    : string.Format(CultureInfo.InvariantCulture,
                        "Seq {0} was event {1} in '{2}' under writer epoch {3}, and that record is no longer there: the log was cut back and written again (it now ends at seq {4}). Events up to seq {0} that the monitor saw may be lost.",
                        mark.Seq, mark.Id, expected, epoch, end.Seq);
                return new IntegrityFinding(FindingKind.LogShrunk, expected, shrunk ? (long?)null : mark.RecordEnd, message)
                {
                    LostFirst = shrunk ? end.Seq + 1 : mark.Seq,
                    LostLast = mark.Seq,
                };
            }
        }

        private void Advance(CancellationToken cancellationToken)
        {
            // The epoch is read under the lock: a restore bumps it before it swaps the segments.
            try
            {
                using var held = StoreLock.Acquire(Path.Combine(_store, StorePaths.LockFileName), SeqWatermark.LockWait, cancellationToken);
                long epoch = held.ReadEpoch();
                var end = SeqWatermark.ReadEnd(_store);
                if (Mark == null || epoch != Mark.Epoch || end.Seq >= Mark.Seq)
                {
                    Mark = new SeqWatermark(epoch, end.Seq, end.Id, end.Segment, end.RecordEnd);
                }
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is BmadGuardException)
            {
                // Busy or unreadable: the next check advances it.
            }
        }
    }
}
